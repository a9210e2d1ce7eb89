"""Reading needs: who sees which, the queues, counts, the aggregated map, the timeline.

Visibility (``visible_needs``) goes through the grants of ``accounts.scoping``:

- HANDLE_NEEDS at a node shows the needs reported under it, except sensitive ones;
- case officers (VIEW_SENSITIVE through a membership, not superuser status) also see the sensitive ones;
- whoever registered a sensitive need keeps a *stub* of it ("referred to a case officer": no category detail,
  description, person or location; see ``is_stub``);
- volunteers (and anyone) see the needs assigned to them or to their working groups;
- observers see none: only aggregates (``counts``, ``open_needs_map``).

A grant at the municipality node is turned into ``municipality_id = M`` so that the coordinators' and case
officers' queues walk the ``need_muni_open`` index in due order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from redes.accounts import scoping
from redes.accounts.roles import PERMISSIONS, Perm, Role
from redes.core import clock
from redes.territories.models import MUNICIPALITY_DEPTH, Municipality, Node

from .models import OPEN_STATUSES, Need, NeedCategory, NeedEvent, NeedStatus, Notification, WorkingGroup

#: Counts below this are hidden from observers (aggregates only).
SMALL_COUNT = 5


def _sees_sensitive(role: str) -> bool:
    return Perm.VIEW_SENSITIVE in PERMISSIONS.get(Role(role), frozenset())


def _territory_q(grant) -> Q:
    if grant.depth == MUNICIPALITY_DEPTH and grant.municipality_id:
        return Q(municipality_id=grant.municipality_id)
    # The municipality too, so the planner may walk ``need_muni_open`` in due order for large areas.
    under = Q(node_id__in=Node.objects.filter(**{f"a{grant.depth}": grant.node_id}).values("id"))
    return Q(municipality_id=grant.municipality_id) & under if grant.municipality_id else under


def group_ids(user) -> list[int]:
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_redes_need_groups", None)
    if cached is None:
        cached = list(
            WorkingGroup.members.through.objects.filter(
                user_id=user.pk, workinggroup__active=True
            ).values_list("workinggroup_id", flat=True)
        )
        user._redes_need_groups = cached
    return cached


def _assigned_q(user) -> Q:
    q = Q(assigned_user_id=user.pk)
    groups = group_ids(user)
    if groups:
        q |= Q(assigned_group_id__in=groups)
    return q


def visibility_q(user) -> Q | None:
    """The filter of ``visible_needs``; ``None`` means none at all (anonymous, observers, no role)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        # Administrators see every need, but sensitive ones only as stubs (sensitive data is for case officers).
        return Q()
    assigned = _assigned_q(user)
    parts = []
    for grant in scoping.grants_for(user, Perm.HANDLE_NEEDS):
        territory = _territory_q(grant)
        if _sees_sensitive(grant.role):
            parts.append(territory)
        else:
            parts.append(territory & (Q(sensitive=False) | Q(reported_by_id=user.pk) | assigned))
    handled = {g.node_id for g in scoping.grants_for(user, Perm.HANDLE_NEEDS)}
    for grant in scoping.grants_for(user, Perm.REPORT_NEEDS):
        if grant.node_id not in handled:
            parts.append(_territory_q(grant) & Q(reported_by_id=user.pk))
    if not parts:
        parts.append(assigned)
    elif group_ids(user):
        # Group members may take on needs outside their own posts.
        parts.append(Q(assigned_group_id__in=group_ids(user)))
    return reduce(or_, parts)


def visible_needs(user) -> QuerySet:
    q = visibility_q(user)
    if q is None:
        return Need.objects.none()
    return Need.objects.filter(q)


def is_stub(need: Need, user) -> bool:
    """True when the user may know the need exists but not what it is (a sensitive need, not a case officer)."""
    return need.sensitive and not scoping.can(user, Perm.VIEW_SENSITIVE, need.node, superuser=False)


def get_need(user, uuid) -> Need:
    """One visible need by uuid; 404 for missing, not visible and malformed ids alike."""
    try:
        return (
            visible_needs(user)
            .select_related(
                "category",
                "node",
                "holder_node",
                "municipality",
                "assigned_user",
                "assigned_group",
                "assigned_office",
                "reported_by",
                "household",
                "person",
                "duplicate_of",
            )
            .get(uuid=uuid)
        )
    except (Need.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404 from exc


def _node_q(node: Node) -> Q:
    if node.depth == MUNICIPALITY_DEPTH:
        return Q(municipality_id=node.municipality_id or node.municipality_record.pk)
    if node.depth < MUNICIPALITY_DEPTH:
        return Q(**{f"node__a{node.depth}": node.pk})
    return Q(node_id__in=Node.objects.filter(**{f"a{node.depth}": node.pk}).values("id"))


def held_node_ids(user) -> list[int]:
    """Nodes whose needs the user holds now: their liaison posts, and municipality nodes they coordinate."""
    from redes.liaisons.models import LiaisonAssignment

    if not getattr(user, "is_authenticated", False):
        return []
    ids = list(
        LiaisonAssignment.objects.active(clock.now().date())
        .filter(user=user)
        .values_list("node_id", flat=True)
    )
    ids += [g.node_id for g in scoping.grants(user) if g.role == Role.COORDINATOR]
    return ids


def mine_q(user) -> Q:
    """Open needs held by the user's posts (coordinators: the municipality node) or assigned to them
    (``need_holder_open``)."""
    held = held_node_ids(user)
    return (Q(holder_node_id__in=held) | _assigned_q(user)) if held else _assigned_q(user)


def _statuses(status) -> list[str] | None:
    if status in (None, "", "open"):
        return list(OPEN_STATUSES)
    if status == "all":
        return None
    if status == "closed":
        return [s for s in NeedStatus.values if s not in OPEN_STATUSES]
    values = [status] if isinstance(status, str) else list(status)
    unknown = [v for v in values if v not in NeedStatus.values]
    if unknown:
        raise ValidationError({"status": f"Unknown status: {', '.join(unknown)}"})
    return values


def queue(
    user,
    *,
    status=None,
    category=None,
    urgency=None,
    node: Node | None = None,
    overdue: bool | None = None,
    mine: bool = False,
    level: int | None = None,
    sensitive: bool | None = None,
) -> QuerySet:
    """The user's work list, lazily (paginate it). ``status``: None/"open" (default), "closed", "all", a status
    or a list; ``category``: a category, its code or id (its sub-categories included); ``node``: only under it;
    ``overdue``: only past their deadline; ``mine``: only those held by the user's posts or assigned to them;
    ``level``: escalation level. Open needs come most due first; others newest first."""
    qs = visible_needs(user)
    statuses = _statuses(status)
    if statuses is not None:
        qs = qs.filter(status__in=statuses)
    if category not in (None, ""):
        if isinstance(category, NeedCategory):
            cat_ids = [category.pk]
        else:
            lookup = (
                Q(code=category) if isinstance(category, str) and not category.isdigit() else Q(pk=category)
            )
            cat_ids = list(NeedCategory.objects.filter(lookup).values_list("pk", flat=True))
        cat_ids += list(NeedCategory.objects.filter(parent_id__in=cat_ids).values_list("pk", flat=True))
        qs = qs.filter(category_id__in=cat_ids)
    if urgency:
        qs = qs.filter(urgency=urgency)
    if node is not None:
        qs = qs.filter(_node_q(node))
    if overdue:
        qs = qs.filter(status__in=OPEN_STATUSES, due_at__lte=clock.now())
    elif overdue is False:
        qs = qs.filter(due_at__gt=clock.now())
    if level is not None:
        qs = qs.filter(escalation_level=level)
    if sensitive is not None:
        qs = qs.filter(sensitive=sensitive)
    if mine:
        qs = qs.filter(mine_q(user))
    qs = for_list(qs)
    if statuses is not None and set(statuses) <= set(OPEN_STATUSES):
        return qs.order_by("due_at", "id")
    return qs.order_by("-created_at", "-id")


#: Node columns a list never shows (polygons are large).
_HEAVY = ("node__geometry", "holder_node__geometry")


def for_list(qs: QuerySet) -> QuerySet:
    """What a list of needs shows, cheaply: category and both nodes joined (without their polygons; few joins
    keep the planning time low), assignees fetched afterwards only when there are any."""
    return (
        qs.select_related("category", "node", "holder_node")
        .defer(*_HEAVY)
        .prefetch_related("assigned_user", "assigned_group", "assigned_office")
    )


# --------------------------------------------------------------------------------------------- aggregates


def _aggregate_base(user, node: Node) -> tuple[QuerySet, bool]:
    """Needs under ``node`` for counting, and whether small counts must be hidden (observers)."""
    if not (scoping.can(user, Perm.VIEW_AGGREGATES, node) or scoping.can(user, Perm.HANDLE_NEEDS, node)):
        raise Http404
    qs = Need.objects.filter(_node_q(node))
    if not scoping.can(user, Perm.VIEW_SENSITIVE, node, superuser=False):
        qs = qs.filter(sensitive=False)
    return qs, scoping.only_aggregates(user, node)


def _suppress(value: int, hide: bool):
    return None if hide and 0 < value < SMALL_COUNT else value


@dataclass
class NodeCounts:
    node: Node
    open: int
    overdue: int
    by_status: dict
    by_category: dict
    by_urgency: dict
    escalations: list  # [{"node": Node, "count": n}] escalations that reached each node under ``node``
    suppressed: bool


def counts(user, node: Node) -> NodeCounts:
    """Needs under ``node`` by status, category and urgency, and the escalations received per node (404 if the
    user sees no aggregates there). Observers get small counts (< 5) as ``None``."""
    qs, hide = _aggregate_base(user, node)
    now = clock.now()
    by_status = dict(qs.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    open_qs = qs.filter(status__in=OPEN_STATUSES)
    by_category = dict(
        open_qs.values_list("category__code").annotate(n=Count("id")).values_list("category__code", "n")
    )
    by_urgency = dict(open_qs.values_list("urgency").annotate(n=Count("id")).values_list("urgency", "n"))
    overdue = open_qs.filter(due_at__lte=now).count()
    events = NeedEvent.objects.filter(kind=NeedEvent.Kind.ESCALATED, need__in=qs)
    if node.depth == MUNICIPALITY_DEPTH:
        events = NeedEvent.objects.filter(
            kind=NeedEvent.Kind.ESCALATED, need__municipality_id=node.municipality_id
        )
        if not scoping.can(user, Perm.VIEW_SENSITIVE, node, superuser=False):
            events = events.filter(need__sensitive=False)
    per_node = dict(events.values_list("node_id").annotate(n=Count("id")).values_list("node_id", "n"))
    nodes = Node.objects.in_bulk([k for k in per_node if k])
    escalations = sorted(
        ({"node": nodes[k], "count": _suppress(v, hide)} for k, v in per_node.items() if k in nodes),
        key=lambda e: (e["node"].depth, e["node"].code),
    )
    return NodeCounts(
        node=node,
        open=_suppress(sum(by_status.get(s, 0) for s in OPEN_STATUSES), hide),
        overdue=_suppress(overdue, hide),
        by_status={k: _suppress(v, hide) for k, v in by_status.items()},
        by_category={k: _suppress(v, hide) for k, v in by_category.items()},
        by_urgency={k: _suppress(v, hide) for k, v in by_urgency.items()},
        escalations=escalations,
        suppressed=hide,
    )


def open_needs_map(user, municipality: Municipality) -> dict:
    """GeoJSON FeatureCollection: per block (or the smallest known unit), the open and overdue needs. No
    personal data; for observers, counts under 5 are hidden (``null``)."""
    node = municipality.node
    qs, hide = _aggregate_base(user, node)
    now = clock.now()
    rows = (
        qs.filter(status__in=OPEN_STATUSES)
        .values("node_id")
        .annotate(
            open=Count("id"),
            overdue=Count("id", filter=Q(due_at__lte=now)),
            critical=Count("id", filter=Q(urgency="critical")),
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
        )
    )
    by_node = {r["node_id"]: r for r in rows}
    nodes = Node.objects.filter(pk__in=list(by_node)).only(
        "uuid", "code", "name", "depth", "geometry", "centroid_lat", "centroid_lon"
    )
    features = []
    unlocated = 0
    for n in nodes:
        r = by_node[n.pk]
        if n.geometry:
            geometry = n.geometry
        elif n.centroid_lat is not None:
            geometry = {"type": "Point", "coordinates": [n.centroid_lon, n.centroid_lat]}
        else:
            unlocated += r["open"]
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {
                    "node": str(n.uuid),
                    "code": n.code,
                    "name": n.name,
                    "open": _suppress(r["open"], hide),
                    "overdue": _suppress(r["overdue"], hide),
                    "critical": _suppress(r["critical"], hide),
                    "escalated": _suppress(r["escalated"], hide),
                },
            }
        )
    features.sort(key=lambda f: f["properties"]["code"])
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "municipality": municipality.code,
            "open": _suppress(sum(r["open"] for r in by_node.values()), hide),
            "unlocated": _suppress(unlocated, hide),
            "suppressed_below": SMALL_COUNT if hide else None,
        },
    }


# --------------------------------------------------------------------------------------------- one need


def timeline(need: Need, user) -> list[NeedEvent]:
    """The need's events in order, each with ``note`` (plain text; decrypted for case officers, the read
    audited once). A stub shows only its registration."""
    from . import services

    events = list(need.events.select_related("actor", "node"))
    if is_stub(need, user):
        events = [e for e in events if e.kind == NeedEvent.Kind.CREATED]
        for e in events:
            e.note = ""
            e.data = {}
        return events
    encrypted = any("enc" in (e.data or {}) for e in events)
    if encrypted:
        services.read_sensitive(need, actor=user)  # audits the read (403 for anyone else)
    for e in events:
        e.note = services.note_text(need, e)
    return events


def notifications(user, *, unread: bool = False) -> QuerySet:
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    qs = Notification.objects.filter(user=user)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs.select_related("need").order_by("-created_at", "-id")


def unread_count(user) -> int:
    return notifications(user, unread=True).count() if getattr(user, "is_authenticated", False) else 0


# --------------------------------------------------------------------------------------------- helpers for pages


def holders(node: Node):
    """Users holding ``node`` now (its liaison; the coordinators for a municipality node)."""
    from redes.accounts.models import User

    from .services import holder_ids

    return User.objects.filter(pk__in=holder_ids(node))


@dataclass
class Assignable:
    users: QuerySet
    groups: QuerySet
    offices: QuerySet


def assignable(need: Need) -> Assignable:
    """Who the need may be assigned to: people with a role at its block or above, working groups covering it,
    the municipality's offices."""
    from .services import assignable_groups, assignable_offices, assignable_users

    return Assignable(assignable_users(need), assignable_groups(need), assignable_offices(need))


def overdue_since(need: Need) -> dt.timedelta | None:
    if not need.is_overdue:
        return None
    return clock.now() - need.due_at
