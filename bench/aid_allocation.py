"""Fair aid allocation (issue 5): ours (redes.aid.allocation.allocate) next to the two-stage LP bound and greedy
"most vulnerable first", in one run.

Synthetic problem (seeded): --households eligible households over --blocks blocks in --zones zones. Block sizes
vary (gamma weights, mean households/blocks, at least 12); each block has a deprivation level, and household priorities are
registry-like integer scores 0-100, skewed (most low, a few high), higher in deprived blocks (the mix is set so
that greedy's worst block lands near the anchor's 0.10). Stock per zone is
uneven: a few scarce zones at 40% of their households (the anchor's max-min value), a few with enough for all,
the rest between 45% and 100%.

Printed side by side:
  * the two-stage LP bound (lp_bound: build + max-min LP + priority LP in HiGHS): time, t*, objective;
  * ours (allocate: the same LP pipeline + whole-package shares, priority fill and seeded lottery): time as a
    ratio of the LP pipeline (target <= 2x), objective as a ratio of the LP bound (target >= 0.995), worst block
    coverage as a ratio of the LP's t* (target >= 0.99), duplicates (target 0), the digest of a second run and
    of a run on the households shuffled (target: byte-identical);
  * the best worst block any whole-package plan can reach, by water-filling (independent of ours: each zone's
    packages one by one to its least covered block), and ours as a ratio of it;
  * greedy "most vulnerable first" per zone: time, worst block, objective.

Times are the median of --repeat runs, LP and ours interleaved. Writes bench/out/aid_allocation.json.

    python bench/aid_allocation.py [--households 500000] [--blocks 13000] [--zones 40] [--seed 1] [--repeat 3]
    python bench/aid_allocation.py --quick      # 50,000 households over 1,300 blocks
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redes.aid.allocation import Problem, allocate, greedy, lp_bound  # noqa: E402

SCARCE_RATIO = 0.40  # the anchor's max-min value
MIN_BLOCK = 12


def generate(households: int, blocks: int, zones: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    # Blocks to zones: contiguous runs of uneven length (every zone gets at least one block).
    cuts = (
        np.sort(rng.choice(np.arange(1, blocks), zones - 1, replace=False))
        if zones > 1
        else np.array([], int)
    )
    zone_of_block = np.repeat(np.arange(zones), np.diff(np.r_[0, cuts, blocks]))
    # Households to blocks: uneven block sizes (at least MIN_BLOCK eligible households when there are enough).
    weights = rng.gamma(6.0, 1.0, blocks)
    base = min(MIN_BLOCK, households // blocks)
    sizes = base + rng.multinomial(households - base * blocks, weights / weights.sum())
    block_of = np.repeat(np.arange(blocks), sizes)
    # Priorities: integer scores 0-100, skewed, higher in deprived blocks.
    deprivation = rng.beta(2.0, 3.0, blocks)
    scale = 12.0 + 20.0 * deprivation[block_of]
    priority = np.minimum(100, np.floor(rng.gamma(1.1, 1.0, households) * scale)).astype(np.int64)
    # Stock: a few scarce zones at exactly SCARCE_RATIO, a few with enough for all, the rest in between.
    zone_size = np.bincount(zone_of_block[block_of], minlength=zones)
    ratio = rng.uniform(0.45, 1.0, zones)
    kinds = rng.permutation(zones)
    ratio[kinds[: max(1, zones // 12)]] = SCARCE_RATIO
    ratio[kinds[max(1, zones // 12) : max(1, zones // 12) + max(1, zones // 12)]] = 1.1
    stock = np.floor(ratio * zone_size).astype(np.int64)
    # Stable household ids (as a database would give them: unique, not in input order).
    ids = rng.permutation(households * 3)[:households] + 1
    return Problem(block_of, zone_of_block, priority, stock, ids)


def shuffled(p: Problem, seed: int) -> Problem:
    perm = np.random.default_rng(seed + 1).permutation(p.n_households)
    return Problem(p.block_of[perm], p.zone_of_block, p.priority[perm], p.stock, p.household_ids[perm])


def water_filling_worst(p: Problem, t_star: float) -> float:
    """The best worst-block coverage in whole packages: per zone, each package to the least covered block
    (optimal for max-min); overall, the worst zone's value, capped by t* (rich zones hold t* and then spend the
    rest by priority, which max-min leaves free)."""
    worst = 1.0
    sizes_all = p.block_size
    for z in np.flatnonzero(p.active_zone):
        blocks = np.flatnonzero((p.zone_of_block == z) & (sizes_all > 0))
        if not blocks.size:
            continue
        sizes = sizes_all[blocks].tolist()
        packages = int(p.packages[z])
        served = [0] * len(sizes)
        heap = [(0.0, i) for i in range(len(sizes))]
        for _ in range(packages):
            _, i = heapq.heappop(heap)
            served[i] += 1
            heapq.heappush(heap, (served[i] / sizes[i], i))
        worst = min(worst, min(s / n for s, n in zip(served, sizes, strict=True)), t_star)
    return worst


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=500_000)
    parser.add_argument("--blocks", type=int, default=13_000)
    parser.add_argument("--zones", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--quick", action="store_true", help="50,000 households over 1,300 blocks")
    args = parser.parse_args()
    if args.quick:
        args.households, args.blocks = 50_000, 1_300

    p, t_gen = timed(generate, args.households, args.blocks, args.zones, args.seed)
    print(
        f"aid allocation: {p.n_households:,} households, {p.n_blocks:,} blocks, {p.n_zones} zones, "
        f"{int(p.packages.sum()):,} packages (seed {args.seed}; generated in {t_gen:.2f} s)"
    )
    ratios = p.packages / np.maximum(p.zone_size, 1)
    print(
        f"stock / households per zone: min {ratios.min():.3f}, median {np.median(ratios):.3f}, "
        f"max {ratios.max():.3f}; households per block: min {p.block_size.min()}, "
        f"median {int(np.median(p.block_size))}, max {p.block_size.max()}"
    )

    # Warm-up (imports, first HiGHS instance and its banner, kept off the table), then interleaved timed runs.
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            allocate(shuffled(p, 99), seed=args.seed)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    lp_times, our_times, lean_times, greedy_times = [], [], [], []
    results = []
    for _ in range(max(1, args.repeat)):
        bound, t_lp = timed(lp_bound, p)
        lp_times.append(t_lp)
        ours, t_ours = timed(allocate, p, args.seed)
        our_times.append(t_ours)
        results.append(ours)
        lean, t_lean = timed(allocate, p, args.seed, bound=False)
        lean_times.append(t_lean)
        results.append(lean)
        plan, t_greedy = timed(greedy, p, args.seed)
        greedy_times.append(t_greedy)
    t_lp, t_ours, t_lean, t_greedy = (
        statistics.median(x) for x in (lp_times, our_times, lean_times, greedy_times)
    )
    ours = results[0]
    digests = {r.digest() for r in results}
    digest_shuffled = allocate(shuffled(p, args.seed), seed=args.seed).digest()
    digest_other_seed = allocate(p, seed=args.seed + 1).digest()

    selected_ids = p.household_ids[ours.selected]
    duplicates = int(selected_ids.size - np.unique(selected_ids).size)
    per_zone = np.bincount(p.zone_of[ours.selected], minlength=p.n_zones)
    over_stock = int(np.maximum(per_zone - p.stock, 0).sum())
    unused = int((p.packages - per_zone).sum())
    best_worst, t_wf = timed(water_filling_worst, p, bound.t_star)

    obj_ratio = ours.objective / bound.objective
    worst_ratio = ours.min_coverage / bound.t_star
    time_ratio = t_ours / t_lp
    identical = len(digests) == 1 and digest_shuffled in digests

    print(
        f"LP: stage 2 has {bound.columns:,} columns (block x priority level) x {bound.rows:,} rows; "
        f"HiGHS t* = {bound.t_star:.6f} (exact {ours.t_star_exact})"
    )
    print()
    print(f"{'':44}{'time s':>8}{'vs LP':>8}{'objective':>16}{'vs LP':>9}{'worst block':>13}{'vs LP t*':>10}")
    rows = [
        ("two-stage LP bound (HiGHS)", t_lp, bound.objective, bound.t_star),
        ("ours: allocate (LP + whole packages)", t_ours, ours.objective, ours.min_coverage),
        ("ours without the stage-2 bound (bound=False)", t_lean, lean.objective, lean.min_coverage),
        ('greedy "most vulnerable first"', t_greedy, plan.objective, plan.min_coverage),
    ]
    for name, seconds, objective, worst in rows:
        print(
            f"{name:44}{seconds:8.3f}{seconds / t_lp:7.2f}x{objective:16,.1f}{objective / bound.objective:9.4f}"
            f"{worst:13.4f}{worst / bound.t_star:10.4f}"
        )
    print(
        f"{'best whole-package worst block (water-filling)':44}{t_wf:8.3f}{'':8}{'':16}{'':9}"
        f"{best_worst:13.4f}{best_worst / bound.t_star:10.4f}"
    )
    print()
    print("targets")
    print(f"  objective >= 0.995 of the LP bound ............ {obj_ratio:.4f}  {mark(obj_ratio >= 0.995)}")
    print(
        f"  worst block >= 0.99 of the LP's max-min t* ..... {worst_ratio:.4f}  {mark(worst_ratio >= 0.99)}"
    )
    print(
        f"     (whole packages: the best any plan can reach is {best_worst / bound.t_star:.4f} of t*; "
        f"ours is {ours.min_coverage / best_worst:.4f} of that)"
    )
    print(f"  time <= 2x the LP pipeline ..................... {time_ratio:.2f}x  {mark(time_ratio <= 2.0)}")
    print(f"  duplicates = 0 ................................. {duplicates}  {mark(duplicates == 0)}")
    print(
        f"  stock respected: over {over_stock}, unused {unused} ..... {mark(over_stock == 0 and unused == 0)}"
    )
    print(
        f"  byte-identical re-run ({len(results)} runs, with and without the bound, + households shuffled): "
        f"{mark(identical)}  {results[0].digest()[:16]}…"
    )
    print(f"  (another seed gives another digest: {mark(digest_other_seed not in digests)})")
    print(
        f"  greedy worst block {plan.min_coverage:.4f} vs ours {ours.min_coverage:.4f} "
        f"(anchor: greedy 0.10 vs max-min 0.40)"
    )
    print(
        f"times (s): LP {', '.join(f'{x:.3f}' for x in lp_times)}; ours {', '.join(f'{x:.3f}' for x in our_times)}"
        f"; bound=False {', '.join(f'{x:.3f}' for x in lean_times)}"
    )
    print(
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"
    )

    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    record = {
        "households": p.n_households,
        "blocks": p.n_blocks,
        "zones": p.n_zones,
        "seed": args.seed,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "lp": {
            "seconds": t_lp,
            "t_star": bound.t_star,
            "objective": bound.objective,
            "columns": bound.columns,
        },
        "ours": {
            "seconds": t_ours,
            "objective": ours.objective,
            "min_coverage": ours.min_coverage,
            "digest": ours.digest(),
            "seconds_without_bound": t_lean,
        },
        "greedy": {"seconds": t_greedy, "objective": plan.objective, "min_coverage": plan.min_coverage},
        "best_whole_package_min_coverage": best_worst,
        "ratios": {"objective": obj_ratio, "worst_block": worst_ratio, "time": time_ratio},
        "duplicates": duplicates,
        "byte_identical": identical,
    }
    (out / "aid_allocation.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
