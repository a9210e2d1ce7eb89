"""Token buckets shared across threads and processes: Redis (Lua) and the database row. Grants are counted,
never timed: with a negligible refill rate, however many takers race, exactly ``burst`` takes succeed and the
stored tokens never go below zero."""

from __future__ import annotations

import os
import threading
import uuid
from types import SimpleNamespace

from django.db import connection, connections
from django.test import TransactionTestCase, override_settings

from redes.messaging import ratelimit
from redes.messaging.models import RateBucket

REDIS_URL = os.environ.get("REDES_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def fake_account(rate=0.0001, burst=25):
    return SimpleNamespace(uuid=uuid.uuid4(), rate_per_second=rate, burst=burst)


def redis_or_skip(test):
    try:
        client = ratelimit.redis_client(REDIS_URL)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("REDES_REQUIRE_REDIS") == "1":
            raise
        test.skipTest(f"Redis not reachable at {REDIS_URL}: {exc}")
    return client


def race(make_bucket, *, threads=4, takes=15, close_db=False) -> tuple[int, list[float]]:
    """``threads`` takers, each with its own bucket object, ``takes`` takes each; returns grants and waits."""
    grants = []
    waits = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def taker():
        bucket = make_bucket()
        barrier.wait()
        try:
            for _ in range(takes):
                wait = bucket.take()
                with lock:
                    (grants if wait == 0 else waits).append(wait)
        finally:
            if close_db and threading.current_thread() is not threading.main_thread():
                connections.close_all()

    if threads == 1:
        taker()
        return len(grants), waits
    pool = [threading.Thread(target=taker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    return len(grants), waits


class DatabaseBucketTests(TransactionTestCase):
    def test_threads_share_one_bucket_and_tokens_never_go_negative(self):
        # SQLite's in-memory test database cannot take writers from several threads: one taker there (its
        # writers are serialised by IMMEDIATE transactions anyway); real threads and row locks on PostgreSQL.
        threads = 4 if connection.vendor == "postgresql" else 1
        account = fake_account(burst=25)
        granted, waits = race(
            lambda: ratelimit.bucket(account, redis_url=""),
            threads=threads,
            takes=60 // threads,
            close_db=True,
        )
        self.assertEqual(granted, 25)
        self.assertEqual(len(waits), 60 - 25)
        self.assertTrue(all(w > 0 for w in waits))
        row = RateBucket.objects.get(key=ratelimit.key_of(account))
        self.assertGreaterEqual(row.tokens, 0)
        self.assertLess(row.tokens, 1)

    def test_a_refused_take_takes_nothing_and_says_how_long_to_wait(self):
        account = fake_account(rate=2.0, burst=1)
        bucket = ratelimit.bucket(account, redis_url="")
        self.assertIsInstance(bucket, ratelimit.DatabaseBucket)
        self.assertEqual(bucket.take(), 0)
        wait = bucket.take()
        self.assertGreater(wait, 0)
        self.assertLessEqual(wait, 0.5)
        self.assertGreaterEqual(bucket.tokens(), 0)
        with self.assertRaises(ValueError):
            bucket.take(2)

    @override_settings(REDES_REDIS_URL="")
    def test_without_redis_the_database_is_used(self):
        self.assertIsInstance(ratelimit.bucket(fake_account()), ratelimit.DatabaseBucket)


class RedisBucketTests(TransactionTestCase):
    def setUp(self):
        self.client = redis_or_skip(self)

    def test_threads_with_their_own_connections_share_one_bucket(self):
        account = fake_account(burst=25)
        key = ratelimit.key_of(account)
        self.addCleanup(self.client.delete, key)

        def make():
            import redis

            own = redis.Redis.from_url(REDIS_URL)  # a separate connection, as another process would have
            return ratelimit.RedisBucket(key, account.rate_per_second, account.burst, own)

        granted, waits = race(make, threads=4, takes=15)
        self.assertEqual(granted, 25)
        self.assertEqual(len(waits), 35)
        tokens = float(self.client.hget(key, "tokens"))
        self.assertGreaterEqual(tokens, 0)
        self.assertLess(tokens, 1)
        self.assertGreater(self.client.ttl(key), 0)

    def test_processes_share_one_bucket(self):
        account = fake_account(burst=30)
        key = ratelimit.key_of(account)
        self.addCleanup(self.client.delete, key)
        import subprocess
        import sys

        code = (
            "import sys, redis\n"
            "from redes.messaging.ratelimit import RedisBucket\n"
            f"b = RedisBucket({key!r}, {account.rate_per_second}, {account.burst}, redis.Redis.from_url({REDIS_URL!r}))\n"
            "print(sum(1 for _ in range(20) if b.take() == 0))\n"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "redes.settings"}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", "import django; django.setup()\n" + code],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        self.assertEqual(sum(int(o.strip()) for o in outputs), 30)

    def test_refill_and_wait(self):
        account = fake_account(rate=4.0, burst=2)
        bucket = ratelimit.bucket(account, redis_url=REDIS_URL)
        self.addCleanup(self.client.delete, bucket.key)
        self.assertIsInstance(bucket, ratelimit.RedisBucket)
        self.assertEqual([bucket.take(), bucket.take()], [0, 0])
        wait = bucket.take()
        self.assertGreater(wait, 0)
        self.assertLessEqual(wait, 0.25)
        self.assertTrue(bucket.wait_and_take())  # blocks about a quarter second, then takes
        self.assertGreaterEqual(bucket.tokens(), 0)
