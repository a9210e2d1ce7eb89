"""Liaison posts on a node's page (assign, end, history) and the list of vacant posts under a node.

The panel is also an htmx fragment: its forms post with ``hx-post`` and get the refreshed panel back, so a
liaison on a phone does not reload the whole page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from redes.accounts.roles import Perm
from redes.accounts.scoping import can
from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import assign_liaison, coverage, end_liaison, vacant_posts
from redes.territories.models import Node, NodeKind

from ..forms import AssignLiaisonForm, EndLiaisonForm
from .common import (
    PAGE_SIZE,
    add_service_errors,
    breadcrumbs,
    is_htmx,
    node_or_404,
    require_or_refuse,
    with_level_labels,
)

HISTORY_LIMIT = 50
_MISSING = object()


def liaison_panel_context(
    request, node: Node, *, current=_MISSING, assign_form=None, end_form=None, notice: str = ""
) -> dict:
    user = request.user
    show_personal = can(user, Perm.VIEW_PERSONAL, node)
    can_assign = node.kind in (NodeKind.UNIT, NodeKind.MUNICIPALITY) and can(user, Perm.ASSIGN_LIAISONS, node)
    if current is _MISSING:
        current = LiaisonAssignment.objects.active().filter(node=node).first()
    context = {
        "liaison": current,
        "show_personal": show_personal,
        "can_assign": can_assign,
        "notice": notice,
    }
    if show_personal:
        history = list(node.liaison_assignments.order_by("-start_date", "-id")[:HISTORY_LIMIT])
        context["history"] = history
        context["open_post"] = next((a for a in history if a.end_date is None), None)
    if can_assign:
        context["assign_form"] = assign_form or AssignLiaisonForm(node=node, prefix="assign")
        context["end_form"] = end_form or EndLiaisonForm(prefix="end")
    return context


def _panel(request, node: Node, **kwargs):
    context = {"node": node, **liaison_panel_context(request, node, **kwargs)}
    if is_htmx(request):
        return render(request, "web/liaisons/_panel.html", context)
    context["crumbs"] = breadcrumbs(request.user, node)
    context["level"] = node.level_name
    return render(request, "web/liaisons/panel_page.html", context)


def _done(request, node: Node, notice: str):
    if is_htmx(request):
        return _panel(request, node, notice=notice)
    messages.success(request, notice)
    return redirect(f"{node_url(node)}#liaison")


def node_url(node: Node) -> str:
    return reverse("territory", args=[node.uuid])


@login_required
@require_GET
def liaison_panel(request, uuid):
    node = node_or_404(request, uuid)
    return _panel(request, node)


@login_required
@require_POST
def liaison_assign(request, uuid):
    node = node_or_404(request, uuid)
    require_or_refuse(request, Perm.ASSIGN_LIAISONS, node, "liaisons.assignment.create")
    form = AssignLiaisonForm(request.POST, node=node, prefix="assign")
    if form.is_valid():
        data = form.cleaned_data
        try:
            assign_liaison(
                node,
                full_name=data["full_name"],
                phone=data["phone"],
                user=data["user"],
                start_date=data["start_date"],
                actor=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _done(request, node, _("The liaison was assigned."))
    return _panel(request, node, assign_form=form)


@login_required
@require_POST
def liaison_end(request, uuid):
    node = node_or_404(request, uuid)
    require_or_refuse(request, Perm.ASSIGN_LIAISONS, node, "liaisons.assignment.end")
    form = EndLiaisonForm(request.POST, prefix="end")
    if form.is_valid():
        post = LiaisonAssignment.objects.filter(node=node, end_date__isnull=True).first()
        if post is None:
            form.add_error(None, _("This post is already vacant."))
        else:
            try:
                end_liaison(post, actor=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return _done(request, node, _("The liaison post was ended."))
    return _panel(request, node, end_form=form)


@login_required
@require_GET
def vacant(request, uuid):
    """The units below a node whose liaison post is vacant, shallowest first."""
    node = node_or_404(request, uuid)
    if not can(request.user, Perm.VIEW_AGGREGATES, node):
        raise PermissionDenied
    qs = vacant_posts(node)
    if not node.municipality_id:
        qs = qs.select_related("municipality")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = with_level_labels(page.object_list, node)
    for row in rows:
        row.assignable = can(request.user, Perm.ASSIGN_LIAISONS, row)
    context = {
        "node": node,
        "level": node.level_name,
        "crumbs": breadcrumbs(request.user, node),
        "coverage": coverage(node),
        "page": page,
        "rows": rows,
    }
    return render(request, "web/liaisons/vacant.html", context)
