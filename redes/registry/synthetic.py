"""A seeded synthetic Mexican population with known duplicates (for the demo, tests and benchmarks).

``generate_population(n_persons, seed, dup_rate=0.02)`` returns a :class:`Population`: households (address,
phone), persons as :class:`~redes.registry.matching.MatchRecord` values and the ground-truth duplicate pairs.

* Households of 1–7 members: a head and often a spouse, children carrying the head's first surname and the
  spouse's first surname, sometimes a grandparent; twins (same birth date, different given names) in ~3% of
  households with children. Everyone in a household shares its address; the household phone is shared, some
  members have their own mobile.
* Names: weighted pools of Mexican given names (a third compound: "María José", "José Luis") and surnames (the
  frequent ones — Hernández, García, Martínez … — far more often, and compound ones: "de la Cruz", "del Río").
  Some people have a single surname; some records carry an age instead of a birth date.
* CURPs follow the RENAPO rules (particles and "María"/"José" skipped, Ñ → X, inner vowel and consonants,
  century digit/letter) with a correct check digit; about 60% of persons have one.
* Duplicates: ``dup_rate × n_persons`` extra records, each a copy of a person with 1–3 corruptions from
  :data:`CORRUPTIONS` (accents dropped or added, ñ → n, swapped surnames, missing second surname, compound surname
  split or joined, wrong CURP check digit, typos, day/month swap, age instead of birth date, CURP left out,
  given name shortened, another phone). Most duplicates stay in the household; some are re-censused under
  another household id at the same address, a few at another address (moved).

Everything is deterministic for a seed (numpy's PCG64 and Python's ``random.Random``).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace

import numpy as np
from faker.providers.address.es_MX import Provider as AddressProvider  # noqa: F401  (kept for parity of pools)
from faker.providers.person.es_MX import Provider as PersonProvider

from redes.core.curp import STATE_CODES, curp_check_digit

from .matching import MatchRecord
from .text import PARTICLES, address_key, fold

REFERENCE_DATE = dt.date(2025, 6, 1)

_FREQUENT_SURNAMES = [
    ("Hernández", 60), ("García", 42), ("Martínez", 40), ("López", 38), ("González", 36), ("Pérez", 26),
    ("Rodríguez", 26), ("Sánchez", 25), ("Ramírez", 24), ("Cruz", 16), ("Flores", 15), ("Gómez", 15),
    ("Morales", 12), ("Vázquez", 12), ("Reyes", 12), ("Jiménez", 11), ("Torres", 11), ("Díaz", 10),
    ("Gutiérrez", 10), ("Ruiz", 9), ("Mendoza", 9), ("Aguilar", 9), ("Ortiz", 8), ("Moreno", 8), ("Castillo", 8),
    ("Romero", 8), ("Álvarez", 7), ("Méndez", 7), ("Chávez", 7), ("Rivera", 7), ("Juárez", 7), ("Ramos", 6),
    ("Domínguez", 6), ("Herrera", 6), ("Medina", 6), ("Castro", 6), ("Vargas", 6), ("Guzmán", 5), ("Velázquez", 5),
    ("Muñoz", 5), ("Rojas", 5), ("Salazar", 5), ("Contreras", 5), ("Núñez", 4), ("Ibáñez", 2), ("Peña", 4),
    ("Zúñiga", 2), ("Castañeda", 3), ("Saldaña", 2), ("Ordóñez", 2), ("Yáñez", 2), ("Montaño", 2), ("Treviño", 3),
]  # fmt: skip
_COMPOUND_SURNAMES = [
    ("de la Cruz", 5), ("del Río", 2), ("de los Santos", 3), ("de la Rosa", 3), ("de León", 3), ("de Jesús", 3),
    ("de la Torre", 2), ("de la Garza", 2), ("del Ángel", 2), ("de la Fuente", 1), ("del Valle", 1),
    ("de los Reyes", 1), ("de la O", 1), ("de Anda", 1),
]  # fmt: skip
_FREQUENT_GIVEN_F = [
    ("María", 20), ("Guadalupe", 8), ("Juana", 5), ("Margarita", 4), ("Verónica", 4), ("Leticia", 4), ("Rosa", 4),
    ("Patricia", 4), ("Elizabeth", 3), ("Alejandra", 3), ("Gabriela", 3), ("Adriana", 3), ("Ximena", 2),
    ("Sofía", 3), ("Valentina", 2), ("Regina", 2), ("Fernanda", 3), ("Itzel", 2), ("Citlali", 1), ("Xóchitl", 1),
    ("Araceli", 2), ("Yolanda", 2), ("Begoña", 1), ("Iñes", 1),
]  # fmt: skip
_FREQUENT_GIVEN_M = [
    ("José", 20), ("Juan", 12), ("Luis", 8), ("Carlos", 6), ("Jesús", 6), ("Francisco", 6), ("Miguel", 6),
    ("Antonio", 5), ("Pedro", 4), ("Alejandro", 4), ("Manuel", 4), ("Ricardo", 3), ("Fernando", 3), ("Jorge", 3),
    ("Santiago", 3), ("Mateo", 2), ("Emiliano", 2), ("Cuauhtémoc", 1), ("Íñigo", 1), ("Ángel", 3), ("Noé", 1),
]  # fmt: skip
_STREETS = [
    "Hidalgo", "Benito Juárez", "Morelos", "5 de Mayo", "Independencia", "Reforma", "Allende", "Zaragoza",
    "Guerrero", "Madero", "Niños Héroes", "Aldama", "Emiliano Zapata", "Francisco Villa", "Constitución",
    "16 de Septiembre", "Insurgentes", "Revolución", "Lázaro Cárdenas", "Cuauhtémoc", "Matamoros", "Juan Escutia",
    "Pino Suárez", "Nicolás Bravo", "Galeana", "Abasolo", "Iturbide", "Ocampo", "Degollado", "Colón", "Mina",
    "Vicente Guerrero", "Miguel Alemán", "Las Flores", "Los Pinos", "La Paz", "El Carmen", "San Martín",
    "Las Palmas", "Del Río", "Peñasco", "Cañada",
]  # fmt: skip
_STREET_KINDS = ["Calle", "Calle", "Calle", "Avenida", "Privada", "Callejón", "Cerrada", "Andador"]
_COLONIAS = [
    "Centro", "Progreso", "Renacimiento", "La Laja", "Emiliano Zapata", "Jardín", "Costa Azul", "Icacos",
    "Hornos", "La Garita", "Mozimba", "Vista Alegre", "Santa Cruz", "Cumbres de Llano Largo", "Las Cruces",
]  # fmt: skip

CORRUPTIONS = (
    "accents_dropped",
    "accents_added",
    "enye_to_n",
    "surnames_swapped",
    "second_surname_missing",
    "compound_surname",
    "curp_check_digit",
    "typo_given",
    "typo_surname",
    "day_month_swapped",
    "age_only",
    "curp_missing",
    "given_shortened",
    "phone_changed",
)


@dataclass(slots=True)
class Household:
    id: int
    street: str
    number: str
    colonia: str
    postal_code: str
    phone: str
    lat: float = 0.0
    lon: float = 0.0


@dataclass
class Population:
    records: list[MatchRecord]
    true_pairs: set[tuple[int, int]]  # (smaller id, larger id)
    households: list[Household] = field(default_factory=list)
    corruptions: dict[int, list[str]] = field(default_factory=dict)  # duplicate id -> corruptions applied


def _pool(
    frequent: list[tuple[str, int]], extra: tuple[str, ...], extra_weight: float
) -> tuple[list[str], np.ndarray]:
    names = [n for n, _ in frequent]
    weights = [float(w) for _, w in frequent]
    seen = set(names)
    for n in extra:
        if n not in seen:
            names.append(n)
            weights.append(extra_weight)
            seen.add(n)
    p = np.array(weights)
    return names, p / p.sum()


def _pools():
    surnames, sp = _pool(
        _FREQUENT_SURNAMES + _COMPOUND_SURNAMES,
        tuple(n.replace("Crúz", "Cruz") for n in PersonProvider.last_names),
        0.8,
    )
    female, fp = _pool(_FREQUENT_GIVEN_F, PersonProvider.first_names_female, 0.6)
    male, mp = _pool(_FREQUENT_GIVEN_M, PersonProvider.first_names_male, 0.6)
    return surnames, sp, female, fp, male, mp


# ---------------------------------------------------------------------------------------------------- CURP


def _curp_letters(text: str) -> str:
    return fold(text.replace("ñ", "x").replace("Ñ", "X")).upper().replace(" ", "")


def _core_words(text: str) -> list[str]:
    words = fold(text.replace("ñ", "x").replace("Ñ", "X")).split()
    return [w.upper() for w in words if w not in PARTICLES]


def _inner_vowel(word: str) -> str:
    for ch in word[1:]:
        if ch in "AEIOU":
            return ch
    return "X"


def _inner_consonant(word: str) -> str:
    for ch in word[1:]:
        if ch not in "AEIOU":
            return ch
    return "X"


def build_curp(
    given: str, surname1: str, surname2: str, birth: dt.date, sex: str, state: str, diff: str
) -> str:
    """A CURP following RENAPO's rules (without the inconvenient-words table) with a correct check digit."""
    s1 = "".join(_core_words(surname1)) or "X"
    s2 = "".join(_core_words(surname2))
    names = _core_words(given) or ["X"]
    g = names[1] if len(names) > 1 and names[0] in ("MARIA", "MA", "JOSE", "J") else names[0]
    first17 = (
        s1[0]
        + _inner_vowel(s1)
        + (s2[0] if s2 else "X")
        + g[0]
        + birth.strftime("%y%m%d")
        + sex
        + state
        + _inner_consonant(s1)
        + (_inner_consonant(s2) if s2 else "X")
        + _inner_consonant(g)
        + diff
    )
    return first17 + curp_check_digit(first17)


# ---------------------------------------------------------------------------------------------------- corruptions

_ACCENTS = str.maketrans("áéíóúÁÉÍÓÚñÑüÜ", "aeiouAEIOUnNuU")
_ADD_ACCENT = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú"}


def _drop_accents(text: str) -> str:
    return text.translate(_ACCENTS) if text else text


def _add_accent(text: str, rnd: random.Random) -> str:
    spots = [i for i, ch in enumerate(text) if ch in _ADD_ACCENT]
    if not spots:
        return text
    i = rnd.choice(spots)
    return text[:i] + _ADD_ACCENT[text[i]] + text[i + 1 :]


def _typo(text: str, rnd: random.Random) -> str:
    if len(text) < 3:
        return text
    i = rnd.randrange(1, len(text) - 1)  # keep the first letter: people rarely mistype it
    kind = rnd.randrange(4)
    letters = "abcdefghijlmnoprstuvz"
    if kind == 0:  # substitution
        return text[:i] + rnd.choice(letters) + text[i + 1 :]
    if kind == 1:  # deletion
        return text[:i] + text[i + 1 :]
    if kind == 2:  # insertion
        return text[:i] + rnd.choice(letters) + text[i:]
    return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]  # transposition


def _corrupt(r: MatchRecord, kinds: list[str], rnd: random.Random, new_id: int) -> MatchRecord:
    d = replace(r, id=new_id)
    for kind in kinds:
        if kind == "accents_dropped":
            d.given, d.surname1, d.surname2 = map(_drop_accents, (d.given, d.surname1, d.surname2))
        elif kind == "accents_added":
            d.given = _add_accent(d.given, rnd)
            d.surname1 = _add_accent(d.surname1, rnd)
        elif kind == "enye_to_n":
            d.given, d.surname1, d.surname2 = (
                x.replace("ñ", "n").replace("Ñ", "N") for x in (d.given, d.surname1, d.surname2)
            )
            d.given, d.surname1 = d.given.upper(), d.surname1.upper()  # typed in capitals on an old keyboard
        elif kind == "surnames_swapped" and d.surname2:
            d.surname1, d.surname2 = d.surname2, d.surname1
        elif kind == "second_surname_missing":
            d.surname2 = ""
        elif kind == "compound_surname":
            for attr in ("surname1", "surname2"):
                value = getattr(d, attr)
                words = value.split()
                if len(words) > 1:
                    choice = rnd.randrange(3)
                    if choice == 0:  # particles lost
                        value = " ".join(w for w in words if fold(w) not in PARTICLES)
                    elif choice == 1:  # joined
                        value = "".join(words).capitalize()
                    else:  # capitalised particles
                        value = " ".join(w.capitalize() for w in words)
                    setattr(d, attr, value)
                    break
        elif kind == "curp_check_digit" and d.curp:
            d.curp = d.curp[:17] + str((int(d.curp[17]) + rnd.randrange(1, 10)) % 10)
        elif kind == "typo_given":
            d.given = _typo(d.given, rnd)
        elif kind == "typo_surname":
            d.surname1 = _typo(d.surname1, rnd)
        elif kind == "day_month_swapped" and d.birth_date is not None:
            b = d.birth_date
            if b.day <= 12 and b.day != b.month:
                d.birth_date = b.replace(month=b.day, day=b.month)
            else:  # a mistyped day instead
                d.birth_date = b.replace(day=min(28, (b.day % 28) + 1))
        elif kind == "age_only" and d.birth_date is not None:
            b = d.birth_date
            age = (
                REFERENCE_DATE.year - b.year - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (b.month, b.day))
            )
            d.birth_date, d.birth_year = None, REFERENCE_DATE.year - age
        elif kind == "curp_missing":
            d.curp = ""
        elif kind == "given_shortened" and len(d.given.split()) > 1:
            d.given = d.given.split()[0]
        elif kind == "phone_changed":
            d.phone = "+52744" + "".join(rnd.choice("0123456789") for _ in range(7))
    return d


# ---------------------------------------------------------------------------------------------------- population


def generate_population(
    n_persons: int, seed: int = 0, dup_rate: float = 0.02, curp_rate: float = 0.6, age_only_rate: float = 0.03
) -> Population:
    """``n_persons`` persons in households plus ``round(dup_rate * n_persons)`` corrupted duplicates."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    surnames, sp, female, fp, male, mp = _pools()
    states = [s for s in STATE_CODES if s != "NE"]
    home_state = "GR"
    postal_codes = [f"39{int(x):03d}" for x in rng.choice(1000, size=60, replace=False)]

    # household sizes until n persons
    sizes = rng.choice(
        [1, 2, 3, 4, 5, 6, 7], size=n_persons // 2 + 10, p=[0.1, 0.2, 0.22, 0.23, 0.14, 0.07, 0.04]
    )
    cum = np.cumsum(sizes)
    n_households = int(np.searchsorted(cum, n_persons)) + 1
    sizes = sizes[:n_households]
    sizes[-1] -= int(cum[n_households - 1] - n_persons)

    # per-household draws
    H = n_households
    s_head = rng.choice(len(surnames), size=(H, 2), p=sp)
    s_spouse = rng.choice(len(surnames), size=(H, 2), p=sp)
    head_year = rng.integers(1945, 2003, size=H)
    street = rng.integers(0, len(_STREETS), size=H)
    street_kind = rng.integers(0, len(_STREET_KINDS), size=H)
    number = rng.integers(1, 400, size=H)
    colonia = rng.integers(0, len(_COLONIAS), size=H)
    pc = rng.integers(0, len(postal_codes), size=H)
    phones = rng.integers(10**7, 10**8, size=H)
    head_female = rng.random(H) < 0.3
    twins = rng.random(H) < 0.03

    # per-person draws (more than needed; consumed in order)
    total = int(sizes.sum())
    g_f = rng.choice(len(female), size=(total, 2), p=fp)
    g_m = rng.choice(len(male), size=(total, 2), p=mp)
    compound_given = rng.random(total) < 0.33
    own_phone = rng.random(total) < 0.5
    own_phones = rng.integers(10**7, 10**8, size=total)
    days = rng.integers(0, 365, size=total)
    has_curp = rng.random(total) < curp_rate
    age_only = rng.random(total) < age_only_rate
    single_surname = rng.random(total) < 0.02
    sex_x = rng.random(total) < 0.002
    female_draw = rng.random(total) < 0.5
    born_elsewhere = rng.random(total) < 0.2
    other_state = rng.integers(0, len(states), size=total)

    households: list[Household] = []
    records: list[MatchRecord] = []
    pid = 0
    issued: set[str] = set()
    for h in range(H):
        hh_phone = f"+52744{phones[h]:07d}"[:13]
        street_name = f"{_STREET_KINDS[street_kind[h]]} {_STREETS[street[h]]}"
        household = Household(
            id=h + 1,
            street=street_name,
            number=str(number[h]),
            colonia=_COLONIAS[colonia[h]],
            postal_code=postal_codes[pc[h]],
            phone=hh_phone,
        )
        households.append(household)
        akey = address_key(street_name, household.number, household.postal_code)
        hy = int(head_year[h])
        head_s = (surnames[s_head[h, 0]], surnames[s_head[h, 1]])
        spouse_s = (surnames[s_spouse[h, 0]], surnames[s_spouse[h, 1]])
        members: list[tuple[tuple[str, str], int, bool]] = []  # (surnames, birth year, female)
        size = int(sizes[h])
        for k in range(size):
            if k == 0:
                members.append((head_s, hy, bool(head_female[h])))
            elif k == 1 and size > 2 or (k == 1 and rnd.random() < 0.5):
                members.append((spouse_s, hy + rnd.randint(-6, 6), not head_female[h]))
            elif k == size - 1 and size >= 5 and hy > 1965:
                members.append(
                    ((head_s[1], surnames[s_spouse[h, 1]]), hy - rnd.randint(20, 30), rnd.random() < 0.6)
                )
            else:
                father, mother = (spouse_s, head_s) if head_female[h] else (head_s, spouse_s)
                child_year = hy + 18 + 2 * k + rnd.randint(0, 4)
                if child_year >= REFERENCE_DATE.year:
                    child_year = rnd.randint(min(hy + 16, REFERENCE_DATE.year - 1), REFERENCE_DATE.year - 1)
                members.append(((father[0], mother[0]), child_year, None))
        twin_done = False
        child_dates: list[dt.date] = []
        child_names: list[str] = []
        used_names: set[str] = set()
        for k, (sn, year, fem) in enumerate(members):
            i = pid
            pid += 1
            if fem is None:
                fem = bool(female_draw[i])
            pool, codes = (female, g_f) if fem else (male, g_m)
            given = pool[codes[i, 0]]
            if compound_given[i] and pool[codes[i, 1]] != given:
                given = f"{given} {pool[codes[i, 1]]}"
            while given in used_names:  # parents do not give two children the same name
                given = f"{given.split()[0]} {pool[rnd.randrange(len(pool))]}"
            birth = dt.date(int(year), 1, 1) + dt.timedelta(days=int(days[i]))
            if birth > REFERENCE_DATE:
                birth = REFERENCE_DATE - dt.timedelta(days=30)
            is_child = k >= 2 and sn[0] in (head_s[0], spouse_s[0]) and year > hy
            if twins[h] and is_child and child_dates and not twin_done:
                birth = child_dates[-1]  # twin of the previous child, another given name
                twin_done = True
                while given.split()[0] == child_names[-1].split()[0]:
                    given = pool[rnd.randrange(len(pool))]
            used_names.add(given)
            if is_child:
                child_dates.append(birth)
                child_names.append(given)
            s1, s2 = sn
            if single_surname[i]:
                s2 = ""
            sex = "X" if sex_x[i] else ("M" if fem else "H")
            state = states[other_state[i]] if born_elsewhere[i] else home_state
            curp = ""
            if has_curp[i]:
                digits = "0123456789" if birth.year < 2000 else "ABCDEFGHIJKLMNPQRSTUVWXYZ"
                for diff in digits:  # RENAPO's differentiator keeps homonyms (and twins) apart
                    curp = build_curp(given, s1, s2, birth, sex, state, diff)
                    if curp[:17] not in issued:
                        break
                issued.add(curp[:17])
            rec = MatchRecord(
                id=i + 1,
                given=given,
                surname1=s1,
                surname2=s2,
                birth_date=birth,
                sex=sex,
                curp=curp,
                address=akey,
                phone=f"+52744{own_phones[i]:07d}"[:13] if own_phone[i] else hh_phone,
                household=h + 1,
            )
            if age_only[i]:
                age = (
                    REFERENCE_DATE.year
                    - birth.year
                    - ((REFERENCE_DATE.month, REFERENCE_DATE.day) < (birth.month, birth.day))
                )
                rec.birth_date, rec.birth_year = None, REFERENCE_DATE.year - age
            records.append(rec)

    # duplicates
    n_dups = int(round(dup_rate * n_persons))
    originals = rng.choice(len(records), size=min(n_dups, len(records)), replace=False)
    true_pairs: set[tuple[int, int]] = set()
    corruptions: dict[int, list[str]] = {}
    next_id = len(records) + 1
    kinds_all = list(CORRUPTIONS)
    weights = [1, 0.6, 0.6, 1.2, 1.2, 1.2, 1, 1, 1, 1, 1, 0.8, 0.6, 0.6]
    for o in originals:
        orig = records[int(o)]
        k = rnd.choice((1, 1, 2, 2, 3))
        kinds = list(dict.fromkeys(rnd.choices(kinds_all, weights=weights, k=k)))
        dup = _corrupt(orig, kinds, rnd, next_id)
        where = rnd.random()
        if where < 0.2:  # re-censused as another household at the same address
            dup.household = len(households) + 1 + int(o)
        elif where < 0.3:  # moved
            other = households[rnd.randrange(len(households))]
            dup.address = address_key(other.street, other.number, other.postal_code)
            dup.household = other.id
            dup.phone = other.phone if rnd.random() < 0.5 else dup.phone
        records.append(dup)
        corruptions[next_id] = kinds
        true_pairs.add((orig.id, next_id))
        next_id += 1
    return Population(records=records, true_pairs=true_pairs, households=households, corruptions=corruptions)
