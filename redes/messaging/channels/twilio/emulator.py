"""A loopback emulator of Twilio's Messages API, for tests and benchmarks.

``POST /2010-04-01/Accounts/{sid}/Messages.json`` with basic auth answers 201 with the message resource
(``sid`` ``SM…``, ``status`` queued). Over the token bucket: 429 with Twilio error 20429; at ``error_rate`` a
seeded 500; numbers in ``reject`` get that error code at once (e.g. 21211, invalid 'To'). When the request
carries a ``StatusCallback``, the statuses (sent, delivered; or sent, undelivered with ``ErrorCode`` for
numbers in ``undeliverable``) are posted there as Twilio does: a form signed with ``X-Twilio-Signature``.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from urllib.parse import urlencode

from ..emulating import Emulator, Request, Response
from .inbound import sign

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


def twilio_error(status: int, code: int, message: str) -> Response:
    return Response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class TwilioEmulator(Emulator):
    def __init__(
        self,
        rate: float = 10.0,
        burst: int = 10,
        error_rate: float = 0.0,
        *,
        account_sid: str = "AC00000000000000000000000000000000",
        auth_token: str = "emulator-auth-token",  # noqa: S107 - a test double
        reject: dict | None = None,
        undeliverable: dict | None = None,
        seed: int = 0,
    ):
        # Callbacks go to each request's StatusCallback: a placeholder webhook_url starts the posting threads.
        super().__init__(
            rate=rate, burst=burst, error_rate=error_rate, webhook_url="status-callback", seed=seed
        )
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.reject = {str(k): int(v) for k, v in (reject or {}).items()}
        self.undeliverable = {str(k): int(v) for k, v in (undeliverable or {}).items()}

    def _post_callbacks(self) -> None:
        """Each queued item carries its own callback URL (``StatusCallback``)."""
        import httpx

        with httpx.Client(timeout=10.0) as client:
            while True:
                item = self._callbacks.get()
                if item is None:
                    self._callbacks.task_done()
                    return
                try:
                    for url, body, headers in item:
                        try:
                            ok = client.post(url, content=body, headers=headers).status_code < 300
                        except Exception:
                            ok = False
                        self.count("callbacks_posted" if ok else "callbacks_failed")
                finally:
                    self._callbacks.task_done()

    def handle(self, request: Request) -> Response:
        self.count("requests")
        match = _PATH.match(request.path)
        if request.method != "POST" or not match:
            return twilio_error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if match["sid"] != self.account_sid or request.headers.get("Authorization", "") != expected:
            return twilio_error(401, 20003, "Authenticate")
        if self.server_error():
            return twilio_error(500, 20500, "An internal server error has occurred")
        params = request.form()
        to, body = params.get("To", ""), params.get("Body", "")
        if not re.fullmatch(r"\+\d{8,15}", to):
            self.count("rejected")
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not body:
            self.count("rejected")
            return twilio_error(400, 21602, "Message body is required.")
        if not (params.get("From") or params.get("MessagingServiceSid")):
            self.count("rejected")
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if to in self.reject:
            self.count("rejected")
            return twilio_error(400, self.reject[to], "Emulated rejection")
        if self.throttled():
            return twilio_error(429, 20429, "Too Many Requests")
        sid = "SM" + uuid.uuid4().hex
        self.record({"id": sid, "to": to, "text": body, "from": params.get("From", ""), "payload": params})
        callback = params.get("StatusCallback")
        if callback:
            posts = []
            failed = self.undeliverable.get(to)
            for status in ("sent", "undelivered") if failed else ("sent", "delivered"):
                form = {
                    "AccountSid": self.account_sid,
                    "ApiVersion": "2010-04-01",
                    "From": params.get("From", ""),
                    "MessageSid": sid,
                    "MessageStatus": status,
                    "SmsSid": sid,
                    "SmsStatus": status,
                    "To": to,
                }
                if failed and status == "undelivered":
                    form["ErrorCode"] = str(failed)
                headers = {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": sign(callback, form, self.auth_token),
                }
                posts.append((callback, urlencode(form).encode(), headers))
            self._callbacks.put(posts)
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        return Response(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": params.get("From"),
                "messaging_service_sid": params.get("MessagingServiceSid"),
                "body": body,
                "status": "queued",
                "num_segments": str(max(1, -(-len(body) // 153))),
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": now,
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )
