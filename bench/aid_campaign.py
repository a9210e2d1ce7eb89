"""Aid campaigns through the database (issue 5): ``allocate_campaign`` end to end next to the allocation engine
alone on the same problem, a re-run's digest, and the cost of the ledger writes (deliveries, transfers).

A municipality of --sectors sectors and --blocks blocks gets --households households (registry-like skewed
priorities), a stand per sector with uneven stock (35 %–100 % of its households in whole packages), then:

  * allocate_campaign (eligibility query, zones and stock, problem, engine, entitlements with codes, ledger
    reservation, audit) — its time next to the engine's own time inside it (``allocation.allocate``), as a ratio;
  * cancel (packages back to stock) and allocate again with the same seed: digest equal (target: yes);
  * --deliveries confirm_delivery calls and --transfers transfer_stock calls: median and p95 per call.

    python bench/aid_campaign.py --db sqlite [--households 100000] [--blocks 4000] [--sectors 40]
    python bench/aid_campaign.py --db postgres [--pg-url postgres://postgres@127.0.0.1:5432/redes_aidcore_bench]

Writes bench/out/aid_campaign-<db>.json.
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
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "out"
SQLITE_FILE = "bench-aid-campaign.sqlite3"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/redes_aidcore_bench")
    p.add_argument("--households", type=int, default=100_000)
    p.add_argument("--blocks", type=int, default=4_000)
    p.add_argument("--sectors", type=int, default=40)
    p.add_argument("--deliveries", type=int, default=300)
    p.add_argument("--transfers", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args()


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def build(args, rng: random.Random):
    from django.core.management import call_command
    from django.db.models import Count

    from redes.aid import services
    from redes.aid.models import SiteKind, Unit
    from redes.demo.generator import build_municipality, two_level_plan
    from redes.registry.models import Household
    from redes.territories.models import Node

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    muni = build_municipality(
        "12001", "Acapulco de Juárez", "Guerrero", ["Sector", "Manzana"],
        two_level_plan("12001", "Acapulco de Juárez", args.sectors, args.blocks),
    )  # fmt: skip
    blocks = list(
        Node.objects.filter(municipality=muni, depth=4).order_by("id").values_list("id", "parent_id")
    )
    rows = []
    for i in range(args.households):
        block, _sector = blocks[rng.randrange(len(blocks))]
        priority = min(100, int(rng.expovariate(1 / 18)))
        rows.append(
            Household(municipality_id=muni.pk, node_id=block, street=f"Calle {i % 500}", priority=priority)
        )
    Household.objects.bulk_create(rows, batch_size=5000)
    households_s = time.perf_counter() - t0

    item = {}
    for code, unit, whole, kcal in (("ARROZ", Unit.KG, False, 3600), ("FRIJOL", Unit.KG, False, 3410),
                                    ("ACEITE", Unit.LITRE, False, 8200), ("ATUN", Unit.PIECE, True, 180)):  # fmt: skip
        item[code] = services.save_item(
            actor=None, municipality=muni, code=code, name=code.title(), unit=unit, whole_units=whole,
            kcal=Decimal(kcal),
        )  # fmt: skip
    lines = [(item["ARROZ"], 5), (item["FRIJOL"], 4), (item["ACEITE"], Decimal("1.5")), (item["ATUN"], 6)]
    package = services.save_template(
        actor=None, municipality=muni, name="Despensa", persons=4, days=7, lines=lines
    )
    donor = services.save_donor(actor=None, municipality=muni, name="Programa estatal")
    per_sector = dict.fromkeys(sorted({sector for _block, sector in blocks}), 0)
    for sector_id, n in (
        Household.objects.filter(municipality=muni).values("node__parent_id").annotate(n=Count("id"))
    ).values_list("node__parent_id", "n"):
        per_sector[sector_id] = n
    sites = []
    warehouse = services.save_site(
        actor=None, municipality=muni, node=muni.node, kind=SiteKind.WAREHOUSE, name="Bodega"
    )
    for sector_id in sorted(per_sector):
        sector = Node.objects.get(pk=sector_id)
        site = services.save_site(
            actor=None, municipality=muni, node=sector, kind=SiteKind.STAND, name=f"Puesto {sector.code}"
        )
        packages = int(per_sector[sector_id] * rng.uniform(0.35, 1.0))
        services.receive_donation(
            actor=None, donor=donor, site=site, lines=[(it, q * packages) for it, q in lines]
        )
        sites.append(site)
    services.receive_donation(
        actor=None, donor=donor, site=warehouse, lines=[(it, q * 1000) for it, q in lines]
    )
    return muni, package, sites, warehouse, item, households_s


def main() -> None:
    args = parse_args()
    benchdb.reset_database(args, SQLITE_FILE)
    benchdb.setup_django(args, SQLITE_FILE)
    from django.db import connection

    from redes.aid import allocation, campaigns, services
    from redes.aid.delivery import confirm_delivery
    from redes.aid.models import Entitlement, EntitlementStatus

    rng = random.Random(args.seed)
    muni, package, sites, warehouse, item, households_s = build(args, rng)

    engine_times: list[float] = []
    original = allocation.allocate

    def timed_allocate(*a, **k):
        t = time.perf_counter()
        result = original(*a, **k)
        engine_times.append(time.perf_counter() - t)
        return result

    allocation.allocate = timed_allocate

    def run(seed):
        c = campaigns.create_campaign(actor=None, name="Bench", template=package, node=muni.node, seed=seed)
        t = time.perf_counter()
        campaigns.allocate_campaign(c, actor=None)
        return c, time.perf_counter() - t

    first, first_s = run(args.seed)
    campaigns.cancel_campaign(first, actor=None)
    second, second_s = run(args.seed)
    allocation.allocate = original
    same = first.digest == second.digest and campaigns.export_entitlements(first) != b""
    campaigns.start_campaign(second, actor=None)

    selected = list(
        Entitlement.objects.filter(campaign=second, status=EntitlementStatus.SELECTED)
        .select_related("zone__site")
        .order_by("id")[: args.deliveries]
    )
    delivery_ms = []
    for row in selected:
        t = time.perf_counter()
        confirm_delivery(row, actor=None, mode="site", site=row.zone.site)
        delivery_ms.append(1000 * (time.perf_counter() - t))
    transfer_ms = []
    for i in range(args.transfers):
        t = time.perf_counter()
        services.transfer_stock(
            actor=None, from_site=warehouse, to_site=sites[i % len(sites)], item=item["ATUN"], quantity=1
        )
        transfer_ms.append(1000 * (time.perf_counter() - t))
    ledger_ok = services.verify_ledger(muni).ok

    result = {
        "db": connection.vendor,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
        "households_build_s": round(households_s, 2),
        "summary": second.summary,
        "allocate_s": [round(first_s, 3), round(second_s, 3)],
        "engine_s": [round(t, 3) for t in engine_times],
        "digest_equal": same,
        "delivery_ms": {
            "median": round(statistics.median(delivery_ms), 2),
            "p95": round(pct(delivery_ms, 0.95), 2),
        },
        "transfer_ms": {
            "median": round(statistics.median(transfer_ms), 2),
            "p95": round(pct(transfer_ms, 0.95), 2),
        },
        "ledger_ok": ledger_ok,
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / f"aid_campaign-{connection.vendor}.json").write_text(json.dumps(result, indent=2, default=str))

    print(f"\nAid campaign through the database — {result['db']}, {result['machine']}")
    print(f"{args.households:,} households over {args.blocks:,} blocks, {len(sites)} stands "
          f"(build {households_s:.1f} s)")  # fmt: skip
    s = second.summary
    print(f"eligible {s['counts']['selected'] + s['counts']['not_selected']:,}, packages {s['packages']:,}, "
          f"allocated {s['allocated']:,}, min block coverage {s['min_block_coverage']}")  # fmt: skip
    print(f"{'':34}{'ours':>10}{'anchor':>10}{'ratio':>8}")
    for label, ours, anchor in (
        ("allocate_campaign, 1st run (s)", first_s, engine_times[0]),
        ("allocate_campaign, re-run (s)", second_s, engine_times[1]),
    ):
        print(
            f"{label:34}{ours:10.3f}{anchor:10.3f}{ours / anchor:8.2f}   (anchor: the engine alone, inside)"
        )
    print(f"{'re-run digest equal':34}{'yes' if same else 'NO':>10}")
    print(
        f"{'confirm_delivery (ms, median/p95)':34}{result['delivery_ms']['median']:10.2f}{result['delivery_ms']['p95']:10.2f}"
    )
    print(
        f"{'transfer_stock (ms, median/p95)':34}{result['transfer_ms']['median']:10.2f}{result['transfer_ms']['p95']:10.2f}"
    )
    print(f"{'ledger balances':34}{'ok' if ledger_ok else 'MISMATCH':>10}")


if __name__ == "__main__":
    main()
