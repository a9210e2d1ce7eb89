#!/usr/bin/env python
"""Escalation sweep benchmark (run by hand, not a test): ``needs.services.escalate_overdue`` over 1M open
needs, on PostgreSQL (target < 10 s) or SQLite.

    python bench/needs_escalation.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_needs]
    python bench/needs_escalation.py --db sqlite

It (re)creates its own database, builds the demo's Acapulco-size tree (13,170 blocks; liaison posts at sectors
and zones only, so blocks and groups are vacant and skipped) and writes ``--needs`` open needs (COPY). Then,
each time from the same starting state (holders back at the blocks, events and notifications emptied, VACUUM
ANALYZE), it times:

* ``realistic``: ``--overdue`` of the open needs (default 2%) past their deadline;
* ``all``: every open need past its deadline (the worst case);
* ``idle``: a sweep right after the realistic one (nothing due: the every-minute cost of the worker thread);
* ``floor``: the bare ``UPDATE`` of the same rows (level + 1, new deadline), no events, no notifications, no
  paths: the least any sweep can cost, measured in the same run.

It prints seconds, the ratio to the 10 s target and to the floor, and writes ``bench/out/needs-escalation-<db>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import benchdb
import needs_data

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET_S = 10.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_needs_sweep")
    p.add_argument("--needs", type=int, default=1_000_000, help="open needs")
    p.add_argument("--overdue", type=float, default=0.02, help="share overdue in the realistic case")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-build", action="store_true", help="reuse the database of the last run")
    return p.parse_args()


SQLITE_FILE = "bench-needs-sweep.sqlite3"


def reset(municipality, now: dt.datetime, share: float) -> int:
    """Every need back at its block, level 0, ``share`` of them due (by id), no events or notifications."""
    from django.db import connection, transaction

    from redes.core.db import adapt_datetime
    from redes.needs.models import Need, NeedEvent, Notification

    need_t = connection.ops.quote_name(Need._meta.db_table)
    cut = int(round(share * 1000))
    past, future = adapt_datetime(now - dt.timedelta(hours=1)), adapt_datetime(now + dt.timedelta(days=1))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(NeedEvent._meta.db_table)}")
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(Notification._meta.db_table)}")
        cursor.execute(
            f"""UPDATE {need_t} SET escalation_level = 0, acknowledged_at = NULL,
                    holder_node_id = CASE WHEN sensitive THEN %s ELSE node_id END,
                    escalate_at = CASE WHEN id %% 1000 < %s THEN %s ELSE %s END,
                    due_at = CASE WHEN id %% 1000 < %s THEN %s ELSE %s END""",
            [municipality.node_id, cut, past, future, cut, past, future],
        )  # due_at (what the sweep's index orders) <= escalate_at, as the services keep them
        cursor.execute(f"SELECT count(*) FROM {need_t} WHERE escalate_at <= %s", [adapt_datetime(now)])
        due = cursor.fetchone()[0]
    if connection.vendor == "postgresql":
        # The reset itself used up the free room of the pages; give it back (fillfactor 60), as a table that
        # autovacuum keeps has it, so that the sweep's updates can be HOT.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM FULL {need_t}")
    needs_data.analyze()
    return due


def floor(municipality, now: dt.datetime) -> float:
    from django.db import connection, transaction

    from redes.core.db import adapt_datetime
    from redes.needs.models import Need

    need_t = connection.ops.quote_name(Need._meta.db_table)
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {need_t} SET escalation_level = escalation_level + 1, acknowledged_at = NULL,
                    escalate_at = %s WHERE municipality_id = %s AND status IN ('new', 'triaged', 'assigned',
                    'in_progress') AND due_at <= %s AND escalate_at <= %s""",
            [
                adapt_datetime(now + dt.timedelta(days=1)),
                municipality.pk,
                adapt_datetime(now),
                adapt_datetime(now),
            ],
        )
    return time.perf_counter() - t0


def main() -> None:
    args = parse_args()
    filename = SQLITE_FILE
    if not args.no_build:
        benchdb.reset_database(args, filename)
    benchdb.setup_django(args, filename)
    from django.db import connection

    from redes.core import clock
    from redes.needs import services
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
            open_share=1.0,
            overdue_share=args.overdue,
            progress=lambda done: print(f"\r{done:,} needs written", end="", file=sys.stderr),
        )
        print(file=sys.stderr)
    aca = Municipality.objects.get(code="12001")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        result["db_version"] = cursor.fetchone()[0].split(" on ")[0]

    def sweep(name: str, share: float) -> None:
        due = reset(aca, now, share)
        t0 = time.perf_counter()
        r = services.escalate_overdue(now=now)
        seconds = time.perf_counter() - t0
        result[name] = {
            "due": due,
            "seconds": seconds,
            "escalated": r.escalated,
            "to_coordinators": r.to_coordinators,
            "at_top": r.at_top,
            "sensitive": r.sensitive,
            "notifications": r.notifications,
        }
        print(
            f"{name}: {due:,} due, {seconds:.2f} s, {r.escalated:,} escalated, {r.notifications:,} notifications",
            file=sys.stderr,
        )
        if name == "realistic":
            t0 = time.perf_counter()
            services.escalate_overdue(now=now)
            result["idle"] = {"seconds": time.perf_counter() - t0}

    sweep("realistic", args.overdue)
    due = reset(aca, now, 1.0)
    result["floor_all"] = {"due": due, "seconds": floor(aca, now)}
    reset(aca, now, args.overdue)
    result["floor_realistic"] = {"seconds": floor(aca, now)}
    sweep("all", 1.0)

    print()
    print(f"Escalation sweep over {args.needs:,} open needs ({result['db_version']}, {result['machine']})")
    print(
        f"{'case':<12}{'due':>11}{'seconds':>10}{'target':>9}{'vs target':>11}{'floor s':>9}{'vs floor':>10}"
    )
    for name, floor_key in (("realistic", "floor_realistic"), ("all", "floor_all")):
        r, f = result[name], result[floor_key]["seconds"]
        print(
            f"{name:<12}{r['due']:>11,}{r['seconds']:>10.2f}{TARGET_S:>9.0f}{r['seconds'] / TARGET_S:>10.2f}x"
            f"{f:>9.2f}{r['seconds'] / f:>9.1f}x"
        )
    print(
        f"{'idle':<12}{0:>11}{result['idle']['seconds']:>10.3f}{TARGET_S:>9.0f}"
        f"{result['idle']['seconds'] / TARGET_S:>10.3f}x"
    )
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"needs-escalation-{args.db}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
