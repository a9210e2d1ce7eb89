"""A Telegram bot: webhook ``/hooks/telegram/<account>/`` (``setWebhook`` with ``secret_token``), sending through
``/bot<token>/sendMessage``. Telegram reports no delivery statuses."""

from __future__ import annotations

from ..base import ChannelAdapter
from . import inbound, outbound


class TelegramAdapter(ChannelAdapter):
    provider = "telegram"
    reports_status = False

    def check_signature(self, request, body, account):
        inbound.check_signature(request, body, account)

    def parse(self, request, body, account):
        return inbound.parse(body)

    def send(self, account, message, client):
        return outbound.send(account, message, client)


ADAPTER = TelegramAdapter()
