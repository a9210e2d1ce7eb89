#!/usr/bin/env python
"""Building the outbox of a broadcast to a whole municipality (run by hand, not a test).

    python bench/messaging_outbox_build.py --db postgres [--pg-url …] [--households 500000]
    python bench/messaging_outbox_build.py --db sqlite

It (re)creates its own database, then writes a municipality of ``--households`` households (20 per block),
each with one active person, one phone (a third on WhatsApp) and, for 90% of them, a current consent whose
purposes include "messages" — set-based (``INSERT … SELECT``) from the households, which go in by COPY. Then:

- ``sync_household_contacts`` over the municipality: the first sync (one contact per phone) and the no-op
  re-sync;
- the real ``broadcasts.build_outbox`` of a broadcast (already SENDING) to the municipality's root, timed alone
  with its commit (PostgreSQL's foreign keys are checked at commit), ``--runs`` times on an emptied outbox;
- ``broadcasts.start_broadcast`` end to end (lock, the no-op sync, build, recount, audit) on a fresh draft;
- the anchor (76,787 outbox rows in 18 ms on SQLite, scaled linearly to the row count) and the floor: a bare
  ``INSERT … SELECT`` of the same number of narrow (two-bigint) rows into an index-less, FK-less table with
  its commit, measured in the same run. ``select_only`` is the SELECT side of ``build_outbox`` alone (rows
  counted, nothing written), to tell reading from writing.

It prints our figure next to the floor and the anchor as ratios and writes
``bench/out/messaging-outbox-build.json`` (one key per database). ``--explain`` adds PostgreSQL's ``EXPLAIN (ANALYZE, BUFFERS)``
of the insert (rolled back) to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

import benchdb

OUT_DIR = Path(__file__).resolve().parent / "out"
ANCHOR_ROWS, ANCHOR_MS = 76_787, 18.0
PER_BLOCK = 20
TARGET_MS = 2000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_build")
    p.add_argument("--households", type=int, default=500_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--explain", action="store_true")
    return p.parse_args()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# Data


def insert_select(model, overrides: dict, source: str, params: list) -> int:
    """``INSERT INTO model SELECT …`` with every concrete column: ``overrides`` (column → SQL, or (SQL,
    parameters)), else NULL for
    nullable columns, else the field's default as a parameter."""
    from django.db import connection

    columns, exprs, values = [], [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if column == "id":
            continue
        columns.append(connection.ops.quote_name(column))
        if column in overrides:
            expr = overrides[column]
            expr, extra = (expr, []) if isinstance(expr, str) else expr
            exprs.append(expr)
            values += extra
        elif field.null:
            exprs.append("NULL")
        else:
            exprs.append("%s")
            values.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(exprs)} {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values + params)
        return cursor.rowcount


def build_world(args) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection, transaction

    from redes.accounts.models import User
    from redes.accounts.roles import Role
    from redes.accounts.services import grant_membership
    from redes.audit.context import Channel, using_channel
    from redes.core import clock
    from redes.core.db import adapt_datetime, adapt_uuid, copy_rows
    from redes.demo.generator import build_municipality, two_level_plan
    from redes.registry.models import Consent, Household, Person, Phone, PrivacyNotice
    from redes.territories.models import Node

    timings = {}
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    timings["migrate_s"] = time.perf_counter() - t0
    blocks = max(1, args.households // PER_BLOCK)
    t0 = time.perf_counter()
    with using_channel(Channel.SYSTEM):
        muni = build_municipality(
            "19021",
            "General Escobedo",
            "Nuevo León",
            ["Sector", "Manzana"],
            two_level_plan("19021", "General Escobedo", 20, blocks),
        )
    timings["tree_s"] = time.perf_counter() - t0
    block_ids = list(
        Node.objects.filter(municipality=muni, depth=muni.leaf_depth)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    coordinator = User.objects.create(
        username="bench-coord", full_name="Coordinación", password=make_password(None)
    )
    grant_membership(coordinator, muni.node, Role.COORDINATOR)
    now = clock.now()
    notice = PrivacyNotice.objects.create(
        municipality=muni,
        version="1",
        text="Aviso",
        purposes=["aid", "contact", "messages"],
        published_at=now,
    )

    t0 = time.perf_counter()
    stamp = adapt_datetime(now, Household)
    columns = [
        "uuid", "municipality_id", "node_id", "external_id", "street", "ext_number", "int_number", "colonia",
        "postal_code", "reference", "address_key", "preferred_channel", "members_count", "priority",
        "priority_explanation", "status", "created_at", "updated_at",
    ]  # fmt: skip

    def households():
        for i in range(args.households):
            yield (
                adapt_uuid(uuid.uuid4(), Household),
                muni.pk,
                block_ids[i // PER_BLOCK % len(block_ids)],
                "",
                "Calle Uno",
                str(i % 500 + 1),
                "",
                "Centro",
                "66050",
                "",
                "",
                "whatsapp" if i % 3 == 0 else "sms",
                1,
                i % 7,
                "[]",
                "active",
                stamp,
                stamp,
            )

    chunk = 100_000
    gen = households()
    for start in range(0, args.households, chunk):
        with transaction.atomic():
            copy_rows(Household, columns, (next(gen) for _ in range(min(chunk, args.households - start))))
    timings["households_s"] = time.perf_counter() - t0
    pg = connection.vendor == "postgresql"
    new_uuid = "gen_random_uuid()" if pg else "lower(hex(randomblob(16)))"
    hh = f"FROM {Household._meta.db_table} h WHERE h.municipality_id = %s"
    t0 = time.perf_counter()
    with transaction.atomic():
        insert_select(
            Person,
            {
                "uuid": new_uuid,
                "municipality_id": "h.municipality_id",
                "household_id": "h.id",
                "node_id": "h.node_id",
                "full_name": "'Persona ' || CAST(h.id AS text)",
                "relation": "'head'",
                "created_at": "h.created_at",
                "updated_at": "h.created_at",
            },
            hh,
            [muni.pk],
        )
    timings["persons_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with transaction.atomic():
        insert_select(
            Phone,
            {
                "household_id": "h.id",
                "municipality_id": "h.municipality_id",
                "number": "'+52' || CAST(8100000000 + h.id AS text)",
                "whatsapp": "h.preferred_channel = 'whatsapp'",
            },
            hh,
            [muni.pk],
        )
    timings["phones_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    purposes = (
        'CAST(\'["aid", "contact", "messages"]\' AS jsonb)' if pg else '\'["aid", "contact", "messages"]\''
    )
    with transaction.atomic():
        consents = insert_select(
            Consent,
            {
                "uuid": new_uuid,
                "municipality_id": "pe.municipality_id",
                "person_id": "pe.id",
                "node_id": "pe.node_id",
                "notice_id": ("%s", [notice.pk]),
                "purposes": purposes,
                "channel": "'in_person'",
                "captured_at": ("%s", [adapt_datetime(now, Consent)]),
            },
            f"FROM {Person._meta.db_table} pe WHERE pe.municipality_id = %s AND pe.id %% 10 <> 0",
            [muni.pk],
        )
    timings["consents_s"] = time.perf_counter() - t0
    analyze()
    log(
        f"world: {args.households:,} households in {len(block_ids):,} blocks, {consents:,} consents, {timings}"
    )
    return {
        "muni": muni,
        "coordinator": coordinator,
        "consents": consents,
        "blocks": len(block_ids),
        **timings,
    }


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def empty_outbox() -> None:
    from django.db import connection

    from redes.messaging.models import Outbound

    table = Outbound._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}" if connection.vendor == "postgresql" else f"DELETE FROM {table}")  # noqa: S608
    if connection.vendor == "postgresql":
        analyze_table(table)


def analyze_table(table: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


# ---------------------------------------------------------------------------------------------------------
# Timings


def time_sync(world) -> dict:
    from django.db import transaction

    from redes.messaging import broadcasts

    out = {}
    for label in ("first", "again"):
        t0 = time.perf_counter()
        with transaction.atomic():
            created = broadcasts.sync_household_contacts(world["muni"], world["muni"].node)
        out[label] = {"created": created, "ms": round((time.perf_counter() - t0) * 1000, 1)}
        if label == "first":
            analyze_table("messaging_contact")
        log(f"sync {label}: {out[label]}")
    return out


def sending_broadcast(world, title: str):
    from redes.core import clock
    from redes.messaging.models import Broadcast

    muni = world["muni"]
    return Broadcast.objects.create(
        municipality=muni,
        node=muni.node,
        title=title,
        body="Mañana hay entrega de despensas en la plaza a las 9.",
        status=Broadcast.Status.SENDING,
        started_at=clock.now(),
    )


def time_build(world, runs: int) -> dict:
    from django.db import transaction

    from redes.messaging import broadcasts
    from redes.messaging.models import Outbound

    samples, rows, loads = [], 0, []
    for i in range(runs):
        empty_outbox()
        bcast = sending_broadcast(world, f"Aviso {i}")
        t0 = time.perf_counter()
        with transaction.atomic():
            rows = broadcasts.build_outbox(bcast)
        samples.append((time.perf_counter() - t0) * 1000)
        loads.append(round(os.getloadavg()[0], 2))
        log(f"build_outbox run {i + 1}: {rows:,} rows in {samples[-1]:.0f} ms (load {loads[-1]})")
    statuses = dict(
        Outbound.objects.filter(broadcast=bcast).values_list("status").annotate(n=models_count()).order_by()
    )
    return {
        "rows": rows,
        "runs_ms": [round(s, 1) for s in samples],
        "best_ms": round(min(samples), 1),
        "median_ms": round(statistics.median(samples), 1),
        "load_1min": loads,
        "statuses": statuses,
    }


def models_count():
    from django.db.models import Count

    return Count("id")


def time_start(world) -> dict:
    from redes.messaging import broadcasts

    empty_outbox()
    draft = broadcasts.create_broadcast(
        actor=world["coordinator"],
        municipality=world["muni"],
        node=world["muni"].node,
        title="Aviso completo",
        body="Mañana hay entrega de despensas en la plaza a las 9.",
    )
    t0 = time.perf_counter()
    started = broadcasts.start_broadcast(draft, actor=world["coordinator"])
    ms = (time.perf_counter() - t0) * 1000
    log(f"start_broadcast: {started.recipients:,} recipients in {ms:.0f} ms")
    return {"recipients": started.recipients, "ms": round(ms, 1)}


def time_floor(world, runs: int) -> dict:
    from django.db import connection, transaction

    from redes.messaging.models import Contact

    samples, rows = [], 0
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_narrow")
        cursor.execute("CREATE TABLE bench_narrow (a bigint, b bigint)")
    for _ in range(runs):
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM bench_narrow" if connection.vendor == "sqlite" else "TRUNCATE bench_narrow"
            )
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO bench_narrow SELECT c.id, c.household_id FROM {Contact._meta.db_table} c "  # noqa: S608
                "WHERE c.municipality_id = %s AND c.household_id IS NOT NULL",
                [world["muni"].pk],
            )
            rows = cursor.rowcount
        samples.append((time.perf_counter() - t0) * 1000)
    log(f"floor: {rows:,} rows, best {min(samples):.0f} ms")
    return {"rows": rows, "runs_ms": [round(s, 1) for s in samples], "best_ms": round(min(samples), 1)}


def select_side(world, runs: int) -> dict:
    """The SELECT of ``build_outbox`` alone: the insert's statement with its ``INSERT INTO … (…)`` head
    replaced by a count over the same SELECT (captured from the real call, rolled back)."""
    from django.db import connection, transaction

    from redes.messaging import broadcasts

    bcast = sending_broadcast(world, "Aviso select")
    captured = []

    def capture(execute, sql, params, many, context):
        if sql.startswith("INSERT INTO") and "messaging_outbound" in sql.split("(")[0]:
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            broadcasts.build_outbox(bcast)
        transaction.set_rollback(True)
    if not captured:
        return {}
    sql, params = captured[-1]
    select = sql[sql.index(") SELECT ") + 2 :].replace("ON CONFLICT DO NOTHING", "")
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            broadcasts._bulk_settings()  # the settings build_outbox runs its statement with
            cursor.execute(f"SELECT COUNT(*) FROM ({select}) q", params)  # noqa: S608
            count = cursor.fetchone()[0]
        samples.append((time.perf_counter() - t0) * 1000)
    out = {"rows": count, "best_ms": round(min(samples), 1), "sql": sql}
    log(f"select side: {count:,} rows, best {out['best_ms']} ms")
    return out


def explain(world) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the real insert, rolled back (trigger times show at the end)."""
    from django.db import connection, transaction

    from redes.messaging import broadcasts

    empty_outbox()
    bcast = sending_broadcast(world, "Aviso explain")
    captured = []

    def capture(execute, sql, params, many, context):
        if sql.startswith("INSERT INTO") and "messaging_outbound" in sql.split("(")[0]:
            sql = "EXPLAIN (ANALYZE, BUFFERS, VERBOSE OFF) " + sql
            result = execute(sql, params, many, context)
            captured.extend(r[0] for r in context["cursor"].fetchall())
            return result
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.cursor() as cursor:
            # The foreign-key checks (deferred to the commit otherwise) show in the plan as trigger times.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with connection.execute_wrapper(capture):
            broadcasts.build_outbox(bcast)
        transaction.set_rollback(True)
    plan = "\n".join(captured)
    log(plan)
    return plan


def main() -> None:
    args = parse_args()
    os.environ["REDES_WORKER"] = "0"
    os.environ["REDES_MESSAGING"] = "0"
    filename = "messaging-outbox-build.sqlite3"
    benchdb.reset_database(args, filename)
    benchdb.setup_django(args, filename)
    from django.db import connection

    t0 = time.perf_counter()
    world = build_world(args)
    out = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "db": args.db,
        "households": args.households,
        "blocks": world["blocks"],
        "consents": world["consents"],
        "setup_s": {k: round(v, 2) for k, v in world.items() if k.endswith("_s")},
    }
    out["sync"] = time_sync(world)
    out["build"] = time_build(world, args.runs)
    out["start_broadcast"] = time_start(world)
    out["floor"] = time_floor(world, args.runs)
    sel = select_side(world, args.runs)
    out["select_only"] = {k: v for k, v in sel.items() if k != "sql"}
    out["build_sql"] = sel.get("sql", "")
    if args.explain and connection.vendor == "postgresql":
        out["explain"] = explain(world)
    rows = out["build"]["rows"]
    anchor_ms = ANCHOR_MS * rows / ANCHOR_ROWS
    ours = out["build"]["best_ms"]
    out["anchor_scaled_ms"] = round(anchor_ms, 1)
    out["ratio_to_floor"] = round(ours / out["floor"]["best_ms"], 2)
    out["ratio_to_anchor"] = round(ours / anchor_ms, 2)
    out["target_ms"] = TARGET_MS
    out["total_s"] = round(time.perf_counter() - t0, 1)

    print()
    print(f"{args.db}: {args.households:,} households, {rows:,} outbox rows {out['build']['statuses']}")
    print(f"load average (1 min) during the build runs: {out['build']['load_1min']} on {os.cpu_count()} cpus")
    print(f"{'measure':<34} {'ms':>9} {'÷ floor':>8} {'÷ anchor':>9}")

    def line(label: str, ms: float) -> None:
        print(f"{label:<34} {ms:>9.1f} {ms / out['floor']['best_ms']:>8.2f} {ms / anchor_ms:>9.2f}")

    line("build_outbox (best, with commit)", ours)
    line("build_outbox (median)", out["build"]["median_ms"])
    line("start_broadcast end to end", out["start_broadcast"]["ms"])
    line("SELECT side only", out["select_only"].get("best_ms", float("nan")))
    line(
        "sync contacts, first (500k new)" if args.households == 500_000 else "sync contacts, first",
        out["sync"]["first"]["ms"],
    )
    line("sync contacts, again (no-op)", out["sync"]["again"]["ms"])
    line("floor: bare narrow INSERT…SELECT", out["floor"]["best_ms"])
    line("anchor (18 ms/76,787, scaled)", anchor_ms)
    print(f"target: build_outbox < {TARGET_MS} ms → {'MET' if ours < TARGET_MS else 'NOT MET'}")
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / "messaging-outbox-build.json"
    both = json.loads(path.read_text()) if path.exists() else {}
    both[args.db] = out
    path.write_text(json.dumps(both, indent=2, default=str))


if __name__ == "__main__":
    main()
