"""Users and memberships for coordinators: who holds a role in their territory, new accounts, grants and ends.

A coordinator sees a user only through a membership inside their territory; anyone else is "missing" (404).
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from redes.accounts.models import Membership
from redes.accounts.roles import Perm
from redes.accounts.scoping import can, get_scoped_or_404, scoped
from redes.accounts.scoping import users as scoping_users
from redes.accounts.services import create_user, end_membership, grant_membership
from redes.audit.services import record_denied

from ..forms import GrantMembershipForm, UserCreateForm
from .common import PAGE_SIZE, add_service_errors


def _require_manage_users(request, action: str = "") -> None:
    if not can(request.user, Perm.MANAGE_USERS):
        if action and request.method == "POST":
            record_denied(action, actor=request.user, reason="missing permission manage_users")
        raise PermissionDenied


def _memberships_in_scope(user):
    return scoped(Membership.objects.all(), user, Perm.MANAGE_USERS, via="node")


@login_required
def user_list(request):
    _require_manage_users(request)
    query = (request.GET.get("q") or "").strip()[:100]
    users = scoping_users(request.user, Perm.MANAGE_USERS)
    if query:
        users = users.filter(Q(username__icontains=query) | Q(full_name__icontains=query))
    page = Paginator(users.order_by("full_name", "username"), PAGE_SIZE).get_page(request.GET.get("page"))
    roles = defaultdict(list)
    active = (
        _memberships_in_scope(request.user)
        .active()
        .filter(user__in=list(page.object_list))
        .select_related("node")
        .order_by("node__depth", "node__code")
    )
    for membership in active:
        roles[membership.user_id].append(membership)
    rows = [{"user": u, "memberships": roles.get(u.pk, [])} for u in page.object_list]
    return render(request, "web/users/list.html", {"page": page, "rows": rows, "query": query})


@login_required
@require_http_methods(["GET", "POST"])
def user_create(request):
    _require_manage_users(request, "accounts.user.create")
    form = UserCreateForm(request.POST if request.method == "POST" else None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                user = create_user(
                    data["username"],
                    password=data["password1"],
                    full_name=data["full_name"],
                    email=data["email"],
                    phone=data["phone"],
                    actor=request.user,
                    municipality=data["node"].municipality_id,
                )
                grant_membership(user, data["node"], data["role"], actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, _("The account “%(username)s” was created.") % {"username": user.username}
            )
            return redirect("user-detail", uuid=user.uuid)
    return render(request, "web/users/create.html", {"form": form})


def _target_or_404(request, uuid):
    memberships = list(
        _memberships_in_scope(request.user)
        .filter(user__uuid=uuid)
        .select_related("user", "node", "created_by")
        .order_by("ended_at", "node__depth", "node__code")
    )
    if not memberships:
        raise Http404
    return memberships[0].user, memberships


@login_required
@require_http_methods(["GET", "POST"])
def user_detail(request, uuid):
    _require_manage_users(request, "accounts.membership.grant")
    target, memberships = _target_or_404(request, uuid)
    form = GrantMembershipForm(
        request.POST if request.method == "POST" else None, actor=request.user, prefix="grant"
    )
    if request.method == "POST" and form.is_valid():
        try:
            grant_membership(target, form.cleaned_data["node"], form.cleaned_data["role"], actor=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("The role was granted."))
            return redirect("user-detail", uuid=target.uuid)
    context = {
        "target": target,
        "active": [m for m in memberships if m.ended_at is None],
        "ended": [m for m in memberships if m.ended_at is not None],
        "form": form,
    }
    return render(request, "web/users/detail.html", context)


@login_required
@require_POST
def membership_end(request, uuid, membership_uuid):
    _require_manage_users(request, "accounts.membership.end")
    membership = get_scoped_or_404(
        Membership.objects.select_related("user", "node"),
        request.user,
        Perm.MANAGE_USERS,
        via="node",
        uuid=membership_uuid,
        user__uuid=uuid,
    )
    if membership.user_id == request.user.pk:
        messages.error(request, _("You cannot end your own role; ask another coordinator."))
    elif membership.ended_at is not None:
        messages.warning(request, _("This role had already ended."))
    else:
        end_membership(membership, actor=request.user)
        messages.success(request, _("The role was ended."))
    return redirect("user-detail", uuid=membership.user.uuid)
