import datetime as dt
from collections import Counter

from redes.core.curp import is_valid_curp, parse_curp
from redes.registry.synthetic import CORRUPTIONS, build_curp, generate_population
from redes.registry.text import fold


def test_deterministic_for_a_seed():
    a = generate_population(800, seed=7)
    b = generate_population(800, seed=7)
    assert a.records == b.records
    assert a.true_pairs == b.true_pairs
    assert generate_population(800, seed=8).records != a.records


def test_counts_and_ground_truth():
    pop = generate_population(2000, seed=3, dup_rate=0.05)
    ids = [r.id for r in pop.records]
    assert len(ids) == len(set(ids)) == 2000 + 100
    assert len(pop.true_pairs) == 100
    originals = {r.id for r in pop.records[:2000]}
    for a, b in pop.true_pairs:
        assert a in originals and b not in originals
        assert pop.corruptions[b]
        assert set(pop.corruptions[b]) <= set(CORRUPTIONS)


def test_originals_have_valid_curps_matching_their_data():
    pop = generate_population(2000, seed=4)
    with_curp = [r for r in pop.records[:2000] if r.curp]
    assert 0.4 < len(with_curp) / 2000 < 0.8
    for r in with_curp:
        info = parse_curp(r.curp)  # raises if the structure or the check digit is wrong
        if r.birth_date is not None:
            assert info.birth_date == r.birth_date
        assert info.sex == r.sex
    assert len({r.curp[:17] for r in with_curp}) == len(with_curp)  # twins get different differentiators


def test_households_share_address_and_surnames():
    pop = generate_population(3000, seed=5)
    by_household = {}
    for r in pop.records[:3000]:
        by_household.setdefault(r.household, []).append(r)
    multi = [m for m in by_household.values() if len(m) >= 3]
    assert multi
    for members in multi:
        assert len({m.address for m in members}) == 1
        surnames = Counter(fold(s) for m in members for s in (m.surname1, m.surname2) if s)
        assert surnames.most_common(1)[0][1] >= 2
        # no two members share the full given name
        assert len({m.given for m in members}) == len(members)


def test_names_are_mexican_with_accents_enye_and_compounds():
    pop = generate_population(5000, seed=6)
    surnames = {r.surname1 for r in pop.records} | {r.surname2 for r in pop.records}
    assert any(s.startswith(("de la ", "del ", "de los ")) for s in surnames)
    assert any("ñ" in s for s in surnames)
    assert any(ch in "áéíóú" for s in surnames for ch in s)
    assert any(" " in r.given for r in pop.records)
    assert any(r.birth_date is None and r.birth_year for r in pop.records)


def test_corruptions_are_applied():
    pop = generate_population(6000, seed=9, dup_rate=0.1)
    by_id = {r.id: r for r in pop.records}
    seen = Counter()
    for a, b in pop.true_pairs:
        orig, dup = by_id[a], by_id[b]
        for kind in pop.corruptions[b]:
            seen[kind] += 1
            if kind == "age_only" and orig.birth_date is not None:
                assert dup.birth_date is None and dup.birth_year in (
                    orig.birth_date.year,
                    orig.birth_date.year + 1,
                )
            if kind == "curp_check_digit" and orig.curp and dup.curp:
                assert dup.curp[:17] == orig.curp[:17] and not is_valid_curp(dup.curp)
    assert set(seen) == set(CORRUPTIONS)


def test_build_curp_skips_particles_and_maria():
    curp = build_curp("María José", "de la Cruz", "Núñez", dt.date(1990, 5, 17), "M", "GR", "0")
    assert curp.startswith("CUNJ900517MGR")
    assert is_valid_curp(curp)
