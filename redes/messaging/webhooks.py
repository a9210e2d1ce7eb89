"""Provider webhooks: thin views over ``ingest`` (no session, no login, no CSRF token: each provider's request is
checked by its own signature instead). A POST is stored first and answered as the provider expects; a GET is
the provider's verification handshake (WhatsApp)."""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import ingest


def _hook(provider: str):
    @csrf_exempt
    @require_http_methods(["GET", "POST"])
    def view(request, account):
        if request.method == "GET":
            return ingest.handshake(provider, account, request)
        return ingest.store(provider, account, request)

    view.__name__ = f"{provider}_hook"
    view.__doc__ = f"The {provider} webhook of one channel account."
    return view


whatsapp = _hook("whatsapp")
twilio = _hook("twilio")
gateway = _hook("gateway")
telegram = _hook("telegram")
