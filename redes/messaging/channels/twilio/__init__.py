"""Twilio Programmable Messaging (SMS): webhook ``/hooks/twilio/<account>/`` for incoming messages and status
callbacks, sending through ``/2010-04-01/Accounts/{sid}/Messages.json``."""

from __future__ import annotations

from django.http import HttpResponse

from ..base import ChannelAdapter
from . import inbound, outbound


class TwilioAdapter(ChannelAdapter):
    provider = "twilio"
    reports_status = True

    def check_signature(self, request, body, account):
        inbound.check_signature(request, body, account)

    def parse(self, request, body, account):
        return inbound.parse(body, request.GET.dict() if request is not None else None)

    def accepted(self):
        return HttpResponse(inbound.EMPTY_TWIML, content_type="text/xml")

    def send(self, account, message, client):
        return outbound.send(account, message, client)


ADAPTER = TwilioAdapter()
