"""Aid pages of distribution campaigns: list and create, one campaign (allocate, start, finish, coverage per
block, why each household was or was not chosen), printable entitlement sheets, and the delivery screen.

Campaign pages need ``MANAGE_AID``; the delivery screen needs ``DELIVER_AID`` and reaches only the
entitlements of the user's own territory. Writes go through ``aid.services``; a refusal (an edit after
allocation, a code used twice or at the wrong site) is a clear message, nothing changed, audited by the service.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.aid import codes
from redes.aid.delivery import find_by_code
from redes.territories.models import Node, NodeKind

from ..forms_aid import CampaignForm, DeliveryForm
from .aid import (
    audit_refused,
    campaigns_of,
    chosen_municipality,
    entitlements_of,
    get_or_404,
    percent,
    sites_of,
)
from .common import PAGE_SIZE, add_service_errors, audit_rejected, is_htmx, require_perm

PRINT_PAGE = 120
#: Above this many blocks the campaign page shows the blocks with the lowest coverage only.
BLOCK_BARS = 60
#: Above this many blocks the block filters are typed codes instead of a list.
BLOCK_CHOICES = 200
DELIVER_LIST = 30
#: Within a block: by rank, households without one (held, not selected) last on every database.
RANK_ORDER = F("rank").asc(nulls_last=True)

#: Why a household was or was not chosen, for people (codes of ``aid.allocation`` and ``aid.campaigns``).
REASON_LABELS = {
    "selected_all": gettext_lazy("Chosen: the site's packages cover every eligible household of its area"),
    "selected_maxmin": gettext_lazy(
        "Chosen within its block's fair share (every block gets the same coverage first)"
    ),
    "selected_priority": gettext_lazy("Chosen for its priority with the packages left after the fair shares"),
    "lottery_won": gettext_lazy("Chosen by the lottery among households of equal priority"),
    "lottery_lost": gettext_lazy("Not chosen: the lottery among households of equal priority drew another"),
    "not_reached": gettext_lazy("Not chosen: the packages ran out before its priority level"),
    "no_stock": gettext_lazy("Not chosen: the site serving its block has no packages"),
    "no_site": gettext_lazy("Not chosen: no distribution site serves its block"),
    "held_duplicate": gettext_lazy("Held: the registry flags a probable duplicate, pending review"),
    "released_after_review": gettext_lazy("Chosen after its duplicate review"),
    "no_stock_left": gettext_lazy("Not chosen: no package was left after its duplicate review"),
    "duplicate_merged": gettext_lazy("Not chosen: merged into another household after review"),
    "not_collected": gettext_lazy("Not collected: the package returned to stock"),
    "campaign_cancelled": gettext_lazy("The campaign was cancelled"),
}


def reason_label(code: str) -> str:
    label = REASON_LABELS.get(code or "")
    return str(label) if label is not None else (code or "")


def _services():
    from redes.aid import services

    return services


def _campaign_or_404(request, uuid, perm=Perm.MANAGE_AID):
    qs = campaigns_of(request.user, perm).select_related("template", "node", "municipality", "created_by")
    return get_or_404(qs, uuid=uuid)


def _campaign_form(request, municipality, data=None, initial=None) -> CampaignForm:
    from redes.aid.models import PackageTemplate

    nodes = scoping.scoped(
        Node.objects.filter(**{f"a{municipality.node.depth}": municipality.node_id}).filter(
            kind__in=[NodeKind.MUNICIPALITY, NodeKind.UNIT], depth__lt=municipality.leaf_depth
        ),
        request.user,
        Perm.MANAGE_AID,
    ).order_by("depth", "code")
    return CampaignForm(
        data,
        initial=initial,
        templates=PackageTemplate.objects.filter(municipality=municipality, active=True).order_by("name"),
        nodes=nodes,
        categories=_need_categories(municipality),
    )


def _need_categories(municipality) -> list[tuple[str, str]]:
    """Need categories of the municipality, if the needs app offers them (else the field is left out)."""
    from redes.aid import campaigns as aid_campaigns

    known = aid_campaigns.known_need_categories(municipality)
    if not known:
        return []
    from redes.needs.models import NeedCategory

    labels = {
        c.code: str(c.label) for c in NeedCategory.objects.filter(municipality=municipality, code__in=known)
    }
    return sorted(((code, labels.get(code, code)) for code in known), key=lambda pair: pair[1].casefold())


def _form_data(form) -> dict:
    data = dict(form.cleaned_data)
    data.setdefault("need_categories", [])
    if data.get("seed") is None:
        data.pop("seed", None)
    return data


# ----------------------------------------------------------------------------------------------- campaigns


@login_required
@require_http_methods(["GET", "POST"])
def campaigns(request):
    from .aid import campaign_rows

    municipality, choices = chosen_municipality(request, "aid.campaign.create")
    form = _campaign_form(request, municipality, request.POST or None)
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.campaign.create", form, municipality)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = _services().create_campaign(
                actor=request.user, municipality=municipality, **_form_data(form)
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Campaign created. Check it, then allocate the packages."))
            return redirect("aid-campaign", uuid=campaign.uuid)
    qs = campaigns_of(request.user).filter(municipality=municipality).select_related("template", "node")
    page = Paginator(qs.order_by("-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "rows": campaign_rows(page.object_list),
        "form": form,
    }
    return render(request, "web/aid/campaigns.html", context, status=400 if form.errors else 200)


def _progress(campaign) -> dict:
    """Per block and sector: eligible, chosen, held and delivered households, with coverage and progress."""
    from redes.aid import queries

    progress = queries.campaign_progress(campaign)
    for row in [progress["total"], *progress["sectors"], *progress["blocks"]]:
        considered = row["households"] - row["held"]
        row["coverage"] = percent(row["allocated"], considered)
        row["progress"] = percent(row["delivered"], row["allocated"])
    return progress


def _lowest_first(blocks: list[dict]) -> list[dict]:
    """The blocks with the lowest coverage (the ones a coordinator needs to look at), at most ``BLOCK_BARS``."""
    ranked = sorted(
        blocks, key=lambda r: (r["coverage"] if r["coverage"] is not None else -1, r["node"].code)
    )
    return ranked[:BLOCK_BARS]


def _campaign_context(request, campaign, edit_form=None) -> dict:
    from redes.aid.models import CampaignZone, Entitlement

    user = request.user
    if campaign.status in ("draft", "allocating"):
        from redes.aid import campaigns as aid_campaigns

        zones = [
            {
                "site": z["site"],
                "packages": z["packages"],
                "households": z["households"],
                "node": z["site"].node,
            }
            for z in aid_campaigns.preview_zones(campaign)
        ]
    else:
        zones = list(
            CampaignZone.objects.filter(campaign=campaign)
            .select_related("site", "node")
            .order_by("site__name")
        )
    progress = _progress(campaign) if campaign.status not in ("draft", "allocating") else None
    blocks = progress["blocks"] if progress else []
    status_filter = request.GET.get("status") or ""
    block_filter = request.GET.get("block") or ""
    households = (
        Entitlement.objects.filter(campaign=campaign)
        .select_related("node", "zone__site", "household")
        .order_by("node__code", RANK_ORDER, "pk")
    )
    if status_filter:
        households = households.filter(status=status_filter)
    if block_filter:
        households = households.filter(node__code=block_filter)
    page = Paginator(households, PAGE_SIZE).get_page(request.GET.get("page")) if blocks else None
    entitlements = list(page.object_list) if page else []
    show_personal = scoping.can(user, Perm.VIEW_PERSONAL, campaign.node)
    for e in entitlements:
        e.reason_text = reason_label(e.reason)
    coverages = [r["coverage"] for r in blocks if r["coverage"] is not None]
    status_choices = Entitlement._meta.get_field("status").choices
    if edit_form is None and campaign.status == "draft":
        edit_form = _campaign_form(
            request,
            campaign.municipality,
            initial={
                "name": campaign.name,
                "template": campaign.template,
                "node": campaign.node,
                "min_priority": campaign.min_priority,
                "need_categories": campaign.need_categories,
                "include_without_needs": campaign.include_without_needs,
                "seed": campaign.seed,
            },
        )
    from redes.aid import jobs

    return {
        "campaign": campaign,
        "allocation": jobs.state(jobs.latest(campaign)),
        "zones": zones,
        "blocks": blocks,
        "shown_blocks": _lowest_first(blocks) if len(blocks) > BLOCK_BARS else blocks,
        "block_codes": [row["node"].code for row in blocks] if len(blocks) <= BLOCK_CHOICES else [],
        "sectors": progress["sectors"] if progress else [],
        "page": page,
        "entitlements": entitlements,
        "show_personal": show_personal,
        "totals": progress["total"] if progress else None,
        "min_coverage": min(coverages) if coverages else None,
        "status_filter": status_filter,
        "block_filter": block_filter,
        "status_choices": status_choices,
        "edit_form": edit_form,
        "public_url": reverse("aid-public-report", args=[campaign.uuid]),
        "has_shapes": any(row["node"].geometry for row in blocks),
        "map_url": reverse("aid-campaign-map", args=[campaign.uuid]),
    }


@login_required
@require_GET
def campaign_detail(request, uuid):
    require_perm(request, Perm.MANAGE_AID)
    campaign = _campaign_or_404(request, uuid)
    context = _campaign_context(request, campaign)
    if is_htmx(request) and request.GET.get("part") == "households":
        return render(request, "web/aid/_entitlements.html", context)
    return render(request, "web/aid/campaign.html", context)


@login_required
@require_GET
def campaign_allocation(request, uuid):
    """The allocation's progress fragment, polled every second while the campaign is allocating; once it is
    over, htmx reloads the page (which shows the result, or the failure and the campaign back to draft)."""
    from redes.aid import jobs

    require_perm(request, Perm.MANAGE_AID)
    campaign = _campaign_or_404(request, uuid)
    if campaign.status != "allocating" and is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    context = {"campaign": campaign, "allocation": jobs.state(jobs.latest(campaign))}
    return render(request, "web/aid/_allocation.html", context)


@login_required
@require_GET
def campaign_map(request, uuid):
    """GeoJSON of the campaign's blocks coloured by coverage (share of eligible households chosen). Drawn by the
    territory pages' map script; no personal data."""
    require_perm(request, Perm.MANAGE_AID)
    campaign = _campaign_or_404(request, uuid)
    features = []
    if campaign.status != "draft":
        for row in _progress(campaign)["blocks"]:
            node = row["node"]
            if not node.geometry:
                continue
            properties = {"code": node.code, "name": node.name}
            if row["coverage"] is not None:
                properties["coverage"] = row["coverage"]
            features.append({"type": "Feature", "geometry": node.geometry, "properties": properties})
    response = JsonResponse({"type": "FeatureCollection", "features": features})
    response["Content-Type"] = "application/geo+json"
    return response


@login_required
@require_POST
def campaign_action(request, uuid, action):
    """Edit (draft only), allocate, start, finish or cancel a campaign."""
    require_perm(
        request, Perm.MANAGE_AID, "aid.campaign.update" if action == "edit" else f"aid.campaign.{action}"
    )
    campaign = _campaign_or_404(request, uuid)
    services = _services()
    user = request.user
    if action == "edit":
        form = _campaign_form(request, campaign.municipality, request.POST)
        if not form.is_valid():
            audit_rejected(request, "aid.campaign.update", form, campaign)
        else:
            try:
                services.update_campaign(campaign, actor=user, **_form_data(form))
            except ValidationError as exc:
                if campaign.status != "draft":  # the inputs are frozen: say so on the campaign page
                    for message in exc.messages:
                        messages.error(request, message)
                    return redirect("aid-campaign", uuid=campaign.uuid)
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Campaign saved."))
                return redirect("aid-campaign", uuid=campaign.uuid)
        campaign.refresh_from_db()
        return render(
            request, "web/aid/campaign.html", _campaign_context(request, campaign, form), status=400
        )
    if action == "allocate":
        _queue_allocation(request, campaign)
        return _back_to_campaign(request, campaign)
    calls = {
        "start": (services.start_campaign, _("Campaign started: deliveries can be confirmed.")),
        "finish": (services.finish_campaign, _("Campaign finished: undelivered packages returned to stock.")),
    }
    calls["cancel"] = (
        services.cancel_campaign,
        _("Campaign cancelled: its reserved packages returned to stock."),
    )
    calls["release"] = (
        services.release_held,
        _("Held households checked again: those whose duplicate review is settled have their answer."),
    )
    if action not in calls:
        raise PermissionDenied
    call, done = calls[action]
    try:
        call(campaign, actor=user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        messages.success(request, done)
    return _back_to_campaign(request, campaign)


def _back_to_campaign(request, campaign):
    url = reverse("aid-campaign", args=[campaign.uuid])
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _queue_allocation(request, campaign) -> None:
    """Queue the allocation in the background (``aid.jobs``); the campaign page then shows its progress. With the
    tasks run inline (tests, ``REDES_TASKS_BACKEND=immediate``) it is already over here: say how it ended."""
    from redes.aid import jobs

    try:
        job = jobs.queue_allocation(campaign, actor=request.user)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return
    if job.status == job.Status.DONE:
        messages.success(request, _("Packages allocated. Check the coverage, then start the campaign."))
    elif job.status != job.Status.FAILED:  # a failure is shown by the campaign page itself
        messages.info(
            request, _("The allocation is running in the background: this page shows its progress.")
        )


# ----------------------------------------------------------------------------------------------- printing


def qr_svg(code: str) -> str:
    """The entitlement code (bare, as scanners read it) as an inline QR SVG with a viewBox, so print CSS can size
    it (32 mm on the cards)."""
    import segno

    qr = segno.make(code, error="m", micro=False)
    return qr.svg_inline(scale=4, border=2, omitsize=True, title=codes.display(code))


@login_required
@require_GET
def campaign_print(request, uuid):
    """Printable entitlement sheets: one card per chosen household (code, QR, block, site). No personal data."""
    from redes.aid.models import Entitlement

    require_perm(request, Perm.MANAGE_AID)
    campaign = _campaign_or_404(request, uuid)
    qs = (
        Entitlement.objects.filter(campaign=campaign, status__in=["selected", "delivered"])
        .select_related("node", "zone__site")
        .order_by("node__code", RANK_ORDER, "pk")
    )
    block = request.GET.get("block") or ""
    if block:
        qs = qs.filter(node__code=block)
    page = Paginator(qs, PRINT_PAGE).get_page(request.GET.get("page"))
    cards = [{"e": e, "qr": qr_svg(e.code)} for e in page.object_list]
    blocks = (
        Entitlement.objects.filter(campaign=campaign, status__in=["selected", "delivered"])
        .values_list("node__code", flat=True)
        .distinct()
        .order_by("node__code")
    )
    blocks = list(blocks[: BLOCK_CHOICES + 1])
    context = {
        "campaign": campaign,
        "cards": cards,
        "page": page,
        "block": block,
        "blocks": blocks if len(blocks) <= BLOCK_CHOICES else [],
    }
    return render(request, "web/aid/campaign_print.html", context)


# ---------------------------------------------------------------------------------------------- delivering


def _deliver_sites(user):
    """Active sites where the user may hand packages over: those in their territory, and those serving it (a
    block liaison's stand usually serves the whole sector)."""
    from redes.aid.models import Site

    serving = entitlements_of(user).filter(zone__isnull=False).values("zone__site_id")
    own = sites_of(user, Perm.DELIVER_AID).values("pk")
    return (
        Site.objects.filter(Q(pk__in=serving) | Q(pk__in=own), active=True)
        .select_related("node")
        .order_by("name")
    )


def _pending(user, block: str = ""):
    qs = (
        entitlements_of(user)
        .filter(status="selected", campaign__status="running")
        .select_related("node", "campaign", "zone__site")
        .order_by("node__code", RANK_ORDER, "pk")
    )
    if block:
        qs = qs.filter(node__code=block)
    return qs


@login_required
@require_http_methods(["GET", "POST"])
def deliver(request):
    """The phone-size delivery screen: a code typed, scanned or picked from the list; confirm at a site or home."""
    require_perm(request, Perm.DELIVER_AID, "aid.entitlement.deliver")
    user = request.user
    sites_qs = _deliver_sites(user)
    initial = {}
    if request.GET.get("code"):
        initial["code"] = request.GET["code"].strip().upper()[:40]
    if request.session.get("aid_site"):  # the site of the last confirmation, to confirm the next ones faster
        initial["site"] = sites_qs.filter(uuid=request.session["aid_site"]).first()
    if not initial.get("site"):
        only = list(sites_qs[:2])
        if len(only) == 1:
            initial["site"] = only[0]
    form = DeliveryForm(request.POST or None, request.FILES or None, sites=sites_qs, initial=initial)
    delivered = None
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.entitlement.deliver", form)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services = _services()
        try:
            try:
                entitlement = find_by_code(data["code"], entitlements_of(user))
            except ValidationError as exc:  # refused before the (audited) service: audit it here
                audit_refused(request, "aid.entitlement.deliver", exc)
                raise
            delivered = services.confirm_delivery(
                entitlement,
                actor=user,
                mode=data["mode"],
                site=data["site"] if data["mode"] == "site" else None,
                photo=data["photo"],
                signature=data["signature"] or None,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, str(exc) or _("Your role does not allow confirming deliveries here."))
        else:
            if data["site"]:
                request.session["aid_site"] = str(data["site"].uuid)
            messages.success(
                request,
                _("Delivered: %(code)s, block %(block)s.")
                % {"code": codes.display(delivered.code), "block": delivered.node.code},
            )
            back = reverse("aid-deliver")
            if request.GET.get("block"):
                back += "?" + urlencode({"block": request.GET["block"]})
            return redirect(back)
    block = (request.GET.get("block") or "").strip()
    pending = _pending(user, block)
    pending_count = pending.count()
    rows = list(pending[:DELIVER_LIST])
    show_personal = scoping.can(user, Perm.VIEW_PERSONAL)
    if show_personal and rows:
        _attach_addresses(user, rows)
    blocks = list(
        _pending(user)
        .values("node__code", "node__name")
        .annotate(n=Count("pk"))
        .order_by("node__code")[: BLOCK_CHOICES + 1]
    )
    context = {
        "form": form,
        "rows": rows,
        "pending_count": pending_count,
        "block": block,
        "blocks": blocks if len(blocks) <= BLOCK_CHOICES else [],
        "many_blocks": len(blocks) > BLOCK_CHOICES,
        "show_personal": show_personal,
    }
    return render(request, "web/aid/deliver.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def deliver_check(request):
    """What a typed or scanned code is, before confirming (htmx): its block, campaign and site, or why it cannot
    be delivered. Reads only the user's territory; a code elsewhere looks unknown."""
    from redes.aid.models import EntitlementStatus

    require_perm(request, Perm.DELIVER_AID)
    raw = (request.GET.get("code") or "").strip()
    code = codes.normalize(raw)
    context = {"code": code, "entitlement": None, "problem": ""}
    if len(code) < codes.LENGTH:
        return render(request, "web/aid/_deliver_check.html", context)
    try:
        entitlement = find_by_code(code, entitlements_of(request.user))
    except ValidationError as exc:
        context["problem"] = " ".join(exc.messages)
        return render(request, "web/aid/_deliver_check.html", context)
    context["entitlement"] = entitlement
    if entitlement.status == EntitlementStatus.DELIVERED:
        context["problem"] = _("Already delivered on %(when)s.") % {
            "when": formats.date_format(timezone.localtime(entitlement.delivered_at), "SHORT_DATETIME_FORMAT")
        }
    elif entitlement.status == EntitlementStatus.HELD:
        context["problem"] = _("On hold until its possible duplicate is reviewed.")
    elif entitlement.status != EntitlementStatus.SELECTED:
        context["problem"] = _("This household was not selected in this campaign.")
    elif entitlement.campaign.status != "running":
        context["problem"] = _("The campaign is not delivering right now.")
    if scoping.can(request.user, Perm.VIEW_PERSONAL, entitlement.node):
        _attach_addresses(request.user, [entitlement])
    return render(request, "web/aid/_deliver_check.html", context)


def _attach_addresses(user, rows) -> None:
    """The household's address for liaisons who may see personal data there (to deliver at home)."""
    from redes.registry.models import Household

    ids = [e.household_id for e in rows]
    visible = scoping.scoped(Household.objects.filter(pk__in=ids), user, Perm.VIEW_PERSONAL, via="node")
    addresses = {h.pk: h.address for h in visible.only("pk", "street", "ext_number", "int_number", "colonia")}
    for e in rows:
        e.address = addresses.get(e.household_id, "")
