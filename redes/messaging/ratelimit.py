"""Token buckets that every worker process shares: one per channel account (``rate_per_second``, ``burst``).

``bucket(account).take()`` answers how many seconds to wait before one message may go (0 = go now, and the
token is taken). A refused take takes nothing, so the tokens are never negative and the callers simply try
again after the wait.

Where the bucket lives:

- ``settings.REDES_REDIS_URL`` set: a Redis hash ``redes:bucket:<account uuid>`` updated by one Lua script
  (atomic on the server, clocked by the server's ``TIME`` so processes with skewed clocks agree);
- otherwise the ``RateBucket`` row of the same key in the database, read and written in one transaction
  (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions are ``IMMEDIATE``, so writers are serialised).

Buckets run on the wall clock (``time.time()``), not on ``core.clock``: a frozen test clock must not stall
sending.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import IntegrityError, transaction

from .models import RateBucket

#: KEYS[1] the bucket; ARGV rate (tokens/s), burst (capacity), n (tokens wanted). Returns the wait in seconds
#: as a string (Lua numbers become integers on the way out). The key expires once it would be full anyway.
LUA_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local wait = 0
if tokens >= n then
  tokens = tokens - n
else
  wait = (n - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""

KEY_PREFIX = "redes:bucket:"


def key_of(account) -> str:
    return f"{KEY_PREFIX}{account.uuid}"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take(n)`` returns the seconds to wait (0: taken)."""

    def __init__(self, key: str, rate: float, burst: int):
        self.key = key
        self.rate = max(float(rate or 0), 0.001)
        self.burst = max(int(burst or 0), 1)

    def take(self, n: int = 1) -> float:
        raise NotImplementedError

    def wait_and_take(
        self, n: int = 1, *, stop: threading.Event | None = None, max_wait: float = 5.0
    ) -> bool:
        """Block until ``n`` tokens are taken (True), or ``stop`` is set (False)."""
        while True:
            wait = self.take(n)
            if wait <= 0:
                return True
            if stop is not None:
                if stop.wait(min(wait, max_wait)):
                    return False
            else:
                time.sleep(min(wait, max_wait))


class RedisBucket(TokenBucket):
    def __init__(self, key: str, rate: float, burst: int, client):
        super().__init__(key, rate, burst)
        self.client = client
        self.script = _script(client)

    def take(self, n: int = 1) -> float:
        if n > self.burst:
            raise ValueError("A take larger than the bucket can never succeed.")
        return float(self.script(keys=[self.key], args=[self.rate, self.burst, n]))

    def tokens(self) -> float | None:
        value = self.client.hget(self.key, "tokens")
        return None if value is None else float(value)


class DatabaseBucket(TokenBucket):
    def take(self, n: int = 1) -> float:
        if n > self.burst:
            raise ValueError("A take larger than the bucket can never succeed.")
        for _ in range(3):
            try:
                with transaction.atomic():
                    return self._take(n)
            except IntegrityError:  # two processes created the row at once: the loser reads it
                continue
        return 1.0 / self.rate

    def _take(self, n: int) -> float:
        row = RateBucket.objects.select_for_update().filter(key=self.key).first()
        now = time.time()
        if row is None:
            row = RateBucket(key=self.key, tokens=float(self.burst), updated=now)
            with transaction.atomic():
                row.save(force_insert=True)
        tokens = float(row.tokens)
        if now > row.updated:
            tokens = min(float(self.burst), tokens + (now - row.updated) * self.rate)
            row.updated = now
        wait = 0.0
        if tokens >= n:
            tokens -= n
        else:
            wait = (n - tokens) / self.rate
        RateBucket.objects.filter(key=self.key).update(tokens=tokens, updated=max(row.updated, now))
        return wait

    def tokens(self) -> float | None:
        row = RateBucket.objects.filter(key=self.key).first()
        return None if row is None else row.tokens


_clients: dict[str, object] = {}
_scripts: dict[int, object] = {}
_lock = threading.Lock()


def redis_client(url: str | None = None):
    """One Redis connection pool per URL and process (thread-safe clients)."""
    url = url or settings.REDES_REDIS_URL
    with _lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
            _clients[url] = client
        return client


def _script(client):
    with _lock:
        script = _scripts.get(id(client))
        if script is None:
            script = client.register_script(LUA_TAKE)
            _scripts[id(client)] = script
        return script


def bucket(account, *, redis_url: str | None = None) -> TokenBucket:
    """The shared bucket of ``account``: Redis when configured (or ``redis_url`` given), else the database."""
    url = settings.REDES_REDIS_URL if redis_url is None else redis_url
    key = key_of(account)
    if url:
        return RedisBucket(key, account.rate_per_second, account.burst, redis_client(url))
    return DatabaseBucket(key, account.rate_per_second, account.burst)
