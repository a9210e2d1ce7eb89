"""Every write to the registry, and the one audited read of sensitive data.

Views, API handlers, commands, imports and the demo call these functions; none of them writes the models
directly. Each function takes the acting user as ``actor=`` (``None`` for system jobs), runs in a transaction,
keeps the per-block counts (``BlockCounts``, ADR 0004) and the household priority in step, and writes an audit
row that names records by UUID, never by personal data.

Permission checks (which user may call what, where) belong to the callers through ``accounts.scoping``, as in
the other apps; the exception is sensitive data, which these functions guard themselves as a second lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record, record_denied
from redes.core.phones import normalize_phone
from redes.territories.models import Municipality, Node, NodeKind

from . import crypto, vulnerability
from .models import (
    BlockCounts,
    Consent,
    DataRequest,
    DuplicateCandidate,
    Household,
    Merge,
    Person,
    Phone,
    PrivacyNotice,
    RecordStatus,
    RegistryPolicy,
    Relation,
    Sex,
    Visit,
)
from .text import address_key, fold, split_full_name

HOUSEHOLD_FIELDS = (
    "street",
    "ext_number",
    "int_number",
    "colonia",
    "postal_code",
    "reference",
    "lat",
    "lon",
    "preferred_channel",
    "external_id",
)
PERSON_FIELDS = (
    "full_name",
    "given_name",
    "surname1",
    "surname2",
    "birth_date",
    "age",
    "sex",
    "curp",
    "phone",
    "relation",
    "factors",
    "external_id",
)


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --------------------------------------------------------------------------------------------------- policy


def policy_for(municipality: Municipality | int) -> RegistryPolicy:
    municipality_id = getattr(municipality, "pk", municipality)
    policy, _created = RegistryPolicy.objects.get_or_create(municipality_id=municipality_id)
    return policy


def set_weights(
    municipality: Municipality, weights: dict, *, actor=None, threshold: int | None = None
) -> int:
    """Change a municipality's vulnerability weights and recompute every household's priority.

    Returns the number of households whose priority changed."""
    unknown = sorted(set(weights) - set(vulnerability.FACTORS))
    if unknown:
        raise ValidationError(_("Unknown vulnerability factors: %(codes)s.") % {"codes": ", ".join(unknown)})
    cleaned = {}
    for code, value in weights.items():
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if not 0 <= number <= 100:
            raise ValidationError(
                _("The weight of “%(code)s” must be a whole number from 0 to 100.") % {"code": code}
            )
        cleaned[code] = number
    with transaction.atomic():
        policy = policy_for(municipality)
        before = dict(policy.weights)
        policy.weights = cleaned
        if threshold is not None:
            if not 0 <= int(threshold) <= 100:
                raise ValidationError(_("The priority threshold must be from 0 to 100."))
            policy.priority_threshold = int(threshold)
        policy.updated_by = _user(actor)
        policy.save()
        changed = recompute_priorities(Household.objects.filter(municipality=municipality))
        recount(municipality)
        record(
            "registry.policy.update",
            actor=actor,
            obj=municipality,
            municipality=municipality,
            summary=_("Vulnerability weights changed"),
            changes={"before": before, "after": cleaned, "threshold": policy.priority_threshold},
        )
    return changed


# --------------------------------------------------------------------------------------------------- counts


def _bump(node_id: int, municipality_id: int, **deltas: int) -> None:
    deltas = {k: v for k, v in deltas.items() if v}
    if not deltas:
        return
    updated = BlockCounts.objects.filter(node_id=node_id).update(**{k: F(k) + v for k, v in deltas.items()})
    if not updated:
        BlockCounts.objects.get_or_create(node_id=node_id, defaults={"municipality_id": municipality_id})
        BlockCounts.objects.filter(node_id=node_id).update(**{k: F(k) + v for k, v in deltas.items()})


def _household_flags(household: Household, threshold: int) -> dict[str, int]:
    active = household.status == RecordStatus.ACTIVE
    return {
        "households": int(active),
        "persons": household.members_count if active else 0,
        "priority_households": int(active and household.priority >= threshold),
        "visited_households": int(active and household.last_visit_at is not None),
    }


class _CountsGuard:
    """Snapshot a household's contribution to its block counts; on exit, apply the difference."""

    def __init__(self, household: Household):
        self.household = household

    def __enter__(self):
        self.threshold = policy_for(self.household.municipality_id).priority_threshold
        self.node_id = self.household.node_id
        self.before = _household_flags(self.household, self.threshold) if self.household.pk else None
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        h = self.household
        after = _household_flags(h, self.threshold)
        if self.before is not None and self.node_id != h.node_id:
            _bump(self.node_id, h.municipality_id, **{k: -v for k, v in self.before.items()})
            _bump(h.node_id, h.municipality_id, **after)
        else:
            before = self.before or dict.fromkeys(after, 0)
            _bump(h.node_id, h.municipality_id, **{k: after[k] - before[k] for k in after})
        return False


def recount(municipality: Municipality | int) -> int:
    """Rebuild the per-block counts of a municipality from the rows (the repair path). Returns blocks counted."""
    from django.db.models import Count

    municipality_id = getattr(municipality, "pk", municipality)
    threshold = policy_for(municipality_id).priority_threshold
    active = Household.objects.filter(municipality_id=municipality_id, status=RecordStatus.ACTIVE)
    rows = active.values("node_id").annotate(
        households=Count("id"),
        priority_households=Count("id", filter=Q(priority__gte=threshold)),
        visited_households=Count("id", filter=Q(last_visit_at__isnull=False)),
    )
    persons = dict(
        Person.objects.filter(
            municipality_id=municipality_id, status=RecordStatus.ACTIVE, household__status=RecordStatus.ACTIVE
        )
        .values("node_id")
        .annotate(n=Count("id"))
        .values_list("node_id", "n")
    )
    with transaction.atomic():
        BlockCounts.objects.filter(municipality_id=municipality_id).delete()
        BlockCounts.objects.bulk_create(
            [
                BlockCounts(
                    node_id=row["node_id"],
                    municipality_id=municipality_id,
                    households=row["households"],
                    persons=persons.get(row["node_id"], 0),
                    priority_households=row["priority_households"],
                    visited_households=row["visited_households"],
                )
                for row in rows
            ],
            batch_size=2000,
        )
    return len(rows)


# ------------------------------------------------------------------------------------------------ households


def _check_block(node: Node) -> None:
    if node.kind != NodeKind.UNIT or node.municipality_id is None:
        raise ValidationError(_("A household belongs to a block of a municipality."))
    if Node.objects.filter(parent=node).exists():
        raise ValidationError(
            _("“%(name)s” is not a block (it has units below it); choose the block.") % {"name": node.name}
        )


def clean_coordinates(lat, lon) -> tuple[float | None, float | None]:
    if lat in (None, "") and lon in (None, ""):
        return None, None
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise ValidationError(_("Latitude and longitude must both be numbers.")) from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationError(_("The coordinates are out of range."))
    return lat, lon


def clean_postal_code(value: str) -> str:
    value = (value or "").strip()
    if value and (not value.isdigit() or len(value) != 5):
        raise ValidationError(
            _("A Mexican postal code has 5 digits; “%(value)s” does not.") % {"value": value}
        )
    return value


@dataclass
class PhoneInput:
    number: str
    whatsapp: bool = False
    sms: bool = True
    voice: bool = True
    label: str = ""


def _set_phones(household: Household, phones: list[PhoneInput | dict]) -> None:
    cleaned: dict[str, PhoneInput] = {}
    for item in phones:
        if isinstance(item, dict):
            item = PhoneInput(**item)
        if not (item.number or "").strip():
            continue
        number = normalize_phone(item.number)
        cleaned[number] = PhoneInput(
            number, bool(item.whatsapp), bool(item.sms), bool(item.voice), item.label
        )
    household.phones.exclude(number__in=list(cleaned)).delete()
    for number, item in cleaned.items():
        Phone.objects.update_or_create(
            household=household,
            number=number,
            defaults={
                "municipality_id": household.municipality_id,
                "whatsapp": item.whatsapp,
                "sms": item.sms,
                "voice": item.voice,
                "label": item.label[:60],
            },
        )


def _apply_household_fields(household: Household, data: dict) -> dict:
    changes = {}
    for field in HOUSEHOLD_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field in ("lat", "lon"):
            continue
        if field == "postal_code":
            value = clean_postal_code(value)
        elif isinstance(value, str):
            value = value.strip()
        if getattr(household, field) != value:
            changes[field] = True
            setattr(household, field, value)
    if "lat" in data or "lon" in data:
        lat, lon = clean_coordinates(data.get("lat", household.lat), data.get("lon", household.lon))
        if (lat, lon) != (household.lat, household.lon):
            household.lat, household.lon = lat, lon
            changes["location"] = True
    household.address_key = address_key(household.street, household.ext_number, household.postal_code)
    return changes


def create_household(node: Node, *, actor=None, phones=(), **data) -> Household:
    """Register a household on a block. ``data`` takes the address fields, lat/lon and preferred channel."""
    _check_block(node)
    unknown = set(data) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown household fields: %(f)s.") % {"f": ", ".join(sorted(unknown))})
    with transaction.atomic():
        household = Household(municipality_id=node.municipality_id, node=node, created_by=_user(actor))
        _apply_household_fields(household, data)
        household.full_clean(exclude=["municipality", "node", "created_by", "address_key"])
        with _CountsGuard(household):
            household.save()
        _set_phones(household, list(phones))
        record("registry.household.create", actor=actor, obj=household, summary=_("Household registered"))
    return household


def update_household(
    household: Household, *, actor=None, node: Node | None = None, phones=None, **data
) -> Household:
    unknown = set(data) - set(HOUSEHOLD_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown household fields: %(f)s.") % {"f": ", ".join(sorted(unknown))})
    with transaction.atomic():
        household = Household.objects.select_for_update().get(pk=household.pk)
        with _CountsGuard(household):
            changes = _apply_household_fields(household, data)
            if node is not None and node.pk != household.node_id:
                _check_block(node)
                if node.municipality_id != household.municipality_id:
                    raise ValidationError(_("A household cannot move to another municipality."))
                household.node = node
                changes["block"] = True
                household.members.update(node=node)
                Consent.objects.filter(person__household=household).update(node=node)
            household.full_clean(exclude=["municipality", "node", "created_by", "address_key"])
            household.save()
        if phones is not None:
            _set_phones(household, list(phones))
            changes["phones"] = True
        record(
            "registry.household.update",
            actor=actor,
            obj=household,
            summary=_("Household updated"),
            changes={"fields": sorted(changes)},
        )
    return household


def record_visit(household: Household, outcome: str, *, actor=None, note: str = "", when=None) -> Visit:
    if outcome not in Visit.Outcome.values:
        raise ValidationError(_("Unknown visit outcome “%(o)s”.") % {"o": outcome})
    when = when or timezone.now()
    with transaction.atomic():
        household = Household.objects.select_for_update().get(pk=household.pk)
        visit = Visit.objects.create(
            municipality_id=household.municipality_id,
            household=household,
            node_id=household.node_id,
            visited_at=when,
            visited_by=_user(actor),
            outcome=outcome,
            note=note.strip()[:300],
        )
        with _CountsGuard(household):
            if household.last_visit_at is None or when > household.last_visit_at:
                household.last_visit_at = when
                household.save(update_fields=["last_visit_at", "updated_at"])
        record("registry.visit.create", actor=actor, obj=visit, node=household.node, summary=outcome)
    return visit


# --------------------------------------------------------------------------------------------------- persons


_SEXES = frozenset([None, *Sex.values])
_RELATIONS = frozenset([None, "", *Relation.values])


def clean_person_data(data: dict, today: dt.date, current: Person | None = None) -> dict:
    """Validate and normalise person fields; raises one ValidationError with a message per field."""
    from redes.core.curp import normalize_curp, parse_curp

    errors: dict[str, list[str]] = {}
    out = dict(data)
    for key in ("full_name", "given_name", "surname1", "surname2", "external_id"):
        if key in out:
            out[key] = " ".join(str(out[key] or "").split())
    parts = ("given_name", "surname1", "surname2")
    if any(k in out for k in ("full_name", *parts)):
        if current is not None and any(k in out for k in parts):
            # An edit of one name part keeps the others and rebuilds the display name from them.
            for key in parts:
                out.setdefault(key, getattr(current, key))
            if "full_name" not in data:
                out["full_name"] = ""
        if not out.get("given_name") and not out.get("surname1") and out.get("full_name"):
            out["given_name"], out["surname1"], out["surname2"] = split_full_name(out["full_name"])
        if not out.get("full_name"):
            out["full_name"] = " ".join(
                p for p in (out.get("given_name"), out.get("surname1"), out.get("surname2")) if p
            )
        if not out.get("full_name"):
            errors.setdefault("full_name", []).append(_("The name is required."))
    if out.get("curp"):
        try:
            out["curp"] = normalize_curp(out["curp"])
        except ValidationError as exc:
            errors.setdefault("curp", []).extend(exc.messages)
    elif "curp" in out:
        out["curp"] = ""
    if out.get("phone"):
        try:
            out["phone"] = normalize_phone(out["phone"])
        except ValidationError as exc:
            errors.setdefault("phone", []).extend(exc.messages)
    elif "phone" in out:
        out["phone"] = ""
    if out.get("sex") not in _SEXES:
        errors.setdefault("sex", []).append(_("Sex must be M (woman), H (man), X (non-binary) or empty."))
    if out.get("relation") not in _RELATIONS:
        errors.setdefault("relation", []).append(_("Unknown relation “%(r)s”.") % {"r": out["relation"]})
    if "factors" in out:
        factors = list(dict.fromkeys(out["factors"] or []))
        bad = [f for f in factors if f not in vulnerability.DECLARED]
        if bad:
            errors.setdefault("factors", []).append(
                _("Unknown or not declarable vulnerability factors: %(codes)s.") % {"codes": ", ".join(bad)}
            )
        out["factors"] = factors
    birth = out.get("birth_date")
    if isinstance(birth, str):
        try:
            birth = dt.date.fromisoformat(birth.strip()) if birth.strip() else None
        except ValueError:
            errors.setdefault("birth_date", []).append(_("The birth date must be a date (YYYY-MM-DD)."))
            birth = None
        out["birth_date"] = birth
    if birth and (birth > today or birth.year < today.year - 120):
        errors.setdefault("birth_date", []).append(_("The birth date is not plausible."))
    age = out.pop("age", None)
    if age not in (None, ""):
        try:
            age = int(age)
            if not 0 <= age <= 120:
                raise ValueError
        except (TypeError, ValueError):
            errors.setdefault("age", []).append(_("The age must be a whole number from 0 to 120."))
            age = None
    if "birth_date" in out or age not in (None, ""):
        if out.get("birth_date"):
            out["birth_year"], out["age_stated"] = out["birth_date"].year, False
        elif age not in (None, ""):
            out["birth_year"], out["age_stated"] = today.year - age, True
        else:
            out["birth_year"], out["age_stated"] = None, False
    if out.get("curp") and not errors.get("curp"):
        info = parse_curp(out["curp"])
        if out.get("birth_date") and info.birth_date and info.birth_date != out["birth_date"]:
            errors.setdefault("curp", []).append(
                _("The CURP's birth date does not match the birth date given.")
            )
        if not out.get("sex") and info.sex:
            out["sex"] = info.sex
    if errors:
        raise ValidationError(errors)
    return out


def set_keys(person: Person) -> None:
    person.given_key = fold(person.given_name)[:100]
    person.given2_key = person.given_key.partition(" ")[2]
    person.surname1_key = fold(person.surname1)[:100]
    person.surname2_key = fold(person.surname2)[:100]


def add_person(household: Household, *, actor=None, check_duplicates: bool = True, **data) -> Person:
    """Add a person to a household; flags likely duplicates across the municipality (``person.duplicates``)."""
    unknown = set(data) - set(PERSON_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown person fields: %(f)s.") % {"f": ", ".join(sorted(unknown))})
    cleaned = clean_person_data(data, timezone.localdate())
    with transaction.atomic():
        household = Household.objects.select_for_update().get(pk=household.pk)
        if household.status != RecordStatus.ACTIVE:
            raise ValidationError(_("This household is blocked or anonymised; it takes no new members."))
        person = Person(
            municipality_id=household.municipality_id,
            household=household,
            node_id=household.node_id,
            created_by=_user(actor),
        )
        for key, value in cleaned.items():
            setattr(person, key, value)
        if not person.relation and not household.members.exists():
            person.relation = Relation.HEAD
        set_keys(person)
        person.save()
        with _CountsGuard(household):
            household.members_count = household.members.filter(status=RecordStatus.ACTIVE).count()
            _score_household(household)
            household.save()
        record(
            "registry.person.create",
            actor=actor,
            obj=person,
            node=household.node,
            summary=_("Person registered"),
        )
        person.duplicates = flag_duplicates(person, actor=actor) if check_duplicates else []
    return person


def update_person(person: Person, *, actor=None, **data) -> Person:
    unknown = set(data) - set(PERSON_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown person fields: %(f)s.") % {"f": ", ".join(sorted(unknown))})
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        cleaned = clean_person_data(data, timezone.localdate(), current=person)
        if person.status != RecordStatus.ACTIVE:
            raise ValidationError(_("Only active records can be edited."))
        changed = sorted(k for k, v in cleaned.items() if getattr(person, k) != v)
        for key, value in cleaned.items():
            setattr(person, key, value)
        set_keys(person)
        person.save()
        household = Household.objects.select_for_update().get(pk=person.household_id)
        with _CountsGuard(household):
            _score_household(household)
            household.save()
        record(
            "registry.person.update",
            actor=actor,
            obj=person,
            node=household.node,
            summary=_("Person updated"),
            changes={"fields": changed},
        )
        person.duplicates = (
            flag_duplicates(person, actor=actor) if {"curp", "full_name", "birth_date"} & set(changed) else []
        )
    return person


# ----------------------------------------------------------------------------------------------- priority


def sensitive_factors(person: Person) -> tuple[str, ...]:
    """System read for scoring only (never shown, never leaves this module)."""
    if not person.sensitive_data:
        return ()
    try:
        return tuple(crypto.decrypt(person.sensitive_data).get("factors", ()))
    except crypto.SensitiveDataUnreadable:
        return ()


def _score_household(household: Household, weights: dict | None = None, today: dt.date | None = None) -> bool:
    """Recompute a household's priority and explanation in memory. Returns whether it changed."""
    today = today or timezone.localdate()
    if weights is None:
        weights = vulnerability.weights_for(policy_for(household.municipality_id).weights)
    members = [
        vulnerability.Member(
            tuple(p.factors or ()),
            sensitive_factors(p),
            vulnerability.age_on(p.birth_date, p.birth_year, today),
        )
        # .all() uses the members prefetched by recompute_priorities (one query for all households, not one each)
        for p in household.members.all()
        if p.status == RecordStatus.ACTIVE
    ]
    score, explanation = vulnerability.score(members, weights) if members else (0, [])
    changed = (score, explanation) != (household.priority, household.priority_explanation)
    household.priority, household.priority_explanation = score, explanation
    return changed


def recompute_priorities(households) -> int:
    """Recompute the priority of many households (after a weight change). Returns how many changed."""
    changed = 0
    weights_cache: dict[int, dict] = {}
    today = timezone.localdate()
    for household in households.prefetch_related("members").iterator(chunk_size=500):
        weights = weights_cache.setdefault(
            household.municipality_id,
            vulnerability.weights_for(policy_for(household.municipality_id).weights),
        )
        if _score_household(household, weights, today):
            Household.objects.filter(pk=household.pk).update(
                priority=household.priority, priority_explanation=household.priority_explanation
            )
            changed += 1
    return changed


def explain_priority(household: Household, viewer=None) -> list[dict]:
    """The priority explanation with labels. Sensitive factors are one "protected" line for every viewer
    (case officers read the factors themselves through ``read_sensitive``, audited)."""
    return vulnerability.explain_for(household.priority_explanation or [])


# ---------------------------------------------------------------------------------------------- sensitive


def may_see_sensitive(user, person: Person) -> bool:
    """Only a case officer's membership over the person's block counts — superusers included in "no"."""
    return scoping.can(user, Perm.VIEW_SENSITIVE, person.node, superuser=False)


def _guard_sensitive(actor, person: Person, perm: str, action: str, *, system_ok: bool = True) -> None:
    if actor is None and system_ok:
        return
    if actor is None or not scoping.can(actor, perm, person.node, superuser=False):
        record_denied(action, actor=actor, obj=person, node=person.node, reason=_("Not a case officer here"))
        raise PermissionDenied


def active_consent(person: Person) -> Consent | None:
    return person.consents.filter(revoked_at__isnull=True).order_by("-captured_at").first()


def read_sensitive(person: Person, *, actor) -> dict:
    """Decrypt a person's sensitive data for a case officer. Every read is audited; others get 403."""
    _guard_sensitive(actor, person, Perm.VIEW_SENSITIVE, "registry.sensitive.read", system_ok=False)
    data = crypto.decrypt(person.sensitive_data)
    record(
        "registry.sensitive.read",
        actor=actor,
        obj=person,
        node=person.node,
        summary=_("Sensitive data read"),
    )
    return data


def set_sensitive(person: Person, *, actor, factors: list[str], notes: str = "") -> Person:
    """Record sensitive factors (and notes) for a person who gave express consent; encrypted at rest."""
    _guard_sensitive(actor, person, Perm.EDIT_SENSITIVE, "registry.sensitive.update")
    factors = list(dict.fromkeys(factors or []))
    bad = [f for f in factors if f not in vulnerability.SENSITIVE]
    if bad:
        raise ValidationError(_("Unknown sensitive factors: %(codes)s.") % {"codes": ", ".join(bad)})
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        consent = active_consent(person)
        if (factors or notes.strip()) and not (consent and consent.sensitive):
            raise ValidationError(_("Sensitive data needs the person's express consent: record it first."))
        payload = {"factors": factors, "notes": notes.strip()} if (factors or notes.strip()) else {}
        person.sensitive_data = crypto.encrypt(payload)
        person.sensitive_updated_at = timezone.now()
        person.save(update_fields=["sensitive_data", "sensitive_updated_at", "updated_at"])
        household = Household.objects.select_for_update().get(pk=person.household_id)
        with _CountsGuard(household):
            _score_household(household)
            household.save()
        record(
            "registry.sensitive.update",
            actor=actor,
            obj=person,
            node=person.node,
            summary=_("Sensitive data changed"),
        )
    return person


def rotate_keys(batch: int = 1000, progress=None) -> int:
    """Re-encrypt every stored sensitive value under the newest key. Returns how many values were rewritten."""
    done = 0
    qs = Person.objects.exclude(sensitive_data="").only("pk", "sensitive_data").order_by("pk")
    last = 0
    while True:
        rows = list(qs.filter(pk__gt=last)[:batch])
        if not rows:
            break
        with transaction.atomic():
            for person in rows:
                Person.objects.filter(pk=person.pk).update(
                    sensitive_data=crypto.rotate(person.sensitive_data)
                )
        done += len(rows)
        last = rows[-1].pk
        if progress:
            progress(len(rows))
    record(
        "registry.keys.rotate",
        summary=_("Sensitive data re-encrypted under the newest key"),
        changes={"values": done},
    )
    return done


# ---------------------------------------------------------------------------------------------- consent


def current_notice(municipality: Municipality | int) -> PrivacyNotice | None:
    municipality_id = getattr(municipality, "pk", municipality)
    return PrivacyNotice.objects.filter(municipality_id=municipality_id).order_by("-published_at").first()


DEFAULT_PURPOSES = [
    {"code": "aid", "necessary": True},
    {"code": "contact", "necessary": True},
    {"code": "messages", "necessary": False},
    {"code": "statistics", "necessary": False},
]


def publish_notice(
    municipality: Municipality, *, version: str, text: str, purposes=None, actor=None
) -> PrivacyNotice:
    purposes = purposes or DEFAULT_PURPOSES
    codes = [p.get("code") for p in purposes]
    if not version.strip() or not text.strip():
        raise ValidationError(_("A privacy notice needs a version and its text."))
    if len(set(codes)) != len(codes) or not all(codes):
        raise ValidationError(_("Each purpose needs a distinct code."))
    with transaction.atomic():
        if PrivacyNotice.objects.filter(municipality=municipality, version=version.strip()).exists():
            raise ValidationError(_("Version %(v)s of the privacy notice already exists.") % {"v": version})
        notice = PrivacyNotice.objects.create(
            municipality=municipality,
            version=version.strip(),
            text=text.strip(),
            purposes=purposes,
            published_at=timezone.now(),
        )
        record("registry.notice.publish", actor=actor, obj=notice, municipality=municipality, summary=version)
    return notice


def purpose_label(code: str) -> str:
    labels = {
        "aid": _("Identify needs and deliver aid"),
        "contact": _("Contact by the neighbourhood network"),
        "messages": _("Receive news and alerts by message"),
        "statistics": _("Anonymous statistics for the municipality"),
    }
    return labels.get(code, code)


def record_consent(
    person: Person,
    *,
    actor=None,
    notice: PrivacyNotice | None = None,
    purposes: list[str],
    sensitive: bool = False,
    channel: str,
    when=None,
) -> Consent:
    """Record the person's consent under a privacy notice; it replaces (revokes) the previous one."""
    notice = notice or current_notice(person.municipality_id)
    if notice is None:
        raise ValidationError(_("Publish a privacy notice before capturing consent."))
    if notice.municipality_id != person.municipality_id:
        raise ValidationError(_("That privacy notice belongs to another municipality."))
    if channel not in Consent.Via.values:
        raise ValidationError(_("Unknown consent channel “%(c)s”.") % {"c": channel})
    known = {p["code"]: p for p in notice.purposes}
    purposes = list(dict.fromkeys(purposes))
    unknown = [p for p in purposes if p not in known]
    if unknown:
        raise ValidationError(_("Purposes not in the notice: %(codes)s.") % {"codes": ", ".join(unknown)})
    missing = [code for code, p in known.items() if p.get("necessary") and code not in purposes]
    if missing:
        raise ValidationError(
            _("The necessary purposes must be accepted for the person to be registered: %(codes)s.")
            % {"codes": ", ".join(purpose_label(c) for c in missing)}
        )
    when = when or timezone.now()
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        previous = active_consent(person)
        if previous:
            previous.revoked_at, previous.revoked_by = when, _user(actor)
            previous.revoke_reason = _("Replaced by a new consent")
            previous.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        consent = Consent.objects.create(
            municipality_id=person.municipality_id,
            person=person,
            node_id=person.node_id,
            notice=notice,
            purposes=purposes,
            sensitive=bool(sensitive),
            channel=channel,
            captured_by=_user(actor),
            captured_at=when,
        )
        if previous and previous.sensitive and not sensitive and person.sensitive_data:
            _erase_sensitive(person)
        record(
            "registry.consent.create",
            actor=actor,
            obj=consent,
            node=person.node,
            summary=notice.version,
            changes={"purposes": purposes, "sensitive": bool(sensitive)},
        )
    return consent


def _erase_sensitive(person: Person) -> None:
    person.sensitive_data = ""
    person.sensitive_updated_at = timezone.now()
    person.save(update_fields=["sensitive_data", "sensitive_updated_at", "updated_at"])
    household = Household.objects.select_for_update().get(pk=person.household_id)
    with _CountsGuard(household):
        _score_household(household)
        household.save()


def revoke_consent(consent: Consent, *, actor=None, reason: str = "") -> Consent:
    """Revoke a consent. Sensitive data held under it is erased (crypto-shredded) at once."""
    with transaction.atomic():
        consent = Consent.objects.select_for_update().get(pk=consent.pk)
        if consent.revoked_at:
            raise ValidationError(_("This consent was already revoked."))
        consent.revoked_at, consent.revoked_by, consent.revoke_reason = (
            timezone.now(),
            _user(actor),
            reason[:200],
        )
        consent.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        person = Person.objects.select_for_update().get(pk=consent.person_id)
        if consent.sensitive and person.sensitive_data:
            _erase_sensitive(person)
        record("registry.consent.revoke", actor=actor, obj=consent, node=person.node, summary=reason[:300])
    return consent


# ---------------------------------------------------------------------------------------------- duplicates


def flag_duplicates(person: Person, *, actor=None, source: str = "entry") -> list[DuplicateCandidate]:
    """Compare one person with the likely candidates of the whole municipality; store the pairs found."""
    from . import dedupe

    pairs = dedupe.candidates_for_person(person)
    found = []
    for other_id, score, reasons in pairs:
        a, b = sorted((person.pk, other_id))
        candidate, created = DuplicateCandidate.objects.get_or_create(
            person_a_id=a,
            person_b_id=b,
            defaults={
                "municipality_id": person.municipality_id,
                "node_id": person.node_id,
                "score": score,
                "reasons": reasons,
                "source": source,
            },
        )
        if created:
            found.append(candidate)
    if found:
        record(
            "registry.duplicate.flag",
            actor=actor,
            obj=person,
            node=person.node,
            summary=_("Possible duplicates found"),
            changes={"pairs": len(found)},
        )
    return found


def _snapshot(person: Person) -> dict:
    fields = [*PERSON_FIELDS, "birth_year", "status", "household_id", "node_id"]
    fields.remove("age")
    data = {f: getattr(person, f) for f in fields}
    data["birth_date"] = person.birth_date.isoformat() if person.birth_date else None
    data["uuid"] = str(person.uuid)
    data["sensitive_data"] = person.sensitive_data  # still encrypted
    return data


def decide_duplicate(candidate: DuplicateCandidate, *, actor=None, same: bool, keep: Person | None = None):
    """Resolve a candidate pair: ``same=False`` marks them distinct; ``same=True`` merges into ``keep``."""
    with transaction.atomic():
        candidate = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
        if candidate.status != DuplicateCandidate.Status.PENDING:
            raise ValidationError(_("This pair was already reviewed."))
        if same:
            keep = keep or candidate.person_a
            if keep.pk not in (candidate.person_a_id, candidate.person_b_id):
                raise ValidationError(_("The record to keep must be one of the pair."))
            other_id = candidate.person_b_id if keep.pk == candidate.person_a_id else candidate.person_a_id
            merge_persons(keep, Person.objects.get(pk=other_id), actor=actor)
            candidate.status = DuplicateCandidate.Status.MERGED
        else:
            candidate.status = DuplicateCandidate.Status.DISTINCT
        candidate.decided_at, candidate.decided_by = timezone.now(), _user(actor)
        candidate.save(update_fields=["status", "decided_at", "decided_by"])
        record(
            "registry.duplicate.decide",
            actor=actor,
            obj=candidate,
            summary=candidate.status,
        )
    return candidate


def merge_persons(kept: Person, merged: Person, *, actor=None) -> Merge:
    """Fold ``merged`` into ``kept``: empty fields of ``kept`` are filled, consents and requests follow,
    ``merged`` stays as a MERGED record pointing at ``kept``, and a snapshot keeps its history."""
    if kept.pk == merged.pk:
        raise ValidationError(_("A record cannot be merged with itself."))
    if kept.municipality_id != merged.municipality_id:
        raise ValidationError(_("Records of different municipalities cannot be merged."))
    with transaction.atomic():
        kept = Person.objects.select_for_update().get(pk=kept.pk)
        merged = Person.objects.select_for_update().get(pk=merged.pk)
        if RecordStatus.ACTIVE not in (kept.status,) or merged.status != RecordStatus.ACTIVE:
            raise ValidationError(_("Only active records can be merged."))
        snapshot = _snapshot(merged)
        for field in ("given_name", "surname1", "surname2", "birth_date", "curp", "phone", "sex", "relation"):
            if not getattr(kept, field) and getattr(merged, field):
                setattr(kept, field, getattr(merged, field))
        if kept.birth_date:
            kept.birth_year, kept.age_stated = kept.birth_date.year, False
        elif not kept.birth_year:
            kept.birth_year, kept.age_stated = merged.birth_year, merged.age_stated
        kept.factors = list(dict.fromkeys([*(kept.factors or []), *(merged.factors or [])]))
        if not kept.sensitive_data and merged.sensitive_data:
            kept.sensitive_data, kept.sensitive_updated_at = (
                merged.sensitive_data,
                merged.sensitive_updated_at,
            )
        set_keys(kept)
        kept.save()
        merged.status, merged.merged_into, merged.sensitive_data = RecordStatus.MERGED, kept, ""
        merged.save(update_fields=["status", "merged_into", "sensitive_data", "updated_at"])
        if not active_consent(kept):
            Consent.objects.filter(person=merged, revoked_at__isnull=True).update(
                person=kept, node_id=kept.node_id
            )
        DataRequest.objects.filter(person=merged).update(person=kept, node_id=kept.node_id)
        DuplicateCandidate.objects.filter(
            Q(person_a=merged) | Q(person_b=merged), status=DuplicateCandidate.Status.PENDING
        ).exclude(person_a=kept).exclude(person_b=kept).update(status=DuplicateCandidate.Status.MERGED)
        merge = Merge.objects.create(
            municipality_id=kept.municipality_id,
            kept=kept,
            merged=merged,
            snapshot=snapshot,
            merged_at=timezone.now(),
            merged_by=_user(actor),
        )
        for household_id in {kept.household_id, merged.household_id}:
            household = Household.objects.select_for_update().get(pk=household_id)
            with _CountsGuard(household):
                household.members_count = household.members.filter(status=RecordStatus.ACTIVE).count()
                _score_household(household)
                household.save()
        record(
            "registry.person.merge",
            actor=actor,
            obj=kept,
            node=kept.node,
            changes={"merged": str(merged.uuid)},
        )
    return merge


# --------------------------------------------------------------------------------------------------- ARCO


#: Mexican statutory rest days (Ley Federal del Trabajo, art. 74) that are not business days.
def _holidays(year: int) -> set[dt.date]:
    def nth_monday(month: int, n: int) -> dt.date:
        day = dt.date(year, month, 1)
        offset = (7 - day.weekday()) % 7
        return day + dt.timedelta(days=offset + 7 * (n - 1))

    days = {
        dt.date(year, 1, 1),
        nth_monday(2, 1),
        nth_monday(3, 3),
        dt.date(year, 5, 1),
        dt.date(year, 9, 16),
        nth_monday(11, 3),
        dt.date(year, 12, 25),
    }
    if (year - 2024) % 6 == 0:
        days.add(dt.date(year, 10, 1))  # change of federal executive
    return days


def add_business_days(start: dt.date, days: int) -> dt.date:
    current, left = start, days
    while left > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and current not in _holidays(current.year):
            left -= 1
    return current


ARCO_BUSINESS_DAYS = 20


def open_data_request(
    person: Person, kind: str, *, actor=None, details: str = "", purpose: str = "", changes=None, when=None
) -> DataRequest:
    if kind not in DataRequest.Kind.values:
        raise ValidationError(_("Unknown request kind “%(k)s”.") % {"k": kind})
    if kind == DataRequest.Kind.OBJECTION and not purpose:
        raise ValidationError(_("Say which purpose the person objects to."))
    if kind == DataRequest.Kind.RECTIFICATION:
        changes = changes or {}
        unknown = set(changes) - set(PERSON_FIELDS)
        if not changes or unknown:
            raise ValidationError(_("Say which fields to correct and their correct values."))
        clean_person_data(dict(changes), timezone.localdate())
    when = when or timezone.now()
    with transaction.atomic():
        request = DataRequest.objects.create(
            municipality_id=person.municipality_id,
            person=person,
            node_id=person.node_id,
            kind=kind,
            received_at=when,
            due_on=add_business_days(timezone.localdate(when), ARCO_BUSINESS_DAYS),
            details=details.strip(),
            purpose=purpose,
            changes=changes or {},
            created_by=_user(actor),
        )
        record("registry.request.open", actor=actor, obj=request, node=person.node, summary=kind)
    return request


def export_person(person: Person, *, actor=None) -> dict:
    """The person's data as JSON (ARCO access). Sensitive data only when the actor may read it (audited)."""
    household = person.household
    consents = [
        {
            "notice": c.notice.version,
            "purposes": c.purposes,
            "sensitive": c.sensitive,
            "channel": c.channel,
            "captured_at": c.captured_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        }
        for c in person.consents.select_related("notice").order_by("captured_at")
    ]
    data = {
        "uuid": str(person.uuid),
        "full_name": person.full_name,
        "given_name": person.given_name,
        "surname1": person.surname1,
        "surname2": person.surname2,
        "birth_date": person.birth_date.isoformat() if person.birth_date else None,
        "birth_year": person.birth_year,
        "sex": person.sex,
        "curp": person.curp,
        "phone": person.phone,
        "relation": person.relation,
        "vulnerability_factors": person.factors,
        "household": {
            "uuid": str(household.uuid),
            "address": household.address,
            "block": household.node.code,
            "phones": list(household.phones.values("number", "whatsapp", "sms", "voice")),
            "priority": household.priority,
        },
        "consents": consents,
        "visits": [
            {"at": v.visited_at.isoformat(), "outcome": v.outcome}
            for v in household.visits.order_by("visited_at")
        ],
        "data_requests": [
            {"kind": r.kind, "status": r.status, "received_at": r.received_at.isoformat()}
            for r in person.data_requests.order_by("received_at")
        ],
        "exported_at": timezone.now().isoformat(),
    }
    if person.sensitive_data and actor is not None and may_see_sensitive(actor, person):
        data["sensitive"] = read_sensitive(person, actor=actor)
    elif person.sensitive_data:
        data["sensitive"] = _("Held; delivered only by a case officer.")
    record(
        "registry.person.export",
        actor=actor,
        obj=person,
        node=person.node,
        summary=_("Personal data exported"),
    )
    return data


def answer_data_request(
    request: DataRequest, *, actor=None, response: str = "", reject: bool = False
) -> DataRequest:
    """Answer (or reject) a request, carrying out what it asks: rectify, block, drop a purpose."""
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != DataRequest.Status.OPEN:
            raise ValidationError(_("This request was already answered."))
        person = request.person
        if reject:
            if not response.strip():
                raise ValidationError(_("Say why the request is rejected."))
        elif request.kind == DataRequest.Kind.RECTIFICATION:
            update_person(person, actor=actor, **request.changes)
        elif request.kind == DataRequest.Kind.CANCELLATION:
            block_person(person, actor=actor)
        elif request.kind == DataRequest.Kind.OBJECTION:
            consent = active_consent(person)
            if consent and request.purpose in consent.purposes:
                notice = consent.notice
                necessary = {p["code"] for p in notice.purposes if p.get("necessary")}
                if request.purpose in necessary:
                    # Objecting to a necessary purpose means leaving the registry: block the record.
                    block_person(person, actor=actor)
                else:
                    record_consent(
                        person,
                        actor=actor,
                        notice=notice,
                        purposes=[p for p in consent.purposes if p != request.purpose],
                        sensitive=consent.sensitive,
                        channel=consent.channel,
                    )
        request.status = DataRequest.Status.REJECTED if reject else DataRequest.Status.ANSWERED
        request.response = response.strip()
        request.answered_at, request.answered_by = timezone.now(), _user(actor)
        request.save(update_fields=["status", "response", "answered_at", "answered_by"])
        record("registry.request.answer", actor=actor, obj=request, node=request.node, summary=request.status)
    return request


def block_person(person: Person, *, actor=None) -> Person:
    """Cancellation: the record is blocked (kept, out of every list and process) until anonymised."""
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        if person.status != RecordStatus.ACTIVE:
            return person
        person.status, person.blocked_at = RecordStatus.BLOCKED, timezone.now()
        person.save(update_fields=["status", "blocked_at", "updated_at"])
        household = Household.objects.select_for_update().get(pk=person.household_id)
        with _CountsGuard(household):
            household.members_count = household.members.filter(status=RecordStatus.ACTIVE).count()
            if household.members_count == 0:
                household.status = RecordStatus.BLOCKED
            _score_household(household)
            household.save()
        record("registry.person.block", actor=actor, obj=person, node=person.node)
    return person


def anonymise_person(person: Person, *, actor=None) -> Person:
    """Remove everything that identifies a blocked person; the row stays for the counts that used it."""
    with transaction.atomic():
        person = Person.objects.select_for_update().get(pk=person.pk)
        person.full_name = _("Anonymised person")
        person.given_name = person.surname1 = person.surname2 = ""
        person.given_key = person.given2_key = person.surname1_key = person.surname2_key = ""
        person.curp = person.phone = person.external_id = ""
        person.birth_year = (person.birth_year // 10 * 10) if person.birth_year else None
        person.birth_date = None
        person.sensitive_data = ""
        person.factors = []
        person.status = RecordStatus.ANONYMISED
        person.save()
        Merge.objects.filter(merged=person).update(snapshot={})
        household = person.household
        if not household.members.exclude(status=RecordStatus.ANONYMISED).exists():
            Household.objects.filter(pk=household.pk).update(
                street="",
                ext_number="",
                int_number="",
                reference="",
                external_id="",
                lat=None,
                lon=None,
                address_key="",
                status=RecordStatus.ANONYMISED,
            )
            household.phones.all().delete()
        record("registry.person.anonymise", actor=actor, obj=person, node=person.node)
    return person


def anonymise_due(now=None) -> int:
    """Anonymise every blocked person whose municipality's blocking period has passed. Returns how many."""
    now = now or timezone.now()
    done = 0
    for policy in RegistryPolicy.objects.all():
        cutoff = now - dt.timedelta(days=policy.retention_days)
        due = Person.objects.filter(
            municipality_id=policy.municipality_id, status=RecordStatus.BLOCKED, blocked_at__lte=cutoff
        )
        for person in due.iterator():
            anonymise_person(person)
            done += 1
    return done
