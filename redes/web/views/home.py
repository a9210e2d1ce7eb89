"""The home page: each of the user's territories with its counts, coverage and vacant posts."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, scoped, top_nodes
from redes.audit.models import AuditEvent
from redes.liaisons.services import coverage, coverage_by_child, vacant_posts
from redes.registry.queries import registry_counts

from .common import child_level_label, level_counts, with_level_labels
from .registry_requests import summary_context

VACANT_PREVIEW = 8
CHILD_BARS = 12
RECENT_EVENTS = 8


def territory_summary(user, node) -> dict:
    summary = {
        "node": node,
        "level": node.level_name,
        "counts": level_counts(node),
        "child_level": child_level_label(node),
        "show_aggregates": can(user, Perm.VIEW_AGGREGATES, node),
    }
    summary["census"] = can(user, Perm.EDIT_REGISTRY, node)
    if summary["show_aggregates"]:
        summary["registry"], _ = registry_counts(node)
        summary["coverage"] = coverage(node)
        by_child = coverage_by_child(node)
        if by_child:
            children = list(node.children.order_by("code")[:CHILD_BARS])
            summary["bars"] = [(child, by_child.get(child.pk)) for child in children]
            summary["more_children"] = node.children.count() > CHILD_BARS
        if summary["coverage"].vacant:
            rows = vacant_posts(node).select_related("municipality")[:VACANT_PREVIEW]
            summary["vacant"] = with_level_labels(rows, node)
    return summary


@login_required
def home(request):
    user = request.user
    summaries = [territory_summary(user, node) for node in top_nodes(user)]
    context = {"summaries": summaries, "requests_summary": summary_context(user)}
    if can(user, Perm.VIEW_AUDIT):
        events = scoped(AuditEvent.objects.all(), user, Perm.VIEW_AUDIT, via="municipality__node")
        context["recent_events"] = list(events[:RECENT_EVENTS])
    return render(request, "web/home.html", context)
