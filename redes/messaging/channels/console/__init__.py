"""The console channel: built in, no provider. People "text" from the web console page
(``ingest.store_console``) and what is sent to them shows in its outbox, delivered at once."""

from __future__ import annotations

from ..base import ChannelAdapter
from . import inbound, outbound


class ConsoleAdapter(ChannelAdapter):
    provider = "console"
    reports_status = True

    def check_signature(self, request, body, account):
        inbound.check_signature(request, body, account)

    def parse(self, request, body, account):
        return inbound.parse(body)

    def send(self, account, message, client):
        return outbound.send(account, message, client)


ADAPTER = ConsoleAdapter()
