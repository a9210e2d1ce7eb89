"""Needs settings of a municipality (coordinators, MANAGE_NEEDS): categories, offices and hotlines, working
groups, routing rules and the deadline table. Every save goes through ``needs.services``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from redes.accounts.roles import Perm
from redes.needs.models import DeadlinePolicy, NeedCategory, Office, RoutingRule, Urgency, WorkingGroup

from .common import require_or_refuse
from .needs_common import pick_municipality


@login_required
@require_http_methods(["GET", "POST"])
def needs_settings(request):
    municipality = pick_municipality(request, Perm.MANAGE_NEEDS)
    require_or_refuse(request, Perm.MANAGE_NEEDS, municipality.node, "needs.settings.update")
    context = {
        "municipality": municipality,
        "categories": list(NeedCategory.objects.filter(municipality=municipality).order_by("order", "code")),
        "offices": list(Office.objects.filter(municipality=municipality)),
        "groups": list(
            WorkingGroup.objects.filter(municipality=municipality).select_related("node", "theme")
        ),
        "rules": list(RoutingRule.objects.filter(municipality=municipality)),
        "deadlines": list(DeadlinePolicy.objects.filter(municipality=municipality)),
        "urgencies": Urgency.choices,
    }
    return render(request, "web/needs/settings.html", context)
