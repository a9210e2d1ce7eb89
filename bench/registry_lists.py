#!/usr/bin/env python
"""Registry list and search benchmark (run by hand, not a test): a block liaison's list and a name search
across a municipality of ~1M persons, on SQLite or PostgreSQL, next to the anchor (Sahana Eden).

    python bench/registry_lists.py --db sqlite
    python bench/registry_lists.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_registry]

It (re)creates its own database (``<REDES_DATA_DIR>/bench-registry.sqlite3`` or the ``redes_bench_registry``
PostgreSQL database) and builds the demo through its scale path (``build_demo(scale="acapulco",
persons=N)``: the Acapulco-size tree of 13,170 blocks with N persons in its registry). Then, with real users
holding real memberships, it times over many runs:

* (a) ``registry.queries.block_households(liaison, block)`` evaluated to a page of 50, for random blocks, each
  by the block liaison of that block (and the "not visited yet" filter);
* (b) ``registry.queries.search_persons(coordinator, q, municipality=...)`` (a page of 50) for realistic
  queries: surnames and prefixes with and without accents, given name + surname, both surnames, compound
  surnames ("de la Cruz"), any order ("lopez ana"), short prefixes;
* optionally (``--http``) the same through the Django test client: the census block page and search page.

It prints p50/p95 next to the anchor (Eden: 0.19 s list, 0.04 s search at only 10k persons) as ratios, against
the target p95 < 50 ms; shows the query plans (PostgreSQL ``EXPLAIN ANALYZE``, SQLite ``EXPLAIN QUERY PLAN``);
and writes ``bench/out/registry-lists-<db>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import benchdb

OUT_DIR = Path(__file__).resolve().parent / "out"
TARGET_P95_MS = 50.0
ANCHOR = {"list": 190.0, "search": 40.0}  # Sahana Eden, ms, at 10k persons
ANCHOR_PERSONS = 10_000
PAGE = 50


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_registry")
    p.add_argument("--persons", type=int, default=1_000_000, help="persons in the Acapulco registry")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--runs", type=int, default=1000, help="timed runs of each query kind")
    p.add_argument("--liaisons", type=int, default=100, help="block liaisons (random blocks) to list as")
    p.add_argument("--no-build", action="store_true", help="reuse the database of the last run")
    p.add_argument("--http", action="store_true", help="also time the census pages through the test client")
    return p.parse_args()


SQLITE_FILE = "bench-registry.sqlite3"


def percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))],
        "max_ms": samples[-1],
        "runs": len(samples),
    }


def timed(pick, run, runs: int, warmup: int = 20) -> tuple[dict, list[tuple[float, object]]]:
    """Time ``run(pick())`` ``runs`` times (the pick is outside the clock). Returns percentiles and samples."""
    for _ in range(warmup):
        run(pick())
    samples = []
    for _ in range(runs):
        item = pick()
        t0 = time.perf_counter()
        run(item)
        samples.append(((time.perf_counter() - t0) * 1000, item))
    return percentiles([s for s, _ in samples]), samples


# ---------------------------------------------------------------------------------------------------------
# 1. Build


def build(args) -> dict:
    from django.core.management import call_command

    from redes.audit.context import Channel, using_channel
    from redes.demo.generator import build_demo

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    t0 = time.perf_counter()
    with using_channel(Channel.SYSTEM):
        result = build_demo(seed=args.seed, scale="acapulco", persons=args.persons, progress=True)
    total = time.perf_counter() - t0
    stats = result.scale_registry
    seconds = sum(stats.seconds.values())
    out = {
        "demo_seconds": total,
        "registry_seconds": seconds,
        "registry_stages": stats.seconds,
        "households": stats.households,
        "persons": stats.persons,
        "consents": stats.consents,
        "visits": stats.visits,
        "duplicates": stats.duplicates,
        "persons_per_s": stats.persons / seconds,
    }
    print(
        f"demo built in {total:.1f} s; registry: {stats.persons:,} persons in {stats.households:,} households "
        f"in {seconds:.1f} s ({stats.persons / seconds:,.0f} persons/s) {stats.seconds}",
        file=sys.stderr,
    )
    return out


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


# ---------------------------------------------------------------------------------------------------------
# 2. Users with real memberships


def bench_users(args):
    from redes.accounts.models import User
    from redes.accounts.roles import Role
    from redes.accounts.services import create_user, grant_membership
    from redes.registry.models import BlockCounts
    from redes.territories.models import Municipality, Node

    aca = Municipality.objects.get(code="12001")
    coordinator = User.objects.filter(username="bench-coordinator").first()
    if coordinator is None:
        coordinator = create_user(
            "bench-coordinator", password="x" * 12, full_name="Bench", check_password=False
        )
        grant_membership(coordinator, aca.node, Role.COORDINATOR)
    blocks = list(
        BlockCounts.objects.filter(municipality=aca, households__gt=0)
        .order_by("node_id")
        .values_list("node_id", flat=True)
    )
    rnd = random.Random(args.seed)
    liaisons = []
    for i, node_id in enumerate(sorted(rnd.sample(blocks, min(args.liaisons, len(blocks))))):
        username = f"bench-liaison-{i:03d}"
        node = Node.objects.get(pk=node_id)
        user = User.objects.filter(username=username).first()
        if user is None:
            user = create_user(username, password="x" * 12, full_name=username, check_password=False)
            grant_membership(user, node, Role.BLOCK_LIAISON)
        else:
            node = user.memberships.get().node
        liaisons.append((user, node))
    return aca, coordinator, liaisons


# ---------------------------------------------------------------------------------------------------------
# 3. Search queries: realistic ones, drawn from the data itself


def search_queries(aca, seed: int, n: int = 300) -> list[tuple[str, str]]:
    """``[(kind, query)]``: what a coordinator types, from a sample of real records plus fixed hard cases."""
    from redes.registry.models import Person
    from redes.registry.text import fold

    rnd = random.Random(seed + 1)
    ids = Person.objects.filter(municipality=aca).order_by("pk").values_list("pk", flat=True)
    lo, hi = ids.first(), ids.last()
    queries: list[tuple[str, str]] = []
    while len(queries) < n:
        pk = rnd.randint(lo, hi)
        p = Person.objects.filter(pk=pk).values("given_name", "surname1", "surname2").first()
        if not p or not p["surname1"]:
            continue
        given = p["given_name"].split()[0] if p["given_name"] else ""
        s1, s2 = p["surname1"], p["surname2"]
        kind = rnd.choice(
            ("surname", "surname_prefix", "given_surname", "both_surnames", "reversed", "typed")
        )
        if " " in s1 and rnd.random() < 0.7:
            kind = "compound"
        if kind == "surname":
            q = s1
        elif kind == "surname_prefix":
            q = fold(s1)[: rnd.randint(3, 5)]
        elif kind == "given_surname":
            q = f"{given} {s1[: rnd.randint(3, len(s1))]}"
        elif kind == "both_surnames" and s2:
            q = f"{s1} {s2}"
        elif kind == "reversed":
            q = f"{fold(s1)} {fold(given)[:3]}"
        elif kind == "compound":
            q = s1 if rnd.random() < 0.5 else f"{s1.lower()} {given.lower()}"
        else:  # typed quickly: no accents, capitals
            q = f"{fold(given).upper()} {fold(s1).upper()}"
        queries.append((kind, q))
    fixed = [
        "María", "maria", "José", "jose luis", "Hernández", "hernandez", "garcia", "martinez lopez", "Ma",
        "her", "gon", "de la", "de la cruz", "De La Cruz Hernández", "del rio", "núñez", "NUNEZ", "zuñiga",
        "Guadalupe", "maría guadalupe", "lopez ana", "Juan Pérez", "sanchez maria", "castañeda",
    ]  # fmt: skip
    queries += [("hard_case", q) for q in fixed]
    return queries


# ---------------------------------------------------------------------------------------------------------
# 4. Plans


def explain(qs) -> str:
    from django.db import connection

    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return "\n".join(r[0] for r in rows)
    return "\n".join(" ".join(str(c) for c in r) for r in rows)


# ---------------------------------------------------------------------------------------------------------
# 5. HTTP (optional)


def http_timings(args, aca, coordinator, liaisons, queries) -> dict:
    from django.conf import settings
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    out = {}
    rnd = random.Random(args.seed + 2)
    try:
        reverse("census-block", args=[liaisons[0][1].uuid])
        reverse("census-search")
    except NoReverseMatch as exc:
        return {"skipped": f"census pages not there: {exc}"}
    clients = {}

    def client_for(user):
        if user.pk not in clients:
            c = Client()
            c.force_login(user)
            clients[user.pk] = c
        return clients[user.pk]

    def get_block(item):
        user, node = item
        r = client_for(user).get(reverse("census-block", args=[node.uuid]), HTTP_ACCEPT_LANGUAGE="en")
        assert r.status_code == 200, r.status_code

    def get_search(item):
        r = client_for(coordinator).get(reverse("census-search"), {"q": item[1]}, HTTP_ACCEPT_LANGUAGE="en")
        assert r.status_code == 200, r.status_code

    runs = max(50, args.runs // 4)
    try:
        out["list_page"], _ = timed(lambda: rnd.choice(liaisons), get_block, runs, warmup=5)
        out["search_page"], _ = timed(lambda: rnd.choice(queries), get_search, runs, warmup=5)
    except AssertionError as exc:
        out["skipped"] = f"page answered {exc}"
    return out


# ---------------------------------------------------------------------------------------------------------
# 6. Report


def ratio(ours: float, anchor: float) -> str:
    return f"{ours / anchor:.3f}×" if anchor else "—"


def report(result: dict) -> None:
    b = result.get("build", {})
    print()
    print(f"Registry lists and search — {result['db']} ({result.get('db_version', '')}), {result['machine']}")
    if b:
        print(
            f"build: {b['persons']:,} persons in {b['households']:,} households, {b['registry_seconds']:.1f} s "
            f"({b['persons_per_s']:,.0f} persons/s; whole demo {b['demo_seconds']:.1f} s)"
            + (f" [from the run of {b['from_run_of']}]" if "from_run_of" in b else "")
        )
    print(f"persons in the municipality: {result['persons_in_municipality']:,} (anchor measured at 10,000)")
    print()
    header = f"{'query':<48} {'p50 ms':>8} {'p95 ms':>8}  {'Eden ms':>8} {'p95/Eden':>9}  target p95<50 ms"
    print(header)
    print("-" * len(header))
    rows = [
        ("(a) block liaison's list, page of 50", result["list"], ANCHOR["list"]),
        ("(a') ... only households not visited yet", result["list_unvisited"], ANCHOR["list"]),
        ("(b) name search across the municipality (50)", result["search"], ANCHOR["search"]),
    ]
    http = result.get("http", {})
    if "list_page" in http:
        rows.append(("HTTP: census block page (liaison)", http["list_page"], ANCHOR["list"]))
    if "search_page" in http:
        rows.append(("HTTP: census search page (coordinator)", http["search_page"], ANCHOR["search"]))
    for name, fig, anchor in rows:
        ok = "✔" if fig["p95_ms"] < TARGET_P95_MS else "✘"
        print(
            f"{name:<48} {fig['p50_ms']:>8.2f} {fig['p95_ms']:>8.2f}  {anchor:>8.0f} "
            f"{ratio(fig['p95_ms'], anchor):>9}  {ok}"
        )
    print()
    print("search p95 by kind of query:")
    for kind, fig in sorted(result["search_by_kind"].items()):
        print(f"  {kind:<16} p50 {fig['p50_ms']:7.2f}  p95 {fig['p95_ms']:7.2f}  ({fig['runs']} runs)")
    print("slowest search queries (median of their runs):")
    for q, ms, n in result["slowest_queries"]:
        print(f"  {ms:8.2f} ms  {q!r} ({n} results)")
    if "skipped" in http:
        print(f"HTTP: skipped ({http['skipped']})")
    print()


def main() -> None:
    args = parse_args()
    if not args.no_build:
        benchdb.reset_database(args, SQLITE_FILE)
    benchdb.setup_django(args, SQLITE_FILE)
    from django.db import connection

    from redes.registry import queries
    from redes.registry.models import Person

    result: dict = {
        "db": args.db,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_at_start": os.getloadavg(),
    }
    previous = OUT_DIR / f"registry-lists-{args.db}.json"
    if not args.no_build:
        result["build"] = build(args)
    elif previous.exists():
        old = json.loads(previous.read_text())
        if "build" in old and old["build"].get("persons", 0) >= args.persons:
            result["build"] = {**old["build"], "from_run_of": old.get("when")}
    analyze()
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        result["db_version"] = cursor.fetchone()[0].split(" on ")[0]

    aca, coordinator, liaisons = bench_users(args)
    result["persons_in_municipality"] = Person.objects.filter(municipality=aca).count()
    rnd = random.Random(args.seed)

    def run_list(item):
        user, node = item
        return list(queries.block_households(user, node)[:PAGE])

    def run_unvisited(item):
        user, node = item
        return list(queries.block_households(user, node, unvisited=True)[:PAGE])

    result["list"], _ = timed(lambda: rnd.choice(liaisons), run_list, args.runs)
    result["list_unvisited"], _ = timed(lambda: rnd.choice(liaisons), run_unvisited, args.runs)
    sizes = [len(run_list(item)) for item in liaisons]
    result["list_rows"] = {"mean": statistics.mean(sizes), "max": max(sizes)}

    qs_list = search_queries(aca, args.seed)

    def run_search(item):
        return list(queries.search_persons(coordinator, item[1], municipality=aca))

    result["search"], samples = timed(lambda: rnd.choice(qs_list), run_search, args.runs)
    by_kind: dict[str, list[float]] = {}
    by_query: dict[str, list[float]] = {}
    for ms, (kind, q) in samples:
        by_kind.setdefault(kind, []).append(ms)
        by_query.setdefault(q, []).append(ms)
    result["search_by_kind"] = {k: percentiles(v) for k, v in by_kind.items()}
    slowest = sorted(by_query.items(), key=lambda kv: -statistics.median(kv[1]))[:8]
    result["slowest_queries"] = [(q, statistics.median(v), len(run_search(("", q)))) for q, v in slowest]

    # Plans: the list of a block, and the slowest search.
    user, node = liaisons[0]
    result["plans"] = {
        "list": explain(queries.block_households(user, node)[:PAGE]),
        "search_slowest": explain(queries.search_persons(coordinator, slowest[0][0], municipality=aca)),
        "search_typical": explain(queries.search_persons(coordinator, "garcia maria", municipality=aca)),
    }
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"registry-lists-{args.db}.json"
    path.write_text(json.dumps(result, indent=2, default=str))  # saved before the optional HTTP part
    if args.http:
        try:
            result["http"] = http_timings(args, aca, coordinator, liaisons, qs_list)
        except Exception as exc:  # pages still being written by others must not lose the figures above
            result["http"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    report(result)
    for name, plan in result["plans"].items():
        print(f"plan — {name}:\n{plan}\n")
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
