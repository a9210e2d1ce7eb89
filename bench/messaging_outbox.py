#!/usr/bin/env python
"""Messaging outbox benchmark (run by hand, not a test): sending a broadcast through the loopback WhatsApp
Cloud API emulator.

    python bench/messaging_outbox.py [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_outbox]
                                     [--runs one,kill,two]

PostgreSQL only (the claim races are real there). It (re)creates its own database. The emulator
(``channels/whatsapp/emulator.py``) runs an 80 messages/s token bucket (burst 80), answers error 130429 beyond
it, a seeded 1% of random 500s, and posts signed status callbacks (sent, delivered, read) to our webhook, served
by the real WSGI app (``redes serve``) in a process of its own. A broadcast's outbox of ``--recipients`` rows is
sent by separate ``redes messaging run`` worker processes (token bucket in Redis, ``--redis-url``). Runs
(``--runs``):

1. ``one`` — one worker. Throughput = (accepted sends − the initial burst of 80) ÷ (last accepted − first
   accepted), against the emulator's 80/s (the anchor, the provider's own limit; target ≥ 95%). The window is
   the whole broadcast, retries of the random 500s included: a retry that comes late makes a tail, and the tail
   counts (``last_1pct_seconds`` shows it, ``rate_first_99pct`` the rate without it, for diagnosis only; ``gaps_over_250ms``/``gap_seconds`` show pauses with nothing
   accepted; ``per_second`` the accepted sends of each second). Duplicates = references the emulator accepted
   more than once; losses = rows not accepted (or not marked sent) at the end;
2. ``kill`` — the same with the worker SIGKILLed after ``--kill-at`` accepted sends and restarted: still no
   duplicate and no loss (rows in doubt wait for their status callback, ``REDES_OUTBOX_DOUBT``; the rate of
   this run includes that wait and is not a throughput figure);
3. ``two`` — two workers at once sharing the bucket: the combined rate stays ≤ 80/s (and the emulator's own
   bucket refuses almost nothing).

Building a large outbox (the 500k target) is measured by ``bench/messaging_outbox_build.py``.

It prints a table and writes ``bench/out/messaging-outbox.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import benchdb

OUT_DIR = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent
RATE = 80.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("postgres",), default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_outbox")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    p.add_argument("--recipients", type=int, default=3000)
    p.add_argument("--kill-at", type=int, default=1000)
    p.add_argument("--lease", type=float, default=30.0, help="REDES_OUTBOX_LEASE of the workers")
    p.add_argument("--doubt", type=float, default=120.0, help="REDES_OUTBOX_DOUBT of the workers")
    p.add_argument(
        "--async-commit",
        action="store_true",
        help="VARIANT: synchronous_commit=off for the benchmark database (shows what the commit rate costs)",
    )
    p.add_argument(
        "--runs",
        default="one,kill,two",
        help="which sending runs, comma-separated: one (one worker), kill (killed and restarted), two (two workers)",
    )
    p.add_argument("--skip-send", action="store_true")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_web(port: int) -> subprocess.Popen:
    """The real web app (``redes serve``, waitress) in a process of its own, without the dispatcher thread."""
    env = {**os.environ, "REDES_WORKER": "0", "REDES_MESSAGING": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "redes.cli", "serve", "--port", str(port), "--threads", "8"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the web server did not start")


class Worker:
    def __init__(self, args, name: str):
        env = {
            **os.environ,
            "REDES_REDIS_URL": args.redis_url,
            "REDES_OUTBOX_LEASE": str(args.lease),
            "REDES_OUTBOX_DOUBT": str(args.doubt),
            "REDES_MESSAGING_INTERVAL": "0.2",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "redes.cli", "messaging", "run", "--worker-id", name, "--quiet"],
            cwd=ROOT,
            env=env,
        )

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_broadcast(world, account, contacts, label: str) -> list[int]:
    from redes.core import clock
    from redes.messaging.models import Broadcast, Outbound

    bcast = Broadcast.objects.create(
        municipality=world["muni"],
        node=world["muni"].node,
        title=f"Aviso {label}",
        body="Mañana hay entrega de despensas en la plaza a las 9.",
        status=Broadcast.Status.SENDING,
    )
    now = clock.now()
    rows = Outbound.objects.bulk_create(
        Outbound(
            municipality=world["muni"],
            contact=c,
            account=account,
            broadcast=bcast,
            kind=Outbound.Kind.BROADCAST,
            priority=5,
            next_attempt_at=now,
        )
        for c in contacts
    )
    return [r.pk for r in rows]


def settled(ids: list[int]) -> int:
    from redes.messaging.models import Outbound

    return Outbound.objects.filter(pk__in=ids, status__in=["sent", "delivered", "read"]).count()


def accepted(emulator, refs: set[str]) -> list[dict]:
    with emulator.lock:
        return [s for s in emulator.sent if s["biz_opaque_callback_data"] in refs]


def wait_until(predicate, timeout: float, every: float = 0.5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def figures(emulator, ids, before: dict, burst: int = 80) -> dict:
    refs = {str(i) for i in ids}
    sends = accepted(emulator, refs)
    per_ref = Counter(s["biz_opaque_callback_data"] for s in sends)
    stamps = sorted(s["at"] for s in sends)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    rate = (len(stamps) - burst) / span if span > 0 else 0.0
    # The busiest 10 seconds: the most accepted sends in any 10-second window, per second (the bucket allows
    # at most 80/s plus its burst of 80 spread over the window, i.e. 88/s).
    peak = 0
    j = 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 10.0:
            j += 1
        peak = max(peak, i - j + 1)
    peak = peak / 10
    # Where the time goes: pauses between accepted sends (longer than a quarter second, when nothing was
    # accepted), and the tail — the last 1% of the rows (mostly the retries of the random 500s).
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b - a > 0.25]
    tail_from = stamps[int(len(stamps) * 0.99)] if stamps else 0.0
    from redes.messaging.models import Outbound

    statuses = Counter(Outbound.objects.filter(pk__in=ids).values_list("status", flat=True))
    return {
        "rows": len(ids),
        "accepted": len(sends),
        "duplicates": sum(n - 1 for n in per_ref.values() if n > 1),
        "lost": len(refs - set(per_ref)),
        "not_marked_sent": len(ids) - settled(ids),
        "seconds": round(span, 2),
        "rate_per_s": round(rate, 2),
        "ratio_to_80": round(rate / RATE, 3),
        "peak_10s_rate": peak,
        "gaps_over_250ms": len(gaps),
        "gap_seconds": round(sum(gaps), 2),
        "last_1pct_seconds": round(stamps[-1] - tail_from, 2) if stamps else 0.0,
        # Diagnosis only (the headline is rate_per_s): the rate up to the last 1%, i.e. without the tail.
        "rate_first_99pct": round((int(len(stamps) * 0.99) - burst) / (tail_from - stamps[0]), 2)
        if stamps and tail_from > stamps[0]
        else 0.0,
        "per_second": [n for _, n in sorted(Counter(int(t - stamps[0]) for t in stamps).items())],
        "rate_limited_130429": emulator.rate_limited - before["rate_limited"],
        "server_errors_500": emulator.server_errors - before["server_errors"],
        "callbacks_failed": emulator.callbacks_failed - before["callbacks_failed"],
        "statuses": dict(statuses),
    }


def counters(emulator) -> dict:
    return {
        "rate_limited": emulator.rate_limited,
        "server_errors": emulator.server_errors,
        "callbacks_failed": emulator.callbacks_failed,
    }


def part_a(args, world) -> dict:
    import redis

    from redes.core import clock
    from redes.messaging import accounts
    from redes.messaging.channels.whatsapp.emulator import WhatsAppEmulator
    from redes.messaging.models import ChannelAccount, Contact, Medium, Provider

    redis.Redis.from_url(args.redis_url).flushdb()
    port = free_port()
    web = serve_web(port)
    account = ChannelAccount(
        municipality=world["muni"], provider=Provider.WHATSAPP, name="bench", rate_per_second=RATE, burst=80
    )
    accounts.set_secrets(account, {"access_token": "tok", "app_secret": "bench-secret", "verify_token": "v"})
    account.save()
    webhook = f"http://127.0.0.1:{port}/hooks/whatsapp/{account.uuid}/"
    emulator = WhatsAppEmulator(
        rate=RATE,
        burst=80,
        error_rate=0.01,
        webhook_url=webhook,
        app_secret="bench-secret",
        access_token="tok",
        seed=7,
        callback_threads=8,  # the provider posts callbacks concurrently; 4 serial posters lag behind 240/s here
    )
    base = emulator.start()
    account.config = {"api_base": base, "api_version": "v21.0", "phone_number_id": "1055"}
    account.save(update_fields=["config"])
    now = clock.now()
    contacts = Contact.objects.bulk_create(
        Contact(
            municipality=world["muni"],
            address=f"+52811{i:07d}",
            whatsapp=True,
            preferred=Medium.WHATSAPP,
            last_inbound_at=now,
        )
        for i in range(args.recipients)
    )
    timeout = args.recipients / RATE * 3 + 120
    results = {}
    runs = set(args.runs.split(","))

    # 1. one worker
    if "one" in runs:
        ids = make_broadcast(world, account, contacts, "1")
        before = counters(emulator)
        worker = Worker(args, "bench-1")
        ok = wait_until(lambda: settled(ids) == len(ids), timeout)
        worker.stop()
        emulator.wait_callbacks(10)
        results["one_worker"] = {**figures(emulator, ids, before), "finished": ok}
        print("one worker:", json.dumps(results["one_worker"]), flush=True)

    # 2. killed mid-broadcast and restarted
    if "kill" in runs:
        ids = make_broadcast(world, account, contacts, "2")
        refs = {str(i) for i in ids}
        before = counters(emulator)
        worker = Worker(args, "bench-2")
        wait_until(lambda: len(accepted(emulator, refs)) >= args.kill_at, timeout, every=0.05)
        worker.stop(signal.SIGKILL)
        at_kill = len(accepted(emulator, refs))
        time.sleep(1.0)
        worker = Worker(args, "bench-2b")
        ok = wait_until(lambda: settled(ids) == len(ids), timeout + args.lease + args.doubt)
        time.sleep(2)
        worker.stop()
        emulator.wait_callbacks(10)
        results["killed_and_restarted"] = {
            **figures(emulator, ids, before),
            "finished": ok,
            "killed_after": at_kill,
        }
        print("killed and restarted:", json.dumps(results["killed_and_restarted"]), flush=True)

    # 3. two workers sharing the bucket
    if "two" in runs:
        ids = make_broadcast(world, account, contacts, "3")
        before = counters(emulator)
        workers = [Worker(args, "bench-3a"), Worker(args, "bench-3b")]
        ok = wait_until(lambda: settled(ids) == len(ids), timeout)
        for w in workers:
            w.stop()
        emulator.wait_callbacks(10)
        from redes.messaging.models import Outbound

        by_worker = Counter(Outbound.objects.filter(pk__in=ids).values_list("worker", flat=True))
        results["two_workers"] = {
            **figures(emulator, ids, before),
            "finished": ok,
            "rows_by_worker": dict(by_worker),
        }
        print("two workers:", json.dumps(results["two_workers"]), flush=True)
    emulator.stop()
    web.terminate()
    web.wait(30)
    return results


def main() -> None:
    args = parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    os.environ["REDES_WORKER"] = "0"
    benchdb.reset_database(args, "")
    if args.async_commit:
        import psycopg

        with psycopg.connect(args.pg_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
            name = args.pg_url.rsplit("/", 1)[1]
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    benchdb.setup_django(args, "")
    from django.core.management import call_command

    from redes.territories.services import create_municipality

    call_command("migrate", verbosity=0)
    world = {
        "muni": create_municipality(
            "19021", "General Escobedo", ["Sector", "Manzana"], state_name="Nuevo León"
        )
    }
    out = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "db": args.db,
        "synchronous_commit": "off (VARIANT)" if args.async_commit else "on",
        "lease_s": args.lease,
        "doubt_s": args.doubt,
    }
    if not args.skip_send:
        out["send"] = part_a(args, world)
    print()
    if "send" in out:
        print(
            f"{'run':<22} {'rows':>6} {'rate/s':>8} {'÷80':>6} {'peak10s':>8} {'dup':>4} {'lost':>5} {'130429':>7} {'500':>5}"
        )
        for name, r in out["send"].items():
            print(
                f"{name:<22} {r['rows']:>6} {r['rate_per_s']:>8} {r['ratio_to_80']:>6} {r['peak_10s_rate']:>8} "
                f"{r['duplicates']:>4} {r['lost'] + r['not_marked_sent']:>5} {r['rate_limited_130429']:>7} "
                f"{r['server_errors_500']:>5}"
            )
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"messaging-outbox{'-async' if args.async_commit else ''}.json").write_text(
        json.dumps(out, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
