#!/usr/bin/env python
"""Needs queue benchmark (run by hand, not a test): "my queue" with 1M needs in the database, per role, on
PostgreSQL or SQLite. Target: p95 < 50 ms.

    python bench/needs_queue.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_needs_queue]
    python bench/needs_queue.py --db sqlite

It (re)creates its own database, builds the demo's Acapulco-size tree (13,170 blocks) and writes ``--needs``
needs (COPY): ``--open`` of them open (12% by default, a third of those overdue), the rest closed, resolved,
cancelled or duplicates over the last year; 0.5% of the open ones are violence reports. Users hold real
memberships: block liaisons (random blocks), zone liaisons (Acapulco's second level, ~30 blocks each), sector
liaisons (first level, ~1,900 blocks each), a coordinator and a case officer. For each role it times, over
``--runs`` runs:

* ``query``: ``needs.queries.queue(user)`` evaluated to a page of 50 (what the page lists);
* ``count``: the same queue's ``count()`` (the API's total);
* ``page``: the rendered queue page (URL name ``needs-home``, written by the pages) through Django's test client,
  when it exists.

It prints p50/p95 and the ratio to the target, and writes ``bench/out/needs-queue-<db>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import benchdb
import needs_data

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET_P95_MS = 50.0
PAGE = 50


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_needs_queue")
    p.add_argument("--needs", type=int, default=1_000_000)
    p.add_argument("--open", type=float, default=0.12, help="share of the needs still open")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--users", type=int, default=30, help="liaisons of each kind")
    p.add_argument("--no-build", action="store_true", help="reuse the database of the last run")
    p.add_argument("--no-http", action="store_true", help="skip the rendered page")
    return p.parse_args()


SQLITE_FILE = "bench-needs-queue.sqlite3"


def users(args) -> dict[str, list]:
    from redes.accounts.models import User
    from redes.accounts.roles import Role
    from redes.accounts.services import grant_membership
    from redes.territories.models import Municipality, Node

    aca = Municipality.objects.get(code="12001")
    rnd = random.Random(args.seed)
    by_role: dict[str, list] = {}
    plan = {
        "block liaison": (Role.BLOCK_LIAISON, aca.leaf_depth, args.users),
        "zone liaison": (Role.SECTOR_LIAISON, aca.node.depth + 2, args.users),
        "sector liaison": (Role.SECTOR_LIAISON, aca.node.depth + 1, 7),
        "coordinator": (Role.COORDINATOR, aca.node.depth, 1),
        "case officer": (Role.CASE_OFFICER, aca.node.depth, 1),
    }
    for label, (role, depth, count) in plan.items():
        nodes = list(
            Node.objects.filter(municipality=aca, depth=depth).order_by("pk").values_list("pk", flat=True)
        )
        if depth == aca.node.depth:
            nodes = [aca.node_id]
        chosen = sorted(rnd.sample(nodes, min(count, len(nodes))))
        people = []
        for i, node_id in enumerate(chosen):
            username = f"bench-{label.replace(' ', '-')}-{i:03d}"
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create(username=username, full_name=username)
                grant_membership(user, Node.objects.get(pk=node_id), role)
            people.append(user)
        by_role[label] = people
    return by_role


def timed(users: list, run, runs: int, warmup: int = 10) -> dict:
    rnd = random.Random(7)
    for _ in range(warmup):
        run(rnd.choice(users))
    samples = []
    for _ in range(runs):
        user = rnd.choice(users)
        t0 = time.perf_counter()
        run(user)
        samples.append((time.perf_counter() - t0) * 1000)
    return needs_data.percentiles(samples)


def main() -> None:
    args = parse_args()
    if not args.no_build:
        benchdb.reset_database(args, SQLITE_FILE)
    benchdb.setup_django(args, SQLITE_FILE)
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import NoReverseMatch, reverse

    from redes.accounts.models import User
    from redes.core import clock
    from redes.needs import queries
    from redes.needs.models import Need
    from redes.territories.models import Municipality

    result: dict = {
        "db": args.db,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_at_start": os.getloadavg(),
    }
    now = clock.now().replace(microsecond=0)
    if not args.no_build:
        result["build"] = needs_data.build_tree(args.seed)
        aca = Municipality.objects.get(code="12001")
        result["write"] = needs_data.write_needs(
            aca,
            args.needs,
            seed=args.seed,
            now=now,
            open_share=args.open,
            overdue_share=0.33,
            progress=lambda done: print(f"\r{done:,} needs written", end="", file=sys.stderr),
        )
        print(file=sys.stderr)
    needs_data.analyze()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        result["db_version"] = cursor.fetchone()[0].split(" on ")[0]
    result["needs_in_db"] = Need.objects.count()
    by_role = users(args)

    def fresh(user):
        return User.objects.get(pk=user.pk)  # a new request: grants are loaded again

    def run_query(user):
        return list(queries.queue(fresh(user))[:PAGE])

    def run_count(user):
        return queries.queue(fresh(user)).count()

    try:
        url = reverse("needs-home")
    except NoReverseMatch:
        url = None
    clients = {}
    if url and not args.no_http:
        setup_test_environment()
        settings.ALLOWED_HOSTS = ["*"]
        for people in by_role.values():
            for user in people:
                client = Client()
                client.force_login(user)
                clients[user.pk] = client

    def run_page(user):
        response = clients[user.pk].get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code} for {user}")
        return response

    rows = {}
    for label, people in by_role.items():
        sizes = [len(run_query(u)) for u in people]
        open_counts = [run_count(u) for u in people]
        rows[label] = {
            "users": len(people),
            "rows_per_page": sum(sizes) / len(sizes),
            "open_in_queue_mean": sum(open_counts) / len(open_counts),
            "query": timed(people, run_query, args.runs),
            "count": timed(people, run_count, max(20, args.runs // 5)),
        }
        if clients:
            rows[label]["page"] = timed(people, run_page, max(30, args.runs // 3))
        print(f"{label}: {rows[label]}", file=sys.stderr)
    result["roles"] = rows
    result["page_url"] = url if clients else None

    print()
    print(f"Needs queue with {result['needs_in_db']:,} needs ({result['db_version']}, {result['machine']})")
    if not clients:
        print("The queue page (needs-home) is not there: only the query layer is measured.")
    print(
        f"{'role':<16}{'open in queue':>14}{'what':>7}{'p50 ms':>9}{'p95 ms':>9}{'target':>8}{'p95/target':>12}"
    )
    for label, r in rows.items():
        for what in ("query", "count", "page"):
            if what not in r:
                continue
            p = r[what]
            print(
                f"{label:<16}{r['open_in_queue_mean']:>14,.0f}{what:>7}{p['p50_ms']:>9.1f}{p['p95_ms']:>9.1f}"
                f"{TARGET_P95_MS:>8.0f}{p['p95_ms'] / TARGET_P95_MS:>11.2f}x"
            )
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"needs-queue-{args.db}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
