"""Messaging pages (placeholder until the pages land)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from redes.accounts import scoping
from redes.accounts.roles import Perm


@login_required
def messaging_home(request):
    if not (scoping.can(request.user, Perm.BROADCAST) or scoping.can(request.user, Perm.MANAGE_MESSAGING)):
        raise PermissionDenied
    return render(request, "web/home.html", {})
