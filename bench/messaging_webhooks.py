#!/usr/bin/env python
"""Webhook ingestion benchmark (run by hand, not a test): distinct signed WhatsApp messages posted concurrently
to ``/hooks/whatsapp/<account>/`` of a ``redes serve`` process (waitress). Target: >= 300 messages/s on this
2-core machine.

    python bench/messaging_webhooks.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_webhooks]
    python bench/messaging_webhooks.py --db sqlite

It (re)creates its own database, one municipality and one WhatsApp account, starts ``redes serve`` in a child
process (messaging dispatcher and worker off: ingestion alone is measured) and, from another process with
``--clients`` keep-alive connections, posts ``--messages`` pre-built, pre-signed webhook payloads (one text
message each, the real Cloud API shape, senders spread over 5,000 numbers). In the same run and against the
same server it measures a floor: the webhook's GET verification handshake (same middleware and account lookup,
which the webhooks keep for a few seconds per process, so no query; no write), and prints ours as a ratio of it. Then it posts ``--retries`` of the
same payloads again (provider retries) and checks, by counting rows, zero loss (every message one ``Inbound``
row) and zero duplicates (retries add no row and are logged ``duplicate``). Writes
``bench/out/messaging-webhooks-<db>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import benchdb

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET = 300.0
APP_SECRET = "bench-app-secret"
VERIFY_TOKEN = "bench-verify"  # noqa: S105 - a benchmark's own value


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_webhooks")
    p.add_argument("--messages", type=int, default=6000)
    p.add_argument("--retries", type=int, default=600, help="payloads posted a second time")
    p.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    p.add_argument("--threads", type=int, default=8, help="waitress threads (redes serve --threads)")
    p.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DATABASE_CONN_MAX_AGE of the server (0: a new database connection per request)",
    )
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(n: int) -> dict:
    wa_id = f"52181{10000000 + n % 5000:08d}"
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
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": f"Vecina {n % 5000}"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": f"wamid.BENCH{n:010d}",
                                    "timestamp": str(1767225600 + n),
                                    "type": "text",
                                    "text": {"body": f"1 Necesito despensa para mi familia ({n})"},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _fire(port: int, requests: list[tuple[str, str, bytes, dict]], clients: int, out) -> None:
    """Child process: send ``requests`` over ``clients`` keep-alive connections; report time and statuses."""
    import faulthandler

    faulthandler.dump_traceback_later(90, exit=True)  # a stuck run says where instead of hanging
    lock = threading.Lock()
    index = [0]
    statuses: dict[int, int] = {}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = index[0]
                index[0] += 1
            if i >= len(requests):
                break
            method, path, body, headers = requests[i]
            for _attempt in range(3):
                try:
                    conn.request(method, path, body=body or None, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                    break
                except (ConnectionError, http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status = 599
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"seconds": time.perf_counter() - start, "statuses": statuses})


def fire(port, requests, clients) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_fire, args=(port, requests, clients, out))
    proc.start()
    result = out.get()
    proc.join()
    out.close()
    out.join_thread()
    return result


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                "redes serve exited: " + (server.stderr.read().decode() if server.stderr else "")
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("redes serve did not start")


def main() -> None:
    args = parse_args()
    filename = "messaging-webhooks.sqlite3"
    benchdb.reset_database(args, filename)
    benchdb.setup_django(args, filename)
    from django.core.management import call_command
    from django.db import connection

    from redes.messaging import accounts
    from redes.messaging.channels.whatsapp.inbound import sign
    from redes.messaging.models import ChannelAccount, Inbound, Provider, WebhookLog
    from redes.territories.services import create_municipality

    started = time.perf_counter()

    def note(what: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {what}", flush=True)

    call_command("migrate", verbosity=0)
    note("migrated")
    municipality = create_municipality(
        "19021", "General Escobedo", ["Sector", "Manzana"], state_name="Nuevo León"
    )
    account = ChannelAccount(municipality=municipality, provider=Provider.WHATSAPP, name="bench", config={})
    accounts.set_secrets(
        account, {"access_token": "t", "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}
    )
    account.save()
    connection.close()

    path = f"/hooks/whatsapp/{account.uuid}/"
    posts = []
    for n in range(args.messages):
        body = json.dumps(payload(n)).encode()
        posts.append(
            (
                "POST",
                path,
                body,
                {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, APP_SECRET)},
            )
        )
    handshake = f"{path}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"
    gets = [("GET", handshake, b"", {})] * args.messages

    port = free_port()
    env = dict(
        os.environ,
        REDES_WORKER="0",
        REDES_MESSAGING="0",
        DATABASE_CONN_MAX_AGE=str(args.conn_max_age),
    )
    redes = str(Path(sys.executable).with_name("redes"))
    server_log = benchdb.data_path("messaging-webhooks-server.log")
    server = subprocess.Popen(
        [redes, "serve", "--port", str(port), "--threads", str(args.threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_log.open("wb"),
    )
    try:
        wait_ready(port, server)
        note(f"server up, {len(posts)} payloads signed")
        fire(port, gets[:200] + posts[:0], args.clients)  # warm up the server's threads and connections
        floor = fire(port, gets, args.clients)
        note("floor done")
        ours = fire(port, posts, args.clients)
        note("ingestion done")
        retried = fire(port, posts[: args.retries], args.clients)
        note("retries done")
    finally:
        server.terminate()
        server.wait(timeout=30)

    rows = Inbound.objects.filter(account=account)
    stored = rows.count()
    distinct = rows.values("provider_id").distinct().count()
    logs = WebhookLog.objects.filter(account=account)
    duplicates_logged = logs.filter(outcome=WebhookLog.Outcome.DUPLICATE).count()
    stored_logged = logs.filter(outcome=WebhookLog.Outcome.STORED).count()
    rate = args.messages / ours["seconds"]
    floor_rate = args.messages / floor["seconds"]
    ok_posts = ours["statuses"].get(200, 0)

    def mark(good: bool) -> str:
        return "ok" if good else "MISSED"

    print(
        f"messaging webhooks on {args.db}: {args.messages} signed WhatsApp messages, {args.clients} connections,"
    )
    print(
        f"redes serve --threads {args.threads}, DATABASE_CONN_MAX_AGE={args.conn_max_age}, {os.cpu_count()} CPUs"
    )
    print(f"  floor: GET handshake (no write) ....... {floor_rate:8.1f} req/s  ({floor['statuses']})")
    print(f"  ours:  POST store-first ingestion ...... {rate:8.1f} msg/s  ({ours['statuses']})")
    print(f"  ours / floor ........................... {rate / floor_rate:8.2f}")
    print(
        f"  target >= {TARGET:.0f} msg/s ..................... {rate / TARGET:8.2f}x  {mark(rate >= TARGET)}"
    )
    print(
        f"  loss: {args.messages - stored} (Inbound rows {stored}, answered 200: {ok_posts})  {mark(stored == args.messages)}"
    )
    print(
        f"  duplicates: {stored - distinct} rows; {args.retries} retries → {duplicates_logged} logged duplicate "
        f"({retried['statuses']})  {mark(stored == distinct and duplicates_logged == args.retries)}"
    )
    OUT_DIR.mkdir(exist_ok=True)
    result = {
        "db": args.db,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "messages": args.messages,
        "clients": args.clients,
        "threads": args.threads,
        "conn_max_age": args.conn_max_age,
        "floor_requests_per_s": round(floor_rate, 1),
        "messages_per_s": round(rate, 1),
        "ratio_to_floor": round(rate / floor_rate, 3),
        "target": TARGET,
        "stored": stored,
        "distinct": distinct,
        "stored_logged": stored_logged,
        "retries": args.retries,
        "duplicates_logged": duplicates_logged,
        "statuses": ours["statuses"],
    }
    (OUT_DIR / f"messaging-webhooks-{args.db}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
