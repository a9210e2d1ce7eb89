"""Duplicate detection for persons (pure Python + numpy + rapidfuzz, no ORM).

The ORM layer turns persons into :class:`MatchRecord` values and calls

* :func:`find_duplicates` for a whole population (an import, a batch over a municipality);
* :func:`blocking_keys` to store each person's blocking keys in an indexed column/table, then fetches the persons
  sharing a key with a new record and calls :func:`score_candidates` (or :class:`BlockIndex` /
  :func:`candidates_for` in memory).

Both paths use the same comparison and the same weights.

Names
-----
Names and addresses are folded by the registry's one normaliser, :mod:`redes.registry.text` (the same functions
compute the keys stored in the database): :func:`~redes.registry.text.fold` drops case and accents (``ñ`` becomes
``n``, ``ü`` becomes ``u``), turns punctuation into spaces and collapses runs of spaces. A surname has two keys:
*joined* (all words, spaces removed: "de la Cruz" → ``delacruz``, so it equals "Delacruz" and "De La Cruz") and
*core* (the particles de, del, la, las, los, y, … dropped: ``cruz``, so it equals a record where the particles
were lost). Names are compared on both keys and the better one counts.

``MatchRecord.address`` is :func:`~redes.registry.text.address_key` (``Household.address_key`` in the database):
``"<street words> <number> <postal code>"``, whose last two words (:func:`~redes.registry.text.address_tail`)
are the house number and postal code. A full name is split with :func:`~redes.registry.text.split_full_name`.

Blocking
--------
Two records are compared only if they share at least one blocking key (see :func:`blocking_keys`):

* ``i1`` / ``i2``: the two halves of the CURP without its check digit (one typo leaves one half intact);
* ``gy``: first given name + a surname (each of the first and second, joined and core) + birth year (a record
  with an age only gives the years around it) — robust to swapped, missing or compound surnames and to a
  day/month swap;
* ``nd``: a name — the first given name or any surname, in one key space, so that a given name typed in the
  surname field still meets — + full birth date (robust to any change of the other names);
* ``na``: a name (same) + house number and postal code (the end of the address key: robust to a mistyped
  street); ``gp``: first given name + phone; ``nc``: house number + postal code alone, with a short window
  (:data:`ADDRESS_WINDOW`) because in a census it holds every household at that number.
* ``dp`` / ``ds``: birth date + postal code, birth date + street (every name may have changed);
* with the same short window, because in a census they are huge blocks: ``sp`` street + postal code, ``sh``
  street + number, ``nn`` first given name + first surname in either order (whatever the birth year; also
  catches a given name and surname typed in each other's field), ``ss`` first surname + street.

Names in keys go through a small Spanish phonetic code (:func:`phonetic`: b/v, s/z/c, silent h, ll/y, qu/k, doubled
letters, first six sounds), so most typos land in the same block. In :func:`find_duplicates` the keys are hashed
to 64-bit integers and sorted with numpy; a block larger than ``window + 1`` records is compared as a sliding
window over the records sorted by birth date (sorted neighbourhood), which caps the work per record.

Scoring
-------
Fellegi–Sunter: each comparison lands in a level, each level adds a log2 weight ``log2(m/u)`` to a prior, and the
sum becomes a probability ``1 / (1 + 2**-w)``. The weights (:data:`WEIGHTS`) are set by hand from the m/u
probabilities one expects *inside a block* — that is, among pairs that already share a name or a date — rather
than among random pairs, because within a block the competitors are family members: they agree on surnames,
address and phone, so those fields weigh little, and a different given name or birth date weighs a lot. The same
valid CURP is a match whatever else differs; a CURP that differs in more than one character is strong evidence
against. A pair is a *probable* duplicate from :data:`PROBABLE` and a *possible* one from :data:`POSSIBLE`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from django.utils.translation import gettext_lazy as _
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

# the registry's one normaliser (re-exported here for callers of the matcher)
from .text import PARTICLES, address_key, address_parts, address_tail, fold, split_full_name  # noqa: F401

PROBABLE = 0.9
POSSIBLE = 0.5
WINDOW = 20  # records compared on each side in an oversized block (sorted neighbourhood)
ADDRESS_WINDOW = 3  # the same for the house-number + postal-code block
SIMILAR = 0.92  # Jaro-Winkler from which two names count as "similar"

#: log2 Bayes factors per comparison level (documented in the module docstring and in bench/README.md)
WEIGHTS = {
    "prior": -9.0,
    # identity document (CURP, or any national id)
    "curp_exact": 20.0,
    "curp_check_digit": 13.0,
    "curp_typo": 5.0,
    "curp_differs": -12.0,
    # given names
    "given_exact": 5.0,
    "given_similar": 3.5,
    "given_partial": 2.0,  # "María" vs "María José"
    "given_close": -2.5,  # Jaro-Winkler 0.85–0.92: twins "Juan Carlos" / "Juan Pablo" land here
    "given_differs": -9.0,
    # surnames (best arrangement)
    "surnames_exact": 4.5,
    "surnames_similar": 3.5,
    "surnames_swapped": 3.5,
    "second_surname_missing": 2.5,
    "second_surname_differs": -2.0,
    "surnames_differ": -6.0,
    # birth
    "birth_date_exact": 6.0,
    "birth_day_month_swapped": 4.0,
    "birth_date_similar": 1.5,  # two of year, month, day agree
    "birth_year_close": 0.0,  # an age only on one side, year within one: consistent, proves little
    "birth_date_differs": -8.0,
    "birth_year_differs": -6.0,
    # sex
    "sex_same": 0.5,
    "sex_differs": -4.0,
    # where and how to reach
    "address_exact": 1.5,
    "address_similar": 1.0,
    "address_partial": 0.0,  # two of street, number and postal code: a neighbour as often as a typo
    "address_differs": -1.0,
    "phone_exact": 1.5,
    "phone_differs": -0.5,
}


#: a human label for each reason code (for the review queue)
REASON_LABELS = {
    "curp_exact": _("Same CURP"),
    "curp_same_valid": _("Same valid CURP"),
    "curp_check_digit": _("CURP equal except the check digit"),
    "curp_typo": _("CURP differs in one character"),
    "curp_differs": _("Different CURP"),
    "given_exact": _("Same given name"),
    "given_similar": _("Similar given name (a typo)"),
    "given_partial": _("One given name is part of the other"),
    "given_close": _("Given names look alike"),
    "given_differs": _("Different given name"),
    "surnames_exact": _("Same surnames"),
    "surnames_similar": _("Similar surnames"),
    "surnames_swapped": _("Surnames swapped"),
    "second_surname_missing": _("Second surname missing on one record"),
    "second_surname_differs": _("Only one surname in common"),
    "surnames_differ": _("Different surnames"),
    "birth_date_exact": _("Same birth date"),
    "birth_day_month_swapped": _("Birth day and month swapped"),
    "birth_date_similar": _("Birth dates differ in one part"),
    "birth_year_close": _("Age matches the birth year (± 1)"),
    "birth_date_differs": _("Different birth date"),
    "birth_year_differs": _("Birth years far apart"),
    "sex_same": _("Same sex"),
    "sex_differs": _("Different sex"),
    "address_exact": _("Same address"),
    "address_similar": _("Similar address"),
    "address_differs": _("Different address"),
    "phone_exact": _("Same phone"),
    "phone_differs": _("Different phone"),
    "same_household": _("Same household"),
}


# --------------------------------------------------------------------------------------------------------------
# Normalisation


def surname_keys(text: str | None) -> tuple[str, str]:
    """(joined, core) keys of a surname: "de la Cruz" → ("delacruz", "cruz")."""
    words = fold(text).split()
    joined = "".join(words)
    core = "".join(w for w in words if w not in PARTICLES) or joined
    return joined, core


def given_keys(text: str | None) -> tuple[str, str]:
    """(all given names, first given name without particles): "María de los Ángeles" → ("maria de los angeles", "maria")."""
    norm = fold(text)
    words = [w for w in norm.split() if w not in PARTICLES]
    return norm, (words[0] if words else "")


_PHONETIC_RULES = [
    (re.compile(r"ll"), "y"),
    (re.compile(r"ch"), "#"),
    (re.compile(r"qu"), "k"),
    (re.compile(r"gu([ei])"), r"g\1"),
    (re.compile(r"g([ei])"), r"j\1"),
    (re.compile(r"c([ei])"), r"s\1"),
    (re.compile(r"c"), "k"),
    (re.compile(r"z"), "s"),
    (re.compile(r"v"), "b"),
    (re.compile(r"w"), "u"),
    (re.compile(r"y"), "i"),
    (re.compile(r"(?<!#)h"), ""),
    (re.compile(r"(.)\1+"), r"\1"),
]


def phonetic(key: str, length: int = 6) -> str:
    """A small Spanish phonetic code of a normalised name key (spaces ignored), first ``length`` sounds."""
    text = key.replace(" ", "")
    for pattern, repl in _PHONETIC_RULES:
        text = pattern.sub(repl, text)
    return text[:length]


# --------------------------------------------------------------------------------------------------------------
# Records and pairs


@dataclass(slots=True)
class MatchRecord:
    """What the matcher needs of a person. ``birth_year`` is used when only an age is known (± one year)."""

    id: int | str
    given: str = ""
    surname1: str = ""
    surname2: str = ""
    birth_date: dt.date | None = None
    birth_year: int | None = None
    sex: str = ""  # "H", "M", "X" or ""
    curp: str = ""  # or any national id (FEBRL's soc_sec_id in the benchmark)
    address: str = ""  # address_key(street, number, postal code)
    phone: str = ""  # E.164
    household: int | str | None = None


@dataclass(slots=True)
class Pair:
    id_a: int | str
    id_b: int | str
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def probable(self) -> bool:
        return self.score >= PROBABLE


# --------------------------------------------------------------------------------------------------------------
# Columnar form


class _Codes:
    """Strings to dense integer codes; code 0 is the empty string."""

    def __init__(self):
        self.index: dict[str, int] = {"": 0}
        self.strings: list[str] = [""]

    def code(self, value: str) -> int:
        c = self.index.get(value)
        if c is None:
            c = self.index[value] = len(self.strings)
            self.strings.append(value)
        return c

    def array(self) -> np.ndarray:
        return np.array(self.strings, dtype=object)


def _dense(values: list[str]) -> np.ndarray:
    """Dense integer codes of strings, 0 for the empty string (equality only)."""
    index: dict[str, int] = {"": 0}
    for v in values:
        if v not in index:
            index[v] = len(index)
    return np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))


def _by_value(values: list[str], info, width: int) -> np.ndarray:
    """``info(value)`` (a tuple of ``width`` ints) for each value, computed once per distinct value."""
    distinct = list(dict.fromkeys(values))
    index = {v: i for i, v in enumerate(distinct)}
    table = np.array([info(v) for v in distinct], dtype=np.int64).reshape(len(distinct), width)
    codes = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
    return table[codes]


class _Frame:
    """The records as numpy columns of codes and numbers."""

    def __init__(self, records: Sequence[MatchRecord]):
        n = len(records)
        self.n = n
        self.ids = [r.id for r in records]
        names = _Codes()  # given and surnames share one table (for swapped/misplaced fields)
        phon = _Codes()
        misc = _Codes()  # addresses and their tails (compared as strings)

        # column by column: each distinct value is worked out once, then spread with one numpy gather
        def given_info(raw: str) -> tuple[int, int, int, int]:
            full, first = given_keys(raw)
            return names.code(full), names.code(first), phon.code(phonetic(first)), len(full.split())

        def surname_info(raw: str) -> tuple[int, int, int, int]:
            joined, core = surname_keys(raw)
            return (
                names.code(joined),
                names.code(core),
                phon.code(phonetic(joined)) if joined else 0,
                phon.code(phonetic(core)) if core else 0,
            )

        def address_info(raw: str) -> tuple[int, int, int, int, int]:
            if not raw:
                return 0, 0, 0, 0, 0
            tail = address_tail(raw)
            street, number, code = address_parts(raw)
            return (
                misc.code("a" + raw),
                misc.code("t" + tail) if tail else 0,
                misc.code("s" + street) if street else 0,
                misc.code("c" + code) if code else 0,
                misc.code("n" + number) if number else 0,
            )

        g = _by_value([r.given or "" for r in records], given_info, 4)
        s1 = _by_value([r.surname1 or "" for r in records], surname_info, 4)
        s2 = _by_value([r.surname2 or "" for r in records], surname_info, 4)
        addr, tail, street, code, number = _by_value([r.address or "" for r in records], address_info, 5).T
        phone = _dense([r.phone or "" for r in records])
        household = _dense(["" if r.household is None else str(r.household) for r in records])
        ids_raw = [(r.curp or "").strip().upper() for r in records]
        idcode = _dense(ids_raw)
        birth = [r.birth_date for r in records]
        ordinal = np.fromiter(
            (d.toordinal() if d is not None else -1 for d in birth), dtype=np.int64, count=n
        )
        year = np.fromiter(
            (d.year if d is not None else (r.birth_year or -1) for d, r in zip(birth, records, strict=True)),
            dtype=np.int64,
            count=n,
        )
        year_only = (ordinal < 0) & (year > 0)
        sex_codes = {"H": 1, "M": 2, "X": 3, "F": 2}
        sex = np.fromiter(
            (sex_codes.get((r.sex or "").upper()[:1], 0) for r in records), dtype=np.int8, count=n
        )
        self.given_full, self.given_first, self.given_phon, self.given_words = g.T
        self.s1_joined, self.s1_core, self.s1_phon_joined, self.s1_phon_core = s1.T
        self.s2_joined, self.s2_core, self.s2_phon_joined, self.s2_phon_core = s2.T
        self.ordinal, self.year, self.year_only, self.sex = ordinal, year, year_only, sex
        dates = np.where(ordinal > 0, ordinal, dt.date(2000, 1, 1).toordinal())
        # month and day of each full date (vectorised through numpy datetime64)
        d64 = (dates - dt.date(1970, 1, 1).toordinal()).astype("datetime64[D]")
        months = d64.astype("datetime64[M]")
        self.month = (months.astype(np.int64) % 12 + 1).astype(np.int64)
        self.day = ((d64 - months).astype(np.int64) + 1).astype(np.int64)
        self.addr, self.phone, self.household, self.idcode = addr, phone, household, idcode
        self.addr_tail, self.addr_street, self.addr_code, self.addr_number = tail, street, code, number
        self.names = names.array()
        self.misc = misc.array()
        # ids as a fixed-width byte matrix, for typo / check-digit comparisons
        width = max(18, max((len(x) for x in ids_raw), default=0))
        self.id_len = np.fromiter((len(x) for x in ids_raw), dtype=np.int64, count=n)
        self.id_bytes = (
            np.array([x.encode("utf-8")[:width] for x in ids_raw], dtype=f"S{width}")
            .view(np.uint8)
            .reshape(n, width)
            if n
            else np.zeros((0, width), dtype=np.uint8)
        )
        self.width = width


# --------------------------------------------------------------------------------------------------------------
# Blocking


_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)


def _mix(kind: int, *cols: np.ndarray) -> np.ndarray:
    h = np.full(len(cols[0]), kind, dtype=np.uint64) * _M1
    for c in cols:
        h = (h ^ c.astype(np.uint64)) * _M2
        h ^= h >> np.uint64(31)
    return h


def _id_halves(frame: _Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes of the two halves of each id without its check digit (CURP: 17 characters)."""
    n = frame.n
    base_len = np.where(frame.id_len == 18, 17, frame.id_len)
    half = base_len // 2
    cols = np.arange(frame.width)[None, :]
    b = frame.id_bytes.astype(np.uint64)
    first = np.where(cols < half[:, None], b, 0)
    second = np.where((cols >= half[:, None]) & (cols < base_len[:, None]), b, 0)
    # polynomial hash of each masked row
    h1 = np.zeros(n, dtype=np.uint64)
    h2 = np.zeros(n, dtype=np.uint64)
    for j in range(frame.width):
        h1 = h1 * np.uint64(131) + first[:, j]
        h2 = h2 * np.uint64(131) + second[:, j]
    return h1, h2, base_len >= 4


def _block_entries(frame: _Frame) -> tuple[np.ndarray, np.ndarray]:
    """All (key hash, record index) entries of the blocking keys of every record."""
    idx = np.arange(frame.n, dtype=np.int64)
    keys: list[np.ndarray] = []
    rows: list[np.ndarray] = []

    def add(mask: np.ndarray, k: np.ndarray):
        keys.append(k[mask])
        rows.append(idx[mask])

    h1, h2, has_id = _id_halves(frame)
    add(has_id, _mix(1, h1))
    add(has_id, _mix(2, h2))
    has_g = frame.given_phon > 0
    full = frame.ordinal > 0
    surname_cols = [frame.s1_phon_core, frame.s1_phon_joined, frame.s2_phon_core, frame.s2_phon_joined]
    for j, col in enumerate(surname_cols):
        # joined keys only where they differ from the core key (compound surnames)
        ok = col > 0
        if j % 2 == 1:
            ok &= col != surname_cols[j - 1]
        for shift in (-1, 0, 1):
            yr = frame.year + shift
            m = has_g & ok & ((shift == 0) | frame.year_only)
            add(m, _mix(3, frame.given_phon, col, yr))
        # any name (given or surname, one key space: robust to given/surname swapped fields) + birth date / address
        add(ok & full, _mix(4, col, frame.ordinal))
        add(ok & (frame.addr_tail > 0), _mix(6, col, frame.addr_tail))
    add(has_g & full, _mix(4, frame.given_phon, frame.ordinal))
    add(has_g & (frame.addr_tail > 0), _mix(6, frame.given_phon, frame.addr_tail))
    add(has_g & (frame.phone > 0), _mix(7, frame.given_phon, frame.phone))
    # birth date + postal code, birth date + street: every name may have changed
    add(full & (frame.addr_code > 0), _mix(9, frame.ordinal, frame.addr_code))
    add(full & (frame.addr_street > 0), _mix(10, frame.ordinal, frame.addr_street))
    return np.concatenate(keys), np.concatenate(rows)


def _window_pairs(keys, rows, birth, window: int, out_a: list, out_b: list) -> None:
    """Pairs within equal keys: the whole block when small, else each record with its next ``window``."""
    if not len(keys):
        return
    # within a block, order by birth (unknown births last) so that windows hold people of similar age
    pre = np.argsort(birth[rows], kind="stable")
    keys, rows = keys[pre], rows[pre]
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    m = len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], m]
    remaining = np.repeat(ends, ends - starts) - np.arange(m) - 1
    active = np.flatnonzero(remaining >= 1)
    for d in range(1, window + 1):
        active = active[remaining[active] >= d]
        if not len(active):
            break
        out_a.append(rows[active])
        out_b.append(rows[active + d])


def candidate_pairs(frame: _Frame, window: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Unique (a, b) record-index pairs, a < b, that share a blocking key (windowed in big blocks)."""
    if frame.n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys, rows = _block_entries(frame)
    birth = np.where(
        frame.ordinal > 0, frame.ordinal, np.where(frame.year > 0, (frame.year - 1) * 365 + 182, 10**7)
    )
    out_a: list[np.ndarray] = []
    out_b: list[np.ndarray] = []
    _window_pairs(keys, rows, birth, window, out_a, out_b)
    # house number + postal code alone: a big block in a census (every household at that number), so a short
    # window over age; on person-per-address data (FEBRL) it catches records whose names and street all changed
    tail = frame.addr_tail > 0
    _window_pairs(frame.addr_tail[tail], np.flatnonzero(tail), birth, ADDRESS_WINDOW, out_a, out_b)
    # street + postal code (the number mistyped): the same short window
    street = (frame.addr_street > 0) & (frame.addr_code > 0)
    street_key = _mix(11, frame.addr_street[street], frame.addr_code[street])
    _window_pairs(street_key, np.flatnonzero(street), birth, ADDRESS_WINDOW, out_a, out_b)
    # street + number (the postal code mistyped)
    house = (frame.addr_street > 0) & (frame.addr_number > 0)
    house_key = _mix(13, frame.addr_street[house], frame.addr_number[house])
    _window_pairs(house_key, np.flatnonzero(house), birth, ADDRESS_WINDOW, out_a, out_b)
    # a name pair whatever the birth year (either order: given name and surname in each other's field), and
    # first surname + street: huge blocks in a census (every "Juan Hernández"), so the short window too
    gp, s1 = frame.given_phon, frame.s1_phon_core
    named = np.flatnonzero((gp > 0) & (s1 > 0))
    name_key = _mix(8, np.minimum(gp[named], s1[named]), np.maximum(gp[named], s1[named]))
    _window_pairs(name_key, named, birth, ADDRESS_WINDOW, out_a, out_b)
    on_street = np.flatnonzero((s1 > 0) & (frame.addr_street > 0))
    _window_pairs(
        _mix(12, s1[on_street], frame.addr_street[on_street]), on_street, birth, ADDRESS_WINDOW, out_a, out_b
    )
    if not out_a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a = np.concatenate(out_a)
    b = np.concatenate(out_b)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    combined = lo[keep] * np.int64(frame.n) + hi[keep]
    combined.sort()
    combined = combined[np.r_[True, combined[1:] != combined[:-1]]]
    return combined // frame.n, combined % frame.n


def blocking_keys(record: MatchRecord) -> list[str]:
    """The blocking keys of one record as short strings, for an indexed key table in the database.

    Two records are candidates when they share a key. Same rules as :func:`find_duplicates` (which hashes them).
    """
    keys: list[str] = []
    value = (record.curp or "").strip().upper()
    if len(value) >= 4:
        base = value[:17] if len(value) == 18 else value
        half = len(base) // 2
        keys += [f"i1|{base[:half]}", f"i2|{base[half:]}"]
    _, first = given_keys(record.given)
    gp = phonetic(first) if first else ""
    if record.birth_date is not None:
        years = [record.birth_date.year]
        date = record.birth_date.isoformat()
    elif record.birth_year:
        years = [record.birth_year - 1, record.birth_year, record.birth_year + 1]
        date = ""
    else:
        years = [None]
        date = ""
    tail = address_tail(record.address) if record.address else ""
    seen: set[str] = set()
    for raw in (record.surname1, record.surname2):
        joined, core = surname_keys(raw)
        for key in (core, joined):
            if not key:
                continue
            code = phonetic(key)
            if code in seen and key == joined:
                continue
            seen.add(code)
            if gp:
                keys += [f"gy|{gp}|{code}|{y if y is not None else ''}" for y in years]
            if date:
                keys.append(f"nd|{code}|{date}")
            if tail:
                keys.append(f"na|{code}|{tail}")
    if gp:
        if date:
            keys.append(f"nd|{gp}|{date}")
        if tail:
            keys.append(f"na|{gp}|{tail}")
        if record.phone:
            keys.append(f"gp|{gp}|{record.phone}")
    street, number, postal = address_parts(record.address) if record.address else ("", "", "")
    if tail:
        keys.append(f"nc|{tail}")
    if date and postal:
        keys.append(f"dp|{date}|{postal}")
    if date and street:
        keys.append(f"ds|{date}|{street}")
    if street and postal:
        keys.append(f"sp|{street}|{postal}")
    if street and number:
        keys.append(f"sh|{street}|{number}")
    _, core1 = surname_keys(record.surname1)
    s1 = phonetic(core1) if core1 else ""
    if gp and s1:
        keys.append(f"nn|{min(gp, s1)}|{max(gp, s1)}")
    if s1 and street:
        keys.append(f"ss|{s1}|{street}")
    return list(dict.fromkeys(keys))


# --------------------------------------------------------------------------------------------------------------
# Scoring


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, index of each value in them) by one sort (faster than np.unique on big int arrays)."""
    order = np.argsort(values)
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _similarity(codes_a: np.ndarray, codes_b: np.ndarray, strings: np.ndarray) -> np.ndarray:
    """Jaro-Winkler similarity of coded strings; 1 where equal, NaN where either is empty.

    Each distinct pair of codes is compared once (names and addresses repeat a lot across pairs).
    """
    sim = np.where(codes_a == codes_b, 1.0, 0.0)
    differ = np.flatnonzero((codes_a != codes_b) & (codes_a > 0) & (codes_b > 0))
    if len(differ):
        base = np.int64(len(strings))
        uniq, inverse = _unique_inverse(codes_a[differ] * base + codes_b[differ])
        values = cpdist(
            strings[uniq // base], strings[uniq % base], scorer=JaroWinkler.normalized_similarity, workers=-1
        )
        sim[differ] = values[inverse]
    sim[(codes_a == 0) | (codes_b == 0)] = np.nan
    return sim


def _distance(codes_a: np.ndarray, codes_b: np.ndarray, strings: np.ndarray) -> np.ndarray:
    """Optimal-string-alignment edit distance of coded strings (0 where equal), each distinct pair once."""
    dist = np.zeros(len(codes_a), dtype=np.int64)
    differ = np.flatnonzero(codes_a != codes_b)
    if len(differ):
        base = np.int64(len(strings))
        uniq, inverse = _unique_inverse(codes_a[differ] * base + codes_b[differ])
        values = cpdist(strings[uniq // base], strings[uniq % base], scorer=OSA.distance, workers=-1)
        dist[differ] = values[inverse]
    return dist


def _surname_similarity(f: _Frame, a: np.ndarray, b: np.ndarray, x: str, y: str) -> np.ndarray:
    """Best of the joined and core keys ("de la Cruz" = "Delacruz" = "Cruz")."""
    ja, jb = getattr(f, f"{x}_joined")[a], getattr(f, f"{y}_joined")[b]
    ca, cb = getattr(f, f"{x}_core")[a], getattr(f, f"{y}_core")[b]
    sim = _similarity(ja, jb, f.names)
    compound = np.flatnonzero((ca != ja) | (cb != jb))
    if len(compound):
        sim[compound] = np.fmax(sim[compound], _similarity(ca[compound], cb[compound], f.names))
        # "de la Cruz" recorded as "Delacruz" against "Cruz": joined on one side, core on the other
        sim[compound] = np.fmax(sim[compound], _similarity(ja[compound], cb[compound], f.names))
        sim[compound] = np.fmax(sim[compound], _similarity(ca[compound], jb[compound], f.names))
    return sim


#: levels reported under another level's reason code (the review queue has a label for each code)
_REASON_ALIAS = {"address_partial": "address_similar"}
REASON_CODES = [k for k in WEIGHTS if k != "prior" and k not in _REASON_ALIAS] + [
    "curp_same_valid",
    "same_household",
]
_REASON_INDEX = {k: i for i, k in enumerate(REASON_CODES)}


#: comparison groups and their levels, for the EM estimation (a pair is in at most one level per group)
GROUPS: dict[str, list[str]] = {
    "curp": ["curp_exact", "curp_check_digit", "curp_typo", "curp_differs"],
    "given": ["given_exact", "given_similar", "given_partial", "given_close", "given_differs"],
    "surnames": [
        "surnames_exact",
        "surnames_similar",
        "surnames_swapped",
        "second_surname_missing",
        "second_surname_differs",
        "surnames_differ",
    ],
    "birth": [
        "birth_date_exact",
        "birth_day_month_swapped",
        "birth_date_similar",
        "birth_year_close",
        "birth_date_differs",
        "birth_year_differs",
    ],
    "sex": ["sex_same", "sex_differs"],
    "address": ["address_exact", "address_similar", "address_partial", "address_differs"],
    "phone": ["phone_exact", "phone_differs"],
}
_GROUP_OF = {
    name: (g, i + 1) for g_i, (g, names) in enumerate(GROUPS.items()) for i, name in enumerate(names)
}
_GROUP_INDEX = {g: i for i, g in enumerate(GROUPS)}
_SURNAME_LEVELS = frozenset(GROUPS["surnames"])


def _score(
    f: _Frame,
    a: np.ndarray,
    b: np.ndarray,
    tf: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
    levels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(probability, reason bit mask) for each pair of record indices.

    ``tf``: relative frequencies of normalised given names and surnames (see :func:`name_frequencies`); an exact
    agreement on a common name weighs less, on a rare one more (splink's term-frequency adjustment).
    """
    n = len(a)
    weights = weights or WEIGHTS
    w = np.full(n, weights["prior"])
    bits = np.zeros(n, dtype=np.int64)

    names_swapped = np.zeros(n, dtype=bool)  # given name and first surname in each other's field

    def level(mask: np.ndarray, name: str, swapped: bool = False):
        if name in _SURNAME_LEVELS and not swapped:
            mask = mask & ~names_swapped
        if name in weights:
            np.add(w, weights[name], out=w, where=mask)
        if levels is not None and name in _GROUP_OF:
            group, index = _GROUP_OF[name]
            levels[_GROUP_INDEX[group]][mask] = index
        bit = np.int64(1) << np.int64(_REASON_INDEX[_REASON_ALIAS.get(name, name)])
        np.bitwise_or(bits, bit, out=bits, where=mask)

    # identity document
    ida, idb = f.idcode[a], f.idcode[b]
    both = (ida > 0) & (idb > 0)
    exact = both & (ida == idb)
    la, lb = f.id_len[a], f.id_len[b]
    # character comparisons only for pairs where both have an id of the same length and they differ
    mism = np.zeros(n, dtype=np.int64)
    where = np.zeros(n, dtype=np.int64)
    last_differs = np.zeros(n, dtype=bool)
    cmp_rows = np.flatnonzero(both & ~exact & (la == lb))
    if len(cmp_rows):
        diff_chars = f.id_bytes[a[cmp_rows]] != f.id_bytes[b[cmp_rows]]
        mism[cmp_rows] = diff_chars.sum(axis=1)
        where[cmp_rows] = np.argmax(diff_chars, axis=1)
        last_differs[cmp_rows] = diff_chars[:, 17]
    same_len = la == lb
    check_only = both & ~exact & same_len & (la == 18) & (mism == 1) & last_differs
    typo = both & ~exact & ~check_only & same_len & (mism == 1)

    # given names
    gsim = _similarity(f.given_full[a], f.given_full[b], f.names)
    g_ok = ~np.isnan(gsim)
    gs = np.nan_to_num(gsim)
    # a one-character CURP difference where the CURP spells a name that differs is two people (twins, homonyms)
    s11_raw = _surname_similarity(f, a, b, "s1", "s1")
    s22_raw = _surname_similarity(f, a, b, "s2", "s2")
    oa_, ob_ = f.ordinal[a], f.ordinal[b]
    explained = (
        (np.isin(where, (4, 5, 6, 7, 8, 9)) & (oa_ > 0) & (ob_ > 0) & (oa_ != ob_))
        | (np.isin(where, (3, 15)) & (gs < SIMILAR))
        | (np.isin(where, (0, 1, 13)) & (np.nan_to_num(s11_raw) < SIMILAR))
        | (np.isin(where, (2, 14)) & (np.nan_to_num(s22_raw) < SIMILAR))
    )
    typo &= ~explained
    level(exact, "curp_exact")
    level(check_only, "curp_check_digit")
    level(typo, "curp_typo")
    level(both & ~exact & ~check_only & ~typo, "curp_differs")
    g_exact = g_ok & (gs >= 0.999)
    # a typo is one edit (two in a long name); Jaro-Winkler alone rates "María" ~ "Marisela" as similar
    edits = np.zeros(n, dtype=np.int64)
    maybe = np.flatnonzero(g_ok & ~g_exact & (gs >= SIMILAR))
    if len(maybe):
        edits[maybe] = _distance(f.given_full[a[maybe]], f.given_full[b[maybe]], f.names)
    g_sim = g_ok & ~g_exact & (gs >= SIMILAR) & ((edits <= 1) | ((edits <= 2) & (gs >= 0.95)))
    # given name and first surname typed in each other's field: counted as similar names
    s1a, s1b = f.s1_joined[a], f.s1_joined[b]
    rows = np.flatnonzero(g_ok & ~g_exact & ~g_sim & (s1a > 0) & (s1b > 0) & (s1a != s1b))
    if len(rows):
        x = _similarity(f.given_full[a[rows]], s1b[rows], f.names)
        y = _similarity(s1a[rows], f.given_full[b[rows]], f.names)
        names_swapped[rows] = (np.nan_to_num(x) >= SIMILAR) & (np.nan_to_num(y) >= SIMILAR)
    g_sim |= names_swapped
    partial = (
        g_ok
        & ~g_exact
        & ~g_sim
        & (f.given_first[a] == f.given_first[b])
        & ((f.given_words[a] == 1) | (f.given_words[b] == 1))
    )
    # "Juan Carlos" / "Juan Pablo": same first name, another second one — siblings, not a typo
    second_differs = (
        (f.given_first[a] == f.given_first[b]) & (f.given_words[a] >= 2) & (f.given_words[b] >= 2)
    )
    g_close = g_ok & ~g_exact & ~g_sim & ~partial & ~second_differs & (gs >= 0.85)
    level(g_exact, "given_exact")
    level(g_sim, "given_similar")
    level(partial, "given_partial")
    level(g_close, "given_close")
    level(g_ok & ~g_exact & ~g_sim & ~partial & ~g_close, "given_differs")

    # surnames: direct, swapped, or one side without a second surname
    s11, s22 = s11_raw, s22_raw
    has2a, has2b = f.s2_joined[a] > 0, f.s2_joined[b] > 0
    has1 = (f.s1_joined[a] > 0) & (f.s1_joined[b] > 0)
    z = np.nan_to_num
    both2 = has1 & has2a & has2b

    def agree(x, y):  # both similar, or one exact and the other close (a typo in a short surname)
        x, y = z(x), z(y)
        return ((x >= SIMILAR) & (y >= SIMILAR)) | ((np.fmax(x, y) >= 0.999) & (np.fmin(x, y) >= 0.85))

    # crossed comparisons only where the straight ones do not already agree
    s12 = np.full(n, np.nan)
    s21 = np.full(n, np.nan)
    cross = np.flatnonzero(has1 & ~(both2 & agree(s11, s22)))
    if len(cross):
        s12[cross] = _surname_similarity(f, a[cross], b[cross], "s1", "s2")
        s21[cross] = _surname_similarity(f, a[cross], b[cross], "s2", "s1")

    direct = both2 & agree(s11, s22)
    direct_exact = direct & (z(s11) >= 0.999) & (z(s22) >= 0.999)
    swapped = both2 & ~direct & agree(s12, s21)
    any_one = (z(s11) >= SIMILAR) | (z(s22) >= SIMILAR) | (z(s12) >= SIMILAR) | (z(s21) >= SIMILAR)
    half = both2 & ~direct & ~swapped & any_one
    level(direct_exact, "surnames_exact")
    level(direct & ~direct_exact, "surnames_similar")
    level(swapped, "surnames_swapped")
    level(half, "second_surname_differs")
    level(both2 & ~direct & ~swapped & ~half, "surnames_differ")
    one_missing = has1 & (has2a ^ has2b)
    # the record with one surname may carry either surname of the other
    best_one = np.where(has2a, np.fmax(z(s11), z(s21)), np.fmax(z(s11), z(s12)))
    miss_ok = one_missing & (best_one >= SIMILAR)
    level(miss_ok, "second_surname_missing")
    level(one_missing & ~miss_ok, "surnames_differ")
    none2 = has1 & ~has2a & ~has2b
    level(none2 & (z(s11) >= 0.999), "surnames_exact")
    level(none2 & (z(s11) >= SIMILAR) & (z(s11) < 0.999), "surnames_similar")
    level(none2 & (z(s11) < SIMILAR), "surnames_differ")
    level(names_swapped, "surnames_similar", swapped=True)

    # birth
    oa, ob = f.ordinal[a], f.ordinal[b]
    ya, yb = f.year[a], f.year[b]
    full = (oa > 0) & (ob > 0)
    ma, mb, da, db = f.month[a], f.month[b], f.day[a], f.day[b]
    b_exact = full & (oa == ob)
    b_swap = full & ~b_exact & (ya == yb) & (ma == db) & (da == mb)
    agree = (ya == yb).astype(np.int8) + (ma == mb) + (da == db)
    b_sim = full & ~b_exact & ~b_swap & (agree >= 2)
    level(b_exact, "birth_date_exact")
    level(b_swap, "birth_day_month_swapped")
    level(b_sim, "birth_date_similar")
    level(full & ~b_exact & ~b_swap & ~b_sim, "birth_date_differs")
    approx = (ya > 0) & (yb > 0) & ~full
    close = approx & (np.abs(ya - yb) <= 1)
    level(close, "birth_year_close")
    level(approx & ~close, "birth_year_differs")

    # sex (X against H/M counts as unknown)
    sa, sb = f.sex[a], f.sex[b]
    sx = (sa > 0) & (sb > 0) & (sa != 3) & (sb != 3)
    level(sx & (sa == sb), "sex_same")
    level(sx & (sa != sb), "sex_differs")

    # address and phone
    aa, ab = f.addr[a], f.addr[b]
    both_addr = (aa > 0) & (ab > 0)
    a_exact = both_addr & (aa == ab)
    # a street typo keeps the number and postal code: compare the strings only there
    a_sim = np.zeros(n, dtype=bool)
    near = np.flatnonzero(both_addr & ~a_exact & (f.addr_tail[a] == f.addr_tail[b]))
    if len(near):
        a_sim[near] = np.nan_to_num(_similarity(aa[near], ab[near], f.misc)) >= 0.93
    parts = (
        (f.addr_street[a] == f.addr_street[b]).astype(np.int8)
        + (f.addr_number[a] == f.addr_number[b])
        + (f.addr_code[a] == f.addr_code[b])
    )
    a_part = both_addr & ~a_exact & ~a_sim & (parts >= 2)
    level(a_exact, "address_exact")
    level(a_sim, "address_similar")
    level(a_part, "address_partial")
    level(both_addr & ~a_exact & ~a_sim & ~a_part, "address_differs")
    pa, pb = f.phone[a], f.phone[b]
    both_phone = (pa > 0) & (pb > 0)
    level(both_phone & (pa == pb), "phone_exact")
    level(both_phone & (pa != pb), "phone_differs")
    level((f.household[a] > 0) & (f.household[a] == f.household[b]), "same_household")

    if tf:
        w = w + _tf_adjustment(f, a, b, tf, g_exact, direct_exact | (none2 & (z(s11) >= 0.999)))
    prob = 1.0 / (1.0 + np.exp2(-w))
    # the same valid CURP is the same person
    same_valid = exact & (la == 18)
    if same_valid.any():
        from redes.core.curp import curp_check_digit

        rows = np.flatnonzero(same_valid)
        for i in rows:
            value = bytes(f.id_bytes[a[i]]).decode("utf-8", "replace")
            try:
                valid = curp_check_digit(value[:17]) == value[17]
            except ValueError:
                valid = False
            if valid:
                prob[i] = 1.0
                bits[i] |= np.int64(1) << np.int64(_REASON_INDEX["curp_same_valid"])
    return prob, bits


TF_CAP = (-3.0, 2.0)


def _within_reach(
    f: _Frame, a: np.ndarray, b: np.ndarray, tf: dict | None, weights: dict[str, float], threshold: float
) -> np.ndarray:
    """Which pairs can still reach ``threshold``: an upper bound of :func:`_score` from the cheap comparisons
    (CURP equality, birth, sex, address, phone) and the given names, every other group at its best level.

    Lossless: a pair dropped here would score below ``threshold`` in :func:`_score`. In a census most candidate
    pairs are relatives (a shared surname and address, another given name and birth date), so the surname
    comparisons — the costly part — only run on the few pairs left."""
    if threshold <= 0:
        return np.ones(len(a), dtype=bool)
    if threshold >= 1:
        threshold = 1 - 1e-9
    need = math.log2(threshold / (1 - threshold)) - 1e-6

    def wt(name: str) -> float:
        return weights.get(name, 0.0)

    def best(names: list[str]) -> float:
        return max(0.0, *(wt(x) for x in names))

    bound = np.full(len(a), wt("prior"), dtype=np.float32)
    # identity document: an equal id is kept whatever else (the same valid CURP is a match)
    ida, idb = f.idcode[a], f.idcode[b]
    both = (ida > 0) & (idb > 0)
    same_id = both & (ida == idb)
    bound += np.where(both, best(GROUPS["curp"][1:]), 0.0).astype(np.float32)
    # birth, exactly as in _score
    oa, ob = f.ordinal[a], f.ordinal[b]
    ya, yb = f.year[a], f.year[b]
    full = (oa > 0) & (ob > 0)
    exact = full & (oa == ob)
    swap = full & ~exact & (ya == yb) & (f.month[a] == f.day[b]) & (f.day[a] == f.month[b])
    agree = (ya == yb).astype(np.int8) + (f.month[a] == f.month[b]) + (f.day[a] == f.day[b])
    similar = full & ~exact & ~swap & (agree >= 2)
    approx = (ya > 0) & (yb > 0) & ~full
    close = approx & (np.abs(ya - yb) <= 1)
    birth = np.select(
        [exact, swap, similar, full, close, approx],
        [wt(x) for x in GROUPS["birth"][:3]]
        + [wt("birth_date_differs"), wt("birth_year_close")]
        + [wt("birth_year_differs")],
        0.0,
    )
    bound += birth.astype(np.float32)
    del oa, ob, ya, yb, full, exact, swap, agree, similar, approx, close, birth
    # sex
    sa, sb = f.sex[a], f.sex[b]
    sx = (sa > 0) & (sb > 0) & (sa != 3) & (sb != 3)
    bound += np.where(sx, np.where(sa == sb, wt("sex_same"), wt("sex_differs")), 0.0).astype(np.float32)
    # address (a differing one may still be "similar") and phone
    aa, ab = f.addr[a], f.addr[b]
    both_addr = (aa > 0) & (ab > 0)
    addr_other = max(wt(x) for x in GROUPS["address"][1:])
    bound += np.where(both_addr, np.where(aa == ab, wt("address_exact"), addr_other), 0.0).astype(np.float32)
    pa, pb = f.phone[a], f.phone[b]
    both_phone = (pa > 0) & (pb > 0)
    bound += np.where(both_phone, np.where(pa == pb, wt("phone_exact"), wt("phone_differs")), 0.0).astype(
        np.float32
    )
    # surnames at their best, term frequencies at their cap
    hi = TF_CAP[1] if tf else 0.0
    bound += np.float32(best(GROUPS["surnames"]) + hi)
    # given names: the one string comparison done here, only where the rest leaves room for it
    g_best = best(GROUPS["given"]) + hi
    open_ = np.flatnonzero(~same_id & (bound + g_best >= need))
    keep = same_id.copy()
    if len(open_):
        ga, gb = f.given_full[a[open_]], f.given_full[b[open_]]
        gsim = _similarity(ga, gb, f.names)
        g_ok = ~np.isnan(gsim)
        gs = np.nan_to_num(gsim)
        near = (gs >= 0.85) | (f.given_first[a[open_]] == f.given_first[b[open_]])
        g_other = max(wt(x) for x in GROUPS["given"][1:])
        # given name and surname swapped (scored as similar names): checked where only that could keep the pair
        maybe = np.flatnonzero(g_ok & ~near & (bound[open_] + g_other >= need))
        if len(maybe):
            rows = open_[maybe]
            x = _similarity(f.given_full[a[rows]], f.s1_joined[b[rows]], f.names)
            y = _similarity(f.s1_joined[a[rows]], f.given_full[b[rows]], f.names)
            near[maybe] |= (np.nan_to_num(x) >= SIMILAR) & (np.nan_to_num(y) >= SIMILAR)
        given = np.where(
            g_ok,
            np.where(gs >= 0.999, wt("given_exact") + hi, np.where(near, g_other, wt("given_differs"))),
            0.0,
        )
        keep[open_] = bound[open_] + given >= need
    return keep


def name_frequencies(records: Sequence[MatchRecord]) -> dict[str, float]:
    """Relative frequency of each normalised given name ("g:" keys) and surname ("s:" keys), plus their
    frequency-weighted geometric means ("g:*", "s:*"), for the term-frequency adjustment. The ORM layer can
    compute it once per municipality and pass it to :func:`score_candidates`."""
    return _frame_frequencies(_Frame(records))


def _frame_frequencies(f: _Frame) -> dict[str, float]:
    if not f.n:
        return {}
    size = len(f.names)
    out: dict[str, float] = {}
    for prefix, cols in (("g:", [f.given_full]), ("s:", [f.s1_joined, f.s2_joined])):
        counts = sum(np.bincount(c, minlength=size) for c in cols)
        counts[0] = 0
        total = counts.sum()
        if not total:
            continue
        codes = np.flatnonzero(counts)
        p = counts[codes] / f.n
        for code, value in zip(codes.tolist(), p.tolist(), strict=True):
            out[prefix + f.names[code]] = value
        out[prefix + "*"] = float(2 ** (np.sum(np.log2(p) * counts[codes]) / total))
    return out


def _tf_adjustment(f: _Frame, a, b, tf: dict[str, float], given_exact, surnames_exact) -> np.ndarray:
    """log2(typical frequency / this name's frequency), capped, for exact agreements on given name and surnames."""
    lo, hi = TF_CAP
    names = f.names

    def per_code(prefix: str) -> np.ndarray:
        typical = tf.get(prefix + "*", 0.0)
        out = np.zeros(len(names))
        if typical <= 0:
            return out
        for code, name in enumerate(names):
            p = tf.get(prefix + name)
            if p:
                out[code] = min(hi, max(lo, math.log2(typical / p)))
        return out

    g_adj = per_code("g:")
    s_adj = per_code("s:")
    adj = np.where(given_exact, g_adj[f.given_full[a]], 0.0)
    both = s_adj[f.s1_joined[a]] + np.where(f.s2_joined[a] > 0, s_adj[f.s2_joined[a]], 0.0)
    adj += np.where(surnames_exact, np.clip(both, lo, hi), 0.0)
    return adj


_SHOWN = {"curp_same_valid", "sex_same"}  # reasons too weak or redundant to list: see _reasons()


def _reasons(mask: int) -> list[str]:
    out = []
    for i, name in enumerate(REASON_CODES):
        if mask >> i & 1 and name != "sex_same":
            out.append(name)
    return out


def _pairs(f: _Frame, a, b, prob, bits, threshold: float) -> list[Pair]:
    keep = np.flatnonzero(prob >= threshold)
    keep = keep[np.argsort(-prob[keep], kind="stable")]
    ids = f.ids
    return [Pair(ids[a[i]], ids[b[i]], float(round(prob[i], 4)), _reasons(int(bits[i]))) for i in keep]


def estimate_weights(
    records: Sequence[MatchRecord],
    window: int = WINDOW,
    iterations: int = 40,
    start: dict[str, float] | None = None,
    total_pairs: int | None = None,
) -> dict[str, float]:
    """Fellegi–Sunter weights estimated by expectation–maximisation on the candidate pairs of ``records``.

    Starts from ``start`` (default :data:`WEIGHTS`) and re-estimates m and u of every level and the share of
    matches among candidate pairs, assuming the groups independent given match status (as splink does). Useful
    for data unlike a Mexican census (no families, other corruptions: FEBRL); on household data the documented
    weights are the default, because families break the independence assumption.

    ``total_pairs``: how many pairs could match at all (default every pair, n(n−1)/2; for linking two lists
    A and B, len(A) × len(B)): the prior is the expected number of matches over it.
    """
    start = dict(start or WEIGHTS)
    f = _Frame(records)
    a, b = candidate_pairs(f, window)
    if len(a) < 10:
        return start
    levels = np.zeros((len(GROUPS), len(a)), dtype=np.int64)
    prob0, _ = _score(f, a, b, weights=start, levels=levels)
    # distinct patterns and their counts
    radix = 8
    code = np.zeros(len(a), dtype=np.int64)
    for row in levels:
        code = code * radix + row
    patterns, inverse = _unique_inverse(code)
    counts = np.bincount(inverse).astype(float)
    pat = np.zeros((len(GROUPS), len(patterns)), dtype=np.int64)
    rest = patterns.copy()
    for g in range(len(GROUPS) - 1, -1, -1):
        pat[g] = rest % radix
        rest //= radix
    # u from random pairs (nearly all non-matches), as splink does; only m and the match share are learnt by EM
    rng = np.random.default_rng(0)
    n_random = min(300_000, f.n * (f.n - 1) // 2)
    ra = rng.integers(0, f.n, size=n_random)
    rb = rng.integers(0, f.n, size=n_random)
    keep = ra != rb
    ra, rb = ra[keep], rb[keep]
    rlevels = np.zeros((len(GROUPS), len(ra)), dtype=np.int64)
    _score(f, ra, rb, weights=start, levels=rlevels)
    u_fixed = []
    for g, names in enumerate(GROUPS.values()):
        uu = np.array([(rlevels[g] == i + 1).sum() for i in range(len(names))]) + 0.5
        u_fixed.append(uu / uu.sum())
    # first E step: the posterior of each pattern under the starting weights
    post = np.bincount(inverse, weights=prob0) / counts
    m: list[np.ndarray] = []
    u: list[np.ndarray] = []
    lam = 0.5
    for step in range(iterations + 1):
        if step:
            log_m = np.zeros(len(patterns))
            log_u = np.zeros(len(patterns))
            for g in range(len(GROUPS)):
                present = pat[g] > 0
                idx = pat[g][present] - 1
                log_m[present] += np.log(m[g][idx])
                log_u[present] += np.log(u[g][idx])
            odds = np.exp(np.clip(np.log(lam) - np.log1p(-lam) + log_m - log_u, -700, 700))
            post = odds / (1 + odds)
        wm = counts * post
        lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 0.999))
        m, u = [], []
        for g, names in enumerate(GROUPS.values()):
            mm = np.array([wm[pat[g] == i + 1].sum() for i in range(len(names))]) + 0.5
            m.append(mm / mm.sum())
        u = u_fixed
    out = dict(start)
    for g, names in enumerate(GROUPS.values()):
        for i, nm in enumerate(names):
            out[nm] = float(np.clip(np.log2(m[g][i] / u[g][i]), -20, 20))
    # the prior of a match between two records taken at random (as splink's "probability two random records
    # match"), not among the candidate pairs: u was measured on random pairs, so the scores stay calibrated
    expected = lam * len(a)
    total = total_pairs or f.n * (f.n - 1) / 2
    out["prior"] = float(np.log2(expected / max(total - expected, 1.0)))
    return out


def find_duplicates(
    records: Sequence[MatchRecord],
    threshold: float = POSSIBLE,
    window: int = WINDOW,
    term_frequencies: bool = True,
    weights: dict[str, float] | None = None,
) -> list[Pair]:
    """Every pair of records scoring at least ``threshold``, best first.

    ``term_frequencies``: weigh exact name agreements by how common the name is in ``records``.
    """
    f = _Frame(records)
    a, b = candidate_pairs(f, window)
    if not len(a):
        return []
    tf = _frame_frequencies(f) if term_frequencies else None
    keep = np.flatnonzero(_within_reach(f, a, b, tf, weights or WEIGHTS, threshold))
    a, b = a[keep], b[keep]
    del keep
    if not len(a):
        return []
    prob, bits = _score(f, a, b, tf, weights)
    return _pairs(f, a, b, prob, bits, threshold)


def score_candidates(
    record: MatchRecord,
    candidates: Sequence[MatchRecord],
    threshold: float = POSSIBLE,
    frequencies: dict[str, float] | None = None,
) -> list[Pair]:
    """Score one record against candidates (e.g. fetched by shared blocking keys); ``id_a`` is the record's id.

    ``frequencies``: :func:`name_frequencies` of the municipality, for the term-frequency adjustment (optional).
    """
    others = [c for c in candidates if c.id != record.id]
    if not others:
        return []
    f = _Frame([record, *others])
    b = np.arange(1, f.n, dtype=np.int64)
    a = np.zeros(len(b), dtype=np.int64)
    prob, bits = _score(f, a, b, frequencies)
    return _pairs(f, a, b, prob, bits, threshold)


class BlockIndex:
    """An in-memory index of records by blocking key (e.g. the persons of one municipality)."""

    def __init__(self, records: Iterable[MatchRecord] = ()):
        self.records: dict[int | str, MatchRecord] = {}
        self.keys: dict[str, set[int | str]] = defaultdict(set)
        for r in records:
            self.add(r)

    def add(self, record: MatchRecord) -> None:
        self.records[record.id] = record
        for key in blocking_keys(record):
            self.keys[key].add(record.id)

    def candidates(self, record: MatchRecord, limit: int = 500) -> list[MatchRecord]:
        ids: set[int | str] = set()
        for key in blocking_keys(record):
            ids |= self.keys.get(key, set())
        ids.discard(record.id)
        found = [self.records[i] for i in ids]
        if len(found) > limit:  # keep the nearest in age
            target = _birth_sort_key(record)
            found.sort(key=lambda r: abs(_birth_sort_key(r) - target))
            found = found[:limit]
        return found


def _birth_sort_key(r: MatchRecord) -> float:
    if r.birth_date is not None:
        return r.birth_date.toordinal()
    if r.birth_year:
        return (r.birth_year - 1) * 365 + 182
    return math.inf


def candidates_for(record: MatchRecord, index: BlockIndex, threshold: float = POSSIBLE) -> list[Pair]:
    """Pairs of ``record`` with the indexed records that score at least ``threshold``, best first."""
    return score_candidates(record, index.candidates(record), threshold)
