"""Sending through a Telegram bot: ``POST {api_base}/bot<token>/sendMessage`` with ``chat_id``, ``text`` and, for
menu options, an inline keyboard (one button per row; ``callback_data`` comes back as a ``callback_query``).
429 carries ``parameters.retry_after``; 403 (the person blocked the bot) is permanent."""

from __future__ import annotations

from ..base import OutgoingMessage, SendResult
from ..sending import body_json, cut, generic, post, secrets

DEFAULT_API_BASE = "https://api.telegram.org"
TEXT_LIMIT = 4096
BUTTON_LIMIT = 64
TELEGRAM_PREFIX = "telegram:"


def chat_id(address: str) -> str:
    return address[len(TELEGRAM_PREFIX) :] if address.startswith(TELEGRAM_PREFIX) else address


def payload(message: OutgoingMessage) -> dict:
    data = {"chat_id": chat_id(message.to), "text": cut(message.text or "…", TEXT_LIMIT)}
    if message.options:
        data["reply_markup"] = {
            "inline_keyboard": [
                [
                    {
                        "text": cut(o["title"], BUTTON_LIMIT),
                        "callback_data": str(o["id"]).encode()[:64].decode(errors="ignore"),
                    }
                ]
                for o in message.options
            ]
        }
    return data


def send(account, message: OutgoingMessage, client) -> SendResult:
    token = secrets(account).get("bot_token", "")
    base = ((account.config or {}).get("api_base") or DEFAULT_API_BASE).rstrip("/")
    answer = post(client, f"{base}/bot{token}/sendMessage", json=payload(message))
    if isinstance(answer, SendResult):
        return answer
    data = body_json(answer)
    if 200 <= answer.status_code < 300 and data.get("ok"):
        result = data.get("result") or {}
        return SendResult(True, provider_id=f"{chat_id(message.to)}:{result.get('message_id', '')}")
    description = str(data.get("description") or answer.text)[:300]
    code = str(data.get("error_code") or answer.status_code)
    if answer.status_code == 429:
        hint = (data.get("parameters") or {}).get("retry_after")
        return SendResult(
            False,
            retry=True,
            retry_after=float(hint) if isinstance(hint, int | float) else None,
            error_code=code,
            error=description,
        )
    return generic(answer, code, description)
