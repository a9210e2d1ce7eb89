"""The Twilio webhook: form posts signed with ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, the full URL
followed by every POST parameter's name and value, sorted by name)).

An incoming SMS carries ``MessageSid``, ``From``, ``To``, ``Body``, ``NumMedia`` (and ``MediaContentType0``...);
a status callback carries ``MessageSid`` and ``MessageStatus`` (queued, sent, delivered, undelivered, failed)
with ``ErrorCode`` on failure. Our outbound id travels in the callback URL's ``ref`` query parameter. The
answer is an empty TwiML ``<Response/>`` (nothing is replied inline: replies go through the outbox).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl

from django.conf import settings

from ..base import InboundEvent, MalformedPayload, WebhookRefused
from ..sending import secrets

SIGNATURE_HEADER = "X-Twilio-Signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: Twilio's statuses as ours; the intermediate ones (queued, accepted, sending...) are not reported.
STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


def sign(url: str, params: dict, auth_token: str) -> str:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def form(body: bytes) -> dict:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload(f"Not a form: {exc}") from exc


def urls_of(request) -> list[str]:
    """The URLs Twilio may have signed: the public address configured for providers, and the one requested."""
    path = request.get_full_path()
    candidates = [settings.REDES_PUBLIC_URL + path, request.build_absolute_uri(path)]
    return list(dict.fromkeys(candidates))


def check_signature(request, body: bytes, account) -> None:
    auth_token = secrets(account).get("auth_token", "")
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not auth_token:
        raise WebhookRefused("The account has no auth token.")
    if not given:
        raise WebhookRefused("Missing X-Twilio-Signature.")
    try:
        params = form(body)
    except MalformedPayload as exc:
        raise WebhookRefused("The signature cannot be checked: the body is not a form.") from exc
    for url in urls_of(request):
        if hmac.compare_digest(given.encode(), sign(url, params, auth_token).encode()):
            return
    raise WebhookRefused("Wrong X-Twilio-Signature.")


def parse(body: bytes, query: dict | None = None) -> list[InboundEvent]:
    params = form(body)
    sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid") or ""
    if not sid:
        raise MalformedPayload("No MessageSid.")
    status = params.get("MessageStatus") or ""
    if status and status != "received" and "Body" not in params:
        ours = STATUSES.get(status)
        if ours is None:
            return []
        errors = []
        if params.get("ErrorCode"):
            errors.append({"code": params["ErrorCode"], "title": params.get("ErrorMessage", "")})
        data = {
            "status": ours,
            "reference": str((query or {}).get("ref", "")),
            "recipient": params.get("To", ""),
            "errors": errors,
        }
        return [InboundEvent(provider_id=sid, kind="status", data=data)]
    if not params.get("From"):
        raise MalformedPayload("A message without From.")
    event = InboundEvent(provider_id=sid, kind="text", sender=params["From"], text=params.get("Body", ""))
    try:
        media = int(params.get("NumMedia") or 0)
    except ValueError:
        media = 0
    if params.get("Latitude") and params.get("Longitude"):
        try:
            lat, lon = float(params["Latitude"]), float(params["Longitude"])
        except ValueError as exc:
            raise MalformedPayload("A location without numeric coordinates.") from exc
        event.kind = "location"
        event.data = {"lat": lat, "lon": lon, "name": "", "address": params.get("Address", "")}
    elif media and not event.text.strip():
        event.kind = "media"
        event.data = {"type": params.get("MediaContentType0", "media")[:40], "count": media}
    return [event]
