"""What the providers' emulators share: a threaded keep-alive HTTP server on 127.0.0.1, a token bucket, seeded
random server errors, and a background poster for the status callbacks (so a send is never slowed by them).

Each ``channels/<provider>/emulator.py`` subclasses ``Emulator`` and implements ``handle``. Emulators are for
the tests and the benchmarks only (there is no network there); nothing in the running application uses them.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class Bucket:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self.tokens = float(self.burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Request:
    """One request as the emulator's ``handle`` sees it."""

    def __init__(self, method: str, target: str, headers, body: bytes):
        self.method = method
        parts = urlsplit(target)
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


class Response:
    def __init__(self, status: int = 200, payload=None, *, body: bytes | None = None, headers=None):
        self.status = status
        self.headers = dict(headers or {})
        if body is None:
            body = json.dumps(payload if payload is not None else {}).encode()
            self.headers.setdefault("Content-Type", "application/json")
        self.body = body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries many sends
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        try:
            response = emulator.handle(Request(self.command, self.path, self.headers, body))
        except Exception as exc:  # an emulator bug must show as a 500, never hang the client
            response = Response(500, {"error": {"message": f"emulator: {exc}"}})
        head = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)

    do_GET = do_POST = _serve

    def log_message(self, format, *args):  # noqa: A002 - silence the per-request log lines
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Emulator:
    """Base: start/stop, the bucket, seeded errors, counters and the callback poster."""

    def __init__(
        self,
        *,
        rate: float = 80.0,
        burst: int = 80,
        error_rate: float = 0.0,
        webhook_url: str | None = None,
        seed: int = 0,
        callback_threads: int = 2,
    ):
        self.bucket = Bucket(rate, burst)
        self.error_rate = float(error_rate)
        self.webhook_url = webhook_url
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.sent: list[dict] = []
        self.requests = 0
        self.rate_limited = 0
        self.server_errors = 0
        self.rejected = 0
        self.callbacks_posted = 0
        self.callbacks_failed = 0
        self.callback_threads = callback_threads
        self._callbacks: queue.Queue = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0

    # ---- lifecycle
    def start(self) -> str:
        """Serve on 127.0.0.1 (a free port) from a background thread; returns the base URL."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="emulator", daemon=True)
        self._thread.start()
        for n in range(self.callback_threads if self.webhook_url else 0):
            worker = threading.Thread(
                target=self._post_callbacks, name=f"emulator-callbacks-{n}", daemon=True
            )
            worker.start()
            self._workers.append(worker)
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self, *, drain: float = 5.0) -> None:
        """Stop serving; status callbacks still queued are posted first (for up to ``drain`` seconds)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        deadline = time.monotonic() + drain
        while self._workers and not self._callbacks.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in self._workers:
            self._callbacks.put(None)
        for worker in self._workers:
            worker.join(timeout=max(0.1, deadline - time.monotonic()))
        self._workers = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait_callbacks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued status callback was posted (or failed); True when the queue is empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._callbacks.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    # ---- helpers for subclasses
    def next_id(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def server_error(self) -> bool:
        """Whether this request fails with a random 5xx (seeded, so runs are repeatable)."""
        if self.error_rate <= 0:
            return False
        with self.lock:
            hit = self.random.random() < self.error_rate
            if hit:
                self.server_errors += 1
        return hit

    def throttled(self) -> bool:
        if self.bucket.take():
            return False
        with self.lock:
            self.rate_limited += 1
        return True

    def count(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def record(self, entry: dict) -> None:
        with self.lock:
            self.sent.append(entry)

    def callback(self, posts: list[tuple[bytes, dict]]) -> None:
        """Queue status callbacks ``[(body, headers), ...]`` to ``webhook_url``; one message's callbacks are
        posted in order by one background thread."""
        if self.webhook_url and posts:
            self._callbacks.put(posts)

    def _post_callbacks(self) -> None:
        import httpx

        with httpx.Client(timeout=10.0) as client:
            while True:
                item = self._callbacks.get()
                if item is None:
                    self._callbacks.task_done()
                    return
                try:
                    for body, headers in item:
                        try:
                            answer = client.post(self.webhook_url, content=body, headers=headers)
                            ok = answer.status_code < 300
                        except Exception:
                            ok = False
                        self.count("callbacks_posted" if ok else "callbacks_failed")
                finally:
                    self._callbacks.task_done()

    def handle(self, request: Request) -> Response:
        raise NotImplementedError
