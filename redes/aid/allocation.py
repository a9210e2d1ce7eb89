"""Fair allocation of scarce aid packages across blocks (issue 5): max-min coverage first, then priority.

Pure numpy + HiGHS (``highspy``); no Django, so services and the benchmark call the same code.

The problem. Every eligible household lives in one block; every block belongs to one zone (the area a site
serves); every zone has a stock of whole packages. A household gets at most one package.

The two-stage LP (``lp_bound``), solved with HiGHS:

1. maximise t, the minimum over blocks of coverage (served / eligible households), subject to each zone's stock
   (blocks of a zone without any package are left out: nothing can reach them whatever the plan, and counting
   them would make t = 0 and void the guarantee everywhere else);
2. with t held at that value t* (within a relative 1e-9), maximise the priority-weighted coverage
   Σ priority × served. Households are aggregated per (block, priority level), so the LP has one column per
   segment, not per household; the levels inside a block's max-min share are constants (an optimum fills a
   block from its highest priority down), so 500k households over 13k blocks give ~180k columns.

Whole packages (``allocate``). The LP optimum has a known shape (a block's top households up to its share, then
the zone's remaining stock to the highest priorities of the zone), so the rounding rebuilds that shape in integers
instead of rounding the LP's columns (which are degenerate, and would tie the result to the solver's path):

* each block's share is ceil(t* × eligible); where a zone cannot afford those ceilings (the scarcest zone, where
  Σ t* × eligible is exactly its stock), the zone's shares come from the best whole-package max-min instead
  (the largest t with Σ ceil(t × eligible) ≤ stock), so no plan in whole packages has a better worst block;
* the share goes to the block's households by priority (highest first);
* the zone's remaining packages go to its remaining households by priority, zone-wide;
* equal priorities are ordered by a seeded lottery: numpy's PCG64(seed) deals one draw per household in the
  order of the sorted household ids, so the draw does not depend on the input order.

Every decision uses integers and exact fractions (the LP's t* is snapped to the fraction it must equal and
checked), so the same inputs and seed give a byte-identical result on any platform; ``Result.digest()`` hashes a
canonical serialisation of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import threading
import time
from fractions import Fraction
from functools import cached_property

import numpy as np

# The reason codes, in a fixed order (their index is part of the digest).
REASONS = (
    "selected_all",  # the zone's stock covers every eligible household of the zone
    "selected_maxmin",  # within the block's fair share (max-min stage), by priority inside the block
    "selected_priority",  # the zone's remaining packages, by priority across the zone
    "lottery_won",  # selected at a tie: others with the same priority competed for the same packages and lost
    "lottery_lost",  # not selected at a tie: a household with the same priority won the lottery
    "not_reached",  # the packages ran out before this priority level
    "no_stock",  # the zone has no packages
)
SELECTED_REASONS = frozenset(REASONS[:4])
_CODE = {name: i for i, name in enumerate(REASONS)}
HOLD_TOLERANCE = 1e-9  # stage 2 holds t >= t* × (1 - HOLD_TOLERANCE)
LP_AGREEMENT = 1e-6  # how far the LP's t* may be from the exact fraction before we refuse
DIGEST_VERSION = "redes-aid-allocation/1"


class AllocationError(ValueError):
    """Bad input, or a solver answer that cannot be trusted."""


# ------------------------------------------------------------------------------------------------ problem


def _int_array(values, name: str, *, size: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise AllocationError(f"{name} must be one-dimensional")
    if arr.size and arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise AllocationError(f"{name} must hold whole numbers")
    elif arr.size and arr.dtype.kind not in "iub":
        raise AllocationError(f"{name} must hold whole numbers")
    arr = arr.astype(np.int64)
    if size is not None and arr.size != size:
        raise AllocationError(f"{name} has {arr.size} entries, expected {size}")
    if arr.size and arr.min() < 0:
        raise AllocationError(f"{name} must not be negative")
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """One allocation problem. Arrays are per household, except ``zone_of_block`` (per block) and ``stock``
    (per zone). Indices are 0-based positions in those arrays; ``household_ids`` are stable ids (ints or
    strings such as UUIDs), unique, used for the lottery order and the digest."""

    block_of: np.ndarray
    zone_of_block: np.ndarray
    priority: np.ndarray
    stock: np.ndarray
    household_ids: np.ndarray

    def __post_init__(self):
        stock = _int_array(self.stock, "stock")
        zone_of_block = _int_array(self.zone_of_block, "zone_of_block")
        if zone_of_block.size and zone_of_block.max() >= stock.size:
            raise AllocationError("zone_of_block refers to a zone without stock")
        block_of = _int_array(self.block_of, "block_of")
        n = block_of.size
        if n and block_of.max() >= zone_of_block.size:
            raise AllocationError("block_of refers to a block without a zone")
        priority = np.asarray(self.priority, dtype=np.float64)
        if priority.shape != (n,):
            raise AllocationError(f"priority has {priority.size} entries, expected {n}")
        if n and (not np.all(np.isfinite(priority)) or priority.min() < 0):
            raise AllocationError("priority must be finite and not negative")
        ids = np.asarray(self.household_ids)
        if ids.shape != (n,):
            raise AllocationError(f"household_ids has {ids.size} entries, expected {n}")
        if n and ids.dtype.kind in "iu":
            ids = ids.astype(np.int64)
        elif n:
            ids = np.array([str(v) for v in ids.tolist()], dtype=str)
        else:
            ids = np.zeros(0, dtype=np.int64)
        if n and np.unique(ids).size != n:
            raise AllocationError("household_ids must be unique")
        for name, value in (
            ("block_of", block_of),
            ("zone_of_block", zone_of_block),
            ("priority", priority + 0.0),  # +0.0 turns -0.0 into 0.0
            ("stock", stock),
            ("household_ids", ids),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_households(self) -> int:
        return int(self.block_of.size)

    @property
    def n_blocks(self) -> int:
        return int(self.zone_of_block.size)

    @property
    def n_zones(self) -> int:
        return int(self.stock.size)

    @cached_property
    def block_size(self) -> np.ndarray:
        """Eligible households per block."""
        return np.bincount(self.block_of, minlength=self.n_blocks).astype(np.int64)

    @cached_property
    def zone_of(self) -> np.ndarray:
        """Zone per household."""
        return self.zone_of_block[self.block_of]

    @cached_property
    def zone_size(self) -> np.ndarray:
        """Eligible households per zone."""
        return np.bincount(self.zone_of, minlength=self.n_zones).astype(np.int64)

    @cached_property
    def packages(self) -> np.ndarray:
        """Packages a zone can hand out: its stock, at most one per eligible household."""
        return np.minimum(self.stock, self.zone_size)

    @cached_property
    def level(self) -> np.ndarray:
        """Priority level per household: 0 for the highest priority, 1 for the next, ... (dense rank)."""
        values, inverse = np.unique(self.priority, return_inverse=True)
        return (values.size - 1 - inverse).astype(np.int64)

    @cached_property
    def active_zone(self) -> np.ndarray:
        """Zones in the max-min: with households and at least one package. A zone without packages cannot
        serve anyone whatever the plan; counting its blocks would make the max-min 0 and void the guarantee
        in every other zone."""
        return (self.zone_size > 0) & (self.packages > 0)

    @cached_property
    def active_block(self) -> np.ndarray:
        """Blocks in the max-min: with households, in an active zone."""
        return (self.block_size > 0) & self.active_zone[self.zone_of_block]

    @cached_property
    def exact_t_star(self) -> Fraction:
        """The max-min coverage as an exact fraction: blocks of a zone share only that zone's stock, so the
        LP optimum is the smallest packages/households over active zones (1 when every zone has enough; 0 when
        there are households but no zone has a package)."""
        active = np.flatnonzero(self.active_zone)
        if not active.size:
            return Fraction(0 if self.n_households else 1)
        ratios = zip(self.packages[active].tolist(), self.zone_size[active].tolist(), strict=True)
        return min([Fraction(1)] + [Fraction(k, n) for k, n in ratios])


# ------------------------------------------------------------------------------------------------ LP


@dataclasses.dataclass(frozen=True)
class LpBound:
    """The two-stage LP optimum: ``t_star`` (max-min coverage) and ``objective`` (priority-weighted coverage
    with t* held); ``columns``/``rows`` of the stage-2 model; ``seconds`` of the whole pipeline (build and both
    solves); ``block_served`` (fractional households served per block, only when asked for)."""

    t_star: float
    objective: float
    columns: int
    rows: int
    seconds: float
    block_served: np.ndarray | None = None


_banner_lock = threading.Lock()
_banner_shown = False


def _new_highs(highspy):
    """A HiGHS instance. The first one in a process prints a copyright banner on the C stdout that no option
    turns off; it is sent to /dev/null so that ``redes demo`` and the CLI print only their own lines."""
    global _banner_shown
    if _banner_shown:
        return highspy.Highs()
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_shown = True
        return h


def _highs(*, presolve: bool = True):
    import highspy

    h = _new_highs(highspy)
    h.setOptionValue("output_flag", False)
    if not presolve:
        h.setOptionValue("presolve", "off")
    return h, highspy


def _run(h, highspy, stage: str):
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise AllocationError(f"HiGHS did not find the {stage} optimum: {h.modelStatusToString(status)}")
    return h.getInfo().objective_function_value


def _model(highspy, cost, upper, row_of_col, row_lower, row_upper, values=None, extra=None):
    """A maximisation LP whose columns each have two entries (rows ``row_of_col`` and ``values``, both of shape
    (2, ncols); values 1 by default), plus an optional extra column given as (cost, lower, upper, rows, values)."""
    lp = highspy.HighsLp()
    ncol = cost.size
    starts = np.arange(0, 2 * ncol + 1, 2, dtype=np.int32)
    index = row_of_col.T.reshape(-1).astype(np.int32)
    values = np.ones(2 * ncol) if values is None else values.T.reshape(-1).astype(np.float64)
    lower = np.zeros(ncol)
    if extra is not None:
        e_cost, e_lower, e_upper, e_rows, e_values = extra
        cost = np.append(cost, e_cost)
        lower = np.append(lower, e_lower)
        upper = np.append(upper, e_upper)
        index = np.concatenate([index, e_rows.astype(np.int32)])
        values = np.concatenate([values, e_values])
        starts = np.append(starts, starts[-1] + e_rows.size).astype(np.int32)
    lp.num_col_ = cost.size
    lp.num_row_ = row_lower.size
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = cost.size
    lp.a_matrix_.num_row_ = row_lower.size
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = values
    return lp


def lp_bound(problem: Problem, *, block_served: bool = False) -> LpBound:
    """Solve the two-stage LP with HiGHS (see the module docstring)."""
    started = time.perf_counter()
    p = problem
    if not p.active_block.any():
        empty = np.zeros(p.n_blocks) if block_served else None
        return LpBound(float(p.exact_t_star), 0.0, 0, 0, time.perf_counter() - started, empty)
    # Rows: one per block in the max-min (non-empty, its zone has packages), then one per such zone.
    sizes = p.block_size
    blocks = np.flatnonzero(p.active_block)
    zones = np.flatnonzero(p.active_zone)
    block_row = np.full(p.n_blocks, -1, dtype=np.int64)
    block_row[blocks] = np.arange(blocks.size)
    zone_row = np.full(p.n_zones, -1, dtype=np.int64)
    zone_row[zones] = blocks.size + np.arange(zones.size)
    nrow = blocks.size + zones.size
    inf = float("inf")
    packages = p.packages[zones].astype(np.float64)

    # Stage 1 (max-min), see _max_min_lp.
    t_lp = _max_min_lp(p)
    t_star = _snap_t(p, t_lp)

    # Stage 2: one column per (block, priority level), bounded by its household count, cost = priority;
    # rows Σ_level y >= t* n_b (1 - tol) per block, Σ_zone y <= K per zone. Presolved by hand: the columns of a
    # block are parallel (same two rows) with distinct costs, so an optimum fills them from the highest
    # priority down; the levels that lie wholly within the first floor(t* n_b) households are therefore at
    # their bound in every optimum and enter as constants (about half of the columns).
    order = _order(p.block_of, p.level)
    b_sorted = p.block_of[order]
    pr_sorted = p.priority[order]
    cut = np.flatnonzero(np.r_[True, (b_sorted[1:] != b_sorted[:-1]) | (pr_sorted[1:] != pr_sorted[:-1])])
    seg_block = b_sorted[cut]
    seg_priority = pr_sorted[cut]
    seg_count = np.diff(np.r_[cut, b_sorted.size])
    hold = float(t_star) * (1.0 - HOLD_TOLERANCE)
    need = hold * sizes * p.active_block
    through = np.r_[cut[1:], b_sorted.size] - _starts(sizes)[seg_block]  # households down to this level
    fixed = through <= np.floor(need[seg_block])
    fixed_block = np.bincount(seg_block[fixed], weights=seg_count[fixed], minlength=p.n_blocks)
    fixed_zone = np.bincount(p.zone_of_block, weights=fixed_block, minlength=p.n_zones)
    constant = math.fsum((seg_priority[fixed] * seg_count[fixed]).tolist())
    free = ~fixed & p.active_block[seg_block]
    seg_block, seg_priority, seg_count = seg_block[free], seg_priority[free], seg_count[free]
    rows2 = np.vstack([block_row[seg_block], zone_row[p.zone_of_block[seg_block]]])
    h, highspy = _highs(presolve=False)  # HiGHS' presolve finds little here and costs ~40% of the time
    lp2 = _model(
        highspy,
        seg_priority,
        seg_count.astype(np.float64),
        rows2,
        np.concatenate([np.maximum(need[blocks] - fixed_block[blocks], 0.0), np.full(zones.size, -inf)]),
        np.concatenate([np.full(blocks.size, inf), packages - fixed_zone[zones]]),
    )
    h.passModel(lp2)
    objective = constant + _run(h, highspy, "priority")
    served = None
    if block_served:
        values = np.asarray(h.getSolution().col_value)
        served = fixed_block + np.bincount(seg_block, weights=values, minlength=p.n_blocks)
    return LpBound(
        t_star=t_lp,
        objective=objective,
        columns=int(seg_block.size),
        rows=int(nrow),
        seconds=time.perf_counter() - started,
        block_served=served,
    )


def _snap_t(problem: Problem, t_lp: float) -> Fraction:
    """The exact fraction the LP's max-min value stands for; refuse if the solver disagrees with it."""
    exact = problem.exact_t_star
    if abs(float(exact) - t_lp) > LP_AGREEMENT:
        raise AllocationError(f"HiGHS max-min value {t_lp!r} disagrees with the exact value {exact}")
    return exact


# ------------------------------------------------------------------------------------------------ rounding


def _ceil_shares(sizes: np.ndarray, t: Fraction) -> np.ndarray:
    """ceil(t × size) per block, in exact integer arithmetic."""
    num, den = t.numerator, t.denominator
    return (num * sizes + den - 1) // den


def _zone_shares(sizes: np.ndarray, packages: int, t: Fraction) -> tuple[np.ndarray, Fraction]:
    """Block shares of one zone: ceil(t × n_b) if the zone affords them, otherwise the best whole-package
    max-min: the largest coverage c = k/m (m a block size of the zone) with Σ ceil(c × n_b) <= packages."""
    shares = _ceil_shares(sizes, t)
    if int(shares.sum()) <= packages:
        return shares, t
    present = sizes[sizes > 0]
    dens = np.unique(present)
    num = np.concatenate([np.arange(m + 1) for m in dens.tolist()])
    den = np.concatenate([np.full(m + 1, m) for m in dens.tolist()])
    order = np.argsort(num / den, kind="stable")
    num, den = num[order], den[order]
    lo, hi = 0, num.size - 1  # candidate 0 (coverage 0) always fits; the top one (1) does not, here
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if int(((num[mid] * present + den[mid] - 1) // den[mid]).sum()) <= packages:
            lo = mid
        else:
            hi = mid
    held = Fraction(int(num[lo]), int(den[lo]))
    held = min(held, t)
    return _ceil_shares(sizes, held), held


@dataclasses.dataclass(frozen=True, eq=False)
class Result:
    """An allocation in whole packages. Per household: ``selected``, ``reason_code`` (index into REASONS),
    ``rank`` (1-based place in the zone's service order: selected iff rank <= the zone's packages),
    ``lottery`` (the household's lottery number, lower wins among equal priorities). Per block: ``share``
    (packages held for it by the max-min stage), ``served``, ``coverage`` (served / eligible, NaN for a block
    without households). Per zone: ``held`` (the coverage its shares guarantee, an exact fraction),
    ``threshold`` (priority of the last household served by priority, NaN if none)."""

    problem: Problem
    seed: int
    selected: np.ndarray
    reason_code: np.ndarray
    rank: np.ndarray
    lottery: np.ndarray
    share: np.ndarray
    served: np.ndarray
    coverage: np.ndarray
    held: tuple[Fraction, ...]
    threshold: np.ndarray
    t_star: float  # the LP's max-min coverage (the exact fraction it equals: t_star_exact)
    t_star_exact: Fraction
    min_coverage: float  # the worst coverage in whole packages over the blocks in the max-min
    objective: float  # Σ priority over selected households
    lp: LpBound | None  # the two-stage LP bound, when computed

    @property
    def reason(self) -> np.ndarray:
        return np.asarray(REASONS)[self.reason_code]

    @property
    def lp_objective(self) -> float | None:
        return self.lp.objective if self.lp else None

    @cached_property
    def _plain(self) -> dict:
        """Plain Python lists for ``explain`` (one conversion, then list lookups: fast over 500k calls)."""
        p = self.problem

        def number(v: float):
            return int(v) if float(v).is_integer() else v

        return {
            "block_of": p.block_of.tolist(),
            "zone_of_block": p.zone_of_block.tolist(),
            "priority": [number(v) for v in p.priority.tolist()],
            "rank": self.rank.tolist(),
            "lottery": self.lottery.tolist(),
            "code": [REASONS[c] for c in self.reason_code.tolist()],
            "block_households": p.block_size.tolist(),
            "block_share": self.share.tolist(),
            "block_served": self.served.tolist(),
            "block_coverage": [None if math.isnan(v) else round(v, 4) for v in self.coverage.tolist()],
            "zone_households": p.zone_size.tolist(),
            "zone_packages": p.packages.tolist(),
            "zone_threshold": [None if math.isnan(v) else number(v) for v in self.threshold.tolist()],
            "held": [round(float(h), 4) for h in self.held],
            "max_min": round(float(self.t_star_exact), 4),
        }

    def explain(self, i: int) -> tuple[str, dict]:
        """Why household ``i`` (a position in the problem's arrays) was or was not selected: the reason code
        and the numbers behind it (plain JSON types)."""
        c = self._plain
        i = int(i)
        b = c["block_of"][i]
        z = c["zone_of_block"][b]
        data = {
            "priority": c["priority"][i],
            "rank": c["rank"][i],
            "lottery": c["lottery"][i],
            "block_households": c["block_households"][b],
            "block_share": c["block_share"][b],
            "block_served": c["block_served"][b],
            "block_coverage": c["block_coverage"][b],
            "zone_households": c["zone_households"][z],
            "zone_packages": c["zone_packages"][z],
            "zone_threshold": c["zone_threshold"][z],
            "max_min": c["max_min"],
            "held": c["held"][z],
        }
        return c["code"][i], data

    def digest(self) -> str:
        """sha256 of a canonical serialisation: households in sorted-id order with their id, selection,
        reason and rank, plus the seed and the exact max-min value. Independent of the input order."""
        p = self.problem
        canon = np.argsort(p.household_ids, kind="stable")
        header = {
            "version": DIGEST_VERSION,
            "reasons": list(REASONS),
            "seed": int(self.seed),
            "households": p.n_households,
            "t_star": f"{self.t_star_exact.numerator}/{self.t_star_exact.denominator}",
            "ids": "int" if p.household_ids.dtype.kind == "i" else "str",
        }
        h = hashlib.sha256()
        h.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
        h.update(b"\n")
        ids = p.household_ids[canon]
        if ids.dtype.kind == "i":
            h.update(ids.astype("<i8").tobytes())
        else:
            h.update("\n".join(ids.tolist()).encode("utf-8"))
        h.update(b"\n")
        h.update(self.selected[canon].astype("u1").tobytes())
        h.update(self.reason_code[canon].astype("u1").tobytes())
        h.update(self.rank[canon].astype("<i8").tobytes())
        return h.hexdigest()


def _lottery(problem: Problem, seed: int) -> np.ndarray:
    """A lottery number per household (0 = first drawn; lower wins among equal priorities): the seeded PCG64
    stream deals one 64-bit draw per household in sorted-id order, and the numbers are the order of the draws.
    The raw PCG64 stream is the part numpy keeps identical across versions and platforms (NEP 19), unlike the
    Generator's derived methods, so the lottery is reproducible wherever the seed is replayed."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise AllocationError("seed must be a non-negative integer")
    n = problem.n_households
    canon = np.argsort(problem.household_ids, kind="stable")
    draws = np.random.PCG64(int(seed)).random_raw(n) if n else np.zeros(0, dtype=np.uint64)
    lottery = np.empty(n, dtype=np.int64)
    order = np.argsort(draws)
    if n > 1 and not np.all(np.diff(draws[order]) > 0):  # equal 64-bit draws (~never): sorted-id order
        order = np.argsort(draws, kind="stable")
    lottery[canon[order]] = np.arange(n)
    return lottery


def _worst(coverage: np.ndarray, problem: Problem) -> float:
    """The worst coverage over the blocks in the max-min (0 if there are households but no packages anywhere,
    1 if there are no households)."""
    active = problem.active_block
    if active.any():
        return float(coverage[active].min())
    return 0.0 if problem.n_households else 1.0


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def _order(*keys: np.ndarray) -> np.ndarray:
    """Indices sorting by ``keys`` (non-negative ints; the first is the primary key), like
    ``np.lexsort(keys[::-1])``: one argsort of a packed int64 key when the keys fit in 62 bits. Not stable:
    callers either end with a unique key (the lottery) or only use the grouping."""
    widths = [max(int(k.max()) if k.size else 0, 0).bit_length() for k in keys]
    if sum(widths) > 62:
        return np.lexsort(keys[::-1])
    packed = np.zeros(keys[0].size, dtype=np.int64)
    for key, width in zip(keys, widths, strict=True):
        packed = (packed << width) | key.astype(np.int64)
    return np.argsort(packed)


def allocate(problem: Problem, seed: int, *, bound: bool = True) -> Result:
    """The fair allocation in whole packages (see the module docstring). ``bound=False`` skips the stage-2 LP
    (the allocation does not depend on it; the max-min stage always runs in HiGHS)."""
    p = problem
    n = p.n_households
    lottery = _lottery(p, seed)
    if bound:
        lp = lp_bound(p)
        t_exact = _snap_t(p, lp.t_star)
        t_lp = lp.t_star
    else:
        lp = None
        t_lp = _max_min_lp(p)
        t_exact = _snap_t(p, t_lp)

    # Shares per block (max-min stage), zone by zone when a zone cannot afford ceil(t* n_b).
    sizes = p.block_size
    share = _ceil_shares(sizes, t_exact) * p.active_block
    held = [t_exact if active else Fraction(0) for active in p.active_zone.tolist()]
    need = np.bincount(p.zone_of_block, weights=share, minlength=p.n_zones)
    short = np.flatnonzero(need > p.packages)
    if short.size:
        blocks_by_zone = np.argsort(p.zone_of_block, kind="stable")
        counts = np.bincount(p.zone_of_block, minlength=p.n_zones)
        first = _starts(counts)
        for z in short.tolist():
            blocks = blocks_by_zone[first[z] : first[z] + counts[z]]
            share[blocks], held[z] = _zone_shares(sizes[blocks], int(p.packages[z]), t_exact)

    # Inside each block: priority (highest first), then lottery. The first `share` households are held.
    level = p.level
    by_block = _order(p.block_of, level, lottery)
    block_start = _starts(sizes)
    pos = np.empty(n, dtype=np.int64)
    pos[by_block] = np.arange(n) - block_start[p.block_of[by_block]]
    in_share = pos < share[p.block_of]

    # Zone service order: shares first, then the rest by priority and lottery; the first `packages` are served.
    zone_of = p.zone_of
    by_zone = _order(zone_of, (~in_share).astype(np.int64), level, lottery)
    zone_start = _starts(p.zone_size)
    rank = np.empty(n, dtype=np.int64)
    rank[by_zone] = np.arange(n) - zone_start[zone_of[by_zone]] + 1
    packages = p.packages
    selected = rank <= packages[zone_of]

    # Tie levels: the block's last held household, the zone's last household served by priority.
    last_share = np.full(p.n_blocks, np.nan)
    has_share = np.flatnonzero(share > 0)
    last_share[has_share] = p.priority[by_block[block_start[has_share] + share[has_share] - 1]]
    rest = packages - np.bincount(zone_of, weights=in_share, minlength=p.n_zones).astype(np.int64)
    threshold = np.full(p.n_zones, np.nan)
    by_rest = np.flatnonzero(rest > 0)
    threshold[by_rest] = p.priority[by_zone[zone_start[by_rest] + packages[by_rest] - 1]]

    tie_block = p.priority == last_share[p.block_of]
    tie_zone = (p.priority == threshold[zone_of]) & ~in_share
    lost_block = ~selected & tie_block
    lost_zone = ~selected & tie_zone
    block_lost = np.bincount(p.block_of[lost_block], minlength=p.n_blocks) > 0
    zone_lost = np.bincount(zone_of[lost_zone], minlength=p.n_zones) > 0

    code = np.full(n, _CODE["not_reached"], dtype=np.uint8)
    code[selected & ~in_share] = _CODE["selected_priority"]
    code[in_share] = _CODE["selected_maxmin"]
    code[in_share & tie_block & block_lost[p.block_of]] = _CODE["lottery_won"]
    code[selected & tie_zone & zone_lost[zone_of]] = _CODE["lottery_won"]
    code[lost_block | lost_zone] = _CODE["lottery_lost"]
    everyone = (packages == p.zone_size)[zone_of]
    code[everyone] = _CODE["selected_all"]
    code[(packages == 0)[zone_of]] = _CODE["no_stock"]

    served = np.bincount(p.block_of[selected], minlength=p.n_blocks).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(sizes > 0, served / np.maximum(sizes, 1), np.nan)
    min_coverage = _worst(coverage, p)
    for arr in (selected, code, rank, lottery, share, served, coverage, threshold):
        arr.setflags(write=False)
    return Result(
        problem=p,
        seed=int(seed),
        selected=selected,
        reason_code=code,
        rank=rank,
        lottery=lottery,
        share=share,
        served=served,
        coverage=coverage,
        held=tuple(held),
        threshold=threshold,
        t_star=t_lp,
        t_star_exact=t_exact,
        min_coverage=min_coverage,
        objective=math.fsum(p.priority[selected].tolist()),
        lp=lp,
    )


def _max_min_lp(problem: Problem) -> float:
    """Stage 1: maximise t, the minimum block coverage. Each block's coverage is written t + s_b (s_b >= 0, its
    surplus over the minimum), so that the LP starts feasible at t = 0 and HiGHS needs a few pivots, not one per
    block: columns s_b (0..1) per block in the max-min and t (0..1); rows t + s_b <= 1 per block and
    N_z t + Σ_zone n_b s_b <= packages per zone."""
    p = problem
    if not p.active_block.any():
        return float(p.exact_t_star)
    sizes = p.block_size
    blocks = np.flatnonzero(p.active_block)
    zones = np.flatnonzero(p.active_zone)
    zone_row = np.full(p.n_zones, -1, dtype=np.int64)
    zone_row[zones] = blocks.size + np.arange(zones.size)
    h, highspy = _highs(presolve=False)  # a few pivots from the slack basis; presolve would cost more
    inf = float("inf")
    lp = _model(
        highspy,
        np.zeros(blocks.size),
        np.ones(blocks.size),
        np.vstack([np.arange(blocks.size), zone_row[p.zone_of_block[blocks]]]),
        np.full(blocks.size + zones.size, -inf),
        np.concatenate([np.ones(blocks.size), p.packages[zones].astype(np.float64)]),
        values=np.vstack([np.ones(blocks.size), sizes[blocks].astype(np.float64)]),
        extra=(
            1.0,
            0.0,
            1.0,
            np.arange(blocks.size + zones.size),
            np.concatenate([np.ones(blocks.size), p.zone_size[zones].astype(np.float64)]),
        ),
    )
    h.passModel(lp)
    return _run(h, highspy, "max-min")


# ------------------------------------------------------------------------------------------------ greedy


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A baseline plan: ``selected`` per household, ``coverage`` per block, the worst block, the objective."""

    selected: np.ndarray
    coverage: np.ndarray
    min_coverage: float
    objective: float


def greedy(problem: Problem, seed: int = 0) -> Plan:
    """ "Most vulnerable first": each zone's packages go to its highest priorities, blocks ignored (ties by the
    same seeded lottery)."""
    p = problem
    lottery = _lottery(p, seed)
    zone_of = p.zone_of
    by_zone = _order(zone_of, p.level, lottery)
    rank = np.empty(p.n_households, dtype=np.int64)
    rank[by_zone] = np.arange(p.n_households) - _starts(p.zone_size)[zone_of[by_zone]] + 1
    selected = rank <= p.packages[zone_of]
    sizes = p.block_size
    served = np.bincount(p.block_of[selected], minlength=p.n_blocks)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(sizes > 0, served / np.maximum(sizes, 1), np.nan)
    return Plan(
        selected=selected,
        coverage=coverage,
        min_coverage=_worst(coverage, p),
        objective=math.fsum(p.priority[selected].tolist()),
    )
