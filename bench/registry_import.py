#!/usr/bin/env python
"""Registry bulk-import benchmark (run by hand, not a test): CSV files of 10k … 1M persons, end to end.

    python bench/registry_import.py --db sqlite
    python bench/registry_import.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_bench_import]
    python bench/registry_import.py --db sqlite --sizes 10000,100000   # fewer sizes

For each size it builds a fresh Acapulco-size municipality (13,170 blocks with polygons, the demo's territory
generator), writes a CSV of the synthetic Mexican population (``registry.synthetic``: households of ~3.5
persons, 2 % corrupted duplicates, CURP for 60 %) with one row per person — half the households placed by
coordinates (point in polygon), half by block code — and times the whole import through the same functions the
CLI and the background task use (``importing.create_job`` → ``set_mapping`` → ``run``: read, detect, validate,
place, write, flag duplicates). It prints persons/s, the growth ratio between sizes (1.0 = linear) and the ratio
to the anchor, and writes ``bench/out/registry-import-<db>.json``. See bench/README.md.

Anchor: Sahana Eden's importer, measured on a 2-core machine at 30 persons/s for 10k persons (89/s for 500:
it grows superlinearly). Target: ≥ 20,000 persons/s, linear growth.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import benchdb

OUT_DIR = Path(__file__).resolve().parent / "out"
ANCHOR_PERSONS_PER_S = 30.0  # Sahana Eden, 10k persons, 2 cores
ANCHOR_SMALL_PERSONS_PER_S = 89.0  # Sahana Eden, 500 persons
TARGET_PERSONS_PER_S = 20000.0
HEADER = [
    "Folio hogar", "ID persona", "Nombre", "Primer apellido", "Segundo apellido", "Fecha de nacimiento", "Edad",
    "Sexo", "CURP", "Parentesco", "Calle", "Número", "Colonia", "CP", "Manzana", "Latitud", "Longitud",
    "Teléfono",
]  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_bench_import")
    p.add_argument("--sizes", default="10000,100000,350000,1000000", help="persons per file, comma separated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-files", action="store_true", help="keep the generated CSV files")
    return p.parse_args()


SQLITE_FILE = "bench-import.sqlite3"


def build_territory(code: str):
    """An Acapulco-size municipality (7 sectors, 439 zones, 1,317 groups, 13,170 blocks) with polygons."""
    from redes.demo.generator import ACAPULCO_CENTRE, build_municipality, nested_plan

    zones = [63] * 5 + [62] * 2
    plan = nested_plan(code, f"Bench {code}", [7, zones, 3, 10], ["Sector", "Zona", "Grupo", "Manzana"])
    return build_municipality(
        code,
        f"Bench {code}",
        "Guerrero",
        ["Sector", "Zona", "Grupo", "Manzana"],
        plan,
        centre=ACAPULCO_CENTRE,
    )


def write_csv(path: Path, municipality, n_persons: int, seed: int) -> tuple[int, int, float]:
    """The synthetic population as one row per person. Returns (rows, households, seconds to generate)."""
    import numpy as np

    from redes.registry.synthetic import generate_population
    from redes.territories.models import Node

    t0 = time.perf_counter()
    population = generate_population(n_persons, seed=seed)
    blocks = list(
        Node.objects.filter(municipality=municipality, kind="unit", depth=6)
        .order_by("pk")
        .values_list("code", "centroid_lat", "centroid_lon")
    )
    rng = np.random.default_rng(seed)
    households = {h.id: h for h in population.households}
    block_of = rng.integers(0, len(blocks), size=len(population.households) + len(population.records) + 2)
    by_coordinates = rng.random(len(block_of)) < 0.5
    original = {dup: orig for orig, dup in population.true_pairs}
    records = {r.id: r for r in population.records}
    rows = 0
    household_ids = set()
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for r in population.records:
            h = households.get(r.household)
            if h is None:  # a duplicate re-censused as another household at its original's address
                h = households[records[original[r.id]].household]
            code, lat, lon = blocks[int(block_of[r.household])]
            coords = bool(by_coordinates[r.household])
            age = "" if r.birth_date else str(2025 - r.birth_year) if r.birth_year else ""
            writer.writerow(
                [
                    f"H{r.household}", f"P{r.id}", r.given, r.surname1, r.surname2,
                    r.birth_date.strftime("%d/%m/%Y") if r.birth_date else "", age, r.sex, r.curp, "",
                    h.street, h.number, h.colonia, h.postal_code, "" if coords else code,
                    f"{lat:.7f}" if coords else "", f"{lon:.7f}" if coords else "", h.phone,
                ]
            )  # fmt: skip
            rows += 1
            household_ids.add(r.household)
    return rows, len(household_ids), time.perf_counter() - t0


def import_file(path: Path, municipality) -> dict:
    from redes.registry import importing

    phases: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def progress(phase, done, total):
        now = time.perf_counter()
        if phase != last[1]:
            if last[1] is not None:
                phases[last[1]] = phases.get(last[1], 0.0) + now - last[0]
            last[0], last[1] = now, phase

    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    job = importing.create_job(municipality, None, path, actor=None)
    importing.set_mapping(job, job.mapping, "valid_rows", actor=None)
    importing.start(job, actor=None, enqueue=False)
    detect = time.perf_counter() - t0
    job = importing.run(job.pk, progress=progress)
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    if last[1] is not None:
        phases[last[1]] = phases.get(last[1], 0.0) + time.perf_counter() - last[0]
    if job.status != "done":
        raise SystemExit(
            f"import {job.status}: {job.report.get('failure') or job.report.get('errors', [])[:5]}"
        )
    return {
        "seconds": seconds,
        "upload_and_detect_s": detect,
        "phases_s": phases,
        "rows": job.total_rows,
        "invalid_rows": job.invalid_rows,
        "households": job.households_created,
        "persons": job.persons_created,
        "duplicates_flagged": job.duplicates_flagged,
        "persons_per_s": job.total_rows / seconds,
        "python_cpu_s": cpu,
    }


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the forked duplicate search); not the server's."""
    import resource

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    benchdb.reset_database(args, SQLITE_FILE)
    os.environ.setdefault("REDES_TASKS_BACKEND", "immediate")
    benchdb.setup_django(args, SQLITE_FILE)
    from django.core.management import call_command

    from redes.audit.context import Channel, using_channel

    call_command("migrate", verbosity=0, interactive=False)
    results = []
    work = benchdb.data_path("bench-import-files")
    work.mkdir(exist_ok=True)
    with using_channel(Channel.SYSTEM):
        for i, n in enumerate(sizes):
            code = f"12{901 + i:03d}"
            t0 = time.perf_counter()
            muni = build_territory(code)
            print(f"[{n:,}] territory: 13,170 blocks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            path = work / f"registry-{n}.csv"
            rows, households, gen_s = write_csv(path, muni, n, args.seed)
            size_mb = path.stat().st_size / 2**20
            print(
                f"[{n:,}] CSV: {rows:,} rows, {households:,} households, {size_mb:.1f} MB in {gen_s:.1f} s",
                file=sys.stderr,
            )
            result = import_file(path, muni)
            result.update({"size": n, "file_mb": size_mb, "load_average": os.getloadavg()[0]})
            results.append(result)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in result["phases_s"].items())
            print(
                f"[{n:,}] import: {result['seconds']:.1f} s, {result['persons_per_s']:,.0f} persons/s ({phases}; "
                f"Python CPU {result['python_cpu_s']:.1f} s, load {os.getloadavg()[0]:.1f}); "
                f"{result['households']:,} households, {result['duplicates_flagged']:,} duplicate pairs flagged",
                file=sys.stderr,
            )
            if not args.keep_files:
                path.unlink()
    print()
    print(
        f"Registry import into {args.db} ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)"
    )
    print(
        f"{'persons':>10} {'households':>10} {'seconds':>8} {'persons/s':>10} {'growth':>7} {'× anchor':>9}"
    )
    previous = None
    for r in results:
        growth = ""
        if previous:
            # time ratio / size ratio: 1.0 means linear; above 1, superlinear
            growth = f"{(r['seconds'] / previous['seconds']) / (r['rows'] / previous['rows']):.2f}"
        r["growth_vs_previous"] = float(growth) if growth else None
        r["ratio_to_anchor"] = r["persons_per_s"] / ANCHOR_PERSONS_PER_S
        print(
            f"{r['rows']:>10,} {r['households']:>10,} {r['seconds']:>8.1f} {r['persons_per_s']:>10,.0f} "
            f"{growth:>7} {r['ratio_to_anchor']:>8,.0f}×"
        )
        previous = r
    print(
        f"anchor: Sahana Eden {ANCHOR_PERSONS_PER_S:.0f} persons/s at 10k ({ANCHOR_SMALL_PERSONS_PER_S:.0f}/s at 500, "
        f"superlinear); target ≥ {TARGET_PERSONS_PER_S:,.0f} persons/s, growth ≈ 1.0"
    )
    OUT_DIR.mkdir(exist_ok=True)
    out = OUT_DIR / f"registry-import-{args.db}.json"
    out.write_text(
        json.dumps(
            {
                "db": args.db,
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "anchor_persons_per_s": ANCHOR_PERSONS_PER_S,
                "target_persons_per_s": TARGET_PERSONS_PER_S,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"written {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
