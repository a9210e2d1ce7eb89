"""The Telegram webhook: an ``Update`` JSON per request, with the header ``X-Telegram-Bot-Api-Secret-Token``
equal to the ``secret_token`` given to ``setWebhook`` (Telegram signs nothing else).

``message.text`` is a text, ``message.location`` a location, ``callback_query`` (an inline keyboard button
pressed) an interactive reply carrying the button's ``data``; any other message (sticker, photo, voice,
document...) is a ``media`` event with its type. Edits, channel posts and other updates carry nothing to
process. The sender is the chat id (``telegram:<id>``); the update id is the provider id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json

from ..base import InboundEvent, MalformedPayload, WebhookRefused
from ..sending import secrets

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
#: Message fields that are a kind of media (the first one present names the type).
MEDIA = (
    "sticker",
    "photo",
    "voice",
    "audio",
    "video",
    "video_note",
    "document",
    "animation",
    "contact",
    "poll",
)


def check_signature(request, body: bytes, account) -> None:
    secret = secrets(account).get("webhook_secret", "")
    given = request.headers.get(SECRET_HEADER, "")
    if not secret:
        raise WebhookRefused("The account has no webhook secret.")
    if not given:
        raise WebhookRefused("Missing X-Telegram-Bot-Api-Secret-Token.")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise WebhookRefused("Wrong X-Telegram-Bot-Api-Secret-Token.")


def _chat_id(message: dict) -> str:
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("id") in (None, ""):
        raise MalformedPayload("A message without chat.id.")
    return str(chat["id"])


def parse(body: bytes) -> list[InboundEvent]:
    try:
        update = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"Not JSON: {exc}") from exc
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise MalformedPayload("Not an Update (no update_id).")
    provider_id = str(update["update_id"])
    if isinstance(update.get("callback_query"), dict):
        query = update["callback_query"]
        message = query.get("message") if isinstance(query.get("message"), dict) else None
        sender = _chat_id(message) if message else str((query.get("from") or {}).get("id") or "")
        if not sender:
            raise MalformedPayload("A callback query without sender.")
        data = str(query.get("data") or "")
        return [
            InboundEvent(
                provider_id=provider_id,
                kind="interactive",
                sender=sender,
                text=data,
                data={"id": data, "title": "", "callback_query_id": str(query.get("id") or "")},
            )
        ]
    message = update.get("message")
    if not isinstance(message, dict):
        return []  # edited messages, channel posts, membership changes...: nothing to process
    event = InboundEvent(provider_id=provider_id, kind="text", sender=_chat_id(message))
    with contextlib.suppress(KeyError, TypeError, ValueError, OverflowError, OSError):
        event.timestamp = dt.datetime.fromtimestamp(int(message["date"]), tz=dt.UTC)
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    if sender.get("first_name"):
        event.data["profile_name"] = str(sender["first_name"])[:80]
    location = message.get("location")
    if isinstance(message.get("text"), str):
        event.text = message["text"]
    elif isinstance(location, dict):
        try:
            lat, lon = float(location["latitude"]), float(location["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload("A location without numeric coordinates.") from exc
        event.kind = "location"
        event.data.update(lat=lat, lon=lon, name="", address="")
    else:
        event.kind = "media"
        event.data["type"] = next((k for k in MEDIA if k in message), "other")
        if isinstance(message.get("caption"), str):
            event.text = message["caption"]
    return [event]
