"""Helpers shared by the page views: node lookup through the scoping door, htmx detection, form errors."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, get_scoped_or_404, municipalities
from redes.audit.models import Outcome
from redes.audit.services import record_denied
from redes.territories.models import MUNICIPALITY_DEPTH, Municipality, Node, NodeKind

PAGE_SIZE = 50


def is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def node_or_404(request, uuid, perm: str = Perm.VIEW_TERRITORY) -> Node:
    """The node with this UUID if the user may see it; 404 for missing, not-yours and malformed alike."""
    return get_scoped_or_404(Node.objects.select_related("municipality"), request.user, perm, uuid=uuid)


def require_or_refuse(request, perm: str, node: Node, action: str) -> None:
    """403 for a node the user sees but may not act on (a refused write is audited); 404 if unseen."""
    if can(request.user, perm, node):
        return
    if not can(request.user, Perm.VIEW_TERRITORY, node):
        raise Http404
    if request.method == "POST":
        record_denied(action, actor=request.user, obj=node, reason=f"missing permission {perm}")
    raise PermissionDenied


def require_perm(request, perm: str, action: str = "") -> None:
    """403 unless the user holds ``perm`` somewhere; a refused write (POST naming ``action``) is audited."""
    if can(request.user, perm):
        return
    if action and request.method == "POST":
        record_denied(action, actor=request.user, reason=f"missing permission {perm}")
    raise PermissionDenied


def managed_municipalities(user, perm: str) -> list[Municipality]:
    """Municipalities where the user holds ``perm`` at the municipality itself (all for superusers)."""
    qs = municipalities(user, perm).select_related("node").order_by("name")
    return [m for m in qs if can(user, perm, m.node)]


def chosen_municipality(
    request, perm: str, action: str = "", *, anywhere: bool = False
) -> tuple[Municipality, list[Municipality]]:
    """The municipality a management page works on (``?m=<uuid>``, else the first managed one) and the
    choices; 403 when the user manages none, 404 for a municipality not among them. ``anywhere``: the
    municipalities where ``perm`` is held at any node (a sector liaison broadcasting within their sector),
    not only at the municipality itself."""
    require_perm(request, perm, action)
    if anywhere:
        choices = list(municipalities(request.user, perm).select_related("node").order_by("name"))
    else:
        choices = managed_municipalities(request.user, perm)
    if not choices:
        if action and request.method == "POST":
            record_denied(action, actor=request.user, reason=f"{perm} below the municipality only")
        raise PermissionDenied
    wanted = (request.GET.get("m") or request.POST.get("m") or "").strip()
    if wanted:
        for municipality in choices:
            if str(municipality.uuid) == wanted:
                return municipality, choices
        raise Http404
    return choices[0], choices


def audit_rejected(request, action: str, form, obj=None, **where) -> None:
    """Audit a submission its form refused before any service ran (forged ids, unknown choices…): the names
    of the fields in error, never the values typed. ``where``: ``municipality=`` when there is no ``obj``."""
    fields = ",".join(sorted(key or "__all__" for key in form.errors)) or "form"
    record_denied(
        action,
        actor=request.user,
        obj=obj,
        reason=f"invalid input: {fields}",
        outcome=Outcome.REJECTED,
        **where,
    )


def add_service_errors(form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: on the named fields when the form has them."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error.messages if hasattr(error, "messages") else error)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def child_level_label(node: Node) -> str:
    """What the children of ``node`` are called (a level name of the municipality, or State/Municipality)."""
    if node.kind == NodeKind.NATION:
        return str(_("States"))
    if node.kind == NodeKind.STATE:
        return str(_("Municipalities"))
    municipality = node.municipality
    if node.depth >= municipality.leaf_depth:
        return ""
    return municipality.level_name(node.depth + 1)


def level_counts(node: Node) -> list[tuple[str, int]]:
    """How many units lie below ``node`` at each level (one GROUP BY)."""
    rows = (
        Node.objects.subtree(node, include_self=False)
        .values("depth")
        .annotate(n=Count("pk"))
        .order_by("depth")
    )
    counts: list[tuple[str, int]] = []
    units = 0
    for row in rows:
        depth, n = row["depth"], row["n"]
        if node.municipality_id:
            counts.append((node.municipality.level_name(depth), n))
        elif depth == MUNICIPALITY_DEPTH - 1:
            counts.append((str(_("States")), n))
        elif depth == MUNICIPALITY_DEPTH:
            counts.append((str(_("Municipalities")), n))
        else:
            units += n
    if units:
        counts.append((str(_("Territorial units")), units))
    return counts


def breadcrumbs(user, node: Node) -> list[tuple[Node, bool]]:
    """The ancestors of ``node`` from the top, each with whether the user may open it."""
    return [(ancestor, can(user, Perm.VIEW_TERRITORY, ancestor)) for ancestor in node.ancestors()]


def with_level_labels(nodes, within: Node) -> list[Node]:
    """Give each unit below ``within`` a ``level_label`` without a query per row.

    Inside one municipality the label is the level's name; above municipalities it is the municipality's
    name (the rows must then come with ``select_related("municipality")``)."""
    nodes = list(nodes)
    for n in nodes:
        if within.municipality_id:
            n.level_label = within.municipality.level_name(n.depth)
        else:
            n.level_label = n.municipality.name if n.municipality_id else ""
    return nodes
