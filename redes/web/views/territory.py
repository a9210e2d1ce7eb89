"""The territory browser: a node, its children with their coverage, its liaison, a map, and search."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, visible_nodes
from redes.liaisons.services import coverage, coverage_by_child, current_liaisons
from redes.territories.models import MUNICIPALITY_DEPTH, Node, NodeKind

from ..forms import ChildForm, MoveForm, RemoveForm, RenameForm
from .common import PAGE_SIZE, breadcrumbs, child_level_label, is_htmx, node_or_404
from .liaisons import liaison_panel_context

SEARCH_LIMIT = 30


def _children_page(request, node: Node):
    children = node.children.order_by("code").only(
        "uuid", "code", "name", "depth", "kind", "municipality_id", "parent_id"
    )
    return Paginator(children, PAGE_SIZE).get_page(request.GET.get("page"))


def _parent_level(node: Node) -> str:
    if node.depth - 1 > MUNICIPALITY_DEPTH:
        return node.municipality.level_name(node.depth - 1)
    return str(NodeKind.MUNICIPALITY.label)


def node_context(request, node: Node) -> dict:
    """Everything the node page shows, in a fixed number of queries whatever the number of children."""
    user = request.user
    page = _children_page(request, node)
    children = list(page.object_list)
    show_aggregates = can(user, Perm.VIEW_AGGREGATES, node)
    show_personal = can(user, Perm.VIEW_PERSONAL, node)
    posts = current_liaisons([*children, node])
    by_child = coverage_by_child(node) if show_aggregates and children else {}
    rows = [
        {"node": child, "post": posts.get(child.pk), "coverage": by_child.get(child.pk)} for child in children
    ]
    has_shapes = bool(node.geometry) or node.children.filter(geometry__isnull=False).exists()
    manage = can(user, Perm.MANAGE_TERRITORY, node)
    is_unit = node.kind == NodeKind.UNIT
    can_have_children = node.kind == NodeKind.MUNICIPALITY or (
        is_unit and node.depth < node.municipality.leaf_depth
    )
    context = {
        "node": node,
        "level": node.level_name,
        "crumbs": breadcrumbs(user, node),
        "child_level": child_level_label(node),
        "page": page,
        "rows": rows,
        "show_aggregates": show_aggregates,
        "show_personal": show_personal,
        "coverage": coverage(node) if show_aggregates else None,
        "has_shapes": has_shapes,
        "map_url": reverse("territory-map", args=[node.uuid]),
        "manage": manage,
        "can_add_child": manage and can_have_children,
        "can_edit_unit": manage and is_unit,
        "add_form": ChildForm(prefix="add"),
        "rename_form": RenameForm(prefix="rename", initial={"name": node.name, "code": node.code}),
        "move_form": MoveForm(prefix="move"),
        "remove_form": RemoveForm(prefix="remove"),
        "parent_level": _parent_level(node) if is_unit else "",
    }
    if node.kind in (NodeKind.UNIT, NodeKind.MUNICIPALITY):
        context.update(liaison_panel_context(request, node, current=posts.get(node.pk)))
    return context


@login_required
@require_GET
def node_detail(request, uuid):
    node = node_or_404(request, uuid)
    return render(request, "web/territory/node.html", node_context(request, node))


@login_required
@require_GET
def node_map(request, uuid):
    """GeoJSON of the node's children (or the node itself when they have no shapes). No personal data."""
    node = node_or_404(request, uuid)
    show_aggregates = can(request.user, Perm.VIEW_AGGREGATES, node)
    children = list(
        node.children.filter(geometry__isnull=False)
        .order_by("code")
        .values("pk", "uuid", "code", "name", "geometry")
    )
    by_child = coverage_by_child(node) if show_aggregates and children else {}
    held = set(current_liaisons([c["pk"] for c in children])) if show_aggregates and children else set()
    features = []
    for child in children:
        properties = {
            "code": child["code"],
            "name": child["name"],
            "url": reverse("territory", args=[child["uuid"]]),
        }
        if show_aggregates:
            cov = by_child.get(child["pk"])
            if cov is not None and cov.total:
                properties["coverage"] = cov.percent
            properties["liaison"] = child["pk"] in held
        features.append({"type": "Feature", "geometry": child["geometry"], "properties": properties})
    if node.geometry:
        features.append(
            {
                "type": "Feature",
                "geometry": node.geometry,
                "properties": {"code": node.code, "name": node.name, "self": True},
            }
        )
    response = JsonResponse({"type": "FeatureCollection", "features": features})
    response["Content-Type"] = "application/geo+json"
    return response


@login_required
@require_GET
def search(request):
    """Units by name or code within what the user sees (optionally below one node)."""
    query = (request.GET.get("q") or "").strip()[:100]
    within = None
    if request.GET.get("within"):
        within = node_or_404(request, request.GET["within"])
    results = []
    if len(query) >= 2:
        qs = visible_nodes(request.user).filter(Q(name__icontains=query) | Q(code__icontains=query))
        if within is not None:
            qs = qs.filter(**{f"a{within.depth}": within.pk}).exclude(pk=within.pk)
        qs = qs.select_related("municipality").order_by("depth", "code")[:SEARCH_LIMIT]
        results = list(qs)
        shared = {}  # one Municipality object per tenant, so that its level names load once
        for n in results:
            if n.municipality_id:
                n.municipality = shared.setdefault(n.municipality_id, n.municipality)
            n.level_label = n.level_name
            n.where = n.municipality.name if n.municipality_id else ""
    context = {
        "query": query,
        "within": within,
        "results": results,
        "too_short": 0 < len(query) < 2,
        "limit": SEARCH_LIMIT,
    }
    template = "web/territory/_search_results.html" if is_htmx(request) else "web/territory/search.html"
    return render(request, template, context)
