"""Sending through the generic gateway: ``POST {send_url}`` with ``Authorization: Bearer <api_key>`` and
``{"to": "+528112345678", "text": "...", "reference": "<our outbound id>"}``; the gateway answers 2xx with
``{"id": "<its id>"}``, 429 (with ``Retry-After``) or 5xx to be retried, another 4xx with
``{"error": {"code", "message"}}`` for a permanent failure."""

from __future__ import annotations

from ..base import OutgoingMessage, SendResult
from ..sending import body_json, cut, generic, post, secrets

BODY_LIMIT = 1600


def send(account, message: OutgoingMessage, client) -> SendResult:
    url = (account.config or {}).get("send_url", "")
    if not url:
        return SendResult(False, error_code="config", error="The gateway account has no send URL.")
    payload = {
        "to": message.to,
        "text": cut(message.text, BODY_LIMIT),
        "reference": str(message.reference or ""),
    }
    headers = {"Authorization": f"Bearer {secrets(account).get('api_key', '')}"}
    answer = post(client, url, json=payload, headers=headers)
    if isinstance(answer, SendResult):
        return answer
    data = body_json(answer)
    if 200 <= answer.status_code < 300:
        return SendResult(True, provider_id=str(data.get("id", "")))
    error = data.get("error")
    if isinstance(error, dict):
        return generic(answer, str(error.get("code") or ""), str(error.get("message") or ""))
    return generic(answer, "", str(error or ""))
