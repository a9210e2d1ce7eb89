"""Duplicate detection against the database: fetch likely candidates by indexed keys, score them.

The scoring itself is pure (``registry.matching``); this module only knows where candidates come from:
the same CURP (or the same first 16 characters, for a wrong check digit), the same birth date, or a shared
surname (either position, for swapped surnames) with a birth year within one.
"""

from __future__ import annotations

from django.db.models import Q

from .models import Person, RecordStatus

_FIELDS = (
    "pk",
    "given_name",
    "surname1",
    "surname2",
    "birth_date",
    "birth_year",
    "sex",
    "curp",
    "phone",
    "household_id",
    "household__address_key",
    "surname1_key",
    "surname2_key",
)
MAX_CANDIDATES = 500


def _candidate_q(person: Person) -> Q:
    q = Q(pk__in=[])
    if person.curp:
        q |= Q(curp__startswith=person.curp[:16])
    if person.birth_date:
        q |= Q(birth_date=person.birth_date)
    surnames = [s for s in (person.surname1_key, person.surname2_key) if s]
    if surnames:
        by_name = Q(surname1_key__in=surnames) | Q(surname2_key__in=surnames)
        if person.birth_year:
            by_name &= Q(birth_year__range=(person.birth_year - 1, person.birth_year + 1)) | Q(
                birth_year__isnull=True
            )
        q |= by_name
    return q


def to_record(row: dict):
    from .matching import MatchRecord

    return MatchRecord(
        id=row["pk"],
        given=row["given_name"],
        surname1=row["surname1"],
        surname2=row["surname2"],
        birth_date=row["birth_date"],
        birth_year=row["birth_year"],
        sex=row["sex"],
        curp=row["curp"],
        address=row["household__address_key"],
        phone=row["phone"],
        household=row["household_id"],
    )


def candidates_for_person(person: Person) -> list[tuple[int, float, list[str]]]:
    """``[(other person id, score, reasons)]`` for the probable and possible duplicates of ``person``."""
    from . import matching

    rows = list(
        Person.objects.filter(municipality_id=person.municipality_id, status=RecordStatus.ACTIVE)
        .filter(_candidate_q(person))
        .exclude(pk=person.pk)
        .values(*_FIELDS)[:MAX_CANDIDATES]
    )
    if not rows:
        return []
    me = Person.objects.filter(pk=person.pk).values(*_FIELDS).get()
    pairs = matching.score_candidates(to_record(me), [to_record(r) for r in rows])
    return [(pair.id_b, pair.score, pair.reasons) for pair in pairs]
