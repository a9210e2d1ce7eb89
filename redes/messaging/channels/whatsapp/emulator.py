"""A loopback emulator of the WhatsApp Cloud API's send endpoint, for tests and benchmarks.

``POST /{version}/{phone_number_id}/messages`` with ``Authorization: Bearer <token>`` answers like Graph does:
``{"messaging_product": "whatsapp", "contacts": [{"input", "wa_id"}], "messages": [{"id": "wamid..."}]}``.
Over the token bucket (80 messages/s per number by default) it answers HTTP 400 with Graph error 130429; at
``error_rate`` a seeded random 500; numbers in ``reject`` get that Graph error at once (e.g. 131026), numbers in
``undeliverable`` are accepted and then reported ``failed`` with that code. When ``webhook_url`` is set, every
accepted message gets its status callbacks (sent, delivered, read; or sent, failed) posted there in the real
webhook's shape, signed with ``app_secret`` (``X-Hub-Signature-256``) and carrying ``biz_opaque_callback_data``,
from background threads so that the send answer is not slowed.

    emulator = WhatsAppEmulator(rate=80, burst=80, error_rate=0.01, webhook_url=url, app_secret="s")
    base_url = emulator.start()        # account.config["api_base"] = base_url
    ...
    emulator.stop(); emulator.sent, emulator.rate_limited, emulator.server_errors
"""

from __future__ import annotations

import json
import re
import time
import uuid

from ..emulating import Emulator, Request, Response
from .inbound import sign

_PATH = re.compile(r"^/(?P<version>v\d+\.\d+)/(?P<phone_number_id>[^/]+)/messages/?$")


def graph_error(status: int, code: int, message: str, *, kind: str = "OAuthException", details: str = ""):
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": uuid.uuid4().hex[:22]}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Response(status, {"error": error})


class WhatsAppEmulator(Emulator):
    def __init__(
        self,
        rate: float = 80.0,
        burst: int = 80,
        error_rate: float = 0.0,
        webhook_url: str | None = None,
        app_secret: str = "emulator-app-secret",  # noqa: S107 - a test double
        seed: int = 0,
        *,
        access_token: str | None = None,
        statuses: tuple[str, ...] = ("sent", "delivered", "read"),
        reject: dict | None = None,
        undeliverable: dict | None = None,
        display_phone_number: str = "15550001234",
        callback_threads: int = 2,
    ):
        super().__init__(
            rate=rate,
            burst=burst,
            error_rate=error_rate,
            webhook_url=webhook_url,
            seed=seed,
            callback_threads=callback_threads,
        )
        self.app_secret = app_secret
        self.access_token = access_token
        self.statuses = tuple(statuses)
        self.reject = {str(k): int(v) for k, v in (reject or {}).items()}
        self.undeliverable = {str(k): int(v) for k, v in (undeliverable or {}).items()}
        self.display_phone_number = display_phone_number

    def handle(self, request: Request) -> Response:
        self.count("requests")
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return graph_error(400, 100, "Unsupported request", kind="GraphMethodException")
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if not token or (self.access_token is not None and token != self.access_token):
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if self.server_error():
            return graph_error(500, 131000, "Something went wrong", details="Emulated server error")
        try:
            body = request.json()
        except ValueError:
            return graph_error(400, 100, "Invalid parameter", details="Body is not JSON")
        problem = _problem(body)
        if problem:
            self.count("rejected")
            return graph_error(400, 100, "(#100) Invalid parameter", details=problem)
        to = body["to"]
        if to in self.reject:
            self.count("rejected")
            code = self.reject[to]
            return graph_error(400, code, f"(#{code}) Message failed to send", details="Emulated rejection")
        if self.throttled():
            return graph_error(
                400,
                130429,
                "(#130429) Rate limit hit",
                details="Cloud API message throughput has been reached.",
            )
        wamid = "wamid." + uuid.uuid4().hex.upper()
        entry = {
            "id": wamid,
            "to": to,
            "type": body["type"],
            "text": (body.get("text") or {}).get("body", "")
            or ((body.get("interactive") or {}).get("body") or {}).get("text", ""),
            "template": (body.get("template") or {}).get("name", ""),
            "biz_opaque_callback_data": body.get("biz_opaque_callback_data", ""),
            "phone_number_id": match["phone_number_id"],
            "payload": body,
            "at": time.time(),
        }
        self.record(entry)
        if self.webhook_url:
            self._schedule_statuses(entry)
        return Response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            },
        )

    def _schedule_statuses(self, entry: dict) -> None:
        failed = self.undeliverable.get(entry["to"])
        statuses = ("sent", "failed") if failed else self.statuses
        posts = []
        for status in statuses:
            item = {
                "id": entry["id"],
                "status": status,
                "timestamp": str(int(time.time())),
                "recipient_id": entry["to"],
            }
            if entry["biz_opaque_callback_data"]:
                item["biz_opaque_callback_data"] = entry["biz_opaque_callback_data"]
            if status == "failed":
                item["errors"] = [
                    {
                        "code": failed,
                        "title": "Message undeliverable",
                        "message": "Message undeliverable",
                        "error_data": {"details": "Emulated delivery failure"},
                    }
                ]
            elif status in ("sent", "delivered"):
                item["conversation"] = {"id": uuid.uuid4().hex, "origin": {"type": "utility"}}
                item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
            payload = self.status_payload(entry["phone_number_id"], [item])
            body = json.dumps(payload).encode()
            posts.append(
                (
                    body,
                    {
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": sign(body, self.app_secret),
                    },
                )
            )
        self.callback(posts)

    def status_payload(self, phone_number_id: str, statuses: list[dict]) -> dict:
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": self.display_phone_number,
                                    "phone_number_id": phone_number_id,
                                },
                                "statuses": statuses,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }


def _problem(body) -> str:
    """Why a send request is invalid (as Graph would refuse it), or ""."""
    if not isinstance(body, dict):
        return "Body must be an object"
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not re.fullmatch(r"\d{8,15}", str(body.get("to", ""))):
        return "to must be the international number in digits"
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body")
        if not isinstance(text, str) or not text or len(text) > 4096:
            return "text.body must have 1 to 4096 characters"
    elif kind == "template":
        template = body.get("template") or {}
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return "template needs name and language.code"
    elif kind == "interactive":
        interactive = body.get("interactive") or {}
        if interactive.get("type") == "button":
            buttons = (interactive.get("action") or {}).get("buttons") or []
            if not 1 <= len(buttons) <= 3 or any(len(b["reply"]["title"]) > 20 for b in buttons):
                return "1 to 3 buttons, titles up to 20 characters"
        elif interactive.get("type") == "list":
            rows = [
                r for s in (interactive.get("action") or {}).get("sections") or [] for r in s.get("rows", [])
            ]
            if not 1 <= len(rows) <= 10 or any(len(r["title"]) > 24 for r in rows):
                return "1 to 10 rows, titles up to 24 characters"
        else:
            return "interactive.type must be button or list"
        if len((interactive.get("body") or {}).get("text") or "") > 1024:
            return "interactive body up to 1024 characters"
    else:
        return f"Unsupported type {kind}"
    return ""
