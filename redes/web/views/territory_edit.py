"""Coordinators' changes to the tree from a node's page: add a child unit, rename, move, remove.

Each form posts to its own URL; on a mistake the form comes back on a page of its own with the errors.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, scoped
from redes.territories.models import Node, NodeKind
from redes.territories.services import create_node, move_node, remove_node, update_node

from ..forms import ChildForm, MoveForm, RemoveForm, RenameForm
from .common import add_service_errors, breadcrumbs, child_level_label, node_or_404, require_or_refuse


def _node_page(node: Node):
    return redirect(reverse("territory", args=[node.uuid]))


def _form_page(request, node: Node, form, kind: str):
    context = {
        "node": node,
        "level": node.level_name,
        "crumbs": breadcrumbs(request.user, node),
        "form": form,
        "kind": kind,
        "child_level": child_level_label(node) if kind == "add" else "",
    }
    return render(request, "web/territory/edit.html", context)


def _unit_or_404(request, uuid, action: str) -> Node:
    node = node_or_404(request, uuid)
    require_or_refuse(request, Perm.MANAGE_TERRITORY, node, action)
    return node


@login_required
@require_http_methods(["GET", "POST"])
def add_child(request, uuid):
    node = _unit_or_404(request, uuid, "territories.node.create")
    form = ChildForm(request.POST if request.method == "POST" else None, prefix="add")
    if request.method == "POST" and form.is_valid():
        if node.kind not in (NodeKind.MUNICIPALITY, NodeKind.UNIT):
            form.add_error(None, _("Units can only be added inside a municipality."))
        else:
            try:
                child = create_node(
                    node.municipality,
                    node,
                    form.cleaned_data["code"],
                    form.cleaned_data["name"],
                    actor=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("“%(name)s” was added.") % {"name": child.name})
                return _node_page(node)
    return _form_page(request, node, form, "add")


@login_required
@require_http_methods(["GET", "POST"])
def rename(request, uuid):
    node = _unit_or_404(request, uuid, "territories.node.update")
    initial = {"name": node.name, "code": node.code}
    form = RenameForm(request.POST if request.method == "POST" else None, prefix="rename", initial=initial)
    if request.method == "POST" and form.is_valid():
        if node.kind != NodeKind.UNIT:
            form.add_error(None, _("Only territorial units can be renamed here."))
        else:
            try:
                update_node(
                    node, name=form.cleaned_data["name"], code=form.cleaned_data["code"], actor=request.user
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("The unit was updated."))
                return _node_page(node)
    return _form_page(request, node, form, "rename")


@login_required
@require_http_methods(["GET", "POST"])
def move(request, uuid):
    node = _unit_or_404(request, uuid, "territories.node.move")
    form = MoveForm(request.POST if request.method == "POST" else None, prefix="move")
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["parent_code"].strip()
        new_parent = (
            scoped(Node.objects.all(), request.user, Perm.MANAGE_TERRITORY)
            .filter(municipality_id=node.municipality_id, code__iexact=code)
            .first()
        )
        if new_parent is None:
            form.add_error(
                "parent_code", _("No unit with the code “%(code)s” that you manage.") % {"code": code}
            )
        else:
            try:
                move_node(node, new_parent, actor=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("“%(name)s” now lies under “%(parent)s”.")
                    % {"name": node.name, "parent": new_parent.name},
                )
                return _node_page(node)
    return _form_page(request, node, form, "move")


@login_required
@require_http_methods(["GET", "POST"])
def remove(request, uuid):
    node = _unit_or_404(request, uuid, "territories.node.remove")
    form = RemoveForm(request.POST if request.method == "POST" else None, prefix="remove")
    if request.method == "POST" and form.is_valid():
        parent = node.parent
        try:
            count = remove_node(node, cascade=form.cleaned_data["cascade"], actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            notice = ngettext("%(count)s unit was removed.", "%(count)s units were removed.", count)
            messages.success(request, notice % {"count": count})
            if parent is not None and can(request.user, Perm.VIEW_TERRITORY, parent):
                return _node_page(parent)
            return redirect("home")
    return _form_page(request, node, form, "remove")
