"""JSON API of needs and cases: intake from any channel, the queue, each step of the lifecycle, referrals,
notes, notifications, settings (categories, offices, working groups, routing rules, deadlines), counts and the
aggregated map.

Reads go through ``needs.queries`` (the visibility rules are there); writes through ``needs.services``, which
check permissions, refuse bad input and audit refusals themselves; 404s (missing, not visible, malformed ids)
are audited here. A sensitive need answers as a stub to everyone but case officers.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.models import User
from redes.accounts.roles import Perm, Role
from redes.core.api import ERRORS, READ_403, WRITE_ERRORS, NotFound, Paginator, attempt, user_of
from redes.registry import queries as registry_queries
from redes.territories.api import find_municipality, find_node
from redes.territories.models import Municipality

from . import queries, services
from .models import (
    DeadlinePolicy,
    Need,
    NeedCategory,
    NeedEvent,
    Office,
    Referral,
    RoutingRule,
    WorkingGroup,
)
from .schemas import (
    AssignIn,
    CancelIn,
    CategoryIn,
    CategoryOut,
    CloseIn,
    CountsOut,
    DeadlineIn,
    DeadlineOut,
    DuplicateIn,
    GroupIn,
    GroupOut,
    NeedDetail,
    NeedFilters,
    NeedIn,
    NeedPage,
    NoteIn,
    NotificationOut,
    OfficeIn,
    OfficeOut,
    OptionalNoteIn,
    ReadIn,
    ReadOut,
    ReferIn,
    ReferralOut,
    ReferralPatch,
    ResolveIn,
    RuleIn,
    RuleOut,
    TriageIn,
)

router = Router(tags=["Needs"])

_SAFE_DATA = (
    "level",
    "outcome",
    "category",
    "urgency",
    "channel",
    "satisfaction",
    "status",
    "user",
    "group",
    "office",
    "referral",
    "rule",
    "of",
    "count",
)


# --- helpers --------------------------------------------------------------------------------------------------


def find_need(request: HttpRequest, key: str) -> Need:
    try:
        return queries.get_need(user_of(request), key)
    except Http404 as exc:
        raise NotFound(["path", "uuid"]) from exc


def _by_uuid(qs, key, loc):
    try:
        return qs.get(uuid=key)
    except (qs.model.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise NotFound(loc) from exc


def _municipality(request, key: str) -> Municipality:
    return find_municipality(request, key, loc=["path", "municipality"])


def require_field_role(user, municipality: Municipality) -> None:
    """Settings are read by whoever reports or handles needs in the municipality (403 otherwise)."""
    for perm in (Perm.REPORT_NEEDS, Perm.HANDLE_NEEDS, Perm.MANAGE_NEEDS):
        if scoping.can(user, perm, municipality.node) or any(
            g.municipality_id == municipality.pk for g in scoping.grants_for(user, perm)
        ):
            return
    raise PermissionDenied(_("Your role does not work with needs here."))


def _node(node):
    return (
        None
        if node is None
        else {"uuid": node.uuid, "code": node.code, "name": node.name, "depth": node.depth}
    )


def _person(user):
    return None if user is None else {"uuid": user.uuid, "name": user.display_name}


def _named(obj):
    return None if obj is None else {"uuid": obj.uuid, "name": obj.name}


def need_out(need: Need, user) -> dict:
    base = {
        "uuid": need.uuid,
        "status": need.status,
        "status_label": str(need.get_status_display()),
        "sensitive": need.sensitive,
        "created_at": need.created_at,
        "updated_at": need.updated_at,
    }
    if queries.is_stub(need, user):
        return {**base, "stub": True, "status_label": str(_("Referred to a case officer"))}
    return {
        **base,
        "category": need.category.code,
        "category_label": need.category.label,
        "urgency": need.urgency,
        "channel": need.channel,
        "node": _node(need.node),
        "holder": _node(need.holder_node),
        "holder_label": need.holder_label,
        "escalation_level": need.escalation_level,
        "assigned_user": _person(need.assigned_user),
        "assigned_group": _named(need.assigned_group),
        "assigned_office": _named(need.assigned_office),
        "due_at": need.due_at,
        "overdue": need.is_overdue,
    }


def _referral_out(referral: Referral) -> dict:
    return {
        "uuid": referral.uuid,
        "need": referral.need.uuid,
        "office": _named(referral.office),
        "status": referral.status,
        "note": referral.note,
        "outcome": referral.outcome,
        "created_at": referral.created_at,
        "updated_at": referral.updated_at,
    }


def _event_out(event: NeedEvent) -> dict:
    return {
        "at": event.at,
        "kind": event.kind,
        "kind_label": str(event.get_kind_display()),
        "actor": _person(event.actor),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "node": _node(event.node),
        "note": getattr(event, "note", ""),
        "data": {k: v for k, v in (event.data or {}).items() if k in _SAFE_DATA},
    }


def need_detail(need: Need, user) -> dict:
    out = need_out(need, user)
    events = [_event_out(e) for e in queries.timeline(need, user)]
    if out.get("stub"):
        return {**out, "events": events}
    description = services.read_sensitive(need, actor=user) if need.sensitive else need.description
    referrals = need.referrals.select_related("office", "need").order_by("created_at", "id")
    return {
        **out,
        "description": description,
        "address": need.address,
        "lat": need.lat,
        "lon": need.lon,
        "contact_phone": need.contact_phone,
        "household": need.household.uuid if need.household_id else None,
        "person": need.person.uuid if need.person_id else None,
        "ack_due": need.ack_due,
        "resolve_due": need.resolve_due,
        "acknowledged_at": need.acknowledged_at,
        "resolved_at": need.resolved_at,
        "closed_at": need.closed_at,
        "outcome": need.outcome,
        "outcome_note": need.outcome_note,
        "satisfaction": need.satisfaction,
        "duplicate_of": need.duplicate_of.uuid if need.duplicate_of_id else None,
        "events": events,
        "referrals": [_referral_out(r) for r in referrals],
    }


def _fresh(request, need: Need) -> dict:
    return need_detail(queries.get_need(user_of(request), need.uuid), user_of(request))


# --- notifications --------------------------------------------------------------------------------------------


@router.get(
    "/needs/notifications",
    response={200: list[NotificationOut], **ERRORS},
    summary="The caller's notifications about needs",
    description="Newest first; ``unread=true`` for the unread only. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_notifications(request, unread: bool = False):
    return queries.notifications(user_of(request), unread=unread)


@router.post(
    "/needs/notifications/read",
    response={200: ReadOut, **ERRORS},
    summary="Mark notifications read (all, or the ids given)",
)
def read_notifications(request, payload: ReadIn):
    return {"marked": services.mark_notifications_read(user_of(request), ids=payload.ids)}


# --- aggregates -----------------------------------------------------------------------------------------------


@router.get(
    "/needs/counts",
    response={200: CountsOut, **ERRORS},
    summary="Needs under a node by status, category and urgency; escalations per node",
    description="For observers too (aggregates): counts below 5 are null for them. Sensitive reports are "
    "counted for case officers only.",
)
def node_counts(request, node: str):
    user = user_of(request)
    place = find_node(request, node, loc=["query", "node"])
    try:
        c = queries.counts(user, place)
    except Http404 as exc:
        raise NotFound(["query", "node"]) from exc
    return {
        "node": _node(c.node),
        "open": c.open,
        "overdue": c.overdue,
        "by_status": c.by_status,
        "by_category": c.by_category,
        "by_urgency": c.by_urgency,
        "escalations": [{"node": _node(e["node"]), "count": e["count"]} for e in c.escalations],
        "suppressed": c.suppressed,
    }


@router.get(
    "/needs/map",
    response={200: dict, **ERRORS},
    summary="Open needs per block, as GeoJSON (no personal data)",
    description="A FeatureCollection: per block (or smallest known unit) with a shape or centroid, the open, "
    "overdue, critical and escalated needs. For observers counts below 5 are null.",
)
def open_needs_map(request, municipality: str):
    user = user_of(request)
    muni = find_municipality(request, municipality, loc=["query", "municipality"])
    try:
        return queries.open_needs_map(user, muni)
    except Http404 as exc:
        raise NotFound(["query", "municipality"]) from exc


# --- needs ----------------------------------------------------------------------------------------------------


@router.get(
    "/needs",
    response={200: NeedPage, **READ_403},
    summary="The caller's queue of needs",
    description="Needs the caller sees (their territory; volunteers: those assigned to them or their groups). "
    "Open needs come most due first; other statuses newest first. Filters combine. Observers get 403: they "
    "see counts and the map only. Paginated (``limit`` at most 500, ``offset``): ``{items, count}``.",
)
def list_needs(request, filters: Query[NeedFilters], page: Query[Paginator.Input]):
    user = user_of(request)
    works = scoping.can(user, Perm.HANDLE_NEEDS) or scoping.can(user, Perm.REPORT_NEEDS)
    volunteer = any(g.role == Role.VOLUNTEER for g in scoping.grants(user))
    if not (works or volunteer or queries.group_ids(user)):
        raise PermissionDenied(_("Your role sees aggregates only: use the counts and the map."))
    limit, offset = page.limit, page.offset
    node = find_node(request, filters.node, loc=["query", "node"]) if filters.node else None
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
        node = node or municipality.node
    try:
        qs = queries.queue(
            user,
            status=filters.status,
            category=filters.category,
            urgency=filters.urgency,
            node=node,
            overdue=filters.overdue,
            mine=filters.mine,
            level=filters.level,
        )
    except ValidationError as exc:
        raise ValidationError({"query.status": exc.messages}) from exc
    return {"items": [need_out(n, user) for n in qs[offset : offset + limit]], "count": qs.count()}


@router.post(
    "/needs",
    response={201: NeedDetail, **WRITE_ERRORS},
    summary="Register a need (any channel)",
    description="For field apps, hotlines and the messaging channels. The place is the ``node`` given, else "
    "the household's block, else the block containing ``lat``/``lon``, else the municipality. Needs the "
    "permission to report needs there; the household or person must be visible to the caller. Violence "
    "reports are encrypted and go to the case officers.",
)
def create_need(request, payload: NeedIn):
    user = user_of(request)
    with attempt(request, "needs.need.create") as a:
        a.obj = municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
        node = find_node(request, payload.node, loc=["body", "node"]) if payload.node else None
        household = person = None
        if payload.household:
            household = _by_uuid(
                registry_queries.households(user).select_related("node"),
                payload.household,
                ["body", "household"],
            )
        if payload.person:
            person = _by_uuid(
                registry_queries.persons(user).select_related("household"), payload.person, ["body", "person"]
            )
        need = services.register_need(
            actor=user,
            municipality=municipality,
            category=payload.category,
            description=payload.description,
            urgency=payload.urgency,
            channel=payload.channel,
            node=node,
            household=household,
            person=person,
            lat=payload.lat,
            lon=payload.lon,
            address=payload.address,
            contact_phone=payload.contact_phone,
        )
    return Status(201, _fresh(request, need))


@router.get(
    "/needs/{uuid}",
    response={200: NeedDetail, **ERRORS},
    summary="One need with its timeline and referrals",
    description="Case officers read the description of a violence report here (each read is audited); for "
    "everyone else it is a stub.",
)
def get_need(request, uuid: str):
    with attempt(request, "needs.need.read") as a:
        a.obj = need = find_need(request, uuid)
    return need_detail(need, user_of(request))


def _step(request, uuid: str, action: str, fn, **kwargs):
    user = user_of(request)
    with attempt(request, action) as a:
        a.obj = need = find_need(request, uuid)
        fn(need, actor=user, **kwargs)
    return _fresh(request, need)


@router.post("/needs/{uuid}/triage", response={200: NeedDetail, **WRITE_ERRORS}, summary="Triage a need")
def triage(request, uuid: str, payload: TriageIn):
    return _step(
        request,
        uuid,
        "needs.need.triage",
        services.triage_need,
        category=payload.category or None,
        urgency=payload.urgency,
        note=payload.note,
    )


@router.post(
    "/needs/{uuid}/assign",
    response={200: NeedDetail, **WRITE_ERRORS},
    summary="Assign a need to a person, a working group or an office",
    description="Exactly one of ``user``, ``group``, ``office``; the assignee must work in the need's territory "
    "(a role at its block or above); sensitive reports go to case officers only.",
)
def assign(request, uuid: str, payload: AssignIn):
    user = user_of(request)
    with attempt(request, "needs.need.assign") as a:
        a.obj = need = find_need(request, uuid)
        assignee = _by_uuid(User.objects.all(), payload.user, ["body", "user"]) if payload.user else None
        group = (
            _by_uuid(
                WorkingGroup.objects.filter(municipality_id=need.municipality_id),
                payload.group,
                ["body", "group"],
            )
            if payload.group
            else None
        )
        office = (
            _by_uuid(
                Office.objects.filter(municipality_id=need.municipality_id),
                payload.office,
                ["body", "office"],
            )
            if payload.office
            else None
        )
        services.assign_need(need, actor=user, user=assignee, group=group, office=office, note=payload.note)
    return _fresh(request, need)


@router.post(
    "/needs/{uuid}/acknowledge", response={200: NeedDetail, **WRITE_ERRORS}, summary="Acknowledge a need"
)
def acknowledge(request, uuid: str):
    return _step(request, uuid, "needs.need.acknowledge", services.acknowledge_need)


@router.post(
    "/needs/{uuid}/start", response={200: NeedDetail, **WRITE_ERRORS}, summary="Start working on a need"
)
def start(request, uuid: str):
    return _step(request, uuid, "needs.need.start", services.start_need)


@router.post("/needs/{uuid}/resolve", response={200: NeedDetail, **WRITE_ERRORS}, summary="Resolve a need")
def resolve(request, uuid: str, payload: ResolveIn):
    return _step(
        request, uuid, "needs.need.resolve", services.resolve_need, outcome=payload.outcome, note=payload.note
    )


@router.post(
    "/needs/{uuid}/close",
    response={200: NeedDetail, **WRITE_ERRORS},
    summary="Close a need with its outcome and, optionally, the person's satisfaction (1–5)",
)
def close(request, uuid: str, payload: CloseIn):
    return _step(
        request,
        uuid,
        "needs.need.close",
        services.close_need,
        outcome=payload.outcome,
        satisfaction=payload.satisfaction,
        note=payload.note,
    )


@router.post("/needs/{uuid}/cancel", response={200: NeedDetail, **WRITE_ERRORS}, summary="Cancel a need")
def cancel(request, uuid: str, payload: CancelIn):
    return _step(request, uuid, "needs.need.cancel", services.cancel_need, reason=payload.reason)


@router.post(
    "/needs/{uuid}/duplicate",
    response={200: NeedDetail, **WRITE_ERRORS},
    summary="Mark a need as a duplicate",
)
def duplicate(request, uuid: str, payload: DuplicateIn):
    user = user_of(request)
    with attempt(request, "needs.need.duplicate") as a:
        a.obj = need = find_need(request, uuid)
        try:
            of = queries.get_need(user, payload.of)
        except Http404 as exc:
            raise NotFound(["body", "of"]) from exc
        services.mark_duplicate(need, actor=user, of=of)
    return _fresh(request, need)


@router.post("/needs/{uuid}/reopen", response={200: NeedDetail, **WRITE_ERRORS}, summary="Reopen a need")
def reopen(request, uuid: str, payload: OptionalNoteIn):
    return _step(request, uuid, "needs.need.reopen", services.reopen_need, note=payload.note)


@router.post(
    "/needs/{uuid}/notes", response={201: NeedDetail, **WRITE_ERRORS}, summary="Add a note to a need"
)
def add_note(request, uuid: str, payload: NoteIn):
    return Status(201, _step(request, uuid, "needs.need.note", services.add_note, text=payload.text))


@router.post(
    "/needs/{uuid}/referrals",
    response={201: ReferralOut, **WRITE_ERRORS},
    summary="Refer a need to an office or hotline",
)
def refer(request, uuid: str, payload: ReferIn):
    user = user_of(request)
    with attempt(request, "needs.referral.create") as a:
        a.obj = need = find_need(request, uuid)
        office = _by_uuid(
            Office.objects.filter(municipality_id=need.municipality_id), payload.office, ["body", "office"]
        )
        referral = services.refer_need(need, actor=user, office=office, note=payload.note)
    return Status(201, _referral_out(referral))


@router.patch(
    "/needs/referrals/{uuid}",
    response={200: ReferralOut, **WRITE_ERRORS},
    summary="Record a referral's answer or outcome",
)
def update_referral(request, uuid: str, payload: ReferralPatch):
    user = user_of(request)
    with attempt(request, "needs.referral.update") as a:
        qs = Referral.objects.filter(need__in=queries.visible_needs(user)).select_related("need", "office")
        a.obj = referral = _by_uuid(qs, uuid, ["path", "uuid"])
        services.update_referral(referral, actor=user, status=payload.status, note=payload.note)
    return _referral_out(referral)


# --- settings -------------------------------------------------------------------------------------------------


def _category_out(c: NeedCategory) -> dict:
    return {
        "code": c.code,
        "label": c.label,
        "name": c.name,
        "parent": c.parent.code if c.parent_id else None,
        "sensitive": c.sensitive,
        "active": c.active,
        "order": c.order,
    }


def _category(municipality, code, loc):
    if code in (None, ""):
        return None
    category = NeedCategory.objects.filter(municipality=municipality, code=code).first()
    if category is None:
        raise NotFound(loc)
    return category


@router.get(
    "/needs/municipalities/{municipality}/categories",
    response={200: list[CategoryOut], **READ_403},
    summary="The municipality's need categories",
)
def list_categories(request, municipality: str):
    muni = _municipality(request, municipality)
    require_field_role(user_of(request), muni)
    services.ensure_defaults(muni)
    return [_category_out(c) for c in NeedCategory.objects.filter(municipality=muni).select_related("parent")]


@router.post(
    "/needs/municipalities/{municipality}/categories",
    response={201: CategoryOut, **WRITE_ERRORS},
    summary="Add a need category (MANAGE_NEEDS)",
)
def create_category(request, municipality: str, payload: CategoryIn):
    with attempt(request, "needs.category.save") as a:
        a.obj = muni = _municipality(request, municipality)
        category = services.save_category(muni, actor=user_of(request), **_category_args(muni, payload))
    return Status(201, _category_out(category))


@router.put(
    "/needs/municipalities/{municipality}/categories/{code}",
    response={200: CategoryOut, **WRITE_ERRORS},
    summary="Change a need category (MANAGE_NEEDS)",
)
def update_category(request, municipality: str, code: str, payload: CategoryIn):
    with attempt(request, "needs.category.save") as a:
        a.obj = muni = _municipality(request, municipality)
        instance = _category(muni, code, ["path", "code"])
        category = services.save_category(
            muni, actor=user_of(request), instance=instance, **_category_args(muni, payload)
        )
    return _category_out(category)


def _category_args(muni, payload: CategoryIn) -> dict:
    return {
        "code": payload.code,
        "name": payload.name,
        "parent": _category(muni, payload.parent, ["body", "parent"]),
        "sensitive": payload.sensitive,
        "active": payload.active,
        "order": payload.order,
    }


def _office_out(o: Office) -> dict:
    return {
        "uuid": o.uuid,
        "kind": o.kind,
        "name": o.name,
        "phone": o.phone,
        "hours": o.hours,
        "categories": [c.code for c in o.categories.all()],
        "active": o.active,
    }


def _categories(muni, codes) -> list[NeedCategory]:
    return [_category(muni, code, ["body", "categories", i]) for i, code in enumerate(codes or [])]


@router.get(
    "/needs/municipalities/{municipality}/offices",
    response={200: list[OfficeOut], **READ_403},
    summary="Offices and hotlines needs are referred to",
)
def list_offices(request, municipality: str):
    muni = _municipality(request, municipality)
    require_field_role(user_of(request), muni)
    return [_office_out(o) for o in Office.objects.filter(municipality=muni).prefetch_related("categories")]


@router.post(
    "/needs/municipalities/{municipality}/offices",
    response={201: OfficeOut, **WRITE_ERRORS},
    summary="Add an office or hotline (MANAGE_NEEDS)",
)
def create_office(request, municipality: str, payload: OfficeIn):
    with attempt(request, "needs.office.save") as a:
        a.obj = muni = _municipality(request, municipality)
        office = services.save_office(muni, actor=user_of(request), **_office_args(muni, payload))
    return Status(201, _office_out(office))


@router.put(
    "/needs/municipalities/{municipality}/offices/{uuid}",
    response={200: OfficeOut, **WRITE_ERRORS},
    summary="Change an office or hotline (MANAGE_NEEDS)",
)
def update_office(request, municipality: str, uuid: str, payload: OfficeIn):
    with attempt(request, "needs.office.save") as a:
        a.obj = muni = _municipality(request, municipality)
        instance = _by_uuid(Office.objects.filter(municipality=muni), uuid, ["path", "uuid"])
        office = services.save_office(
            muni, actor=user_of(request), instance=instance, **_office_args(muni, payload)
        )
    return _office_out(office)


def _office_args(muni, payload: OfficeIn) -> dict:
    return {
        "name": payload.name,
        "kind": payload.kind,
        "phone": payload.phone,
        "hours": payload.hours,
        "categories": _categories(muni, payload.categories),
        "active": payload.active,
    }


def _group_out(g: WorkingGroup) -> dict:
    return {
        "uuid": g.uuid,
        "name": g.name,
        "node": _node(g.node),
        "theme": g.theme.code if g.theme_id else None,
        "members": [_person(u) for u in g.members.all()],
        "active": g.active,
    }


def _group_args(request, muni, payload: GroupIn) -> dict:
    node = find_node(request, payload.node, loc=["body", "node"]) if payload.node else None
    members = []
    for i, key in enumerate(payload.members):
        members.append(_by_uuid(User.objects.all(), key, ["body", "members", i]))
    return {
        "name": payload.name,
        "node": node,
        "theme": _category(muni, payload.theme, ["body", "theme"]),
        "members": members,
        "active": payload.active,
    }


@router.get(
    "/needs/municipalities/{municipality}/groups",
    response={200: list[GroupOut], **READ_403},
    summary="Working groups",
)
def list_groups(request, municipality: str):
    muni = _municipality(request, municipality)
    require_field_role(user_of(request), muni)
    qs = (
        WorkingGroup.objects.filter(municipality=muni)
        .select_related("node", "theme")
        .prefetch_related("members")
    )
    return [_group_out(g) for g in qs]


@router.post(
    "/needs/municipalities/{municipality}/groups",
    response={201: GroupOut, **WRITE_ERRORS},
    summary="Add a working group (MANAGE_NEEDS)",
)
def create_group(request, municipality: str, payload: GroupIn):
    with attempt(request, "needs.group.save") as a:
        a.obj = muni = _municipality(request, municipality)
        group = services.save_working_group(
            muni, actor=user_of(request), **_group_args(request, muni, payload)
        )
    return Status(201, _group_out(group))


@router.put(
    "/needs/municipalities/{municipality}/groups/{uuid}",
    response={200: GroupOut, **WRITE_ERRORS},
    summary="Change a working group (MANAGE_NEEDS)",
)
def update_group(request, municipality: str, uuid: str, payload: GroupIn):
    with attempt(request, "needs.group.save") as a:
        a.obj = muni = _municipality(request, municipality)
        instance = _by_uuid(WorkingGroup.objects.filter(municipality=muni), uuid, ["path", "uuid"])
        group = services.save_working_group(
            muni, actor=user_of(request), instance=instance, **_group_args(request, muni, payload)
        )
    return _group_out(group)


def _rule_out(r: RoutingRule) -> dict:
    return {
        "uuid": r.uuid,
        "category": r.category.code,
        "node": _node(r.node),
        "target": r.target,
        "user": _person(r.user),
        "group": _named(r.group),
        "office": _named(r.office),
        "order": r.order,
    }


def _rule_args(request, muni, payload: RuleIn) -> dict:
    return {
        "category": _category(muni, payload.category, ["body", "category"]),
        "target": payload.target,
        "node": find_node(request, payload.node, loc=["body", "node"]) if payload.node else None,
        "user": _by_uuid(User.objects.all(), payload.user, ["body", "user"]) if payload.user else None,
        "group": _by_uuid(WorkingGroup.objects.filter(municipality=muni), payload.group, ["body", "group"])
        if payload.group
        else None,
        "office": _by_uuid(Office.objects.filter(municipality=muni), payload.office, ["body", "office"])
        if payload.office
        else None,
        "order": payload.order,
    }


def _rules(muni):
    return RoutingRule.objects.filter(municipality=muni).select_related(
        "category", "node", "user", "group", "office"
    )


@router.get(
    "/needs/municipalities/{municipality}/routing-rules",
    response={200: list[RuleOut], **READ_403},
    summary="Routing rules applied at intake",
)
def list_rules(request, municipality: str):
    muni = _municipality(request, municipality)
    require_field_role(user_of(request), muni)
    return [_rule_out(r) for r in _rules(muni)]


@router.post(
    "/needs/municipalities/{municipality}/routing-rules",
    response={201: RuleOut, **WRITE_ERRORS},
    summary="Add a routing rule (MANAGE_NEEDS)",
)
def create_rule(request, municipality: str, payload: RuleIn):
    with attempt(request, "needs.routing.save") as a:
        a.obj = muni = _municipality(request, municipality)
        rule = services.save_routing_rule(muni, actor=user_of(request), **_rule_args(request, muni, payload))
    return Status(201, _rule_out(rule))


@router.put(
    "/needs/municipalities/{municipality}/routing-rules/{uuid}",
    response={200: RuleOut, **WRITE_ERRORS},
    summary="Change a routing rule (MANAGE_NEEDS)",
)
def update_rule(request, municipality: str, uuid: str, payload: RuleIn):
    with attempt(request, "needs.routing.save") as a:
        a.obj = muni = _municipality(request, municipality)
        instance = _by_uuid(_rules(muni), uuid, ["path", "uuid"])
        rule = services.save_routing_rule(
            muni, actor=user_of(request), instance=instance, **_rule_args(request, muni, payload)
        )
    return _rule_out(rule)


@router.delete(
    "/needs/municipalities/{municipality}/routing-rules/{uuid}",
    response={204: None, **WRITE_ERRORS},
    summary="Remove a routing rule (MANAGE_NEEDS)",
)
def delete_rule(request, municipality: str, uuid: str):
    with attempt(request, "needs.routing.delete") as a:
        a.obj = muni = _municipality(request, municipality)
        rule = _by_uuid(_rules(muni), uuid, ["path", "uuid"])
        services.delete_routing_rule(rule, actor=user_of(request))
    return Status(204, None)


def _deadline_out(d: DeadlinePolicy) -> dict:
    return {
        "category": d.category.code if d.category_id else None,
        "urgency": d.urgency,
        "ack_minutes": d.ack_minutes,
        "resolve_minutes": d.resolve_minutes,
    }


@router.get(
    "/needs/municipalities/{municipality}/deadlines",
    response={200: list[DeadlineOut], **READ_403},
    summary="Deadlines to acknowledge and resolve, per category and urgency",
)
def list_deadlines(request, municipality: str):
    muni = _municipality(request, municipality)
    require_field_role(user_of(request), muni)
    services.ensure_defaults(muni)
    return [
        _deadline_out(d) for d in DeadlinePolicy.objects.filter(municipality=muni).select_related("category")
    ]


@router.put(
    "/needs/municipalities/{municipality}/deadlines",
    response={200: DeadlineOut, **WRITE_ERRORS},
    summary="Set a deadline (MANAGE_NEEDS); applies to needs registered from now on",
)
def set_deadline(request, municipality: str, payload: DeadlineIn):
    with attempt(request, "needs.deadline.save") as a:
        a.obj = muni = _municipality(request, municipality)
        category = _category(muni, payload.category, ["body", "category"])
        policy = services.save_deadline_policy(
            muni,
            actor=user_of(request),
            category=category,
            urgency=payload.urgency,
            ack_minutes=payload.ack_minutes,
            resolve_minutes=payload.resolve_minutes,
        )
    return _deadline_out(policy)
