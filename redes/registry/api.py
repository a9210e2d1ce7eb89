"""JSON API of the registry: households, persons, visits, consent, sensitive data, data-subject requests,
duplicates, priority weights, per-block counts and bulk imports.

Reads go through ``registry.queries`` and ``accounts.scoping``; writes through ``registry.services`` (and
``registry.importing`` for imports), each inside ``core.api.attempt`` so that refusals are audited.

Access, as everywhere: a record outside the caller's territory, missing, or named by a malformed UUID answers
404; a node or municipality the caller sees but may not act on answers 403. Personal data (households, persons,
consents, visits) needs ``VIEW_PERSONAL``: observers and volunteers get 403 on lists and 404 on records, and
only the per-block counts (``VIEW_AGGREGATES``). Sensitive data appears only in ``/persons/{uuid}/sensitive``,
for case officers, and each read is audited by ``services.read_sensitive``.
"""

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.core.api import ERRORS, READ_403, WRITE_ERRORS, NotFound, Paginator, attempt, user_of
from redes.core.phones import normalize_phone
from redes.territories.api import find_municipality, find_node
from redes.territories.models import Municipality, Node

from . import queries, services, vulnerability
from .models import (
    Consent,
    DataRequest,
    DuplicateCandidate,
    Household,
    ImportJob,
    Person,
    PrivacyNotice,
    Visit,
)
from .schemas import (
    AnswerIn,
    ConsentIn,
    ConsentOut,
    CountsOut,
    DataRequestIn,
    DataRequestOut,
    DecideIn,
    DuplicateOut,
    HouseholdDetail,
    HouseholdFilters,
    HouseholdIn,
    HouseholdOut,
    HouseholdPatch,
    ImportJobOut,
    MappingIn,
    NoticeIn,
    NoticeOut,
    PersonCreated,
    PersonFields,
    PersonFilters,
    PersonIn,
    PersonOut,
    PolicyIn,
    PolicyOut,
    PreviewOut,
    RevokeIn,
    SensitiveIn,
    SensitiveOut,
    VisitIn,
    VisitOut,
    import_error,
)

router = Router(tags=["Registry"])


# --- lookups --------------------------------------------------------------------------------------------------


def _households():
    return Household.objects.select_related("node").prefetch_related("phones")


def _persons():
    return Person.objects.select_related("node", "household")


def find_household(request: HttpRequest, key: str) -> Household:
    """A household the caller sees (``VIEW_PERSONAL`` over its block); 404 otherwise."""
    try:
        return queries.households(user_of(request)).select_related("node", "municipality").get(uuid=key)
    except (Household.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def find_person(request: HttpRequest, key: str) -> Person:
    """An active person the caller sees (``VIEW_PERSONAL`` over their block); 404 otherwise."""
    try:
        return queries.persons(user_of(request)).select_related("node", "household").get(uuid=key)
    except (Person.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def find_block(request: HttpRequest, key: str, loc: list) -> Node:
    """A node the caller sees (else 404 naming ``loc``) where they may edit the registry (else 403)."""
    node = find_node(request, key, loc=loc)
    scoping.require(user_of(request), Perm.EDIT_REGISTRY, node)
    return node


def holds_in(user, perm: str, municipality: Municipality) -> bool:
    """Does the user hold ``perm`` over the municipality or anywhere inside it?"""
    if scoping.can(user, perm, municipality.node):
        return True
    return any(g.municipality_id == municipality.pk for g in scoping.grants_for(user, perm))


def require_in(user, perm: str, municipality: Municipality) -> None:
    if not holds_in(user, perm, municipality):
        raise PermissionDenied


def require_in_municipality(user, perm: str, municipality: Municipality) -> None:
    """The municipality was found (so it is visible): 403 unless ``perm`` covers all of it."""
    if not scoping.can(user, perm, municipality.node):
        raise PermissionDenied


def require_anywhere(user, perm: str) -> None:
    if not scoping.can(user, perm):
        if perm == Perm.MANAGE_REGISTRY:
            raise PermissionDenied(_("Your role does not allow managing the registry."))
        raise PermissionDenied(_("Your role does not allow seeing personal data."))


def _subtree(qs, node: Node, prefix: str = "node__"):
    if node.depth is None:
        return qs.none()
    return qs.filter(**{f"{prefix}a{node.depth}": node.pk})


def _household_detail(request, household: Household) -> Household:
    household = _households().get(pk=household.pk)
    user = user_of(request)
    threshold = services.policy_for(household.municipality_id).priority_threshold
    household.active_members = list(
        _persons().filter(household=household, status="active").order_by("created_at", "pk")
    )
    household.priority_threshold = threshold
    household.is_priority = household.priority >= threshold
    household.explanation = services.explain_priority(household, user)
    return household


# --- households -----------------------------------------------------------------------------------------------


@router.get(
    "/households",
    response={200: list[HouseholdOut], **READ_403},
    summary="Households in the caller's territory",
    description="Highest priority first. Filters combine: ``block`` (a block or any node above blocks), "
    "``unvisited``, ``min_priority``, ``q`` (street, neighbourhood, reference). Personal data: observers and "
    "volunteers get 403. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_households(request, filters: Query[HouseholdFilters]):
    user = user_of(request)
    require_anywhere(user, Perm.VIEW_PERSONAL)
    qs = queries.households(user)
    if filters.block:
        node = find_node(request, filters.block, loc=["query", "block"])
        scoping.require(user, Perm.VIEW_PERSONAL, node)
        qs = _subtree(qs, node)
    if filters.unvisited:
        qs = qs.filter(last_visit_at__isnull=True)
    elif filters.unvisited is False:
        qs = qs.filter(last_visit_at__isnull=False)
    if filters.min_priority is not None:
        qs = qs.filter(priority__gte=filters.min_priority)
    if filters.q and filters.q.strip():
        text = filters.q.strip()
        qs = qs.filter(Q(street__icontains=text) | Q(colonia__icontains=text) | Q(reference__icontains=text))
    return (
        qs.select_related("node")
        .prefetch_related("phones")
        .order_by("-priority", "street", "ext_number", "pk")
    )


@router.post(
    "/households",
    response={201: HouseholdDetail, **WRITE_ERRORS},
    summary="Register a household on a block",
    description="Needs the registry-editing permission over the block. Phones are normalised to E.164; a "
    "refused field (postal code, coordinates, phone) answers 400 with the reason and nothing is written.",
)
def create_household(request, payload: HouseholdIn):
    user = user_of(request)
    with attempt(request, "registry.household.create") as a:
        a.obj = block = find_block(request, payload.block, ["body", "block"])
        data = payload.model_dump(exclude={"block", "phones"}, exclude_unset=True)
        data = {k: v for k, v in data.items() if v is not None or k in ("lat", "lon")}
        phones = _phones(payload.phones)
        household = services.create_household(block, actor=user, phones=phones, **data)
    return Status(201, _household_detail(request, household))


def _phones(items) -> list[dict]:
    """Check every phone first, so that a refusal names the field and the phone (1 = the first)."""
    errors = []
    for i, item in enumerate(items, start=1):
        if item.number.strip():
            try:
                normalize_phone(item.number)
            except ValidationError as exc:
                errors += [
                    _("Phone %(n)s: %(reason)s") % {"n": i, "reason": message} for message in exc.messages
                ]
    if errors:
        raise ValidationError({"phones": errors})
    return [item.model_dump() for item in items]


@router.get(
    "/households/{uuid}",
    response={200: HouseholdDetail, **ERRORS},
    summary="One household, with members, phones and its priority explained",
    description="The explanation folds sensitive factors into one “protected” line for every caller; case "
    "officers read the factors themselves through the sensitive-data endpoint (audited).",
)
def get_household(request, uuid: str):
    return _household_detail(request, find_household(request, uuid))


@router.patch(
    "/households/{uuid}",
    response={200: HouseholdDetail, **WRITE_ERRORS},
    summary="Edit a household, or move it to another block",
    description="Only the fields sent change; ``phones``, when sent, replaces every phone. ``block`` moves the "
    "household and its members to another block the caller may edit (same municipality).",
)
def update_household(request, uuid: str, payload: HouseholdPatch):
    user = user_of(request)
    with attempt(request, "registry.household.update") as a:
        a.obj = household = find_household(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, household.node)
        block = find_block(request, payload.block, ["body", "block"]) if payload.block else None
        data = payload.model_dump(exclude={"block", "phones"}, exclude_unset=True)
        if data.get("preferred_channel") is None:
            data.pop("preferred_channel", None)
        for key in (
            "external_id",
            "street",
            "ext_number",
            "int_number",
            "colonia",
            "postal_code",
            "reference",
        ):
            if key in data and data[key] is None:
                data[key] = ""
        phones = _phones(payload.phones) if payload.phones is not None else None
        household = services.update_household(household, actor=user, node=block, phones=phones, **data)
    return _household_detail(request, household)


@router.get(
    "/households/{uuid}/visits",
    response={200: list[VisitOut], **ERRORS},
    summary="Visits to a household",
    description="Newest first. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_visits(request, uuid: str):
    household = find_household(request, uuid)
    return (
        Visit.objects.filter(household=household)
        .select_related("household", "visited_by")
        .order_by("-visited_at", "-pk")
    )


@router.post(
    "/households/{uuid}/visits",
    response={201: VisitOut, **WRITE_ERRORS},
    summary="Record a visit to a household",
    description="The household counts as visited from then on (block counts follow).",
)
def create_visit(request, uuid: str, payload: VisitIn):
    user = user_of(request)
    with attempt(request, "registry.visit.create") as a:
        a.obj = household = find_household(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, household.node)
        if payload.visited_at and payload.visited_at > timezone.now() + dt.timedelta(minutes=5):
            raise ValidationError({"visited_at": _("A visit cannot be in the future.")})
        visit = services.record_visit(
            household, payload.outcome, actor=user, note=payload.note, when=payload.visited_at
        )
    return Status(201, Visit.objects.select_related("household", "visited_by").get(pk=visit.pk))


# --- persons --------------------------------------------------------------------------------------------------


@router.get(
    "/persons",
    response={200: list[PersonOut], **READ_403},
    summary="Search persons in the caller's territory",
    description="``q``: name words in any order, each a prefix of a given name or surname, accents and case "
    "ignored (“lopez ana”, “nuñez”); a full CURP in ``q`` is looked up exactly; at most 50 matches. "
    "``curp``: exact. ``block``, ``household``, ``municipality`` narrow the list. Never includes sensitive "
    "data. Observers and volunteers get 403. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_persons(request, filters: Query[PersonFilters]):
    user = user_of(request)
    require_anywhere(user, Perm.VIEW_PERSONAL)
    municipality = None
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
    narrow = Q()
    if filters.block:
        node = find_node(request, filters.block, loc=["query", "block"])
        scoping.require(user, Perm.VIEW_PERSONAL, node)
        narrow &= Q(**{f"node__a{node.depth}": node.pk})
        municipality = municipality or node.municipality
    if filters.household:
        household = find_household(request, filters.household)
        narrow &= Q(household=household)
    if filters.curp:
        narrow &= Q(curp=filters.curp.strip().upper())
    if filters.q and filters.q.strip():
        found = list(
            queries.search_persons(user, filters.q, municipality=municipality).values_list("pk", flat=True)
        )
        rows = _persons().filter(narrow, pk__in=found)
        order = {pk: i for i, pk in enumerate(found)}
        return sorted(rows, key=lambda p: order[p.pk])
    qs = queries.persons(user).filter(narrow)
    if municipality is not None:
        qs = qs.filter(municipality=municipality)
    return qs.select_related("node", "household").order_by("surname1_key", "surname2_key", "given_key", "pk")


def _duplicate_hints(person: Person) -> list[dict]:
    hints = []
    for candidate in getattr(person, "duplicates", []) or []:
        other_id = candidate.person_b_id if candidate.person_a_id == person.pk else candidate.person_a_id
        hints.append({"candidate": candidate.uuid, "person_id": other_id, **_score(candidate)})
    uuids = dict(Person.objects.filter(pk__in=[h["person_id"] for h in hints]).values_list("pk", "uuid"))
    return [
        {"candidate": h["candidate"], "person": uuids[h.pop("person_id")], **h}
        for h in hints
        if h["person_id"] in uuids
    ]


def _score(candidate: DuplicateCandidate) -> dict:
    return {"score": candidate.score, "reasons": list(candidate.reasons or [])}


NAME_PARTS = ("given_name", "surname1", "surname2")


def _person_fields(payload: PersonFields, *, partial: bool, person: Person | None = None) -> dict:
    data = payload.model_dump(exclude_unset=partial)
    if person is not None and "full_name" not in data and any(k in data for k in NAME_PARTS):
        # One name part changed: keep the others, and the display name follows the parts.
        for key in NAME_PARTS:
            data.setdefault(key, getattr(person, key))
    if not partial:
        data = {k: v for k, v in data.items() if v is not None}
    for key in ("given_name", "surname1", "surname2", "curp", "phone", "relation", "sex", "external_id"):
        if key in data and data[key] is None:
            data[key] = ""
    if "factors" in data and data["factors"] is None:
        data["factors"] = []
    if "full_name" in data and data["full_name"] is None:
        data.pop("full_name")
    return data


@router.post(
    "/households/{uuid}/persons",
    response={201: PersonCreated, **WRITE_ERRORS},
    summary="Add a person to a household",
    description="A CURP is checked by structure and check digit (sex “X” accepted) and a phone by Mexican "
    "numbering: a refusal says why (400) and nothing is written. The answer lists the records of the "
    "municipality that may be the same person (uuid, score, reasons); they also go to the review queue.",
)
def create_person(request, uuid: str, payload: PersonIn):
    user = user_of(request)
    with attempt(request, "registry.person.create") as a:
        a.obj = household = find_household(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, household.node)
        person = services.add_person(household, actor=user, **_person_fields(payload, partial=False))
    hints = _duplicate_hints(person)
    person = _persons().get(pk=person.pk)
    person.possible_duplicates = hints
    return Status(201, person)


@router.get(
    "/persons/{uuid}",
    response={200: PersonOut, **ERRORS},
    summary="One person",
    description="Never includes sensitive data (case officers read it at ``/persons/{uuid}/sensitive``).",
)
def get_person(request, uuid: str):
    return find_person(request, uuid)


@router.patch(
    "/persons/{uuid}",
    response={200: PersonCreated, **WRITE_ERRORS},
    summary="Edit a person",
    description="Only the fields sent change. A changed CURP, name or birth date is checked for duplicates "
    "again; the answer lists the new possible duplicates.",
)
def update_person(request, uuid: str, payload: PersonFields):
    user = user_of(request)
    with attempt(request, "registry.person.update") as a:
        a.obj = person = find_person(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, person.node)
        person = services.update_person(
            person, actor=user, **_person_fields(payload, partial=True, person=person)
        )
    hints = _duplicate_hints(person)
    person = _persons().get(pk=person.pk)
    person.possible_duplicates = hints
    return person


# --- sensitive data -------------------------------------------------------------------------------------------


def _sensitive_answer(person: Person, data: dict) -> dict:
    factors = data.get("factors", []) if isinstance(data, dict) else []
    return {
        "person": person.uuid,
        "factors": [
            {
                "code": code,
                "label": str(vulnerability.FACTORS[code].label) if code in vulnerability.FACTORS else code,
            }
            for code in factors
        ],
        "notes": data.get("notes", "") if isinstance(data, dict) else "",
        "updated_at": person.sensitive_updated_at,
    }


@router.get(
    "/persons/{uuid}/sensitive",
    response={200: SensitiveOut, **READ_403},
    summary="A person's sensitive data (case officers only; every read is audited)",
    description="Health, disability, pregnancy, emotional support, violence risk and notes, decrypted for a "
    "case officer of the person's municipality. Every read writes an audit row; anyone else who sees the "
    "person gets 403 (and the refusal is audited), others 404.",
)
def get_sensitive(request, uuid: str):
    person = find_person(request, uuid)
    data = services.read_sensitive(person, actor=user_of(request))
    return _sensitive_answer(person, data)


@router.put(
    "/persons/{uuid}/sensitive",
    response={200: SensitiveOut, **WRITE_ERRORS},
    summary="Record a person's sensitive data (case officers only)",
    description="Replaces the sensitive factors and notes (encrypted at rest). Needs the person's express "
    "consent for sensitive data (400 otherwise). An empty list and empty notes erase them.",
)
def put_sensitive(request, uuid: str, payload: SensitiveIn):
    user = user_of(request)
    with attempt(request, "registry.sensitive.update") as a:
        a.obj = person = find_person(request, uuid)
        scoping.require(user, Perm.EDIT_SENSITIVE, person.node)
        person = services.set_sensitive(person, actor=user, factors=payload.factors, notes=payload.notes)
    return _sensitive_answer(
        person, {"factors": list(dict.fromkeys(payload.factors)), "notes": payload.notes.strip()}
    )


# --- privacy notices and consent ------------------------------------------------------------------------------


@router.get(
    "/municipalities/{uuid}/privacy-notices",
    response={200: list[NoticeOut], **READ_403},
    summary="The privacy notices of a municipality",
    description="Newest first. ``uuid`` may be the INEGI key. For those who register persons (field roles, "
    "coordinators).",
)
def list_notices(request, uuid: str):
    municipality = find_municipality(request, uuid)
    require_in(user_of(request), Perm.EDIT_REGISTRY, municipality)
    return PrivacyNotice.objects.filter(municipality=municipality).order_by("-published_at", "-pk")


@router.get(
    "/municipalities/{uuid}/privacy-notices/current",
    response={200: NoticeOut, **READ_403},
    summary="The current privacy notice of a municipality",
    description="The one to show before capturing consent; 404 when none has been published.",
)
def current_notice(request, uuid: str):
    municipality = find_municipality(request, uuid)
    require_in(user_of(request), Perm.EDIT_REGISTRY, municipality)
    notice = services.current_notice(municipality)
    if notice is None:
        raise Http404
    return notice


@router.post(
    "/municipalities/{uuid}/privacy-notices",
    response={201: NoticeOut, **WRITE_ERRORS},
    summary="Publish a new version of the privacy notice",
    description="Needs registry management over the municipality. Purposes marked necessary must be accepted "
    "for a person to be registered.",
)
def publish_notice(request, uuid: str, payload: NoticeIn):
    user = user_of(request)
    with attempt(request, "registry.notice.publish") as a:
        a.obj = municipality = find_municipality(request, uuid)
        require_in_municipality(user, Perm.MANAGE_REGISTRY, municipality)
        purposes = [p.model_dump() for p in payload.purposes] if payload.purposes else None
        if purposes:
            for p in purposes:
                if not p["label"]:
                    p.pop("label")
        notice = services.publish_notice(
            municipality, version=payload.version, text=payload.text, purposes=purposes, actor=user
        )
    return Status(201, notice)


def _consents():
    return Consent.objects.select_related("person", "notice", "captured_by")


@router.get(
    "/persons/{uuid}/consents",
    response={200: list[ConsentOut], **ERRORS},
    summary="A person's consents, current and revoked",
    description="Newest first; at most one is active.",
)
def list_consents(request, uuid: str):
    person = find_person(request, uuid)
    return _consents().filter(person=person).order_by("-captured_at", "-pk")


@router.post(
    "/persons/{uuid}/consents",
    response={201: ConsentOut, **WRITE_ERRORS},
    summary="Record a person's consent",
    description="Under the notice given (default: the current one); the necessary purposes must be accepted. "
    "It replaces the active consent; withdrawing express consent for sensitive data erases that data.",
)
def create_consent(request, uuid: str, payload: ConsentIn):
    user = user_of(request)
    with attempt(request, "registry.consent.create") as a:
        a.obj = person = find_person(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, person.node)
        notice = None
        if payload.notice:
            try:
                notice = PrivacyNotice.objects.get(
                    municipality_id=person.municipality_id, uuid=payload.notice
                )
            except (PrivacyNotice.DoesNotExist, ValidationError, ValueError) as exc:
                raise NotFound(["body", "notice"]) from exc
        consent = services.record_consent(
            person,
            actor=user,
            notice=notice,
            purposes=payload.purposes,
            sensitive=payload.sensitive,
            channel=payload.channel,
        )
    return Status(201, _consents().get(pk=consent.pk))


@router.post(
    "/consents/{uuid}/revoke",
    response={200: ConsentOut, **WRITE_ERRORS},
    summary="Revoke a consent",
    description="Sensitive data held under it is erased at once.",
)
def revoke_consent(request, uuid: str, payload: RevokeIn | None = None):
    user = user_of(request)
    payload = payload or RevokeIn()
    with attempt(request, "registry.consent.revoke") as a:
        a.obj = consent = scoping.get_scoped_or_404(
            _consents().filter(person__status="active"), user, Perm.VIEW_PERSONAL, via="node", uuid=uuid
        )
        scoping.require(user, Perm.EDIT_REGISTRY, consent.node)
        services.revoke_consent(consent, actor=user, reason=payload.reason)
    return _consents().get(pk=consent.pk)


# --- data-subject (ARCO) requests ------------------------------------------------------------------------------


def _requests():
    return DataRequest.objects.select_related("person", "node")


@router.get(
    "/data-requests",
    response={200: list[DataRequestOut], **READ_403},
    summary="Open data-subject requests, the most urgent first",
    description="Access, rectification, cancellation and objection requests still to answer, with their "
    "deadline (20 business days) and the days left. Needs registry management. Paginated.",
)
@paginate(Paginator)
def list_requests(request, municipality: str | None = None):
    user = user_of(request)
    require_anywhere(user, Perm.MANAGE_REGISTRY)
    qs = queries.open_requests(user).select_related("node")
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    return qs


@router.post(
    "/persons/{uuid}/data-requests",
    response={201: DataRequestOut, **WRITE_ERRORS},
    summary="Register a data-subject request",
    description="``kind``: access, rectification (with ``changes``), cancellation or objection (with "
    "``purpose``). Anyone who registers persons may take one; coordinators answer it.",
)
def create_request(request, uuid: str, payload: DataRequestIn):
    user = user_of(request)
    with attempt(request, "registry.request.open") as a:
        a.obj = person = find_person(request, uuid)
        scoping.require(user, Perm.EDIT_REGISTRY, person.node)
        data_request = services.open_data_request(
            person,
            payload.kind,
            actor=user,
            details=payload.details,
            purpose=payload.purpose,
            changes=payload.changes,
        )
    return Status(201, _requests().get(pk=data_request.pk))


def _answer(request, uuid: str, payload: AnswerIn, *, reject: bool):
    user = user_of(request)
    with attempt(request, "registry.request.answer") as a:
        a.obj = data_request = scoping.get_scoped_or_404(
            _requests(), user, Perm.VIEW_PERSONAL, via="node", uuid=uuid
        )
        scoping.require(user, Perm.MANAGE_REGISTRY, data_request.node)
        services.answer_data_request(data_request, actor=user, response=payload.response, reject=reject)
    return _requests().get(pk=data_request.pk)


@router.post(
    "/data-requests/{uuid}/answer",
    response={200: DataRequestOut, **WRITE_ERRORS},
    summary="Answer a data-subject request, carrying it out",
    description="Rectification applies the corrections, cancellation blocks the record, objection drops the "
    "purpose. Needs registry management.",
)
def answer_request(request, uuid: str, payload: AnswerIn | None = None):
    return _answer(request, uuid, payload or AnswerIn(), reject=False)


@router.post(
    "/data-requests/{uuid}/reject",
    response={200: DataRequestOut, **WRITE_ERRORS},
    summary="Reject a data-subject request, saying why",
    description="``response`` is required. Needs registry management.",
)
def reject_request(request, uuid: str, payload: AnswerIn | None = None):
    return _answer(request, uuid, payload or AnswerIn(), reject=True)


@router.get(
    "/persons/{uuid}/export",
    response={200: dict[str, Any], **READ_403},
    summary="Export a person's data as JSON (data-subject access)",
    description="Coordinators and case officers. The sensitive part is included only for case officers (that "
    "read is audited); others get a note that it is held. Every export is audited.",
)
def export_person(request, uuid: str):
    user = user_of(request)
    person = find_person(request, uuid)
    if not (
        scoping.can(user, Perm.MANAGE_REGISTRY, person.node)
        or scoping.can(user, Perm.VIEW_SENSITIVE, person.node)
    ):
        raise PermissionDenied
    return services.export_person(person, actor=user)


# --- duplicates -----------------------------------------------------------------------------------------------


@router.get(
    "/duplicates",
    response={200: list[DuplicateOut], **READ_403},
    summary="Possible duplicates to review, highest score first",
    description="Pairs found on entry and on import across the municipality. Needs registry management. "
    "Paginated.",
)
@paginate(Paginator)
def list_duplicates(request, municipality: str | None = None):
    user = user_of(request)
    require_anywhere(user, Perm.MANAGE_REGISTRY)
    qs = queries.duplicate_queue(user).select_related(
        "person_a__node", "person_a__household", "person_b__node", "person_b__household"
    )
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    return qs


@router.post(
    "/duplicates/{uuid}/decide",
    response={200: DuplicateOut, **WRITE_ERRORS},
    summary="Decide a possible duplicate: the same person (merge) or different persons",
    description="``same: true`` merges the pair into ``keep`` (one of the two; default the first), keeping the "
    "other as history; ``same: false`` marks them distinct. Needs registry management.",
)
def decide_duplicate(request, uuid: str, payload: DecideIn):
    user = user_of(request)
    with attempt(request, "registry.duplicate.decide") as a:
        a.obj = candidate = scoping.get_scoped_or_404(
            DuplicateCandidate.objects.select_related("person_a", "person_b"),
            user,
            Perm.VIEW_PERSONAL,
            via="node",
            uuid=uuid,
        )
        scoping.require(user, Perm.MANAGE_REGISTRY, candidate.node)
        keep = None
        if payload.same and payload.keep:
            pair = {
                str(candidate.person_a.uuid): candidate.person_a,
                str(candidate.person_b.uuid): candidate.person_b,
            }
            keep = pair.get(payload.keep.strip().lower())
            if keep is None:
                raise ValidationError({"keep": _("The record to keep must be one of the pair.")})
        services.decide_duplicate(candidate, actor=user, same=payload.same, keep=keep)
    return DuplicateCandidate.objects.select_related(
        "person_a__node", "person_a__household", "person_b__node", "person_b__household"
    ).get(pk=candidate.pk)


# --- priority weights -----------------------------------------------------------------------------------------


def _policy(municipality: Municipality) -> dict:
    policy = services.policy_for(municipality)
    weights = vulnerability.weights_for(policy.weights)
    return {
        "municipality": municipality.uuid,
        "weights": [
            {
                "factor": f.code,
                "label": str(f.label),
                "weight": weights[f.code],
                "default": f.weight,
                "sensitive": f.sensitive,
                "derived": f.derived,
            }
            for f in vulnerability.FACTORS.values()
        ],
        "priority_threshold": policy.priority_threshold,
        "retention_days": policy.retention_days,
    }


@router.get(
    "/municipalities/{uuid}/registry-policy",
    response={200: PolicyOut, **READ_403},
    summary="The municipality's vulnerability weights and priority threshold",
    description="Every factor with its weight here and its documented default. ``uuid`` may be the INEGI "
    "key. Needs registry management.",
)
def get_policy(request, uuid: str):
    municipality = find_municipality(request, uuid)
    require_in_municipality(user_of(request), Perm.MANAGE_REGISTRY, municipality)
    return _policy(municipality)


@router.put(
    "/municipalities/{uuid}/registry-policy",
    response={200: PolicyOut, **WRITE_ERRORS},
    summary="Set the vulnerability weights and priority threshold",
    description="``weights`` replaces the municipality's overrides (factors left out take the default); every "
    "household's priority is recomputed. An unknown factor or a weight outside 0–100 answers 400.",
)
def put_policy(request, uuid: str, payload: PolicyIn):
    user = user_of(request)
    with attempt(request, "registry.policy.update") as a:
        a.obj = municipality = find_municipality(request, uuid)
        require_in_municipality(user, Perm.MANAGE_REGISTRY, municipality)
        services.set_weights(municipality, payload.weights, actor=user, threshold=payload.priority_threshold)
    return _policy(municipality)


# --- per-block counts -----------------------------------------------------------------------------------------

_COUNT_FIELDS = queries.COUNT_FIELDS


@router.get(
    "/nodes/{uuid}/registry-counts",
    response={200: CountsOut, **READ_403},
    summary="Registry counts under a node (aggregates only)",
    description="Households, persons, priority households and visited households of every block under the "
    "node, and the same per child. No names, phones or CURPs: observers may read it.",
)
def get_counts(request, uuid: str):
    user = user_of(request)
    node = find_node(request, uuid)
    scoping.require(user, Perm.VIEW_AGGREGATES, node)
    total, per_child = queries.registry_counts(node)
    children = list(node.children.order_by("code"))
    return {
        **{f: total[f] or 0 for f in _COUNT_FIELDS},
        "node": node,
        "children": [
            {"node": c, **{f: (per_child.get(c.pk) or {}).get(f) or 0 for f in _COUNT_FIELDS}}
            for c in children
        ],
    }


# --- bulk imports ---------------------------------------------------------------------------------------------


def _importing():
    from . import importing

    return importing


def _jobs():
    return ImportJob.objects.select_related("municipality", "node")


def find_job(request: HttpRequest, key: str) -> ImportJob:
    """An import the caller manages (registry management over its node); 404 otherwise."""
    return scoping.get_scoped_or_404(_jobs(), user_of(request), Perm.MANAGE_REGISTRY, via="node", uuid=key)


@router.post(
    "/municipalities/{uuid}/registry-imports",
    response={201: ImportJobOut, **WRITE_ERRORS},
    summary="Upload a CSV or XLSX file of households and persons",
    description="Multipart: ``file`` and optionally ``node`` (rows must fall under it; default the whole "
    "municipality). Then set the column mapping, look at the preview and start the import. Needs registry "
    "management over the node.",
)
def upload_import(request, uuid: str, file: File[UploadedFile], node: Form[str | None] = None):
    user = user_of(request)
    with attempt(request, "registry.import.create") as a:
        a.obj = municipality = find_municipality(request, uuid)
        target = municipality.node
        if node:
            target = find_node(request, node, loc=["body", "node"])
            if target.municipality_id != municipality.pk:
                raise NotFound(["body", "node"])
        if not scoping.can(user, Perm.MANAGE_REGISTRY, target):
            raise PermissionDenied
        job = _importing().create_job(municipality, target, file, actor=user, filename=file.name)
    return Status(201, _jobs().get(pk=job.pk))


@router.get(
    "/registry-imports/{uuid}",
    response={200: ImportJobOut, **ERRORS},
    summary="An import's status and progress",
    description="Phase, processed/total rows, what was created, updated, refused and flagged, and the first "
    "row errors.",
)
def get_import(request, uuid: str):
    return find_job(request, uuid)


@router.put(
    "/registry-imports/{uuid}/mapping",
    response={200: ImportJobOut, **WRITE_ERRORS},
    summary="Set an import's column mapping and mode",
    description="``mode``: ``valid_rows`` imports the valid rows; ``all_or_nothing`` imports nothing unless "
    "every row is valid.",
)
def set_import_mapping(request, uuid: str, payload: MappingIn):
    user = user_of(request)
    with attempt(request, "registry.import.update") as a:
        a.obj = job = find_job(request, uuid)
        _importing().set_mapping(job, payload.mapping, payload.mode, actor=user)
    return _jobs().get(pk=job.pk)


@router.get(
    "/registry-imports/{uuid}/preview",
    response={200: PreviewOut, **WRITE_ERRORS},
    summary="Preview an import: the first rows as they would be read, with their errors",
    description="Validates the whole file with the current mapping and writes nothing: the first ``limit`` "
    "rows with their cleaned values and errors, the counts of valid and invalid rows and households, and the "
    "first row errors.",
)
def preview_import(request, uuid: str, limit: int = Query(20, ge=1, le=200)):
    job = find_job(request, uuid)
    result = _importing().preview(job, limit=limit)
    return {**result, "errors": [import_error(e) for e in result.get("errors", [])]}


@router.post(
    "/registry-imports/{uuid}/start",
    response={202: ImportJobOut, **WRITE_ERRORS},
    summary="Start an import (a background task)",
    description="Follow its progress with GET /registry-imports/{uuid}.",
)
def start_import(request, uuid: str):
    user = user_of(request)
    with attempt(request, "registry.import.start") as a:
        a.obj = job = find_job(request, uuid)
        _importing().start(job, actor=user)
    return Status(202, _jobs().get(pk=job.pk))
