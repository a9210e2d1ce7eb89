"""Channel adapters, one folder per provider with the same files (see ``base.py``)."""

from __future__ import annotations

from importlib import import_module

from .base import ChannelAdapter

PROVIDERS = ("console", "whatsapp", "twilio", "gateway", "telegram")


def get_adapter(provider: str) -> ChannelAdapter:
    if provider not in PROVIDERS:
        raise KeyError(provider)
    return import_module(f"{__name__}.{provider}").ADAPTER
