"""The console's "webhook": ``ingest.store_console`` writes the message as a small JSON body
``{"id", "from", "text", "lat", "lon", "option_id"}`` and parses it here, the same path as a provider's post.
There is no public URL for the console, so a request from outside is always refused."""

from __future__ import annotations

import json

from ..base import InboundEvent, MalformedPayload, WebhookRefused


def body_of(
    provider_id: str, sender: str, *, text: str = "", lat=None, lon=None, option_id: str = ""
) -> bytes:
    payload = {"id": provider_id, "from": sender, "text": text}
    if lat is not None and lon is not None:
        payload.update(lat=lat, lon=lon)
    if option_id:
        payload["option_id"] = option_id
    return json.dumps(payload, ensure_ascii=False).encode()


def check_signature(request, body: bytes, account) -> None:
    raise WebhookRefused("The console has no webhook.")


def parse(body: bytes) -> list[InboundEvent]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"Not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not payload.get("id"):
        raise MalformedPayload("No message id.")
    event = InboundEvent(provider_id=str(payload["id"]), kind="text", sender=str(payload.get("from") or ""))
    text = str(payload.get("text") or "")
    if payload.get("lat") is not None and payload.get("lon") is not None:
        try:
            lat, lon = float(payload["lat"]), float(payload["lon"])
        except (TypeError, ValueError) as exc:
            raise MalformedPayload("A location without numeric coordinates.") from exc
        event.kind = "location"
        event.data = {"lat": lat, "lon": lon, "name": "", "address": text}
    elif payload.get("option_id"):
        event.kind = "interactive"
        event.data = {"id": str(payload["option_id"]), "title": text}
        event.text = text
    else:
        event.text = text
    return [event]
