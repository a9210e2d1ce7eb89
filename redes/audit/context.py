"""Which channel the current write comes through (web, api, cli, system …), for the audit log."""

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    API = "api", _("API")
    CLI = "cli", _("Command line")
    ADMIN = "admin", _("Admin site")
    SYSTEM = "system", _("System")
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    TELEGRAM = "telegram", _("Telegram")


_channel: ContextVar[str] = ContextVar("redes_channel", default=Channel.SYSTEM)
_ip: ContextVar[str | None] = ContextVar("redes_ip", default=None)


def current_channel() -> str:
    return _channel.get()


def current_ip() -> str | None:
    return _ip.get()


@contextmanager
def using_channel(channel: str, ip: str | None = None):
    token = _channel.set(channel)
    ip_token = _ip.set(ip)
    try:
        yield
    finally:
        _channel.reset(token)
        _ip.reset(ip_token)


def set_channel(channel: str, ip: str | None = None) -> None:
    """Set the channel for the rest of the current context (one request, one CLI run)."""
    _channel.set(channel)
    _ip.set(ip)
