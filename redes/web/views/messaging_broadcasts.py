"""Broadcast pages: the list and the form of a new broadcast, one broadcast with its live progress (polled by
htmx: acknowledgements per sector and block, overdue and vacant nodes, reminders, outbound delivery counts, a
map of the nodes coloured by their acknowledgement), start, cancel and acknowledge.

Needs ``BROADCAST`` (coordinators over their municipality, sector liaisons over their sector). Writes go through
``messaging.broadcasts`` (validated and audited there); reads through ``messaging.queries``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.messaging.models import Broadcast, CascadeNode, Group, MessageTemplate, Outbound
from redes.territories.models import Node, NodeKind

from . import common
from .messaging import get_or_404, perm_municipality, queries, show
from .messaging_forms import BroadcastForm

#: Seconds between two refreshes of a broadcast's progress.
POLL_SECONDS = 3
#: Above this many blocks the progress lists the blocks that need attention first, up to this many.
BLOCK_ROWS = 80
ACK_STATES = {
    CascadeNode.Status.ACKED: "acked",
    CascadeNode.Status.SENT: "waiting",
    CascadeNode.Status.WAITING: "pending",
    CascadeNode.Status.OVERDUE: "overdue",
    CascadeNode.Status.VACANT: "vacant",
}


def _services():
    from redes.messaging import broadcasts

    return broadcasts


def _broadcast_or_404(request, uuid):
    qs = queries().broadcasts_for(request.user).select_related("node", "municipality", "group", "created_by")
    return get_or_404(qs, uuid=uuid)


def _need_categories(municipality) -> list[tuple[str, str]]:
    from redes.needs.models import NeedCategory

    return list(
        NeedCategory.objects.filter(municipality=municipality, active=True, parent__isnull=True)
        .order_by("order", "name")
        .values_list("code", "name")
    )


def _form(request, municipality, data=None) -> BroadcastForm:
    nodes = scoping.scoped(
        Node.objects.filter(
            municipality=municipality, kind__in=[NodeKind.MUNICIPALITY, NodeKind.UNIT]
        ).filter(depth__lt=municipality.leaf_depth),
        request.user,
        Perm.BROADCAST,
    ).order_by("depth", "code")
    groups = scoping.scoped(
        Group.objects.filter(municipality=municipality, active=True), request.user, Perm.BROADCAST, via="node"
    ).order_by("kind", "name")
    templates = (
        MessageTemplate.objects.filter(municipality=municipality).exclude(whatsapp_name="").order_by("key")
    )
    return BroadcastForm(
        data,
        nodes=nodes,
        groups=groups,
        templates=templates,
        categories=_need_categories(municipality),
    )


@login_required
@require_http_methods(["GET", "POST"])
def broadcasts(request):
    """The broadcasts of the user's territory, and the form of a new one."""
    municipality, choices = perm_municipality(request, Perm.BROADCAST, "messaging.broadcast.create")
    form = _form(request, municipality, request.POST or None)
    if request.method == "POST" and not form.is_valid():
        common.audit_rejected(request, "messaging.broadcast.create", form, municipality=municipality)
    if request.method == "POST" and form.is_valid():
        try:
            broadcast = _services().create_broadcast(
                actor=request.user, municipality=municipality, **form.service_arguments()
            )
        except ValidationError as exc:
            common.add_service_errors(form, exc)
        except PermissionDenied:
            form.add_error("node", _("You may not broadcast to this territory."))
        else:
            messages.success(request, _("Broadcast saved as a draft. Check it, then start it."))
            return redirect("messaging-broadcast", uuid=broadcast.uuid)
    qs = queries().broadcasts_for(request.user).filter(municipality=municipality).select_related("node")
    page = Paginator(qs.order_by("-created_at", "-pk"), common.PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"municipality": municipality, "municipalities": choices, "page": page, "form": form}
    return show(request, "web/messaging/broadcasts.html", context, 400 if form.errors else 200)


# ------------------------------------------------------------------------------------------------- progress


def _percent(part, whole) -> int | None:
    return round(100 * part / whole) if whole else None


def _node_rows(broadcast):
    return (
        CascadeNode.objects.filter(broadcast=broadcast)
        .select_related("node")
        .only("pk", "depth", "status", "node__code", "node__name", "node__geometry")
        .order_by("depth", "node__code", "pk")
    )


def _sector_of(row: dict, by_uuid: dict, depth: int) -> dict | None:
    """The ancestor of a cascade entry at ``depth`` (its sector), through the entries' parents."""
    while row is not None and row["depth"] > depth:
        row = by_uuid.get(row["parent"])
    return row if row is not None and row["depth"] == depth else None


def progress_view(request, broadcast) -> dict:
    """What the progress view shows, from ``broadcasts.progress``: totals, the first level below the broadcast's
    territory (its sectors) with the acknowledgements of the blocks under each, the blocks that need attention
    first, and the outbound delivery counts. Liaison names only for those who may see personal data."""
    personal = scoping.can(request.user, Perm.VIEW_PERSONAL, broadcast.node)
    progress = _services().progress(broadcast, personal=personal)
    nodes = progress.get("nodes") or []
    labels = dict(CascadeNode.Status.choices)
    for row in nodes:
        row["state"] = ACK_STATES.get(row["status"], row["status"])
        row["label"] = labels.get(row["status"], row["status"])
    root = None
    sectors, blocks = [], []
    if nodes:
        top = min(row["depth"] for row in nodes)
        tops = [row for row in nodes if row["depth"] == top]
        if len(tops) == 1:
            root = tops[0]
            sectors = [row for row in nodes if row["depth"] == top + 1]
            blocks = [row for row in nodes if row["depth"] > top + 1]
        else:
            sectors = tops
            blocks = [row for row in nodes if row["depth"] > top]
    by_uuid = {row["uuid"]: row for row in nodes}
    sector_depth = sectors[0]["depth"] if sectors else None
    for sector in sectors:
        sector["counts"] = dict.fromkeys(ACK_STATES.values(), 0)
        sector["block_total"] = 0
    for block in blocks:
        sector = _sector_of(block, by_uuid, sector_depth) if sector_depth is not None else None
        if sector is not None:
            sector["counts"][block["state"]] += 1
            sector["block_total"] += 1
    for sector in sectors:
        staffed = sector["block_total"] - sector["counts"]["vacant"]  # vacant blocks pass it on by themselves
        sector["staffed"] = staffed
        sector["percent"] = _percent(sector["counts"]["acked"], staffed)
    # The liaisons' nodes below the broadcast's own territory (whose "acknowledgement" is the start).
    below = [row for row in nodes if row is not root]
    totals = dict.fromkeys(ACK_STATES.values(), 0)
    for row in below:
        totals[row["state"]] += 1
    totals["nodes"] = len(below)
    totals["reminders"] = sum(row["reminders"] for row in below)
    totals["escalated"] = sum(1 for row in below if row["escalated_at"])
    totals["done_percent"] = _percent(totals["acked"] + totals["vacant"], totals["nodes"])
    order = {"overdue": 0, "waiting": 1, "pending": 2}
    attention = sorted(blocks, key=lambda b: (order.get(b["state"], 3), b["code"]))
    outbound = _outbound_counts(progress)
    return {
        "progress": progress,
        "root": root,
        "sectors": sectors,
        "blocks": attention[:BLOCK_ROWS],
        "block_total": len(blocks),
        "totals": totals,
        "outbound": outbound,
        "outbound_percent": _percent(outbound["delivered"] + outbound["read"], outbound["total"]),
        "has_shapes": broadcast.cascade
        and CascadeNode.objects.filter(broadcast=broadcast, node__geometry__isnull=False).exists(),
    }


def _outbound_counts(progress: dict) -> dict:
    """Outbound messages of the broadcast by status (from ``broadcasts.progress``)."""
    raw = progress.get("outbound") or {}
    counts = {status: int(raw.get(status, 0) or 0) for status in Outbound.Status.values}
    counts["total"] = sum(counts.values())
    counts["in_flight"] = counts["queued"] + counts["sending"]
    return counts


def _detail_context(request, broadcast) -> dict:
    context = {"broadcast": broadcast, "poll": POLL_SECONDS}
    context.update(progress_view(request, broadcast))
    context["own_acks"] = list(
        CascadeNode.objects.filter(
            broadcast=broadcast,
            user=request.user,
            status__in=[CascadeNode.Status.SENT, CascadeNode.Status.OVERDUE],
        ).select_related("node")
    )
    context["live"] = broadcast.status == Broadcast.Status.SENDING
    context["map_url"] = reverse("messaging-broadcast-map", args=[broadcast.uuid])
    return context


@login_required
@require_GET
def broadcast_detail(request, uuid):
    common.require_perm(request, Perm.BROADCAST)
    broadcast = _broadcast_or_404(request, uuid)
    context = _detail_context(request, broadcast)
    if common.is_htmx(request) and request.GET.get("part") == "progress":
        return render(request, "web/messaging/_progress.html", context)
    return show(request, "web/messaging/broadcast.html", context)


@login_required
@require_GET
def broadcast_map(request, uuid):
    """GeoJSON of the cascade's nodes with their acknowledgement state (no personal data)."""
    common.require_perm(request, Perm.BROADCAST)
    broadcast = _broadcast_or_404(request, uuid)
    features = []
    for row in _node_rows(broadcast):
        if not row.node.geometry:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": row.node.geometry,
                "properties": {
                    "code": row.node.code,
                    "name": row.node.name,
                    "depth": row.depth,
                    "state": ACK_STATES.get(row.status, row.status),
                    "label": str(row.get_status_display()),
                },
            }
        )
    response = JsonResponse({"type": "FeatureCollection", "features": features})
    response["Content-Type"] = "application/geo+json"
    return response


@login_required
@require_POST
def broadcast_action(request, uuid, action):
    """Start or cancel a broadcast."""
    if action not in ("start", "cancel"):
        raise PermissionDenied
    common.require_perm(request, Perm.BROADCAST, f"messaging.broadcast.{action}")
    broadcast = _broadcast_or_404(request, uuid)
    services = _services()
    call, done = {
        "start": (services.start_broadcast, _("Broadcast started: the messages are on their way.")),
        "cancel": (services.cancel, _("Broadcast cancelled: messages not yet sent will not go out.")),
    }[action]
    try:
        call(broadcast, actor=request.user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    except PermissionDenied:
        messages.error(request, _("You may not do this with this broadcast."))
    else:
        messages.success(request, done)
    url = reverse("messaging-broadcast", args=[broadcast.uuid])
    if common.is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
