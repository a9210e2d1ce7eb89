"""The generic gateway's webhook (documented in ``docs/messaging.md``).

``POST /hooks/gateway/<account>/`` with a JSON body and ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body
with the account's webhook secret>``::

    {"messages": [{"id": "gw-1", "from": "+528112345678", "text": "Hola", "timestamp": 1767225600,
                   "lat": 25.79, "lon": -100.32}],
     "statuses": [{"id": "gw-out-9", "status": "delivered", "reference": "1234", "error": ""}]}

``id`` is the gateway's (unique per account); ``lat``/``lon`` are optional (a shared location); ``status`` is
one of sent, delivered, failed; ``reference`` is the one we passed when sending.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json

from ..base import InboundEvent, MalformedPayload, WebhookRefused
from ..sending import secrets

SIGNATURE_HEADER = "X-Signature"
STATUSES = {"sent", "delivered", "read", "failed"}


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(request, body: bytes, account) -> None:
    secret = secrets(account).get("webhook_secret", "")
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not secret:
        raise WebhookRefused("The account has no webhook secret.")
    if not given:
        raise WebhookRefused("Missing X-Signature.")
    if not hmac.compare_digest(given.encode(), sign(body, secret).encode()):
        raise WebhookRefused("Wrong X-Signature.")


def _list(payload: dict, key: str) -> list[dict]:
    items = payload.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MalformedPayload(f"{key} is not a list of objects.")
    return items


def _id(item: dict, where: str) -> str:
    value = item.get("id")
    if value in (None, "") or not isinstance(value, str | int):
        raise MalformedPayload(f"{where} without id.")
    return str(value)


def parse(body: bytes) -> list[InboundEvent]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"Not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("Not a JSON object.")
    events = []
    for item in _list(payload, "messages"):
        provider_id = _id(item, "A message")
        if not item.get("from"):
            raise MalformedPayload("A message without from.")
        event = InboundEvent(provider_id=provider_id, kind="text", sender=str(item["from"]))
        event.text = str(item.get("text") or "")
        if item.get("lat") is not None and item.get("lon") is not None:
            try:
                event.data = {"lat": float(item["lat"]), "lon": float(item["lon"]), "name": "", "address": ""}
            except (TypeError, ValueError) as exc:
                raise MalformedPayload("A location without numeric coordinates.") from exc
            event.kind = "location"
        with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError, OSError):
            event.timestamp = dt.datetime.fromtimestamp(int(item["timestamp"]), tz=dt.UTC)
        events.append(event)
    for item in _list(payload, "statuses"):
        provider_id = _id(item, "A status")
        status = str(item.get("status") or "")
        if status not in STATUSES:
            raise MalformedPayload(f"Unknown status {status[:20]!r}.")
        errors = [{"code": "", "title": str(item["error"])[:200]}] if item.get("error") else []
        data = {"status": status, "reference": str(item.get("reference") or ""), "errors": errors}
        events.append(InboundEvent(provider_id=provider_id, kind="status", data=data))
    return events
