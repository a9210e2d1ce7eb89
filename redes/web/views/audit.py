"""The audit log for coordinators, scoped to their municipalities, filtered and paginated."""

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, scoped
from redes.audit.models import AuditEvent

from ..forms import AuditFilterForm
from .common import PAGE_SIZE


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@login_required
@require_GET
def audit_log(request):
    if not can(request.user, Perm.VIEW_AUDIT):
        raise PermissionDenied
    events = scoped(AuditEvent.objects.all(), request.user, Perm.VIEW_AUDIT, via="municipality__node")
    form = AuditFilterForm(request.GET or None)
    if form.is_valid():
        data = form.cleaned_data
        if data["action"]:
            events = events.filter(action__icontains=data["action"].strip())
        if data["user"]:
            events = events.filter(actor_label__iexact=data["user"].strip())
        if data["outcome"]:
            events = events.filter(outcome=data["outcome"])
        if data["channel"]:
            events = events.filter(channel=data["channel"])
        if data["since"]:
            events = events.filter(at__gte=_day_start(data["since"]))
        if data["until"]:
            events = events.filter(at__lt=_day_start(data["until"] + dt.timedelta(days=1)))
    elif form.is_bound:
        events = events.none()
    page = Paginator(events.order_by("-at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/audit/list.html", {"form": form, "page": page})
