"""Every write to needs and cases: intake, triage, assignment, the lifecycle, referrals, notes, escalation, settings.

Views, API handlers, commands and the demo call these functions; none of them writes the models directly. Each
takes the acting user as ``actor=`` (``None`` for the system: the public form, the sweep, imports), runs in a
transaction and writes an audit row naming records by UUID, never by personal data. Unlike the registry, these
functions check the actor's permission themselves (``PermissionDenied``) and refuse bad input with
``ValidationError``; a refusal leaves the need unchanged (also the object in memory) and is audited.

Deadlines use ``core.clock.now()`` so that tests and the demo can move time.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.models import Membership, User
from redes.accounts.roles import Perm, Role
from redes.audit.models import Outcome as AuditOutcome
from redes.audit.services import record, record_denied
from redes.core import clock
from redes.core.phones import normalize_phone
from redes.registry import crypto
from redes.territories.models import MUNICIPALITY_DEPTH, Municipality, Node

from .models import (
    DEFAULT_CATEGORIES,
    DEFAULT_DEADLINES,
    DeadlinePolicy,
    Need,
    NeedCategory,
    NeedChannel,
    NeedEvent,
    NeedStatus,
    Notification,
    Office,
    Outcome,
    Referral,
    RoutingRule,
    Urgency,
    WorkingGroup,
)

MAX_TEXT = 5000
E = NeedEvent.Kind
S = NeedStatus
K = Notification.Kind


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --------------------------------------------------------------------------------------------- refusals


def _audited(action: str, target: str = "need"):
    """Audit a refusal (ValidationError / PermissionDenied) of the decorated service, once, and restore the
    need in memory to what the database holds."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (ValidationError, PermissionDenied) as exc:
                obj = args[0] if args else kwargs.get(target) or kwargs.get("municipality")
                if not getattr(exc, "audited", False):
                    forbidden = isinstance(exc, PermissionDenied)
                    record_denied(
                        action,
                        actor=kwargs.get("actor"),
                        obj=obj if getattr(obj, "pk", None) else None,
                        municipality=kwargs.get("municipality") if not getattr(obj, "pk", None) else None,
                        reason="forbidden" if forbidden else "invalid input",
                        outcome=AuditOutcome.DENIED if forbidden else AuditOutcome.REJECTED,
                    )
                    exc.audited = True
                if isinstance(obj, Need | Referral) and obj.pk:
                    obj.refresh_from_db()
                raise

        return wrapper

    return decorate


def _refuse_status(need: Need, target: str):
    raise ValidationError(
        _("This need is “%(status)s”: it cannot become “%(target)s”.")
        % {"status": need.get_status_display(), "target": NeedStatus(target).label}
    )


# --------------------------------------------------------------------------------------------- permissions


def may_handle(actor, need: Need) -> bool:
    """May the actor triage, assign, refer and close this need (HANDLE_NEEDS over its block; case officers
    alone for sensitive needs)? The system (``None``) may."""
    if actor is None:
        return True
    if need.sensitive:
        return scoping.can(actor, Perm.VIEW_SENSITIVE, need.node, superuser=False) and scoping.can(
            actor, Perm.HANDLE_NEEDS, need.node
        )
    return scoping.can(actor, Perm.HANDLE_NEEDS, need.node)


def is_assignee(actor, need: Need) -> bool:
    """Is the actor the assigned person or a member of the assigned working group?"""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    if need.assigned_user_id == actor.pk:
        return True
    return bool(
        need.assigned_group_id
        and WorkingGroup.members.through.objects.filter(
            workinggroup_id=need.assigned_group_id, user_id=actor.pk
        ).exists()
    )


def may_work_on(actor, need: Need) -> bool:
    """May the actor acknowledge, start, resolve and annotate it (a handler, or the assignee)?"""
    if may_handle(actor, need):
        return True
    if need.sensitive and not scoping.can(actor, Perm.VIEW_SENSITIVE, need.node, superuser=False):
        return False
    return is_assignee(actor, need)


def _check_handle(actor, need: Need) -> None:
    if not may_handle(actor, need):
        raise PermissionDenied(_("You may not handle this need."))


def _check_work(actor, need: Need) -> None:
    if not may_work_on(actor, need):
        raise PermissionDenied(_("You may not work on this need."))


def _check_manage(actor, municipality: Municipality) -> None:
    if actor is not None and not scoping.can(actor, Perm.MANAGE_NEEDS, municipality.node):
        raise PermissionDenied(_("You may not change the needs settings of this municipality."))


# --------------------------------------------------------------------------------------------- helpers


def _text(value, field: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationError({field: _("This field is required.")})
    if len(text) > max_length:
        raise ValidationError({field: _("At most %(count)s characters, please.") % {"count": max_length}})
    return text


def resolve_category(municipality: Municipality | int, value) -> NeedCategory:
    """A category of the municipality from an instance, a code or an id; ValidationError if unknown/inactive."""
    municipality_id = getattr(municipality, "pk", municipality)
    category = None
    if isinstance(value, NeedCategory):
        category = value if value.municipality_id == municipality_id else None
    elif isinstance(value, str) and value.strip():
        category = NeedCategory.objects.filter(municipality_id=municipality_id, code=value.strip()).first()
    elif isinstance(value, int) and not isinstance(value, bool):
        category = NeedCategory.objects.filter(municipality_id=municipality_id, pk=value).first()
    if category is None or not category.active:
        raise ValidationError({"category": _("Unknown need category.")})
    return category


def _choice(value, choices, field: str) -> str:
    if value not in choices.values:
        raise ValidationError(
            {
                field: _("“%(value)s” is not one of: %(allowed)s.")
                % {"value": value, "allowed": ", ".join(choices.values)}
            }
        )
    return value


def deadline_minutes(municipality_id: int, category: NeedCategory | None, urgency: str) -> tuple[int, int]:
    """(minutes to acknowledge, minutes to resolve): the category's own policy, else the municipality's
    default for the urgency, else the built-in default."""
    rows = {
        cat_id: (ack, res)
        for cat_id, ack, res in DeadlinePolicy.objects.filter(
            municipality_id=municipality_id, urgency=urgency
        ).values_list("category_id", "ack_minutes", "resolve_minutes")
    }
    if category is not None and category.pk in rows:
        return rows[category.pk]
    if None in rows:
        return rows[None]
    return DEFAULT_DEADLINES[Urgency(urgency)]


def _set_deadlines(need: Need, start: dt.datetime) -> None:
    ack, resolve = deadline_minutes(need.municipality_id, need.category, need.urgency)
    need.ack_minutes = ack
    need.ack_due = start + dt.timedelta(minutes=ack)
    need.resolve_due = start + dt.timedelta(minutes=resolve)
    need.due_at = need.ack_due if need.acknowledged_at is None else need.resolve_due
    need.escalate_at = need.due_at


def _ack_window(need: Need) -> dt.timedelta:
    minutes = need.ack_minutes or deadline_minutes(need.municipality_id, need.category, need.urgency)[0]
    return dt.timedelta(minutes=minutes)


def _event(need: Need, kind: str, *, actor=None, from_status="", to_status="", node=None, data=None, at=None):
    return NeedEvent.objects.create(
        need=need,
        at=at or clock.now(),
        actor=_user(actor),
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        node=node,
        data=data or {},
    )


def _note_data(need: Need, text: str) -> dict:
    """A note as stored in an event: plain, or encrypted for sensitive needs."""
    if not text:
        return {}
    if need.sensitive:
        return {"enc": crypto.encrypt({"text": text})}
    return {"note": text}


def note_text(need: Need, event: NeedEvent) -> str:
    """The note of an event in plain text (decrypting it for sensitive needs; the caller audits the read)."""
    data = event.data or {}
    if "enc" in data:
        try:
            return crypto.decrypt(data["enc"]).get("text", "")
        except crypto.SensitiveDataUnreadable:
            return ""
    return data.get("note", "")


def notify(users: Iterable, need: Need | None, kind: str, data: dict | None = None) -> int:
    """In-app notifications (one per distinct user); the messaging issue also sends them."""
    seen = set()
    rows = []
    now = clock.now()
    for user in users:
        user_id = getattr(user, "pk", user)
        if user_id is None or user_id in seen:
            continue
        seen.add(user_id)
        rows.append(Notification(user_id=user_id, need=need, kind=kind, data=data or {}, created_at=now))
    Notification.objects.bulk_create(rows)
    return len(rows)


def case_officers(municipality_id: int) -> list[int]:
    """Ids of the users holding an active case-officer membership in the municipality."""
    return list(
        Membership.objects.active()
        .filter(role=Role.CASE_OFFICER, municipality_id=municipality_id, user__is_active=True)
        .values_list("user_id", flat=True)
        .distinct()
    )


def holder_ids(node: Node) -> list[int]:
    """Users holding ``node`` now: its liaison (when the post is held by an account), or for the municipality
    node its coordinators."""
    from redes.liaisons.models import LiaisonAssignment

    if node.depth == MUNICIPALITY_DEPTH:
        return list(
            Membership.objects.active()
            .filter(role=Role.COORDINATOR, node=node, user__is_active=True)
            .values_list("user_id", flat=True)
            .distinct()
        )
    return list(
        LiaisonAssignment.objects.active(clock.now().date())
        .filter(node=node, user__isnull=False, user__is_active=True)
        .values_list("user_id", flat=True)
    )


def _member_ids(group_id: int) -> list[int]:
    return list(
        WorkingGroup.members.through.objects.filter(workinggroup_id=group_id).values_list(
            "user_id", flat=True
        )
    )


def _save(need: Need, *fields: str) -> None:
    need.updated_at = clock.now()
    need.save(update_fields=[*fields, "updated_at"])


def _lock(need: Need) -> Need:
    """Lock the need's row for the rest of the transaction and reload it (the sweep may have moved it)."""
    Need.objects.select_for_update().filter(pk=need.pk).values_list("pk", flat=True).first()
    need.refresh_from_db()
    return need


def _close_deadlines(need: Need) -> None:
    need.due_at = None
    need.escalate_at = None


DEADLINE_FIELDS = ("ack_due", "resolve_due", "due_at", "escalate_at", "ack_minutes")


# --------------------------------------------------------------------------------------------- defaults


def ensure_defaults(municipality: Municipality) -> list[NeedCategory]:
    """Create the default categories and deadlines of a municipality if missing (idempotent)."""
    with transaction.atomic():
        existing = set(NeedCategory.objects.filter(municipality=municipality).values_list("code", flat=True))
        NeedCategory.objects.bulk_create(
            [
                NeedCategory(municipality=municipality, code=code, sensitive=sensitive, order=position)
                for position, (code, (_label, sensitive)) in enumerate(DEFAULT_CATEGORIES.items())
                if code not in existing
            ]
        )
        have = set(
            DeadlinePolicy.objects.filter(municipality=municipality, category__isnull=True).values_list(
                "urgency", flat=True
            )
        )
        DeadlinePolicy.objects.bulk_create(
            [
                DeadlinePolicy(
                    municipality=municipality, urgency=urgency, ack_minutes=ack, resolve_minutes=res
                )
                for urgency, (ack, res) in DEFAULT_DEADLINES.items()
                if urgency not in have
            ]
        )
    return list(NeedCategory.objects.filter(municipality=municipality))


# --------------------------------------------------------------------------------------------- intake


def locate_block(municipality: Municipality, lat: float, lon: float) -> Node | None:
    """The leaf unit of the municipality whose polygon contains the point (the nearest centroids are tried)."""
    from shapely.geometry import Point, shape

    leaf = municipality.leaf_depth
    rows = list(
        Node.objects.filter(municipality=municipality, depth=leaf, centroid_lat__isnull=False).values_list(
            "id", "centroid_lat", "centroid_lon"
        )
    )
    rows.sort(key=lambda r: (r[1] - lat) ** 2 + (r[2] - lon) ** 2)
    point = Point(lon, lat)
    for node in Node.objects.filter(pk__in=[r[0] for r in rows[:25]]).exclude(geometry__isnull=True):
        try:
            if shape(node.geometry).covers(point):
                return node
        except Exception:  # noqa: S112 - a malformed polygon never blocks an intake
            continue
    return None


def _intake_node(municipality, node, household, lat, lon) -> Node:
    if node is not None:
        if node.pk != municipality.node_id and node.municipality_id != municipality.pk:
            raise ValidationError({"node": _("The place is not in this municipality.")})
        return node
    if household is not None:
        return household.node
    if lat is not None and lon is not None:
        found = locate_block(municipality, lat, lon)
        if found is not None:
            return found
    return municipality.node


def _route(need: Need) -> RoutingRule | None:
    """The first routing rule (by order; the deepest node first) for the need's category (or its parent) and
    place."""
    category_ids = [need.category_id] + ([need.category.parent_id] if need.category.parent_id else [])
    ancestors = set(need.node.ancestor_ids)
    rules = [
        r
        for r in RoutingRule.objects.filter(
            municipality_id=need.municipality_id, category_id__in=category_ids
        )
        .select_related("node", "group", "office", "user")
        .order_by("order", "id")
        if r.node_id is None or r.node_id in ancestors
    ]
    rules.sort(key=lambda r: (r.order, r.category_id != need.category_id, -(r.node.depth if r.node else 0)))
    return rules[0] if rules else None


@_audited("needs.need.create", target="municipality")
def register_need(
    *,
    actor,
    municipality: Municipality,
    category,
    description: str,
    urgency: str = Urgency.NORMAL,
    channel: str = NeedChannel.FIELD,
    node: Node | None = None,
    household=None,
    person=None,
    lat: float | None = None,
    lon: float | None = None,
    address: str = "",
    contact_phone: str = "",
) -> Need:
    """Register a need from any channel. ``actor=None`` is the public form or a system channel."""
    category = resolve_category(municipality, category)
    _choice(urgency, Urgency, "urgency")
    _choice(channel, NeedChannel, "channel")
    description = _text(description, "description", required=True)
    address = _text(address, "address", max_length=300)
    phone = normalize_phone(contact_phone) if (contact_phone or "").strip() else ""
    if person is not None:
        if person.municipality_id != municipality.pk:
            raise ValidationError({"person": _("The person is not in this municipality.")})
        household = household or person.household
        if person.household_id != household.pk:
            raise ValidationError({"person": _("The person does not belong to that household.")})
    if household is not None and household.municipality_id != municipality.pk:
        raise ValidationError({"household": _("The household is not in this municipality.")})
    for value, field, low, high in ((lat, "lat", -90, 90), (lon, "lon", -180, 180)):
        if value is not None and not (low <= float(value) <= high):
            raise ValidationError({field: _("The coordinates are not valid.")})
    node = _intake_node(municipality, node, household, lat, lon)
    if actor is not None and not scoping.can(actor, Perm.REPORT_NEEDS, node):
        raise PermissionDenied(_("You may not register needs here."))
    now = clock.now()
    with transaction.atomic():
        need = Need(
            municipality=municipality,
            node=node,
            holder_node=municipality.node if category.sensitive else node,
            household=household,
            person=person,
            category=category,
            description="" if category.sensitive else description,
            sensitive=category.sensitive,
            sensitive_text=crypto.encrypt({"text": description}) if category.sensitive else "",
            lat=lat,
            lon=lon,
            address=address,
            contact_phone=phone,
            urgency=urgency,
            channel=channel,
            status=S.NEW,
            reported_by=_user(actor),
            created_at=now,
            updated_at=now,
        )
        _set_deadlines(need, now)
        need.save()
        _event(
            need,
            E.CREATED,
            actor=actor,
            to_status=S.NEW,
            node=node,
            data={"channel": channel, "category": category.code, "urgency": urgency},
            at=now,
        )
        if need.sensitive:
            notify(case_officers(municipality.pk), need, K.SENSITIVE)
        else:
            _apply_routing(need, now)
        record(
            "needs.need.create",
            actor=actor,
            obj=need,
            summary=_("Need registered (%(channel)s)") % {"channel": channel},
            changes={"category": category.code, "urgency": urgency, "channel": channel},
        )
    return need


def _apply_routing(need: Need, now: dt.datetime) -> None:
    rule = _route(need)
    if rule is None or rule.target == RoutingRule.Target.LIAISON:
        return
    target = {
        RoutingRule.Target.USER: ("assigned_user", rule.user),
        RoutingRule.Target.GROUP: ("assigned_group", rule.group),
        RoutingRule.Target.OFFICE: ("assigned_office", rule.office),
    }[rule.target]
    if target[1] is None:
        return
    setattr(need, target[0], target[1])
    need.status = S.ASSIGNED
    _save(need, "assigned_user", "assigned_group", "assigned_office", "status")
    _event(
        need,
        E.ASSIGNED,
        from_status=S.NEW,
        to_status=S.ASSIGNED,
        data={"rule": str(rule.uuid), **_assignee_data(need)},
        at=now,
    )
    _notify_assignees(need)


def _assignee_data(need: Need) -> dict:
    data = {}
    if need.assigned_user_id:
        data["user"] = str(need.assigned_user.uuid)
    if need.assigned_group_id:
        data["group"] = str(need.assigned_group.uuid)
    if need.assigned_office_id:
        data["office"] = str(need.assigned_office.uuid)
    return data


def _notify_assignees(need: Need, skip=None) -> None:
    users = []
    if need.assigned_user_id:
        users.append(need.assigned_user_id)
    if need.assigned_group_id:
        users.extend(_member_ids(need.assigned_group_id))
    skip_id = getattr(skip, "pk", None)
    notify([u for u in users if u != skip_id], need, K.ASSIGNED)


# --------------------------------------------------------------------------------------------- triage


def _make_sensitive(need: Need) -> None:
    need.sensitive_text = crypto.encrypt({"text": need.description})
    need.description = ""
    need.sensitive = True
    need.holder_node_id = need.municipality.node_id
    need.assigned_user = None
    need.assigned_group = None


def _make_plain(need: Need) -> None:
    need.description = crypto.decrypt(need.sensitive_text).get("text", "") if need.sensitive_text else ""
    need.sensitive_text = ""
    need.sensitive = False
    need.holder_node_id = need.node_id


@_audited("needs.need.triage")
def triage_need(need: Need, *, actor, category=None, urgency=None, note: str = "") -> Need:
    """Confirm or change the category and urgency; a new need becomes "triaged". Deadlines follow the urgency."""
    _check_handle(actor, need)
    note = _text(note, "note")
    if not need.is_open:
        _refuse_status(need, S.TRIAGED)
    new_category = resolve_category(need.municipality_id, category) if category is not None else need.category
    new_urgency = _choice(urgency, Urgency, "urgency") if urgency else need.urgency
    with transaction.atomic():
        _lock(need)
        if not need.is_open:
            _refuse_status(need, S.TRIAGED)
        before = {"category": need.category.code, "urgency": need.urgency, "status": need.status}
        deadlines_change = new_category.pk != need.category_id or new_urgency != need.urgency
        need.category, need.urgency = new_category, new_urgency
        became_sensitive = new_category.sensitive and not need.sensitive
        if became_sensitive:
            _make_sensitive(need)
        elif need.sensitive and not new_category.sensitive:
            _make_plain(need)
        if need.status == S.NEW:
            need.status = S.TRIAGED
        if deadlines_change:
            at_level = need.escalate_at
            _set_deadlines(need, need.created_at)
            if need.escalation_level and at_level is not None:
                need.escalate_at = at_level  # an escalated need keeps its escalation window
            if need.acknowledged_at is not None:
                need.escalate_at = max(need.resolve_due, clock.now())
            # The sweep finds needs by ``due_at``: the next escalation is never before it.
            need.escalate_at = max(need.escalate_at, need.due_at)
        need.updated_at = clock.now()
        need.save()
        _event(
            need,
            E.TRIAGED,
            actor=actor,
            from_status=before["status"],
            to_status=need.status,
            data={"category": new_category.code, "urgency": new_urgency, **_note_data(need, note)},
        )
        if became_sensitive:
            notify(case_officers(need.municipality_id), need, K.SENSITIVE)
        record(
            "needs.need.triage",
            actor=actor,
            obj=need,
            summary=_("Need triaged"),
            changes={"before": before, "after": {"category": new_category.code, "urgency": new_urgency}},
        )
    return need


# --------------------------------------------------------------------------------------------- assignment


def assignable_users(need: Need):
    """Active users holding a role at the need's block or above it (its territory) in the same municipality;
    for sensitive needs, case officers only."""
    memberships = Membership.objects.active().filter(node_id__in=need.node.ancestor_ids, user__is_active=True)
    memberships = memberships.exclude(role__in=[Role.NATIONAL_OBSERVER, Role.STATE_OBSERVER])
    if need.sensitive:
        memberships = memberships.filter(role=Role.CASE_OFFICER)
    return User.objects.filter(pk__in=memberships.values("user_id")).order_by("full_name", "username")


def assignable_groups(need: Need):
    if need.sensitive:
        return WorkingGroup.objects.none()
    return WorkingGroup.objects.filter(
        municipality_id=need.municipality_id, active=True, node_id__in=need.node.ancestor_ids
    )


def assignable_offices(need: Need):
    return Office.objects.filter(municipality_id=need.municipality_id, active=True)


@_audited("needs.need.assign")
def assign_need(need: Need, *, actor, user=None, group=None, office=None, note: str = "") -> Need:
    """Assign the need to one person, working group or office, inside the need's territory."""
    _check_handle(actor, need)
    note = _text(note, "note")
    chosen = [x for x in (user, group, office) if x is not None]
    if len(chosen) != 1:
        raise ValidationError(_("Choose exactly one: a person, a working group or an office."))
    if not need.can_move_to(S.ASSIGNED):
        _refuse_status(need, S.ASSIGNED)
    if user is not None and not assignable_users(need).filter(pk=user.pk).exists():
        raise ValidationError({"user": _("This person does not work in the need's territory.")})
    if group is not None and not assignable_groups(need).filter(pk=group.pk).exists():
        raise ValidationError({"group": _("This working group does not cover the need's territory.")})
    if office is not None and not assignable_offices(need).filter(pk=office.pk).exists():
        raise ValidationError({"office": _("This office is not one of the municipality's.")})
    with transaction.atomic():
        _lock(need)
        if not need.can_move_to(S.ASSIGNED):
            _refuse_status(need, S.ASSIGNED)
        before = need.status
        need.assigned_user, need.assigned_group, need.assigned_office = user, group, office
        need.status = S.ASSIGNED
        fields = ["assigned_user", "assigned_group", "assigned_office", "status"]
        if actor is not None and need.acknowledged_at is None:
            _acknowledge(need)
            fields += ["acknowledged_at", *DEADLINE_FIELDS]
        _save(need, *fields)
        _event(
            need,
            E.ASSIGNED,
            actor=actor,
            from_status=before,
            to_status=S.ASSIGNED,
            data={**_assignee_data(need), **_note_data(need, note)},
        )
        _notify_assignees(need, skip=actor)
        record(
            "needs.need.assign",
            actor=actor,
            obj=need,
            summary=_("Need assigned"),
            changes=_assignee_data(need),
        )
    return need


# --------------------------------------------------------------------------------------------- lifecycle


def _acknowledge(need: Need) -> None:
    now = clock.now()
    need.acknowledged_at = now
    need.due_at = need.resolve_due
    # A new holder gets at least one acknowledgement window before the next climb.
    need.escalate_at = max(need.resolve_due, now + _ack_window(need))


@_audited("needs.need.acknowledge")
def acknowledge_need(need: Need, *, actor) -> Need:
    """The holder has seen the need: the next deadline is the resolution deadline."""
    _check_work(actor, need)
    if not need.is_open:
        raise ValidationError(_("Only open needs can be acknowledged."))
    with transaction.atomic():
        _lock(need)
        if not need.is_open:
            raise ValidationError(_("Only open needs can be acknowledged."))
        if need.acknowledged_at is not None:
            raise ValidationError(_("This need is already acknowledged."))
        _acknowledge(need)
        _save(need, "acknowledged_at", *DEADLINE_FIELDS)
        _event(need, E.ACKNOWLEDGED, actor=actor, from_status=need.status, to_status=need.status)
        record("needs.need.acknowledge", actor=actor, obj=need, summary=_("Need acknowledged"))
    return need


def _transition(
    need: Need, target: str, kind: str, *, actor, action: str, summary: str, data=None, extra=None
):
    """Move an open need to ``target`` inside a transaction, with its event and audit row."""
    with transaction.atomic():
        _lock(need)
        if not need.can_move_to(target):
            _refuse_status(need, target)
        before = need.status
        need.status = target
        fields = ["status"]
        if extra:
            fields += extra(need) or []
        _save(need, *dict.fromkeys(fields))
        _event(need, kind, actor=actor, from_status=before, to_status=target, data=data or {})
        record(action, actor=actor, obj=need, summary=summary, changes={"from": before, "to": target})
    return need


@_audited("needs.need.start")
def start_need(need: Need, *, actor) -> Need:
    """Work on the need has started (it counts as acknowledged)."""
    _check_work(actor, need)
    if not need.can_move_to(S.IN_PROGRESS) or need.status == S.IN_PROGRESS:
        _refuse_status(need, S.IN_PROGRESS)

    def extra(n):
        if n.acknowledged_at is None:
            _acknowledge(n)
            return ["acknowledged_at", *DEADLINE_FIELDS]
        return []

    return _transition(
        need,
        S.IN_PROGRESS,
        E.STARTED,
        actor=actor,
        action="needs.need.start",
        summary=_("Work started"),
        extra=extra,
    )


def _outcome(value, required: bool = True) -> str:
    if not value:
        if required:
            raise ValidationError({"outcome": _("Say what the outcome was.")})
        return ""
    return _choice(value, Outcome, "outcome")


@_audited("needs.need.resolve")
def resolve_need(need: Need, *, actor, outcome: str, note: str = "") -> Need:
    _check_work(actor, need)
    outcome = _outcome(outcome)
    note = _text(note, "note")
    if not need.can_move_to(S.RESOLVED):
        _refuse_status(need, S.RESOLVED)

    def extra(n):
        n.resolved_at = clock.now()
        n.outcome, n.outcome_note = outcome, ("" if n.sensitive else note)
        _close_deadlines(n)
        return ["resolved_at", "outcome", "outcome_note", *DEADLINE_FIELDS]

    return _transition(
        need,
        S.RESOLVED,
        E.RESOLVED,
        actor=actor,
        action="needs.need.resolve",
        summary=_("Need resolved"),
        data={"outcome": outcome, **_note_data(need, note)},
        extra=extra,
    )


@_audited("needs.need.close")
def close_need(
    need: Need, *, actor, outcome: str | None = None, satisfaction: int | None = None, note: str = ""
) -> Need:
    """Close the case with its outcome (required unless resolution gave one) and, optionally, the person's
    satisfaction from 1 to 5."""
    _check_handle(actor, need)
    outcome = _outcome(outcome, required=not need.outcome)
    note = _text(note, "note")
    if satisfaction in ("", None):
        satisfaction = None
    else:
        try:
            satisfaction = int(satisfaction)
        except (TypeError, ValueError):
            satisfaction = 0
        if not 1 <= satisfaction <= 5:
            raise ValidationError({"satisfaction": _("Satisfaction goes from 1 to 5.")})
    if not need.can_move_to(S.CLOSED):
        _refuse_status(need, S.CLOSED)

    def extra(n):
        now = clock.now()
        n.closed_at = now
        n.resolved_at = n.resolved_at or now
        if outcome:
            n.outcome = outcome
        if note and not n.sensitive:
            n.outcome_note = note
        n.satisfaction = satisfaction
        _close_deadlines(n)
        return ["closed_at", "resolved_at", "outcome", "outcome_note", "satisfaction", *DEADLINE_FIELDS]

    return _transition(
        need,
        S.CLOSED,
        E.CLOSED,
        actor=actor,
        action="needs.need.close",
        summary=_("Need closed"),
        data={"outcome": outcome or need.outcome, "satisfaction": satisfaction, **_note_data(need, note)},
        extra=extra,
    )


@_audited("needs.need.cancel")
def cancel_need(need: Need, *, actor, reason: str) -> Need:
    _check_handle(actor, need)
    reason = _text(reason, "reason", required=True, max_length=500)
    if not need.can_move_to(S.CANCELLED):
        _refuse_status(need, S.CANCELLED)

    def extra(n):
        n.closed_at = clock.now()
        _close_deadlines(n)
        return ["closed_at", *DEADLINE_FIELDS]

    return _transition(
        need,
        S.CANCELLED,
        E.CANCELLED,
        actor=actor,
        action="needs.need.cancel",
        summary=_("Need cancelled"),
        data=_note_data(need, reason),
        extra=extra,
    )


@_audited("needs.need.duplicate")
def mark_duplicate(need: Need, *, actor, of: Need) -> Need:
    """Mark the need as a duplicate of another open or resolved need of the same municipality."""
    _check_handle(actor, need)
    if of is None or of.pk == need.pk or of.municipality_id != need.municipality_id:
        raise ValidationError({"of": _("Choose another need of the same municipality.")})
    if of.status in (S.DUPLICATE, S.CANCELLED):
        raise ValidationError({"of": _("That need is itself cancelled or a duplicate.")})
    if not need.can_move_to(S.DUPLICATE):
        _refuse_status(need, S.DUPLICATE)

    def extra(n):
        n.duplicate_of = of
        n.closed_at = clock.now()
        _close_deadlines(n)
        return ["duplicate_of", "closed_at", *DEADLINE_FIELDS]

    return _transition(
        need,
        S.DUPLICATE,
        E.MARKED_DUPLICATE,
        actor=actor,
        action="needs.need.duplicate",
        summary=_("Need marked as duplicate"),
        data={"of": str(of.uuid)},
        extra=extra,
    )


@_audited("needs.need.reopen")
def reopen_need(need: Need, *, actor, note: str = "") -> Need:
    """Reopen a resolved, closed, cancelled or duplicate need: back to "triaged" at its block, new deadlines."""
    _check_handle(actor, need)
    note = _text(note, "note")
    if need.is_open or not need.can_move_to(S.TRIAGED):
        _refuse_status(need, S.TRIAGED)

    def extra(n):
        now = clock.now()
        n.acknowledged_at = n.resolved_at = n.closed_at = None
        n.outcome, n.outcome_note, n.satisfaction, n.duplicate_of = "", "", None, None
        n.escalation_level = 0
        n.holder_node_id = n.municipality.node_id if n.sensitive else n.node_id
        _set_deadlines(n, now)
        return [
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "outcome",
            "outcome_note",
            "satisfaction",
            "duplicate_of",
            "escalation_level",
            "holder_node",
            *DEADLINE_FIELDS,
        ]

    need = _transition(
        need,
        S.TRIAGED,
        E.REOPENED,
        actor=actor,
        action="needs.need.reopen",
        summary=_("Need reopened"),
        data=_note_data(need, note),
        extra=extra,
    )
    _notify_assignees(need, skip=actor)
    return need


@_audited("needs.need.note")
def add_note(need: Need, *, actor, text: str) -> NeedEvent:
    _check_work(actor, need)
    text = _text(text, "text", required=True)
    with transaction.atomic():
        event = _event(need, E.NOTE, actor=actor, data=_note_data(need, text))
        Need.objects.filter(pk=need.pk).update(updated_at=clock.now())
        record("needs.need.note", actor=actor, obj=need, summary=_("Note added"))
    return event


def read_sensitive(need: Need, *, actor) -> str:
    """The description of a sensitive need, for a case officer; every read is audited, others get 403."""
    if not need.sensitive:
        return need.description
    if not (actor is not None and scoping.can(actor, Perm.VIEW_SENSITIVE, need.node, superuser=False)):
        record_denied("needs.sensitive.read", actor=actor, obj=need, reason="forbidden")
        raise PermissionDenied(_("Only case officers may read this report."))
    try:
        text = crypto.decrypt(need.sensitive_text).get("text", "")
    except crypto.SensitiveDataUnreadable:
        text = ""
    record("needs.sensitive.read", actor=actor, obj=need, summary=_("Sensitive report read"))
    return text


# --------------------------------------------------------------------------------------------- referrals


@_audited("needs.referral.create")
def refer_need(need: Need, *, actor, office: Office, note: str = "") -> Referral:
    """Refer an open need to an office or hotline of the municipality; its outcome is followed up later."""
    _check_handle(actor, need)
    note = _text(note, "note")
    if office is None or office.municipality_id != need.municipality_id or not office.active:
        raise ValidationError({"office": _("This office is not one of the municipality's.")})
    if not need.is_open:
        raise ValidationError(_("Only open needs can be referred."))
    with transaction.atomic():
        _lock(need)
        now = clock.now()
        referral = Referral.objects.create(
            need=need,
            office=office,
            note="" if need.sensitive else note,
            created_by=_user(actor),
            created_at=now,
            updated_at=now,
        )
        Need.objects.filter(pk=need.pk).update(updated_at=now)
        _event(
            need,
            E.REFERRED,
            actor=actor,
            data={"office": str(office.uuid), "referral": str(referral.uuid), **_note_data(need, note)},
        )
        if need.sensitive:
            notify(
                [u for u in case_officers(need.municipality_id) if u != getattr(actor, "pk", None)],
                need,
                K.REFERRED,
            )
        else:
            _notify_assignees(need, skip=actor)
        record(
            "needs.referral.create",
            actor=actor,
            obj=need,
            summary=_("Need referred"),
            changes={"office": str(office.uuid)},
        )
    return referral


@_audited("needs.referral.update", target="referral")
def update_referral(referral: Referral, *, actor, status: str, note: str = "") -> Referral:
    need = referral.need
    _check_handle(actor, need)
    _choice(status, Referral.Status, "status")
    note = _text(note, "note")
    with transaction.atomic():
        before = referral.status
        referral.status = status
        if note and not need.sensitive:
            if status in (Referral.Status.RESOLVED, Referral.Status.REJECTED):
                referral.outcome = note
            else:
                referral.note = note
        referral.updated_at = clock.now()
        referral.save()
        _event(
            need,
            E.REFERRAL_UPDATED,
            actor=actor,
            data={"referral": str(referral.uuid), "status": status, **_note_data(need, note)},
        )
        Need.objects.filter(pk=need.pk).update(updated_at=referral.updated_at)
        record(
            "needs.referral.update",
            actor=actor,
            obj=need,
            summary=_("Referral updated"),
            changes={"referral": str(referral.uuid), "from": before, "to": status},
        )
    return referral


# --------------------------------------------------------------------------------------------- notifications


def mark_notifications_read(user, ids=None) -> int:
    """Mark the user's notifications read (all, or those with the given ids). Returns how many changed."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=[i for i in ids if str(i).isdigit()])
    return qs.update(read_at=clock.now())


# --------------------------------------------------------------------------------------------- settings


def _in_municipality(municipality: Municipality, node: Node | None, field: str = "node") -> Node | None:
    if node is not None and node.pk != municipality.node_id and node.municipality_id != municipality.pk:
        raise ValidationError({field: _("The place is not in this municipality.")})
    return node


def _own(municipality: Municipality, obj, field: str):
    if obj is not None and obj.municipality_id != municipality.pk:
        raise ValidationError({field: _("It is not one of this municipality's.")})
    return obj


def _settings_record(action: str, actor, municipality, obj, created: bool, summary: str) -> None:
    record(
        action,
        actor=actor,
        obj=obj,
        municipality=municipality,
        summary=summary,
        changes={"created": created},
    )


@_audited("needs.category.save", target="municipality")
def save_category(
    municipality: Municipality,
    *,
    actor,
    instance: NeedCategory | None = None,
    code: str,
    name: str = "",
    parent: NeedCategory | None = None,
    sensitive: bool = False,
    active: bool = True,
    order: int = 0,
) -> NeedCategory:
    """Create or change a category of the municipality's tree."""
    from django.utils.text import slugify

    _check_manage(actor, municipality)
    _own(municipality, instance, "code")
    code = slugify(code or "")[:40]
    if not code:
        raise ValidationError({"code": _("Give the category a short code (letters, digits, dashes).")})
    name = _text(name, "name", max_length=120)
    if not name and code not in DEFAULT_CATEGORIES:
        raise ValidationError({"name": _("Give the category a name.")})
    _own(municipality, parent, "parent")
    if parent is not None and instance is not None:
        walk = parent
        while walk is not None:
            if walk.pk == instance.pk:
                raise ValidationError({"parent": _("A category cannot be inside itself.")})
            walk = walk.parent
    clash = NeedCategory.objects.filter(municipality=municipality, code=code)
    if instance is not None:
        clash = clash.exclude(pk=instance.pk)
    if clash.exists():
        raise ValidationError({"code": _("The code %(code)s is already used.") % {"code": code}})
    with transaction.atomic():
        created = instance is None
        category = instance or NeedCategory(municipality=municipality)
        category.code, category.name, category.parent = code, name, parent
        category.sensitive, category.active, category.order = bool(sensitive), bool(active), int(order or 0)
        category.save()
        _settings_record(
            "needs.category.save", actor, municipality, category, created, _("Need category saved")
        )
    return category


@_audited("needs.office.save", target="municipality")
def save_office(
    municipality: Municipality,
    *,
    actor,
    instance: Office | None = None,
    name: str,
    kind: str = Office.Kind.OFFICE,
    phone: str = "",
    hours: str = "",
    categories: Iterable[NeedCategory] = (),
    active: bool = True,
) -> Office:
    """Create or change an office or hotline (phone: any dialable text, e.g. 911 or 800 290 0024)."""
    _check_manage(actor, municipality)
    _own(municipality, instance, "name")
    name = _text(name, "name", required=True, max_length=200)
    _choice(kind, Office.Kind, "kind")
    phone = _text(phone, "phone", max_length=40)
    hours = _text(hours, "hours", max_length=200)
    categories = list(categories or [])
    for category in categories:
        _own(municipality, category, "categories")
    with transaction.atomic():
        created = instance is None
        office = instance or Office(municipality=municipality)
        office.name, office.kind, office.phone, office.hours, office.active = (
            name,
            kind,
            phone,
            hours,
            bool(active),
        )
        office.save()
        office.categories.set(categories)
        _settings_record("needs.office.save", actor, municipality, office, created, _("Office saved"))
    return office


@_audited("needs.group.save", target="municipality")
def save_working_group(
    municipality: Municipality,
    *,
    actor,
    instance: WorkingGroup | None = None,
    name: str,
    node: Node | None = None,
    theme: NeedCategory | None = None,
    members: Iterable = (),
    active: bool = True,
) -> WorkingGroup:
    """Create or change a working group; its members must hold a role in the municipality."""
    _check_manage(actor, municipality)
    _own(municipality, instance, "name")
    name = _text(name, "name", required=True, max_length=200)
    node = _in_municipality(municipality, node) or municipality.node
    _own(municipality, theme, "theme")
    members = list(members or [])
    allowed = set(
        Membership.objects.active()
        .filter(municipality=municipality, user__in=[m.pk for m in members])
        .values_list("user_id", flat=True)
    )
    outside = [m for m in members if m.pk not in allowed]
    if outside:
        raise ValidationError({"members": _("Every member must hold a role in this municipality.")})
    with transaction.atomic():
        created = instance is None
        group = instance or WorkingGroup(municipality=municipality)
        group.name, group.node, group.theme, group.active = name, node, theme, bool(active)
        group.save()
        group.members.set(members)
        _settings_record("needs.group.save", actor, municipality, group, created, _("Working group saved"))
    return group


@_audited("needs.routing.save", target="municipality")
def save_routing_rule(
    municipality: Municipality,
    *,
    actor,
    instance: RoutingRule | None = None,
    category,
    target: str,
    node: Node | None = None,
    user=None,
    group: WorkingGroup | None = None,
    office: Office | None = None,
    order: int = 0,
) -> RoutingRule:
    """Create or change a routing rule: new needs of ``category`` under ``node`` go to ``target``."""
    _check_manage(actor, municipality)
    _own(municipality, instance, "category")
    category = resolve_category(municipality, category)
    _choice(target, RoutingRule.Target, "target")
    node = _in_municipality(municipality, node)
    T = RoutingRule.Target
    needed = {T.USER: ("user", user), T.GROUP: ("group", group), T.OFFICE: ("office", office)}.get(target)
    if needed and needed[1] is None:
        raise ValidationError({needed[0]: _("Choose who receives these needs.")})
    user = user if target == T.USER else None
    group = _own(municipality, group, "group") if target == T.GROUP else None
    office = _own(municipality, office, "office") if target == T.OFFICE else None
    if category.sensitive and target != T.LIAISON:
        allowed = (
            user is not None
            and Membership.objects.active()
            .filter(user=user, municipality=municipality, role=Role.CASE_OFFICER)
            .exists()
        )
        if not allowed:
            raise ValidationError({"target": _("Sensitive reports go to case officers only.")})
    if user is not None:
        place = node or municipality.node
        covers = Membership.objects.active().filter(user=user, node_id__in=place.ancestor_ids).exists()
        if not covers:
            raise ValidationError({"user": _("This person does not work in that territory.")})
    with transaction.atomic():
        created = instance is None
        rule = instance or RoutingRule(municipality=municipality)
        rule.category, rule.target, rule.node = category, target, node
        rule.user, rule.group, rule.office, rule.order = user, group, office, int(order or 0)
        rule.save()
        _settings_record("needs.routing.save", actor, municipality, rule, created, _("Routing rule saved"))
    return rule


@_audited("needs.routing.delete", target="municipality")
def delete_routing_rule(rule: RoutingRule, *, actor) -> None:
    _check_manage(actor, rule.municipality)
    with transaction.atomic():
        record(
            "needs.routing.delete",
            actor=actor,
            obj=rule,
            municipality=rule.municipality_id,
            summary=_("Routing rule removed"),
        )
        rule.delete()


@_audited("needs.deadline.save", target="municipality")
def save_deadline_policy(
    municipality: Municipality,
    *,
    actor,
    urgency: str,
    ack_minutes: int,
    resolve_minutes: int,
    category=None,
) -> DeadlinePolicy:
    """Set the minutes to acknowledge and to resolve for an urgency (and a category, or every category).
    Applies to needs registered (or re-triaged) from now on."""
    _check_manage(actor, municipality)
    _choice(urgency, Urgency, "urgency")
    category = resolve_category(municipality, category) if category not in (None, "") else None
    try:
        ack, resolve = int(ack_minutes), int(resolve_minutes)
    except (TypeError, ValueError):
        raise ValidationError(_("The deadlines are whole numbers of minutes.")) from None
    if not 1 <= ack <= 525600:
        raise ValidationError({"ack_minutes": _("From 1 minute to one year.")})
    if not ack <= resolve <= 525600:
        raise ValidationError({"resolve_minutes": _("At least the time to acknowledge, at most one year.")})
    with transaction.atomic():
        policy, created = DeadlinePolicy.objects.update_or_create(
            municipality=municipality,
            category=category,
            urgency=urgency,
            defaults={"ack_minutes": ack, "resolve_minutes": resolve},
        )
        record(
            "needs.deadline.save",
            actor=actor,
            obj=municipality,
            municipality=municipality,
            summary=_("Deadline saved"),
            changes={
                "category": category.code if category else None,
                "urgency": urgency,
                "ack": ack,
                "resolve": resolve,
            },
        )
    return policy


# --------------------------------------------------------------------------------------------- escalation

from .escalation import SweepResult, escalate_overdue  # noqa: E402  (set-based; see escalation.py)

__all__ = ["SweepResult", "escalate_overdue"]
