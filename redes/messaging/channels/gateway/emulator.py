"""A loopback emulator of the generic SMS gateway, for tests and benchmarks: ``POST /send`` with a Bearer API
key answers ``{"id"}``; over the bucket 429 with ``Retry-After``; seeded 5xx at ``error_rate``; statuses (sent,
delivered) posted to ``webhook_url`` signed with ``webhook_secret`` (``X-Signature``)."""

from __future__ import annotations

import json
import re
import uuid

from ..emulating import Emulator, Request, Response
from .inbound import sign


class GatewayEmulator(Emulator):
    def __init__(
        self,
        rate: float = 10.0,
        burst: int = 10,
        error_rate: float = 0.0,
        webhook_url: str | None = None,
        webhook_secret: str = "emulator-webhook-secret",  # noqa: S107 - a test double
        seed: int = 0,
        *,
        api_key: str = "emulator-api-key",
    ):
        super().__init__(rate=rate, burst=burst, error_rate=error_rate, webhook_url=webhook_url, seed=seed)
        self.webhook_secret = webhook_secret
        self.api_key = api_key

    @property
    def send_url(self) -> str:
        return self.base_url + "/send"

    def handle(self, request: Request) -> Response:
        self.count("requests")
        if request.method != "POST" or request.path != "/send":
            return Response(404, {"error": {"code": "not_found", "message": "Not found"}})
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return Response(401, {"error": {"code": "unauthorized", "message": "Wrong API key"}})
        if self.server_error():
            return Response(503, {"error": {"code": "unavailable", "message": "Try later"}})
        try:
            body = request.json()
        except ValueError:
            return Response(400, {"error": {"code": "bad_json", "message": "Body is not JSON"}})
        to, text = str(body.get("to", "")), str(body.get("text", ""))
        if not re.fullmatch(r"\+\d{8,15}", to) or not text:
            self.count("rejected")
            return Response(400, {"error": {"code": "invalid", "message": "to and text are required"}})
        if self.throttled():
            return Response(
                429, {"error": {"code": "rate", "message": "Slow down"}}, headers={"Retry-After": "1"}
            )
        gid = "gw-" + uuid.uuid4().hex
        reference = str(body.get("reference", ""))
        self.record({"id": gid, "to": to, "text": text, "reference": reference, "payload": body})
        posts = []
        for status in ("sent", "delivered"):
            payload = json.dumps(
                {"statuses": [{"id": gid, "status": status, "reference": reference}]}
            ).encode()
            posts.append(
                (
                    payload,
                    {"Content-Type": "application/json", "X-Signature": sign(payload, self.webhook_secret)},
                )
            )
        self.callback(posts)
        return Response(200, {"id": gid})
