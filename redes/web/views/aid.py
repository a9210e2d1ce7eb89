"""Aid pages: the entry page and the helpers the other aid page modules share.

Access (``accounts.roles``): ``MANAGE_AID`` (coordinators) for donors, donations, sites, stock, package
templates and campaigns; ``DELIVER_AID`` (liaisons, volunteers, coordinators) for the delivery screen, over the
entitlements of their own territory; observers see aggregates only. Records are fetched through the scoping
door (404 for missing, not-yours and malformed ids alike); a page the user may not use at all is a 403, and a
refused write is audited. Writes go through ``aid.services``; reads of figures through ``aid.queries``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.territories.models import Municipality

from . import common

RECENT_DONATIONS = 8
HOME_CAMPAIGNS = 12


# --------------------------------------------------------------------------------------------- access helpers


def managed_municipalities(user) -> list[Municipality]:
    """Municipalities where the user manages aid (a coordinator's own; all for superusers)."""
    return common.managed_municipalities(user, Perm.MANAGE_AID)


def chosen_municipality(request, action: str = "") -> tuple[Municipality, list[Municipality]]:
    """The municipality an aid management page works on (``?m=<uuid>``, else the first managed one)."""
    return common.chosen_municipality(request, Perm.MANAGE_AID, action)


# The scoped querysets of ``aid.queries`` (the one door to aid records), under short names for the pages.


def donors_of(user):
    from redes.aid import queries

    return queries.donors(user)


def sites_of(user, perm: str = Perm.MANAGE_AID):
    from redes.aid import queries

    return queries.sites(user, perm)


def items_of(municipality):
    from redes.aid.models import Item

    return Item.objects.filter(municipality=municipality, active=True).order_by("name")


def campaigns_of(user, perm: str = Perm.MANAGE_AID):
    from redes.aid import queries

    return queries.campaigns(user, perm)


def entitlements_of(user, perm: str = Perm.DELIVER_AID):
    """Entitlements on blocks where the user holds ``perm`` (no ordering or joins: callers add theirs)."""
    from redes.aid.models import Entitlement

    return scoping.scoped(Entitlement.objects.all(), user, perm, via="node")


def get_or_404(qs, **lookup):
    """One row of an already scoped queryset; 404 for missing and malformed ids alike."""
    try:
        return qs.get(**lookup)
    except (qs.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def audit_refused(request, action: str, exc: ValidationError, obj=None) -> None:
    """Audit a refusal raised outside an audited service (by its error codes, never the input)."""
    from redes.audit.models import Outcome

    errors = sum(exc.error_dict.values(), []) if hasattr(exc, "error_dict") else exc.error_list
    codes = ",".join(sorted({e.code or "invalid" for e in errors}))
    record_denied(
        action, actor=request.user, obj=obj, reason=f"invalid input: {codes}", outcome=Outcome.REJECTED
    )


def percent(part, whole) -> int | None:
    return round(100 * part / whole) if whole else None


# ------------------------------------------------------------------------------------------------------ home


def campaign_rows(campaigns) -> list[dict]:
    """Each campaign with its selected and delivered counts (one GROUP BY for all of them)."""
    from redes.aid.models import Entitlement

    campaigns = list(campaigns)
    counts = {
        row["campaign_id"]: row
        for row in Entitlement.objects.filter(campaign__in=[c.pk for c in campaigns])
        .values("campaign_id")
        .annotate(
            selected=Count("pk", filter=Q(status__in=["selected", "delivered"])),
            delivered=Count("pk", filter=Q(status="delivered")),
        )
    }
    rows = []
    for c in campaigns:
        row = counts.get(c.pk, {"selected": 0, "delivered": 0})
        rows.append(
            {
                "campaign": c,
                "selected": row["selected"],
                "delivered": row["delivered"],
                "percent": percent(row["delivered"], row["selected"]),
            }
        )
    return rows


def _manager_context(request) -> dict:
    from redes.aid import queries
    from redes.aid.models import Donation

    user = request.user
    municipality, choices = chosen_municipality(request)
    balances = queries.balances(user, nonzero=True).filter(site__municipality=municipality)
    by_site: dict = {}
    for balance in balances:
        by_site.setdefault(balance.site, []).append(balance)
    campaigns = (
        campaigns_of(user)
        .filter(municipality=municipality, status__in=["allocated", "running"])
        .select_related("template", "node")
        .order_by("-pk")[:HOME_CAMPAIGNS]
    )
    donations = (
        Donation.objects.filter(donor__municipality=municipality)
        .select_related("donor", "site")
        .annotate(lines_count=Count("lines"))
        .order_by("-received_at", "-pk")[:RECENT_DONATIONS]
    )
    return {
        "municipality": municipality,
        "municipalities": choices,
        "stock_by_site": list(by_site.items()),
        "campaign_rows": campaign_rows(campaigns),
        "donations": list(donations),
    }


def _deliverer_context(request) -> dict:
    user = request.user
    mine = entitlements_of(user).filter(campaign__status="running")
    blocks = list(
        mine.values("node__uuid", "node__code", "node__name", "campaign__uuid", "campaign__name")
        .annotate(
            pending=Count("pk", filter=Q(status="selected")),
            delivered=Count("pk", filter=Q(status="delivered")),
        )
        .order_by("campaign__name", "node__code")
    )
    for row in blocks:
        row["percent"] = percent(row["delivered"], row["pending"] + row["delivered"])
    campaign_ids = {row["campaign__uuid"] for row in blocks}
    return {"blocks": blocks, "campaign_count": len(campaign_ids)}


def _observer_context(request) -> dict:
    campaigns = (
        campaigns_of(request.user, Perm.VIEW_AGGREGATES)
        .exclude(status__in=["draft", "allocating"])
        .select_related("template", "node", "municipality")
        .order_by("-pk")[:HOME_CAMPAIGNS]
    )
    return {"campaign_rows": campaign_rows(campaigns)}


@login_required
@require_GET
def aid_home(request):
    """Coordinators: a dashboard. Liaisons and volunteers: their delivery work. Observers: aggregates."""
    user = request.user
    if scoping.can(user, Perm.MANAGE_AID) and managed_municipalities(user):
        return render(request, "web/aid/home.html", _manager_context(request))
    if scoping.can(user, Perm.DELIVER_AID):
        return render(request, "web/aid/home_deliver.html", _deliverer_context(request))
    if scoping.can(user, Perm.VIEW_AGGREGATES):
        return render(request, "web/aid/home_observer.html", _observer_context(request))
    raise PermissionDenied
