"""A loopback emulator of the Telegram Bot API's ``sendMessage``, for tests and benchmarks: answers
``{"ok": true, "result": {"message_id", "chat", "date", "text"}}``; over the bucket 429 with
``parameters.retry_after``; chats in ``blocked`` get 403 "bot was blocked by the user"; seeded 5xx at
``error_rate``. Telegram sends no delivery statuses, so neither does the emulator."""

from __future__ import annotations

import re
import time

from ..emulating import Emulator, Request, Response

_PATH = re.compile(r"^/bot(?P<token>[^/]+)/sendMessage$")


def telegram_error(status: int, description: str, **parameters) -> Response:
    body = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(status, body)


class TelegramEmulator(Emulator):
    def __init__(
        self,
        rate: float = 30.0,
        burst: int = 30,
        error_rate: float = 0.0,
        *,
        bot_token: str = "123456:emulator-bot-token",  # noqa: S107 - a test double
        blocked: set | None = None,
        seed: int = 0,
    ):
        super().__init__(rate=rate, burst=burst, error_rate=error_rate, seed=seed)
        self.bot_token = bot_token
        self.blocked = {str(c) for c in (blocked or ())}

    def handle(self, request: Request) -> Response:
        self.count("requests")
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return telegram_error(404, "Not Found")
        if match["token"] != self.bot_token:
            return telegram_error(401, "Unauthorized")
        if self.server_error():
            return telegram_error(502, "Bad Gateway")
        try:
            body = request.json()
        except ValueError:
            return telegram_error(400, "Bad Request: can't parse JSON")
        chat, text = str(body.get("chat_id", "")), body.get("text")
        if not chat or not isinstance(text, str) or not text or len(text) > 4096:
            self.count("rejected")
            return telegram_error(400, "Bad Request: message text is empty or too long")
        if chat in self.blocked:
            self.count("rejected")
            return telegram_error(403, "Forbidden: bot was blocked by the user")
        if self.throttled():
            return telegram_error(429, "Too Many Requests: retry after 1", retry_after=1)
        message_id = self.next_id()
        self.record({"id": message_id, "to": chat, "text": text, "payload": body})
        return Response(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "from": {"id": 123456, "is_bot": True, "first_name": "Redes"},
                    "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else chat, "type": "private"},
                    "date": int(time.time()),
                    "text": text,
                },
            },
        )
