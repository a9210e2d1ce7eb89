"""Fast writes of many households and persons: the bulk import and the demo generator.

Inputs are already clean (``registry.importing`` validates; the demo generates valid data). Each call is **one
transaction**: either every row of the call is written (with the per-block counts and one audit row) or none is.
New rows get their primary keys reserved up front (``core.db.reserve_ids``) and are written once, through COPY on
PostgreSQL and ``executemany`` on SQLite (``core.db.copy_rows``, the mechanism of the territory bulk writer).
Rows that carry an ``id`` already exist (a re-import matched them by external id) and are updated in place, in
batches, instead of being duplicated.

What the services keep in step is kept here too, with the services' own functions: the name keys
(``services.set_keys``), the address key (``text.address_key``), ``members_count``, the household priority
and its explanation (``vulnerability.score`` with the municipality's weights, ``services.policy_for``), and the
per-block counts (``BlockCounts``): incremented for the blocks touched by a small insert-only call, rebuilt
for the municipality (``services.recount``) after updates or a large call.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from redes.audit.services import record
from redes.core.db import adapt_datetime, copy_rows, lock_tree, reserve_ids

from . import services, vulnerability
from .models import BlockCounts, DuplicateCandidate, Household, Person, Phone, RecordStatus, Relation
from .text import address_key

#: Above this many households, the block counts are rebuilt for the municipality rather than incremented.
RECOUNT_ABOVE = 20000
#: … and when more blocks than this are touched (one GROUP BY beats thousands of single-row updates).
RECOUNT_BLOCKS_ABOVE = 500


@dataclass(slots=True)
class HouseholdRow:
    node_id: int
    external_id: str = ""
    street: str = ""
    ext_number: str = ""
    int_number: str = ""
    colonia: str = ""
    postal_code: str = ""
    reference: str = ""
    lat: float | None = None
    lon: float | None = None
    preferred_channel: str = "whatsapp"
    #: ``(E.164 number, whatsapp, sms, voice)``
    phones: Sequence[tuple[str, bool, bool, bool]] = ()
    last_visit_at: dt.datetime | None = None
    #: The id of an existing household to update (re-import); ``None`` for a new one.
    id: int | None = None


@dataclass(slots=True)
class PersonRow:
    #: Index into the ``households`` list passed in the same call.
    household: int
    external_id: str = ""
    full_name: str = ""
    given_name: str = ""
    surname1: str = ""
    surname2: str = ""
    birth_date: dt.date | None = None
    birth_year: int | None = None
    age_stated: bool = False
    sex: str = ""
    curp: str = ""
    phone: str = ""
    relation: str = ""
    factors: Sequence[str] = field(default_factory=list)
    #: The id of an existing person to update (re-import); ``None`` for a new one.
    id: int | None = None
    #: Search keys, filled by ``write`` (``services.set_keys``).
    given_key: str = ""
    given2_key: str = ""
    surname1_key: str = ""
    surname2_key: str = ""


@dataclass
class WriteResult:
    #: The id of each household passed in, in order (new or updated).
    household_ids: list[int]
    #: The id of each person passed in, in order (new or updated).
    person_ids: list[int]
    households_created: int = 0
    households_updated: int = 0
    persons_created: int = 0
    persons_updated: int = 0


_HOUSEHOLD_COLUMNS = (
    "id", "uuid", "municipality_id", "node_id", "external_id", "street", "ext_number", "int_number", "colonia",
    "postal_code", "reference", "address_key", "lat", "lon", "preferred_channel", "members_count", "priority",
    "priority_explanation", "last_visit_at", "status", "created_at", "updated_at", "created_by_id",
)  # fmt: skip
_HOUSEHOLD_UPDATE = (
    "node_id", "street", "ext_number", "int_number", "colonia", "postal_code", "reference", "address_key",
    "lat", "lon", "preferred_channel", "updated_at",
)  # fmt: skip
_PERSON_COLUMNS = (
    "id", "uuid", "municipality_id", "household_id", "node_id", "external_id", "full_name", "given_name",
    "surname1", "surname2", "birth_date", "birth_year", "age_stated", "sex", "curp", "phone", "relation",
    "factors", "sensitive_data", "given_key", "given2_key", "surname1_key", "surname2_key", "status",
    "created_at", "updated_at", "created_by_id",
)  # fmt: skip
_PERSON_UPDATE = (
    "household_id", "node_id", "full_name", "given_name", "surname1", "surname2", "birth_date", "birth_year",
    "age_stated", "sex", "curp", "phone", "relation", "factors", "given_key", "given2_key", "surname1_key",
    "surname2_key", "updated_at",
)  # fmt: skip
_PHONE_COLUMNS = ("id", "household_id", "municipality_id", "number", "whatsapp", "sms", "voice", "label")


#: Columns an update leaves as they are when the file gives them blank.
_KEEP_WHEN_BLANK = frozenset({"relation"})


def fill_keys(persons: Sequence[PersonRow]) -> None:
    """Set the search keys of each person with the services' own logic (``services.set_keys``), called once per
    distinct given name and once per distinct surname (names repeat a lot in a population)."""
    given_keys: dict[str, tuple[str, str]] = {}
    surname_keys: dict[str, str] = {}
    probe = SimpleNamespace(given_name="", surname1="", surname2="")
    for p in persons:
        given = given_keys.get(p.given_name)
        if given is None:
            probe.given_name, probe.surname1 = p.given_name, ""
            services.set_keys(probe)
            given = given_keys[p.given_name] = (probe.given_key, probe.given2_key)
        p.given_key, p.given2_key = given
        key = surname_keys.get(p.surname1)
        if key is None:
            probe.given_name, probe.surname1 = "", p.surname1
            services.set_keys(probe)
            key = surname_keys[p.surname1] = probe.surname1_key
        p.surname1_key = key
        key = surname_keys.get(p.surname2)
        if key is None:
            probe.given_name, probe.surname1 = "", p.surname2
            services.set_keys(probe)
            key = surname_keys[p.surname2] = probe.surname1_key
        p.surname2_key = key


def uuid4_hexes(count: int) -> list[str]:
    """``count`` random version-4 UUIDs as 32 hex digits (what SQLite stores; PostgreSQL's COPY reads it too),
    from one read of the system's randomness, the version and variant bits set as ``uuid.UUID(version=4)`` does."""
    import numpy as np

    if count <= 0:
        return []
    data = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    data[:, 6] = (data[:, 6] & 0x0F) | 0x40
    data[:, 8] = (data[:, 8] & 0x3F) | 0x80
    text = data.tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * count, 32)]


def _actor_id(actor) -> int | None:
    return actor.pk if getattr(actor, "is_authenticated", False) else None


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _update_rows(model, columns: Sequence[str], rows: list[tuple], batch: int) -> None:
    """``UPDATE table SET columns… WHERE id = …`` for each row ``(*values, id)``, in batches."""
    conn = connections[model.objects.db]
    table = conn.ops.quote_name(model._meta.db_table)
    sets = ", ".join(
        f"{conn.ops.quote_name(c)} = %s"
        if c not in _KEEP_WHEN_BLANK
        else f"{conn.ops.quote_name(c)} = COALESCE(NULLIF(%s, ''), {conn.ops.quote_name(c)})"
        for c in columns
    )
    sql = f"UPDATE {table} SET {sets} WHERE id = %s"  # noqa: S608 (model table and column names)
    with conn.cursor() as cursor:
        for chunk in _chunks(rows, batch):
            cursor.executemany(sql, chunk)


def write(
    municipality_id: int,
    households: Sequence[HouseholdRow],
    persons: Sequence[PersonRow],
    *,
    actor=None,
    created_at: dt.datetime | None = None,
    batch: int = 20000,
    progress: Callable[[int], None] | None = None,
    action: str = "registry.household.bulk_write",
    address_keys: Sequence[str] | None = None,
    keys_filled: bool = False,
) -> WriteResult:
    """Write households and their persons in one transaction (all or nothing); see the module docstring.

    Households with ``id`` set are updated (address, block, phones replaced); persons with ``id`` set are
    updated (and moved to their row's household). ``progress`` is called with the number of rows (households +
    persons) written after each batch. Returns the ids of every row passed in, in order. ``address_keys`` (one
    per household, ``text.address_key``) and ``keys_filled`` (``fill_keys`` already ran on ``persons``) let a
    caller that computed them already skip that work.
    """
    municipality_id = getattr(municipality_id, "pk", municipality_id)
    now = timezone.now()
    created_at = created_at or now
    today = timezone.localdate()
    policy = services.policy_for(municipality_id)
    weights = vulnerability.weights_for(policy.weights)
    threshold = policy.priority_threshold
    user_id = _actor_id(actor)

    with transaction.atomic():
        lock_tree(municipality_id)
        conn = connections[Household.objects.db]
        postgres = conn.vendor == "postgresql"
        if not postgres and len(persons) > 10000:
            with conn.cursor() as cursor:  # a bigger page cache for this connection: the indexes are large
                cursor.execute("PRAGMA cache_size = -262144")
        created_db = adapt_datetime(created_at, Household)
        now_db = adapt_datetime(now, Household)

        def db_date(value):
            return value if postgres or value is None else value.isoformat()

        def db_dt(value):
            return None if value is None else adapt_datetime(value, Household)

        # ---- households: ids, members and priority of new ones (their members are all in this call)
        new_h = [i for i, h in enumerate(households) if h.id is None]
        household_ids = [h.id for h in households]
        for i, pk in zip(new_h, reserve_ids(Household, len(new_h)), strict=True):
            household_ids[i] = pk
        members: dict[int, list[PersonRow]] = defaultdict(list)
        for p in persons:
            members[p.household].append(p)
        if not keys_filled:
            fill_keys(persons)
        db_uuids = iter(uuid4_hexes(len(new_h) + len(persons)))
        json_of: dict[tuple, str] = {}

        def factors_json(factors) -> str:
            key = tuple(factors or ())
            found = json_of.get(key)
            if found is None:
                found = json_of[key] = json.dumps(list(key))
            return found

        def members_of(i):
            return [
                vulnerability.Member(
                    tuple(p.factors or ()), (), vulnerability.age_on(p.birth_date, p.birth_year, today)
                )
                for p in members.get(i, ())
            ]

        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        if address_keys is None:
            address_keys = [address_key(h.street, h.ext_number, h.postal_code) for h in households]
        rows = []
        for i in new_h:
            h = households[i]
            group = members_of(i)
            score, explanation = vulnerability.score(group, weights) if group else (0, [])
            rows.append(
                (
                    household_ids[i], next(db_uuids), municipality_id, h.node_id,
                    h.external_id, h.street, h.ext_number, h.int_number, h.colonia, h.postal_code, h.reference,
                    address_keys[i], h.lat, h.lon, h.preferred_channel,
                    len(group), score, json.dumps(explanation), db_dt(h.last_visit_at), RecordStatus.ACTIVE.value,
                    created_db, now_db, user_id,
                )
            )  # fmt: skip
            d = deltas[h.node_id]
            d[0] += 1
            d[1] += len(group)
            d[2] += score >= threshold
            d[3] += h.last_visit_at is not None
        for chunk in _chunks(rows, batch):
            copy_rows(Household, _HOUSEHOLD_COLUMNS, chunk)
            if progress:
                progress(len(chunk))

        old_h = [i for i, h in enumerate(households) if h.id is not None]
        if old_h:
            _update_rows(
                Household,
                _HOUSEHOLD_UPDATE,
                [
                    (
                        h.node_id,
                        h.street,
                        h.ext_number,
                        h.int_number,
                        h.colonia,
                        h.postal_code,
                        h.reference,
                        address_keys[i],
                        h.lat,
                        h.lon,
                        h.preferred_channel,
                        now_db,
                        h.id,
                    )
                    for i, h in ((i, households[i]) for i in old_h)
                ],  # fmt: skip
                batch,
            )
            if progress:
                progress(len(old_h))
            # Phones of updated households are replaced by the file's.
            for chunk in _chunks([households[i].id for i in old_h], 5000):
                Phone.objects.filter(household_id__in=chunk).delete()

        # ---- phones
        phone_rows = []
        for i, h in enumerate(households):
            seen = set()
            for number, whatsapp, sms, voice in h.phones or ():
                if number and number not in seen:
                    seen.add(number)
                    phone_rows.append([household_ids[i], municipality_id, number, whatsapp, sms, voice, ""])
        for row, pk in zip(phone_rows, reserve_ids(Phone, len(phone_rows)), strict=True):
            row.insert(0, pk)
        for chunk in _chunks(phone_rows, batch):
            copy_rows(Phone, _PHONE_COLUMNS, chunk)

        # ---- persons
        node_of = [h.node_id for h in households]
        new_p = [j for j, p in enumerate(persons) if p.id is None]
        person_ids = [p.id for p in persons]
        for j, pk in zip(new_p, reserve_ids(Person, len(new_p)), strict=True):
            person_ids[j] = pk
        heads = {p.household for p in persons if p.relation == Relation.HEAD.value}
        rows = []
        for j in new_p:
            p = persons[j]
            relation = p.relation
            if not relation and households[p.household].id is None and p.household not in heads:
                relation = Relation.HEAD.value  # as services.add_person: the first member is the head
                heads.add(p.household)
            rows.append(
                (
                    person_ids[j], next(db_uuids), municipality_id, household_ids[p.household],
                    node_of[p.household], p.external_id, p.full_name, p.given_name, p.surname1, p.surname2,
                    db_date(p.birth_date), p.birth_year, p.age_stated, p.sex, p.curp, p.phone, relation,
                    factors_json(p.factors), "", p.given_key, p.given2_key, p.surname1_key,
                    p.surname2_key, RecordStatus.ACTIVE.value, created_db, now_db, user_id,
                )
            )  # fmt: skip
        for chunk in _chunks(rows, batch):
            copy_rows(Person, _PERSON_COLUMNS, chunk)
            if progress:
                progress(len(chunk))
        old_p = [j for j, p in enumerate(persons) if p.id is not None]
        moved_from: set[int] = set()
        if old_p:
            for chunk in _chunks([persons[j].id for j in old_p], 5000):
                moved_from.update(Person.objects.filter(pk__in=chunk).values_list("household_id", flat=True))
            _update_rows(
                Person,
                _PERSON_UPDATE,
                [
                    (
                        household_ids[p.household],
                        node_of[p.household],
                        p.full_name,
                        p.given_name,
                        p.surname1,
                        p.surname2,
                        db_date(p.birth_date),
                        p.birth_year,
                        p.age_stated,
                        p.sex,
                        p.curp,
                        p.phone,
                        p.relation,
                        factors_json(p.factors),
                        p.given_key,
                        p.given2_key,
                        p.surname1_key,
                        p.surname2_key,
                        now_db,
                        p.id,
                    )
                    for p in (persons[j] for j in old_p)
                ],  # fmt: skip
                batch,
            )
            if progress:
                progress(len(old_p))

        # ---- households whose members may have changed outside this call: rescore from the database
        touched = {households[i].id for i in old_h} | moved_from
        if touched:
            _rescore(municipality_id, touched, weights, today)
            # Persons follow their household's block (a re-import may move a household).
            for i in old_h:
                Person.objects.filter(household_id=households[i].id).exclude(
                    node_id=households[i].node_id
                ).update(node_id=households[i].node_id)

        # ---- per-block counts
        if touched or len(households) > RECOUNT_ABOVE or len(deltas) > RECOUNT_BLOCKS_ABOVE:
            services.recount(municipality_id)
        else:
            _add_counts(municipality_id, deltas)

        result = WriteResult(
            household_ids=household_ids,
            person_ids=person_ids,
            households_created=len(new_h),
            households_updated=len(old_h),
            persons_created=len(new_p),
            persons_updated=len(old_p),
        )
        record(
            action,
            actor=actor,
            municipality=municipality_id,
            summary="bulk",
            changes={
                "households_created": result.households_created,
                "households_updated": result.households_updated,
                "persons_created": result.persons_created,
                "persons_updated": result.persons_updated,
            },
        )
    return result


def update(
    municipality_id: int,
    households: Sequence[HouseholdRow],
    persons: Sequence[PersonRow],
    **kwargs,
) -> WriteResult:
    """Update existing rows (every household and person must carry its ``id``); same rules as ``write``."""
    if any(h.id is None for h in households) or any(p.id is None for p in persons):
        raise ValueError("update() takes existing rows only (id set)")
    return write(municipality_id, households, persons, **kwargs)


def _rescore(municipality_id: int, household_ids: set[int], weights: dict, today: dt.date) -> None:
    """Recompute members_count and priority of existing households from their active members."""
    ids = sorted(household_ids)
    for chunk in _chunks(ids, 5000):
        groups: dict[int, list] = {pk: [] for pk in chunk}
        for row in Person.objects.filter(household_id__in=chunk, status=RecordStatus.ACTIVE).values_list(
            "household_id", "factors", "birth_date", "birth_year", "sensitive_data"
        ):
            sensitive = services.sensitive_factors(SimpleNamespace(sensitive_data=row[4]))
            groups[row[0]].append(
                vulnerability.Member(
                    tuple(row[1] or ()), sensitive, vulnerability.age_on(row[2], row[3], today)
                )
            )
        updates = []
        for pk, group in groups.items():
            score, explanation = vulnerability.score(group, weights) if group else (0, [])
            updates.append(
                Household(pk=pk, members_count=len(group), priority=score, priority_explanation=explanation)
            )
        Household.objects.bulk_update(
            updates, ["members_count", "priority", "priority_explanation"], batch_size=1000
        )


def _add_counts(municipality_id: int, deltas: dict[int, list[int]]) -> None:
    """Add per-block increments ``[households, persons, priority, visited]`` to ``BlockCounts``."""
    names = ("households", "persons", "priority_households", "visited_households")
    nodes = sorted(deltas)
    for chunk in _chunks(nodes, 2000):
        existing = set(
            BlockCounts.objects.select_for_update()
            .filter(node_id__in=chunk)
            .values_list("node_id", flat=True)
        )
        BlockCounts.objects.bulk_create(
            [
                BlockCounts(
                    node_id=n, municipality_id=municipality_id, **dict(zip(names, deltas[n], strict=True))
                )
                for n in chunk
                if n not in existing
            ]
        )
        for n in chunk:
            if n in existing:
                BlockCounts.objects.filter(node_id=n).update(
                    **{name: F(name) + v for name, v in zip(names, deltas[n], strict=True) if v}
                )


_CANDIDATE_COLUMNS = (
    "id", "uuid", "municipality_id", "node_id", "person_a_id", "person_b_id", "score", "reasons", "status",
    "source", "created_at",
)  # fmt: skip


def add_duplicate_candidates(
    municipality_id: int, pairs: Sequence[tuple], *, source: str, batch: int = 20000
) -> int:
    """Queue many pairs for review at once: ``pairs`` are ``(person_a_id, person_b_id, node_id, score, reasons)``
    with ``person_a_id < person_b_id``, none stored yet (the caller filters). Reserved ids and COPY, like the
    rest of this module; the caller writes the audit row. Returns how many were written."""
    now = adapt_datetime(timezone.now(), DuplicateCandidate)
    rows = [
        (pk, u, municipality_id, node_id, pa, pb, float(score), json.dumps(list(reasons)),
         DuplicateCandidate.Status.PENDING.value, source, now)
        for pk, u, (pa, pb, node_id, score, reasons) in zip(
            reserve_ids(DuplicateCandidate, len(pairs)), uuid4_hexes(len(pairs)), pairs, strict=True
        )
    ]  # fmt: skip
    for chunk in _chunks(rows, batch):
        copy_rows(DuplicateCandidate, _CANDIDATE_COLUMNS, chunk)
    return len(rows)
