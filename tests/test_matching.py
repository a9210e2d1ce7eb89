import datetime as dt

import pytest

from redes.core.curp import curp_check_digit
from redes.registry.matching import (
    POSSIBLE,
    PROBABLE,
    BlockIndex,
    MatchRecord,
    address_key,
    blocking_keys,
    candidates_for,
    estimate_weights,
    find_duplicates,
    given_keys,
    name_frequencies,
    phonetic,
    score_candidates,
    split_full_name,
    surname_keys,
)
from redes.registry.synthetic import generate_population

ADDRESS = address_key("Calle Hidalgo", "12", "39300")


def person(id, given="María José", s1="de la Cruz", s2="Hernández", birth=dt.date(1990, 5, 17), **kw):
    kw.setdefault("sex", "M")
    kw.setdefault("address", ADDRESS)
    kw.setdefault("phone", "+527441234567")
    return MatchRecord(id=id, given=given, surname1=s1, surname2=s2, birth_date=birth, **kw)


def score(a, b, **kw):
    pairs = score_candidates(a, [b], threshold=0.0, **kw)
    assert len(pairs) == 1
    return pairs[0]


# ---------------------------------------------------------------- normalisation


def test_compound_surname_keys():
    assert surname_keys("de la Cruz") == ("delacruz", "cruz")
    assert surname_keys("De La Cruz")[0] == surname_keys("Delacruz")[0]
    assert surname_keys("del Río") == ("delrio", "rio")
    assert surname_keys("de los Santos")[1] == "santos"
    assert surname_keys("Hernández") == ("hernandez", "hernandez")


def test_given_keys_skip_particles():
    assert given_keys("María de los Ángeles") == ("maria de los angeles", "maria")


def test_phonetic_groups_spelling_variants():
    assert phonetic("hernandez") == phonetic("ernandes")
    assert phonetic("vazquez") == phonetic("basques")
    assert phonetic("gonzalez") != phonetic("gomez")


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("María José de la Cruz Hernández", ("María José", "de la Cruz", "Hernández")),
        ("Juan Pérez López", ("Juan", "Pérez", "López")),
        ("María de los Ángeles García del Río", ("María de los Ángeles", "García", "del Río")),
        ("Ana López", ("Ana", "López", "")),
        ("Ana", ("Ana", "", "")),
        ("  ", ("", "", "")),
        ("José Luis Ortiz y Pérez", ("José Luis", "Ortiz", "y Pérez")),
    ],
)
def test_split_full_name(full, parts):
    assert split_full_name(full) == parts


def test_address_key_normalises():
    assert address_key("Calle Hidalgo", "12", "39300") == address_key("HIDALGO", " 12 ", "39 300")
    assert address_key("", "", "") == ""


# ---------------------------------------------------------------- pairs


def test_same_valid_curp_is_a_match_whatever_else_differs():
    curp = "CUHM900517MGRRRR0"
    curp += curp_check_digit(curp)
    a = person(1, curp=curp)
    b = person(2, given="Mary", s1="Smith", s2="", birth=dt.date(1991, 1, 1), curp=curp, address="", phone="")
    pair = score(a, b)
    assert pair.score == 1.0
    assert "curp_exact" in pair.reasons and "curp_same_valid" in pair.reasons


def test_wrong_check_digit_is_strong_evidence():
    curp = "CUHM900517MGRRRR0"
    good = curp + curp_check_digit(curp)
    bad = curp + str((int(curp_check_digit(curp)) + 3) % 10)
    pair = score(person(1, curp=good), person(2, curp=bad, given="Maria Jose", address="", phone=""))
    assert "curp_check_digit" in pair.reasons
    assert pair.score >= PROBABLE


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"given": "MARIA JOSE", "s1": "De La Cruz", "s2": "Hernandez"}, "surnames_exact"),  # accents, case
        ({"s1": "Delacruz"}, "surnames_exact"),  # compound joined
        ({"s1": "Cruz"}, "surnames_exact"),  # particles lost
        ({"s1": "Hernández", "s2": "de la Cruz"}, "surnames_swapped"),
        ({"s2": ""}, "second_surname_missing"),
        ({"given": "María Josè"}, "given_exact"),
        ({"given": "María Jsoé"}, "given_similar"),  # transposition
        ({"birth": dt.date(1990, 5, 17).replace(month=5, day=17)}, "birth_date_exact"),
    ],
)
def test_hard_variants_still_match(changes, reason):
    pair = score(person(1), person(2, **changes))
    assert reason in pair.reasons
    assert pair.score >= PROBABLE


def test_enye_to_n_matches():
    a = person(1, s1="Núñez", s2="Peña")
    b = person(2, s1="NUNEZ", s2="PENA")
    assert score(a, b).score >= PROBABLE


def test_day_month_swap_matches():
    a = person(1, birth=dt.date(1990, 3, 7))
    b = person(2, birth=dt.date(1990, 7, 3))
    pair = score(a, b)
    assert "birth_day_month_swapped" in pair.reasons
    assert pair.score >= PROBABLE


def test_age_only_matches_within_a_year():
    a = person(1)
    b = person(2, birth=None, birth_year=1991)
    pair = score(a, b)
    assert "birth_year_close" in pair.reasons
    assert pair.score >= POSSIBLE
    assert "birth_year_differs" in score(a, person(3, birth=None, birth_year=1995)).reasons


def test_family_members_sharing_address_and_surnames_stay_distinct():
    mother = person(1, given="Rosa", s1="Hernández", s2="López", birth=dt.date(1970, 2, 1))
    daughter = person(2, given="Rosa María", s1="Pérez", s2="Hernández", birth=dt.date(1995, 8, 9))
    son = person(3, given="Juan", s1="Pérez", s2="Hernández", birth=dt.date(1998, 1, 3), sex="H")
    sister = person(4, given="Lucía", s1="Pérez", s2="Hernández", birth=dt.date(1999, 11, 30))
    records = [mother, daughter, son, sister]
    assert find_duplicates(records) == []


def test_twins_with_different_given_names_stay_distinct():
    a = person(1, given="Juan Carlos", s1="López", s2="Pérez", sex="H")
    b = person(2, given="Juan Pablo", s1="López", s2="Pérez", sex="H")
    c = person(3, given="Ana", s1="López", s2="Pérez")
    d = person(4, given="Eva", s1="López", s2="Pérez")
    assert score(a, b).score < POSSIBLE
    assert score(c, d).score < POSSIBLE
    assert find_duplicates([a, b, c, d]) == []


def test_twins_with_one_character_apart_curps_stay_distinct():
    c1 = "LOPA900517MGRPRN0"
    c2 = "LOPE900517MGRPRV0"
    a = person(1, given="Ana", s1="López", s2="Pérez", curp=c1 + curp_check_digit(c1))
    b = person(2, given="Eva", s1="López", s2="Pérez", curp=c2 + curp_check_digit(c2))
    assert score(a, b).score < POSSIBLE


def test_different_curps_weigh_against():
    c1 = "CUHM900517MGRRRR0"
    c2 = "GOPA850101MDFNRN0"
    pair = score(person(1, curp=c1 + curp_check_digit(c1)), person(2, curp=c2 + curp_check_digit(c2)))
    assert "curp_differs" in pair.reasons
    assert pair.score < PROBABLE


def test_term_frequencies_lower_common_names():
    pop = [
        person(i, given="José", s1="Hernández", s2="García", birth=None, birth_year=1980 + i % 30)
        for i in range(50)
    ]
    pop += [person(100, given="Zacarías", s1="Ibáñez", s2="Quiñones")]
    freqs = name_frequencies(pop)
    assert freqs["g:jose"] > freqs["g:zacarias"]
    common = score(
        person(1, given="José", s1="Hernández", s2="García"),
        person(2, given="José", s1="Hernández", s2="García", birth=None, birth_year=1990),
        frequencies=freqs,
    )
    rare = score(
        person(1, given="Zacarías", s1="Ibáñez", s2="Quiñones"),
        person(2, given="Zacarías", s1="Ibáñez", s2="Quiñones", birth=None, birth_year=1990),
        frequencies=freqs,
    )
    assert rare.score > common.score


# ---------------------------------------------------------------- blocking and the incremental path


def test_blocking_keys_are_shared_by_hard_variants():
    base = person(1)
    for variant in (
        person(2, s1="Hernández", s2="de la Cruz"),
        person(3, s2=""),
        person(4, s1="Delacruz"),
        person(5, birth=dt.date(1990, 5, 17), given="Maria Jose"),
        person(6, birth=None, birth_year=1991, address="", phone=""),
    ):
        assert set(blocking_keys(base)) & set(blocking_keys(variant)), variant


def test_blocking_keys_use_curp_halves_without_check_digit():
    curp = "CUHM900517MGRRRR0"
    a = MatchRecord(id=1, curp=curp + "1")
    b = MatchRecord(id=2, curp="CUHX900517MGRRRR0" + "7")
    assert set(blocking_keys(a)) & set(blocking_keys(b))


def test_block_index_and_candidates_for():
    records = [person(1), person(2, given="Pedro", sex="H", birth=dt.date(1960, 1, 1))]
    index = BlockIndex(records)
    new = person(3, s1="Cruz", s2="Hernandez", given="Maria Jose")
    assert {r.id for r in index.candidates(new)} >= {1}
    pairs = candidates_for(new, index)
    assert [p.id_b for p in pairs] == [1]
    assert pairs[0].id_a == 3


def test_empty_and_single_inputs():
    assert find_duplicates([]) == []
    assert find_duplicates([person(1)]) == []
    assert score_candidates(person(1), [person(1)]) == []


def test_synthetic_population_quality_and_consistency():
    pop = generate_population(3000, seed=11, dup_rate=0.05)
    pairs = find_duplicates(pop.records)
    found = {(min(p.id_a, p.id_b), max(p.id_a, p.id_b)) for p in pairs}
    tp = len(found & pop.true_pairs)
    assert tp / len(found) >= 0.95  # precision
    assert tp / len(pop.true_pairs) >= 0.85  # recall
    # every pair the batch path found also shares a string blocking key (the ORM path finds it too)
    by_id = {r.id: r for r in pop.records}
    for p in pairs:
        assert set(blocking_keys(by_id[p.id_a])) & set(blocking_keys(by_id[p.id_b]))
    # and the incremental path scores the same as the batch path
    index = BlockIndex(pop.records)
    p = pairs[0]
    incremental = {q.id_b: q.score for q in candidates_for(by_id[p.id_a], index, threshold=0.0)}
    assert p.id_b in incremental


def test_estimate_weights_learns_from_the_data():
    pop = generate_population(3000, seed=12, dup_rate=0.05)
    weights = estimate_weights(pop.records)
    assert set(weights) >= {"prior", "given_exact", "birth_date_exact"}
    # agreement is evidence for a match, disagreement against it
    assert weights["given_exact"] > 0 > weights["given_differs"]
    assert weights["birth_date_exact"] > 0 > weights["birth_date_differs"]
    pairs = find_duplicates(pop.records, weights=weights)
    found = {(min(p.id_a, p.id_b), max(p.id_a, p.id_b)) for p in pairs}
    assert len(found & pop.true_pairs) / len(pop.true_pairs) >= 0.8


def test_given_name_and_surname_swapped_fields():
    a = person(1, given="Kale", s1="Tschirn", s2="")
    b = person(2, given="Tschirn", s1="Kale", s2="")
    pair = score(a, b)
    assert pair.score >= PROBABLE
    assert "given_differs" not in pair.reasons and "surnames_differ" not in pair.reasons
    assert find_duplicates([a, b])  # and the blocking brings them together


def test_address_typo_in_postal_code_is_partial_not_different():
    a = person(1, address=address_key("Hidalgo", "12", "39300"))
    b = person(2, address=address_key("Hidalgo", "12", "39030"))
    c = person(3, address=address_key("Morelos", "5", "39030"))
    assert "address_similar" in score(a, b).reasons  # reported with the similar-address reason
    assert "address_differs" in score(a, c).reasons


def test_prior_over_all_pairs_that_could_match():
    records = generate_population(1500, seed=5).records
    narrow = estimate_weights(records, iterations=5)
    wide = estimate_weights(records, iterations=5, total_pairs=10 * len(records) * len(records))
    assert wide["prior"] < narrow["prior"] < 0
