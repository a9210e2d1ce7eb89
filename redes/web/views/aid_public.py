"""Public aid pages (no sign-in): the map of public sites and community kitchens, and a campaign's aggregate
distribution report. Neither shows personal data: the figures come from ``aid.queries.public_sites`` and
``aid.queries.public_report`` (small counts suppressed there), donors appear by their public name only.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from redes.territories.models import Municipality

from .aid import get_or_404

PUBLIC_CAMPAIGNS = 20


@require_GET
def public_map(request):
    """Leaflet map of a municipality's public sites (``?m=<INEGI key>``); without it, a list to choose from."""
    from redes.aid import queries
    from redes.aid.models import Site

    code = (request.GET.get("m") or "").strip()
    with_sites = Municipality.objects.filter(
        pk__in=Site.objects.filter(public=True, active=True).values("municipality_id")
    ).order_by("name")
    if not code:
        choices = list(with_sites)
        if len(choices) != 1:
            return render(request, "web/aid/public_map.html", {"choices": choices})
        municipality = choices[0]
    else:
        municipality = Municipality.objects.filter(code=code).first()
        if municipality is None:
            raise Http404
    geojson = queries.public_sites(municipality)
    features = geojson.get("features", []) if isinstance(geojson, dict) else []
    context = {
        "municipality": municipality,
        "geojson": geojson,
        "features": features,
        "campaigns": list(queries.public_campaigns(municipality)[:PUBLIC_CAMPAIGNS]),
    }
    return render(request, "web/aid/public_map.html", context)


@require_GET
def public_report(request, uuid):
    """The aggregate distribution of a campaign by sector and block, with the donors' public names."""
    from redes.aid import queries
    from redes.aid.models import Campaign

    campaign = get_or_404(
        Campaign.objects.exclude(status__in=["draft", "allocating", "cancelled"]).select_related(
            "municipality", "template"
        ),
        uuid=uuid,
    )
    try:
        report = queries.public_report(campaign)
    except Campaign.DoesNotExist as exc:
        raise Http404 from exc
    names, anonymous = _public_donors(campaign)
    context = {"campaign": campaign, "report": report, "donors": names, "anonymous": anonymous}
    return render(request, "web/aid/public_report.html", context)


def _public_donors(campaign) -> tuple[list[str], int]:
    """Public names of the donors whose gifts were received at the campaign's sites, and how many chose to stay
    anonymous. Only ``public_name`` is read: never the donor's name or contact data."""
    from redes.aid.models import CampaignZone, Donation, Donor

    sites = CampaignZone.objects.filter(campaign=campaign).values("site_id")
    donor_ids = Donation.objects.filter(site_id__in=sites).values("donor_id")
    public = list(
        Donor.objects.filter(pk__in=donor_ids).values_list("public_name", flat=True).order_by("public_name")
    )
    names = sorted({name for name in public if name})
    return names, sum(1 for name in public if not name)
