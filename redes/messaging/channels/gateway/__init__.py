"""A generic SMS gateway over HTTP (our own documented JSON, for local carriers and Android gateway apps):
webhook ``/hooks/gateway/<account>/``, sending by ``POST`` to the account's ``send_url``."""

from __future__ import annotations

from ..base import ChannelAdapter
from . import inbound, outbound


class GatewayAdapter(ChannelAdapter):
    provider = "gateway"
    reports_status = True

    def check_signature(self, request, body, account):
        inbound.check_signature(request, body, account)

    def parse(self, request, body, account):
        return inbound.parse(body)

    def send(self, account, message, client):
        return outbound.send(account, message, client)


ADAPTER = GatewayAdapter()
