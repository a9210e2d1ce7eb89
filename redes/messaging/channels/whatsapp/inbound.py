"""The WhatsApp Cloud API webhook: the ``hub.challenge`` handshake, ``X-Hub-Signature-256`` and the payload
``entry[].changes[].value.{metadata, contacts, messages[], statuses[]}``.

Messages of type ``text``, ``interactive`` (``button_reply`` / ``list_reply``), ``button`` (a template's quick
reply) and ``location`` are read; any other type (sticker, audio, image, video, document, reaction, contacts,
unsupported...) becomes a ``media`` event carrying its type, so the conversation can answer politely.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

from django.http import HttpResponse

from ..base import InboundEvent, MalformedPayload, WebhookRefused
from ..sending import secrets

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value of ``body``: ``sha256=<hex HMAC-SHA256 with the app secret>``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def handshake(request, account) -> HttpResponse | None:
    """``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``: echo the challenge when the token is
    ours; refuse (403) otherwise."""
    mode = request.GET.get("hub.mode")
    if mode is None:
        return None
    expected = secrets(account).get("verify_token", "")
    given = request.GET.get("hub.verify_token", "")
    if mode != "subscribe" or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRefused("Wrong verify token.")
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")


def check_signature(request, body: bytes, account) -> None:
    app_secret = secrets(account).get("app_secret", "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not app_secret:
        raise WebhookRefused("The account has no app secret.")
    if not given:
        raise WebhookRefused("Missing X-Hub-Signature-256.")
    if not hmac.compare_digest(given.strip().encode(), sign(body, app_secret).encode()):
        raise WebhookRefused("Wrong X-Hub-Signature-256.")


def _when(value) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _required(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str | int) or not str(value):
        raise MalformedPayload(f"{where} without {key}.")
    return str(value)


def parse(body: bytes) -> list[InboundEvent]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"Not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise MalformedPayload("No entry list.")
    events: list[InboundEvent] = []
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise MalformedPayload("An entry without changes.")
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                raise MalformedPayload("A change without value.")
            names = {
                str(c.get("wa_id")): ((c.get("profile") or {}).get("name") or "")
                for c in value.get("contacts") or []
                if isinstance(c, dict)
            }
            for message in _items(value, "messages"):
                events.append(_message(message, names))
            for status in _items(value, "statuses"):
                events.append(_status(status))
    return events


def _items(value: dict, key: str) -> list[dict]:
    items = value.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MalformedPayload(f"{key} is not a list of objects.")
    return items


def _message(message: dict, names: dict) -> InboundEvent:
    provider_id = _required(message, "id", "A message")
    sender = _required(message, "from", "A message")
    kind = message.get("type") or "unknown"
    data: dict = {}
    if names.get(sender):
        data["profile_name"] = names[sender]
    context = message.get("context")
    if isinstance(context, dict) and context.get("id"):
        data["context"] = str(context["id"])
    event = InboundEvent(provider_id=provider_id, kind="media", sender=sender, data=data)
    event.timestamp = _when(message.get("timestamp"))
    part = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text" and isinstance(part.get("body"), str):
        event.kind, event.text = "text", part["body"]
    elif kind == "interactive" and part.get("type") in ("button_reply", "list_reply"):
        reply = part.get(part["type"]) or {}
        event.kind = "interactive"
        event.text = str(reply.get("title") or "")
        data.update(id=str(reply.get("id") or ""), title=event.text)
    elif kind == "button":
        event.kind = "interactive"
        event.text = str(part.get("text") or "")
        data.update(id=str(part.get("payload") or ""), title=event.text)
    elif kind == "location" and "latitude" in part and "longitude" in part:
        try:
            lat, lon = float(part["latitude"]), float(part["longitude"])
        except (TypeError, ValueError) as exc:
            raise MalformedPayload("A location without numeric coordinates.") from exc
        event.kind = "location"
        data.update(
            lat=lat, lon=lon, name=str(part.get("name") or ""), address=str(part.get("address") or "")
        )
    else:
        data["type"] = str(kind)[:40]
        if isinstance(part.get("caption"), str):
            event.text = part["caption"]
    return event


def _status(status: dict) -> InboundEvent:
    provider_id = _required(status, "id", "A status")
    data = {
        "status": str(status.get("status") or ""),
        "reference": str(status.get("biz_opaque_callback_data") or ""),
        "recipient": str(status.get("recipient_id") or ""),
        "errors": [
            {"code": str(e.get("code", "")), "title": str(e.get("title") or e.get("message") or "")}
            for e in status.get("errors") or []
            if isinstance(e, dict)
        ],
    }
    return InboundEvent(
        provider_id=provider_id, kind="status", data=data, timestamp=_when(status.get("timestamp"))
    )
