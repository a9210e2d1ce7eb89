"""Sending an SMS through Twilio: ``POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`` with basic
auth (account SID, auth token) and the form ``To``, ``From`` (or ``MessagingServiceSid``), ``Body`` and
``StatusCallback`` (our webhook, with our outbound id as ``ref``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse

from ..base import OutgoingMessage, SendResult
from ..sending import body_json, cut, generic, post, retry_after, secrets

DEFAULT_API_BASE = "https://api.twilio.com"
#: Twilio splits longer bodies into segments up to this many characters.
BODY_LIMIT = 1600
#: Twilio error codes that mean "later" (too many requests, queue overflow).
RETRY_CODES = {20429, 30001}


def status_callback(account, reference: str) -> str:
    url = settings.REDES_PUBLIC_URL + reverse("messaging-hook-twilio", args=[account.uuid])
    return f"{url}?{urlencode({'ref': reference})}" if reference else url


def form(account, message: OutgoingMessage) -> dict:
    config = account.config or {}
    data = {"To": message.to, "Body": cut(message.text, BODY_LIMIT)}
    if config.get("messaging_service_sid"):
        data["MessagingServiceSid"] = config["messaging_service_sid"]
    else:
        data["From"] = config.get("from_number") or account.address
    data["StatusCallback"] = status_callback(account, message.reference)
    return data


def send(account, message: OutgoingMessage, client) -> SendResult:
    config = account.config or {}
    sid = config.get("account_sid", "")
    url = (
        f"{(config.get('api_base') or DEFAULT_API_BASE).rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    )
    answer = post(
        client, url, data=form(account, message), auth=(sid, secrets(account).get("auth_token", ""))
    )
    if isinstance(answer, SendResult):
        return answer
    data = body_json(answer)
    if 200 <= answer.status_code < 300:
        return SendResult(True, provider_id=str(data.get("sid", "")))
    code = data.get("code")
    text = str(data.get("message") or answer.text)[:300]
    if code in RETRY_CODES:
        return SendResult(
            False, retry=True, retry_after=retry_after(answer), error_code=str(code), error=text
        )
    return generic(answer, str(code) if code is not None else "", text)
