"""WhatsApp Cloud API (Meta): webhook ``/hooks/whatsapp/<account>/``, sending through Graph ``/messages``."""

from __future__ import annotations

from ..base import ChannelAdapter
from . import inbound, outbound


class WhatsAppAdapter(ChannelAdapter):
    provider = "whatsapp"
    reports_status = True

    def handshake(self, request, account):
        return inbound.handshake(request, account)

    def check_signature(self, request, body, account):
        inbound.check_signature(request, body, account)

    def parse(self, request, body, account):
        return inbound.parse(body)

    def send(self, account, message, client):
        return outbound.send(account, message, client)


ADAPTER = WhatsAppAdapter()
