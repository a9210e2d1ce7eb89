"""Sending through the WhatsApp Cloud API: ``POST {api_base}/{api_version}/{phone_number_id}/messages``.

A text with up to 3 options goes as reply buttons, up to 10 as a list (titles cut to WhatsApp's limits: 20
characters for a button, 24 for a row); outside the 24-hour window the outbox passes an approved template.
Our outbound id travels as ``biz_opaque_callback_data`` and comes back in every status callback.
"""

from __future__ import annotations

import re

from ..base import OutgoingMessage, SendResult
from ..sending import body_json, cut, generic, post, retry_after, secrets

DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
BUTTON_TITLE_LIMIT = 20
ROW_TITLE_LIMIT = 24
ROW_ID_LIMIT = 200
#: The label of the button that opens a list (WhatsApp requires one; conversation texts are Spanish data).
LIST_BUTTON = "Opciones"

#: Graph error codes that mean "later": throttling (4, 80007, 130429, 131048, 131056) and the platform's
#: own transient failures (1, 2, 131000, 131016).
RETRY_CODES = {1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131056, 133016}


def recipient(address: str) -> str:
    """WhatsApp wants the international number in digits, no "+": ``+528112345678`` → ``528112345678``."""
    return re.sub(r"\D", "", address or "")


def payload(message: OutgoingMessage) -> dict:
    """The Cloud API request body for one message."""
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient(message.to)}
    if message.template:
        template = {
            "name": message.template["name"],
            "language": {"code": message.template.get("language") or "es_MX"},
        }
        params = [str(p) for p in message.template.get("params") or ()]
        if params:
            template["components"] = [
                {"type": "body", "parameters": [{"type": "text", "text": cut(p, 1024)} for p in params]}
            ]
        base.update(type="template", template=template)
    elif message.options and len(message.text) <= INTERACTIVE_BODY_LIMIT and len(message.options) <= 10:
        base.update(type="interactive", interactive=_interactive(message))
    else:
        base.update(type="text", text={"body": cut(message.text, TEXT_LIMIT), "preview_url": False})
    if message.reference:
        base["biz_opaque_callback_data"] = str(message.reference)
    return base


def _interactive(message: OutgoingMessage) -> dict:
    options = message.options or []
    body = {"text": message.text or "…"}
    if len(options) <= 3:
        buttons = [
            {
                "type": "reply",
                "reply": {"id": cut(o["id"], 256), "title": cut(o["title"], BUTTON_TITLE_LIMIT)},
            }
            for o in options
        ]
        return {"type": "button", "body": body, "action": {"buttons": buttons}}
    rows = [{"id": cut(o["id"], ROW_ID_LIMIT), "title": cut(o["title"], ROW_TITLE_LIMIT)} for o in options]
    for row, option in zip(rows, options, strict=True):
        if len(option["title"]) > ROW_TITLE_LIMIT:
            row["description"] = cut(option["title"], 72)
    return {"type": "list", "body": body, "action": {"button": LIST_BUTTON, "sections": [{"rows": rows}]}}


def send(account, message: OutgoingMessage, client) -> SendResult:
    config = account.config or {}
    token = secrets(account).get("access_token", "")
    url = "{}/{}/{}/messages".format(
        (config.get("api_base") or DEFAULT_API_BASE).rstrip("/"),
        config.get("api_version") or DEFAULT_API_VERSION,
        config.get("phone_number_id", ""),
    )
    answer = post(client, url, json=payload(message), headers={"Authorization": f"Bearer {token}"})
    if isinstance(answer, SendResult):
        return answer
    data = body_json(answer)
    if 200 <= answer.status_code < 300:
        messages = data.get("messages") or [{}]
        return SendResult(True, provider_id=str(messages[0].get("id", "")))
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = error.get("code")
    text = str(error.get("message") or answer.text)[:300]
    if code in RETRY_CODES:
        return SendResult(
            False, retry=True, retry_after=retry_after(answer), error_code=str(code), error=text
        )
    return generic(answer, str(code) if code is not None else "", text)
