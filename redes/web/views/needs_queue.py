"""The needs queue ("my queue" for each role), the map of open needs and the in-app notifications.

Every list starts from ``needs.queries`` (which goes through ``accounts.scoping``): a liaison sees the needs of
their block or sector and what escalated to them, a coordinator the whole municipality with an "overdue"
section, an operator what they registered, a case officer the sensitive cases, a volunteer what was assigned to
them or their working groups. Observers get the map and counts only, never a need.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm, Role
from redes.core import clock
from redes.needs import queries, services
from redes.needs.models import OPEN_STATUSES, Need, NeedCategory
from redes.territories.models import Municipality, Node

from ..forms_needs import QueueFilterForm
from ..templatetags.needs_web import deadline_text, next_deadline
from .common import is_htmx
from .needs_common import is_case_officer, page_of, pick_municipality, roles_of

SECTION_SIZE = 8
AREA_CHOICES = 200

_ROW_RELATED = (
    "category",
    "node",
    "holder_node",
    "assigned_user",
    "assigned_group",
    "assigned_office",
)


def prime_rows(rows: list[Need], cache: dict | None = None) -> list[Need]:
    """Give each row's nodes their municipality (levels loaded once per municipality and request), so that
    ``holder_label`` costs no query per row, and its deadline as text (``due_text``, ``late``). ``cache``
    (municipality id → Municipality) is shared by the lists of one page."""
    cache = {} if cache is None else cache
    missing = {row.holder_node.municipality_id for row in rows} - set(cache) - {None}
    if missing:
        for muni in Municipality.objects.in_bulk(missing).values():
            muni.level_names()
            cache[muni.pk] = muni
    now = clock.now()
    for row in rows:
        muni = cache.get(row.holder_node.municipality_id)
        if muni is not None:
            row.holder_node.municipality = muni
            row.node.municipality = muni
        when = next_deadline(row)
        row.due_text = deadline_text(when, now)
        row.late = when is not None and when < now
    return rows


def _rows(qs, limit: int, cache: dict) -> list[Need]:
    qs = qs.select_related(*_ROW_RELATED).defer("node__geometry", "holder_node__geometry")
    return prime_rows(list(qs[:limit]), cache)


def _area_nodes(user) -> list[Node]:
    """What the "area" filter offers: the user's top nodes and the units right below them."""
    tops = scoping.top_nodes(user, Perm.HANDLE_NEEDS)
    children = list(Node.objects.filter(parent__in=tops).order_by("code")[:AREA_CHOICES]) if tops else []
    return tops + children


def _queue_filters(form: QueueFilterForm, user) -> dict:
    """The queue's keyword arguments from the filter form; invalid values are dropped."""
    raw = form.filters()
    filters: dict = {}
    for key in ("status", "category", "urgency"):
        if raw.get(key):
            filters[key] = raw[key]
    if raw.get("overdue"):
        filters["overdue"] = True
    if raw.get("node"):
        node = scoping.scoped(Node.objects.all(), user, Perm.HANDLE_NEEDS).filter(uuid=raw["node"]).first()
        if node is not None:
            filters["node"] = node
    return filters


def _sections(user, roles: set[str], cache: dict, first_rows: list[Need]) -> list[dict]:
    """What each role looks at first, above the full queue (``first_rows``: its unfiltered first page)."""
    sections = []
    visible = queries.visible_needs(user)
    held = queries.held_node_ids(user)
    if held:
        escalated = visible.filter(
            holder_node_id__in=held, escalation_level__gt=0, status__in=OPEN_STATUSES
        ).order_by("due_at", "id")
        rows = _rows(escalated, SECTION_SIZE, cache)
        if rows:
            sections.append({"key": "escalated", "title": _("Escalated to you"), "rows": rows})
    if Role.COORDINATOR in roles:
        # The queue lists every open need the coordinator sees, most due first: its overdue rows come first,
        # so the section is the head of the first page (no second query).
        overdue = [row for row in first_rows if row.late][:SECTION_SIZE]
        sections.append(
            {
                "key": "overdue",
                "title": _("Overdue"),
                "rows": overdue,
                "empty": _("Nothing overdue."),
            }
        )
    if is_case_officer(user):
        sensitive = visible.filter(sensitive=True, status__in=OPEN_STATUSES).order_by("due_at", "id")
        sections.append(
            {
                "key": "sensitive",
                "title": _("Sensitive cases"),
                "rows": _rows(sensitive, SECTION_SIZE, cache),
                "empty": _("No open sensitive case."),
            }
        )
    if Role.HOTLINE_OPERATOR in roles:
        mine = visible.filter(reported_by=user).order_by("-created_at", "-id")
        sections.append(
            {
                "key": "registered",
                "title": _("Registered by you"),
                "rows": _rows(mine, SECTION_SIZE, cache),
                "empty": _("You have not registered any need yet."),
            }
        )
    for section in sections:
        for row in section["rows"]:
            row.stub = queries.is_stub(row, user)
    return sections


@login_required
@require_GET
def needs_home(request):
    user = request.user
    roles = roles_of(user)
    handles = scoping.can(user, Perm.HANDLE_NEEDS)
    volunteer = Role.VOLUNTEER in roles
    if not handles and not volunteer:
        if scoping.can(user, Perm.VIEW_AGGREGATES):
            return needs_map(request)
        raise PermissionDenied
    perm = Perm.HANDLE_NEEDS if handles else Perm.VIEW_TERRITORY
    municipality = scoping.municipalities(user, perm).order_by("name").first()
    categories = []
    if municipality is not None:
        categories = NeedCategory.objects.filter(municipality=municipality, active=True).order_by(
            "order", "code"
        )
        if not is_case_officer(user):
            categories = categories.filter(sensitive=False)
    form = QueueFilterForm(
        request.GET, categories=list(categories), nodes=_area_nodes(user) if handles else []
    )
    filters = _queue_filters(form, user)
    page = page_of(queries.queue(user, **filters), request.GET.get("page"))
    cache: dict = {}
    prime_rows(page.rows, cache)
    for row in page.rows:
        row.stub = queries.is_stub(row, user)
    first_page = page.number == 1 and not filters
    context = {
        "form": form,
        "page": page,
        "rows": page.rows,
        "filtered": bool(filters),
        "sections": _sections(user, roles, cache, page.rows) if first_page else [],
        "can_report": scoping.can(user, Perm.REPORT_NEEDS),
        "can_hotline": bool(roles & {Role.HOTLINE_OPERATOR, Role.COORDINATOR}),
        "can_manage": scoping.can(user, Perm.MANAGE_NEEDS),
        "volunteer_only": volunteer and not handles,
    }
    if is_htmx(request) and not request.headers.get("HX-History-Restore-Request"):
        return render(request, "web/needs/_queue_rows.html", context)
    return render(request, "web/needs/home.html", context)


# -------------------------------------------------------------------------------------------------- map


def _total(values) -> int | None:
    """A sum of counts, or None (shown as "fewer than 5") when one of them is hidden from the viewer."""
    values = list(values)
    if any(v is None for v in values):
        return None
    return sum(values)


def _category_label(code: str, name: str) -> str:
    return NeedCategory(code=code, name=name).label


def _map_area(request) -> tuple[Municipality, Node]:
    """The municipality shown and the node counted: the whole municipality when the user sees its aggregates,
    else the user's own area in it (a liaison's sector or block)."""
    user = request.user
    municipality = pick_municipality(request, Perm.VIEW_AGGREGATES)
    if not (request.GET.get("m") or "").strip():
        # Without a choice, a municipality with open needs (one row off the open-needs index) if the user
        # reaches one, rather than the first by name.
        busy = Need.objects.filter(status__in=OPEN_STATUSES).values_list("municipality_id", flat=True).first()
        if busy and busy != municipality.pk:
            allowed = scoping.municipalities(user, Perm.VIEW_AGGREGATES).select_related("node")
            municipality = allowed.filter(pk=busy).first() or municipality
    node = municipality.node
    if not scoping.can(user, Perm.VIEW_AGGREGATES, node):
        tops = [
            n for n in scoping.top_nodes(user, Perm.VIEW_AGGREGATES) if n.municipality_id == municipality.pk
        ]
        if not tops:
            raise PermissionDenied
        node = tops[0]
    return municipality, node


def _grouped_geojson(base, group: str, *, hide_small: bool = False) -> dict:
    """Open needs of ``base`` counted per node (``group``: the path to it, e.g. ``node_id`` for blocks,
    ``node__a3`` for the first level), in the shape of ``queries.open_needs_map``. No personal data;
    with ``hide_small``, units with fewer than ``SMALL_COUNT`` open needs are left out altogether."""
    now = clock.now()
    rows = {
        r[group]: r
        for r in base.filter(status__in=OPEN_STATUSES)
        .exclude(**{f"{group}__isnull": True})
        .values(group)
        .annotate(
            open=Count("id"),
            overdue=Count("id", filter=Q(due_at__lte=now)),
            critical=Count("id", filter=Q(urgency="critical")),
            escalated=Count("id", filter=Q(escalation_level__gt=0)),
        )
    }
    if hide_small:
        rows = {k: r for k, r in rows.items() if r["open"] >= queries.SMALL_COUNT}
    features = []
    for n in Node.objects.filter(pk__in=list(rows)).only(
        "uuid", "code", "name", "geometry", "centroid_lat", "centroid_lon"
    ):
        if n.geometry:
            geometry = n.geometry
        elif n.centroid_lat is not None:
            geometry = {"type": "Point", "coordinates": [n.centroid_lon, n.centroid_lat]}
        else:
            continue
        r = rows[n.pk]
        properties = {"node": str(n.uuid), "code": n.code, "name": n.name}
        properties.update({k: r[k] for k in ("open", "overdue", "critical", "escalated")})
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "features": features}


def _area_geojson(node: Node) -> dict:
    """A liaison's area: open needs per block under ``node``; sensitive needs left out (their place would
    point at a person)."""
    base = Need.objects.filter(node__in=Node.objects.subtree(node), sensitive=False)
    return _grouped_geojson(base, "node_id")


def _observer_geojson(municipality: Municipality) -> dict:
    """Observers: open needs per unit of the municipality's first level (sector), units under 5 left out, so
    that no circle points at a household; sensitive needs left out."""
    depth = municipality.node.depth + 1
    base = Need.objects.filter(municipality=municipality, sensitive=False)
    return _grouped_geojson(base, f"node__a{depth}", hide_small=True)


@login_required
@require_GET
def needs_map(request):
    """Open needs per block on a map, and counts; no personal data (observers: small counts hidden)."""
    user = request.user
    if not scoping.can(user, Perm.VIEW_AGGREGATES):
        raise PermissionDenied
    municipality, node = _map_area(request)
    observer = scoping.only_aggregates(user, node)
    totals = queries.counts(user, node)
    labels = dict(NeedCategory.objects.filter(municipality=municipality).values_list("code", "name"))
    by_category = sorted(
        ((_category_label(code, labels.get(code, "")), n) for code, n in totals.by_category.items()),
        key=lambda item: -(item[1] or 0),
    )
    done = [totals.by_status.get(s, 0) for s in ("resolved", "closed")]
    done_total = _total(done)
    context = {
        "municipality": municipality,
        "area": node,
        "municipalities": list(
            scoping.municipalities(user, Perm.VIEW_AGGREGATES).order_by("name").only("code", "name")[:200]
        ),
        "counts": totals,
        "by_category": by_category,
        "escalated": _total([e["count"] for e in totals.escalations]),
        "done": done_total,
        "observer": observer,
    }
    return render(request, "web/needs/map.html", context)


@login_required
@require_GET
def needs_map_data(request):
    user = request.user
    if not scoping.can(user, Perm.VIEW_AGGREGATES):
        raise PermissionDenied
    municipality, node = _map_area(request)
    if scoping.only_aggregates(user, node):
        data = _observer_geojson(municipality)
    elif node.pk == municipality.node_id:
        data = queries.open_needs_map(user, municipality)
    else:
        data = _area_geojson(node)
    response = JsonResponse(data)
    response["Content-Type"] = "application/geo+json"
    return response


# ----------------------------------------------------------------------------------------- notifications


@login_required
@require_GET
def needs_notifications(request):
    user = request.user
    qs = queries.notifications(user).select_related("need")
    page = page_of(qs, request.GET.get("page"))
    context = {"page": page, "rows": page.rows}
    return render(request, "web/needs/notifications.html", context)


@login_required
@require_POST
def needs_notifications_read(request):
    user = request.user
    raw = request.POST.getlist("id")
    ids = None
    if raw:
        ids = [int(value) for value in raw if value.isdigit()]
    count = services.mark_notifications_read(user, ids=ids)
    if count:
        messages.success(request, _("Marked as read."))
    return redirect("needs-notifications")
