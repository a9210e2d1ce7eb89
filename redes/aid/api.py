"""JSON API of aid: items, donors, donations, sites, stock, package templates, campaigns, entitlements,
deliveries, and the public report and sites map.

Reads go through ``aid.queries`` (``accounts.scoping``); writes through ``aid.services``, which check the
permission themselves and audit their refusals (this module audits the lookups that answer 404).

Access: the management endpoints need ``MANAGE_AID`` (coordinators); others get 403 on lists and 404 on records.
Entitlements and deliveries need ``DELIVER_AID`` over the household's block (liaisons, volunteers,
coordinators). Campaign progress is an aggregate (``VIEW_AGGREGATES`` over the campaign's territory is enough).
``/aid/public/...`` needs no token and holds no personal data.
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Status
from ninja.files import UploadedFile
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.core.api import ERRORS, READ_403, WRITE_ERRORS, ErrorOut, NotFound, Paginator, user_of
from redes.territories.api import find_municipality, find_node
from redes.territories.models import Municipality

from . import campaigns as campaign_services
from . import codes, queries, services
from .delivery import confirm_delivery
from .models import Campaign, Donation, Entitlement, Item, PackageTemplate, Site, StockBalance, StockEntry
from .schemas import (
    AdjustIn,
    BalanceOut,
    CampaignDetail,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    DeliveryIn,
    DonationIn,
    DonationOut,
    DonorIn,
    DonorOut,
    DonorPatch,
    EntitlementFilters,
    EntitlementOut,
    EntryOut,
    FinishOut,
    ImpactOut,
    ItemIn,
    ItemOut,
    ItemPatch,
    LedgerCheckOut,
    ProgressOut,
    PublicReportOut,
    ReleaseOut,
    SiteIn,
    SiteOut,
    SitePatch,
    SitesGeoJSON,
    TemplateIn,
    TemplateOut,
    TemplatePatch,
    TransferIn,
    TransferOut,
)

router = Router(tags=["Aid"])


# --- access and lookups -------------------------------------------------------------------------------------------


def _require_manager(user) -> None:
    if not scoping.can(user, Perm.MANAGE_AID):
        raise PermissionDenied(_("Your role does not allow managing aid."))


@contextmanager
def _finding(request: HttpRequest, action: str):
    """Audit a write whose target was not found (the services audit their own refusals)."""
    try:
        yield
    except Http404:
        record_denied(action, actor=user_of(request), reason="not found")
        raise


def _get(qs, key, loc):
    try:
        return qs.get(uuid=key)
    except (qs.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(loc) from exc


def _managed_municipality(request, key: str, loc=None) -> Municipality:
    municipality = find_municipality(request, key, loc=loc or ["body", "municipality"])
    if not services.can_manage(user_of(request), municipality):
        raise PermissionDenied(_("Your role does not allow managing aid in this municipality."))
    return municipality


def _find_item(request, municipality_id: int, key: str, loc) -> Item:
    qs = queries.items(user_of(request)).filter(municipality_id=municipality_id)
    key = (key or "").strip()
    try:
        return qs.get(Q(code=key)) if len(key) != 36 else qs.get(uuid=key)
    except (Item.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(loc) from exc


def _lines(request, municipality_id, lines, field="lines"):
    return [
        (_find_item(request, municipality_id, line.item, ["body", field, i, "item"]), line.quantity)
        for i, line in enumerate(lines)
    ]


def _find_campaign(request, key) -> Campaign:
    return _get(queries.campaigns(user_of(request)), key, [])


# --- items ----------------------------------------------------------------------------------------------------------


@router.get("/aid/items", response={200: list[ItemOut], **READ_403}, summary="The item catalogue")
@paginate(Paginator)
def list_items(request, municipality: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.items(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    return qs.order_by("name", "id")


@router.post("/aid/items", response={201: ItemOut, **WRITE_ERRORS}, summary="Add an item to the catalogue")
def create_item(request, payload: ItemIn):
    with _finding(request, "aid.item.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
    data = payload.model_dump(exclude={"municipality"})
    return Status(201, services.save_item(actor=user_of(request), municipality=municipality, **data))


@router.patch("/aid/items/{uuid}", response={200: ItemOut, **WRITE_ERRORS}, summary="Change a catalogue item")
def update_item(request, uuid: str, payload: ItemPatch):
    with _finding(request, "aid.item.save"):
        _require_manager(user_of(request))
        item = _get(queries.items(user_of(request)), uuid, [])
    data = payload.model_dump(exclude_unset=True)
    return services.save_item(item, actor=user_of(request), **data)


# --- donors -------------------------------------------------------------------------------------------------------


@router.get(
    "/aid/donors",
    response={200: list[DonorOut], **READ_403},
    summary="Donors",
    description="Contact data is personal: coordinators only.",
)
@paginate(Paginator)
def list_donors(request, municipality: str | None = None, kind: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.donors(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("name", "id")


@router.post("/aid/donors", response={201: DonorOut, **WRITE_ERRORS}, summary="Register a donor")
def create_donor(request, payload: DonorIn):
    with _finding(request, "aid.donor.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
    data = payload.model_dump(exclude={"municipality"})
    return Status(201, services.save_donor(actor=user_of(request), municipality=municipality, **data))


@router.get("/aid/donors/{uuid}", response={200: DonorOut, **ERRORS}, summary="One donor")
def get_donor(request, uuid: str):
    return _get(queries.donors(user_of(request)), uuid, [])


@router.patch("/aid/donors/{uuid}", response={200: DonorOut, **WRITE_ERRORS}, summary="Change a donor")
def update_donor(request, uuid: str, payload: DonorPatch):
    with _finding(request, "aid.donor.save"):
        donor = _get(queries.donors(user_of(request)), uuid, [])
    return services.save_donor(donor, actor=user_of(request), **payload.model_dump(exclude_unset=True))


@router.get(
    "/aid/donors/{uuid}/impact",
    response={200: ImpactOut, **ERRORS},
    summary="What a donor's gifts became",
    description="Items received, money pledged, and the donor's proportional share of each campaign's delivered "
    "packages, by sector.",
)
def donor_impact(request, uuid: str):
    impact = queries.donor_impact(_get(queries.donors(user_of(request)), uuid, []))
    return {
        **impact,
        "received": [
            {
                "item": row["item"].name,
                "unit": row["item"].unit,
                "quantity": row["quantity"],
                "share_of_all_received": row["share_of_all_received"],
            }
            for row in impact["received"]
        ],
        "campaigns": [
            {
                "uuid": row["campaign"].uuid,
                "name": row["campaign"].name,
                "share": row["share"],
                "packages_delivered": row["packages_delivered"],
                "package_equivalents": row["package_equivalents"],
                "sectors": [
                    {
                        "code": s["node"].code,
                        "name": s["node"].name,
                        **{k: s[k] for k in ("packages_delivered", "package_equivalents")},
                    }
                    for s in row["sectors"]
                ],
            }
            for row in impact["campaigns"]
        ],
    }


# --- sites ----------------------------------------------------------------------------------------------------------


@router.get(
    "/aid/sites", response={200: list[SiteOut], **READ_403}, summary="Aid sites and community kitchens"
)
@paginate(Paginator)
def list_sites(request, municipality: str | None = None, kind: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.sites(user).select_related("node")
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("name", "id")


def _site_data(request, payload, municipality_id: int | None) -> dict:
    data = payload.model_dump(exclude={"municipality"}, exclude_unset=True)
    if data.get("node"):
        node = find_node(request, data["node"], loc=["body", "node"])
        if municipality_id is not None and node.municipality_id != municipality_id:
            raise NotFound(["body", "node"])
        data["node"] = node
    elif "node" in data:
        data.pop("node")
    return data


@router.post("/aid/sites", response={201: SiteOut, **WRITE_ERRORS}, summary="Open an aid site or kitchen")
def create_site(request, payload: SiteIn):
    with _finding(request, "aid.site.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
        data = _site_data(request, payload, municipality.pk)
    return Status(201, services.save_site(actor=user_of(request), municipality=municipality, **data))


@router.get("/aid/sites/{uuid}", response={200: SiteOut, **ERRORS}, summary="One site")
def get_site(request, uuid: str):
    return _get(queries.sites(user_of(request)).select_related("node"), uuid, [])


@router.patch("/aid/sites/{uuid}", response={200: SiteOut, **WRITE_ERRORS}, summary="Change a site")
def update_site(request, uuid: str, payload: SitePatch):
    with _finding(request, "aid.site.save"):
        site = _get(queries.sites(user_of(request)), uuid, [])
        data = _site_data(request, payload, site.municipality_id)
    return services.save_site(site, actor=user_of(request), **data)


# --- donations ------------------------------------------------------------------------------------------------------


def _donation_out(donation: Donation) -> dict:
    return {
        "uuid": donation.uuid,
        "donor": {"uuid": donation.donor.uuid, "name": donation.donor.name},
        "site": {"uuid": donation.site.uuid, "name": donation.site.name} if donation.site_id else None,
        "kind": donation.kind,
        "pledge_mxn": donation.pledge_mxn,
        "received_at": donation.received_at,
        "note": donation.note,
        "lines": [
            {"item": line.item.name, "unit": line.item.unit, "quantity": line.quantity}
            for line in donation.lines.all()
        ],
    }


@router.get("/aid/donations", response={200: list[DonationOut], **READ_403}, summary="Donations received")
@paginate(Paginator)
def list_donations(request, donor: str | None = None, site: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.donations(user)
    if donor:
        qs = qs.filter(donor=_get(queries.donors(user), donor, ["query", "donor"]))
    if site:
        qs = qs.filter(site=_get(queries.sites(user), site, ["query", "site"]))
    return [_donation_out(d) for d in qs.order_by("-received_at", "-id")]


@router.post(
    "/aid/donations",
    response={201: DonationOut, **WRITE_ERRORS},
    summary="Receive a donation",
    description="In kind: the lines enter the site's stock (``received`` ledger entries). Money pledges are "
    "recorded, never processed. Fractional quantities of whole-unit items and non-positive quantities answer 400.",
)
def create_donation(request, payload: DonationIn):
    user = user_of(request)
    with _finding(request, "aid.donation.receive"):
        donor = _get(queries.donors(user), payload.donor, ["body", "donor"])
        site = _get(queries.sites(user), payload.site, ["body", "site"]) if payload.site else None
        lines = _lines(request, donor.municipality_id, payload.lines)
    donation = services.receive_donation(
        actor=user,
        donor=donor,
        site=site,
        lines=lines,
        kind=payload.kind,
        pledge_mxn=payload.pledge_mxn,
        note=payload.note,
        received_at=payload.received_at,
    )
    return Status(201, _donation_out(queries.donations(user).get(pk=donation.pk)))


@router.get("/aid/donations/{uuid}", response={200: DonationOut, **ERRORS}, summary="One donation")
def get_donation(request, uuid: str):
    return _donation_out(_get(queries.donations(user_of(request)), uuid, []))


# --- stock ----------------------------------------------------------------------------------------------------------


def _balance_out(b: StockBalance) -> dict:
    return {
        "site": b.site,
        "item": b.item.name,
        "item_uuid": b.item.uuid,
        "unit": b.item.unit,
        "available": b.quantity,
        "reserved": b.reserved,
    }


@router.get(
    "/aid/stock",
    response={200: list[BalanceOut], **READ_403},
    summary="Stock per site and item",
    description="Derived from the ledger: ``available`` and ``reserved`` (set aside for allocated campaigns).",
)
@paginate(Paginator)
def list_stock(request, site: str | None = None, nonzero: bool = True):
    user = user_of(request)
    _require_manager(user)
    site_obj = _get(queries.sites(user), site, ["query", "site"]) if site else None
    return [_balance_out(b) for b in queries.balances(user, site=site_obj, nonzero=nonzero)]


def _entry_out(e: StockEntry) -> dict:
    return {
        "id": e.id,
        "site": e.site,
        "item": e.item.name,
        "kind": e.kind,
        "quantity": e.quantity,
        "reserved": e.reserved,
        "reason": e.reason,
        "transfer": e.transfer,
        "campaign": e.campaign.uuid if e.campaign_id else None,
        "donation": e.donation.uuid if e.donation_id else None,
        "created_at": e.created_at,
    }


@router.get(
    "/aid/stock/ledger", response={200: list[EntryOut], **READ_403}, summary="The stock ledger, newest first"
)
@paginate(Paginator)
def list_ledger(request, site: str | None = None, kind: str | None = None):
    user = user_of(request)
    _require_manager(user)
    site_obj = _get(queries.sites(user), site, ["query", "site"]) if site else None
    return [_entry_out(e) for e in queries.ledger(user, site=site_obj, kind=kind)]


@router.get(
    "/aid/ledger/verify",
    response={200: LedgerCheckOut, **READ_403},
    summary="Check the stock balances against the ledger",
    description="Recomputes every balance (site × item) of the municipality from the append-only ledger and "
    "lists those that differ (``services.verify_ledger``). Coordinators; ``municipality`` (INEGI key or uuid) is "
    "needed only by users who manage several.",
)
def verify_ledger(request, municipality: str | None = None):
    user = user_of(request)
    _require_manager(user)
    if municipality:
        place = find_municipality(request, municipality, loc=["query", "municipality"])
        if not services.can_manage(user, place):
            raise PermissionDenied(_("Your role does not allow managing aid in this municipality."))
    else:
        managed = list(scoping.municipalities(user, Perm.MANAGE_AID).order_by("code")[:2])
        if len(managed) != 1:
            raise ValidationError(
                {"municipality": _("Give the municipality: you manage aid in more than one.")}
            )
        place = managed[0]
    report = services.verify_ledger(place)
    sites = Site.objects.in_bulk({m["site_id"] for m in report.mismatches})
    items = Item.objects.in_bulk({m["item_id"] for m in report.mismatches})
    return {
        "municipality": place.code,
        "ok": report.ok,
        "checked": report.checked,
        "mismatches": [
            {
                "site": sites[m["site_id"]].uuid,
                "site_name": sites[m["site_id"]].name,
                "item": items[m["item_id"]].code,
                "ledger_available": m["ledger"][0],
                "ledger_reserved": m["ledger"][1],
                "balance_available": m["balance"][0],
                "balance_reserved": m["balance"][1],
            }
            for m in report.mismatches
        ],
    }


@router.post(
    "/aid/stock/transfer",
    response={201: TransferOut, **WRITE_ERRORS},
    summary="Move stock between two sites",
    description="Refused (400) when the source holds less than asked; the ledger is unchanged.",
)
def transfer(request, payload: TransferIn):
    user = user_of(request)
    with _finding(request, "aid.stock.transfer"):
        _require_manager(user)
        source = _get(queries.sites(user), payload.from_site, ["body", "from_site"])
        target = _get(queries.sites(user), payload.to_site, ["body", "to_site"])
        item = _find_item(request, source.municipality_id, payload.item, ["body", "item"])
    transfer_id = services.transfer_stock(
        actor=user, from_site=source, to_site=target, item=item, quantity=payload.quantity, note=payload.note
    )
    return Status(201, {"transfer": transfer_id})


@router.post(
    "/aid/stock/adjust",
    response={201: EntryOut, **WRITE_ERRORS},
    summary="Adjust a site's stock, with a reason",
)
def adjust(request, payload: AdjustIn):
    user = user_of(request)
    with _finding(request, "aid.stock.adjust"):
        _require_manager(user)
        site = _get(queries.sites(user), payload.site, ["body", "site"])
        item = _find_item(request, site.municipality_id, payload.item, ["body", "item"])
    entry = services.adjust_stock(
        actor=user, site=site, item=item, quantity=payload.quantity, reason=payload.reason
    )
    return Status(201, _entry_out(StockEntry.objects.select_related("site", "item").get(pk=entry.pk)))


# --- templates ------------------------------------------------------------------------------------------------------


def _template_out(t: PackageTemplate) -> dict:
    t = PackageTemplate.objects.prefetch_related("lines__item").get(pk=t.pk)
    return {
        "uuid": t.uuid,
        "name": t.name,
        "persons": t.persons,
        "days": t.days,
        "active": t.active,
        "lines": [
            {"item": line.item.name, "unit": line.item.unit, "quantity": line.quantity}
            for line in t.lines.all()
        ],
        "kcal_per_person_day": round(t.kcal_per_person_day, 1),
        "sphere_ratio": round(t.sphere_ratio, 4),
        "protein_share": round(t.protein_share, 4),
        "fat_share": round(t.fat_share, 4),
        "warnings": t.warnings,
    }


@router.get(
    "/aid/templates",
    response={200: list[TemplateOut], **READ_403},
    summary="Package templates (despensas) with their Sphere check",
)
@paginate(Paginator)
def list_templates(request, municipality: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.templates(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    return [_template_out(t) for t in qs.order_by("name", "id")]


@router.post(
    "/aid/templates", response={201: TemplateOut, **WRITE_ERRORS}, summary="Define a package template"
)
def create_template(request, payload: TemplateIn):
    with _finding(request, "aid.template.save"):
        municipality = find_municipality(request, payload.municipality, loc=["body", "municipality"])
        _require_manager(user_of(request))
        lines = _lines(request, municipality.pk, payload.lines)
    template = services.save_template(
        actor=user_of(request),
        municipality=municipality,
        name=payload.name,
        persons=payload.persons,
        days=payload.days,
        active=payload.active,
        lines=lines,
    )
    return Status(201, _template_out(template))


@router.get("/aid/templates/{uuid}", response={200: TemplateOut, **ERRORS}, summary="One package template")
def get_template(request, uuid: str):
    return _template_out(_get(queries.templates(user_of(request)), uuid, []))


@router.patch(
    "/aid/templates/{uuid}", response={200: TemplateOut, **WRITE_ERRORS}, summary="Change a template"
)
def update_template(request, uuid: str, payload: TemplatePatch):
    with _finding(request, "aid.template.save"):
        template = _get(queries.templates(user_of(request)), uuid, [])
        data = payload.model_dump(exclude_unset=True, exclude={"lines"})
        lines = (
            _lines(request, template.municipality_id, payload.lines) if payload.lines is not None else None
        )
    return _template_out(services.save_template(template, actor=user_of(request), lines=lines, **data))


# --- campaigns ------------------------------------------------------------------------------------------------------


def _detail_out(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_related("template", "node").get(pk=campaign.pk)


def _campaign_fields(request, payload, municipality_id) -> dict:
    user = user_of(request)
    data = payload.model_dump(exclude_unset=True, exclude={"municipality"})
    if data.get("template"):
        template = _get(queries.templates(user), data["template"], ["body", "template"])
        if municipality_id is not None and template.municipality_id != municipality_id:
            raise NotFound(["body", "template"])
        data["template"] = template
    if data.get("node"):
        node = find_node(request, str(data["node"]), loc=["body", "node"])
        if municipality_id is not None and node.municipality_id != municipality_id:
            raise NotFound(["body", "node"])
        data["node"] = node
    return {k: v for k, v in data.items() if v is not None or k == "seed"}


@router.get("/aid/campaigns", response={200: list[CampaignOut], **READ_403}, summary="Distribution campaigns")
@paginate(Paginator)
def list_campaigns(request, municipality: str | None = None, status: str | None = None):
    user = user_of(request)
    _require_manager(user)
    qs = queries.campaigns(user)
    if municipality:
        qs = qs.filter(municipality=find_municipality(request, municipality, loc=["query", "municipality"]))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


@router.post(
    "/aid/campaigns",
    response={201: CampaignDetail, **WRITE_ERRORS},
    summary="Create a draft campaign",
    description="Eligibility: households under ``node`` with at least ``min_priority`` and, when "
    "``need_categories`` are given, an open need in one of them (or no open need, if ``include_without_needs``).",
)
def create_campaign(request, payload: CampaignIn):
    user = user_of(request)
    with _finding(request, "aid.campaign.create"):
        _require_manager(user)
        municipality = (
            find_municipality(request, payload.municipality, loc=["body", "municipality"])
            if payload.municipality
            else None
        )
        data = _campaign_fields(request, payload, municipality.pk if municipality else None)
        if municipality is None:
            municipality = data["node"].municipality
        if data["template"].municipality_id != municipality.pk:
            raise NotFound(["body", "template"])
    data.pop("seed", None)
    campaign = campaign_services.create_campaign(
        actor=user, municipality=municipality, seed=payload.seed, **data
    )
    return Status(201, _detail_out(campaign))


@router.get(
    "/aid/campaigns/{uuid}", response={200: CampaignDetail, **ERRORS}, summary="One campaign, with zones"
)
def get_campaign(request, uuid: str):
    return _detail_out(_find_campaign(request, uuid))


@router.patch(
    "/aid/campaigns/{uuid}",
    response={200: CampaignDetail, **WRITE_ERRORS},
    summary="Change a draft campaign",
    description="After allocation the inputs are frozen: 400, audited.",
)
def update_campaign(request, uuid: str, payload: CampaignPatch):
    with _finding(request, "aid.campaign.update"):
        campaign = _find_campaign(request, uuid)
        data = _campaign_fields(request, payload, campaign.municipality_id)
    campaign_services.update_campaign(campaign, actor=user_of(request), **data)
    return _detail_out(campaign)


def _lifecycle(request, uuid: str, action: str, fn):
    with _finding(request, f"aid.campaign.{action}"):
        campaign = _find_campaign(request, uuid)
    return campaign, fn(campaign, actor=user_of(request))


@router.post(
    "/aid/campaigns/{uuid}/allocate",
    response={200: CampaignDetail, **WRITE_ERRORS},
    summary="Run the fair allocation",
    description="Max-min coverage across blocks, then priority, solved with HiGHS; ties by a seeded lottery. "
    "Writes one entitlement per eligible household and reserves the packages in the ledger.",
)
def allocate(request, uuid: str):
    campaign, _ = _lifecycle(request, uuid, "allocate", campaign_services.allocate_campaign)
    return _detail_out(campaign)


@router.post(
    "/aid/campaigns/{uuid}/start", response={200: CampaignDetail, **WRITE_ERRORS}, summary="Start deliveries"
)
def start(request, uuid: str):
    campaign, _ = _lifecycle(request, uuid, "start", campaign_services.start_campaign)
    return _detail_out(campaign)


@router.post(
    "/aid/campaigns/{uuid}/finish",
    response={200: FinishOut, **WRITE_ERRORS},
    summary="Finish: undelivered packages return to stock",
)
def finish(request, uuid: str):
    _, outcome = _lifecycle(request, uuid, "finish", services.finish_campaign)
    return outcome


@router.post(
    "/aid/campaigns/{uuid}/cancel",
    response={200: CampaignDetail, **WRITE_ERRORS},
    summary="Cancel before any delivery (reserved stock returns)",
)
def cancel(request, uuid: str):
    campaign, _ = _lifecycle(request, uuid, "cancel", campaign_services.cancel_campaign)
    return _detail_out(campaign)


@router.post(
    "/aid/campaigns/{uuid}/release-held",
    response={200: ReleaseOut, **WRITE_ERRORS},
    summary="Decide held households whose possible duplicate was reviewed",
)
def release(request, uuid: str):
    _, counts = _lifecycle(request, uuid, "release_held", campaign_services.release_held)
    return counts


@router.get(
    "/aid/campaigns/{uuid}/entitlements.csv",
    response={200: None, **READ_403},
    summary="The allocation as CSV",
    description="One row per eligible household in id order: household uuid, block code, zone site uuid, status, "
    "reason, rank (``campaigns.export_entitlements``; no codes, no personal data). The same inputs and seed give "
    "the same bytes. Coordinators.",
    openapi_extra={
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}}
    },
)
def export_entitlements(request, uuid: str):
    _require_manager(user_of(request))
    campaign = _find_campaign(request, uuid)
    response = HttpResponse(
        campaign_services.export_entitlements(campaign), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.uuid}-entitlements.csv"'
    return response


@router.get(
    "/aid/campaigns/{uuid}/progress",
    response={200: ProgressOut, **READ_403},
    summary="Progress per campaign, sector and block",
    description="Aggregates only: coordinators, and observers or liaisons over the campaign's territory.",
)
def progress(request, uuid: str):
    user = user_of(request)
    campaign = _get(
        queries.campaigns(user, Perm.VIEW_AGGREGATES) | queries.campaigns(user, Perm.MANAGE_AID), uuid, []
    )
    data = queries.campaign_progress(campaign)

    def row(r, node=None):
        node = node or r["node"]
        return {"code": node.code, "name": node.name, **{k: r[k] for k in ProgressRowKeys}}

    return {
        "total": row(data["total"], campaign.node),
        "sectors": [row(r) for r in data["sectors"]],
        "blocks": [row(r) for r in data["blocks"]],
    }


ProgressRowKeys = (
    "households",
    "allocated",
    "delivered",
    "pending",
    "returned",
    "held",
    "not_selected",
    "delivered_share",
)


# --- entitlements and deliveries ------------------------------------------------------------------------------------


def _entitlement_campaign(request, uuid) -> Campaign:
    """A campaign the caller manages, or with entitlements on blocks where the caller may deliver."""
    user = user_of(request)
    try:
        campaign = Campaign.objects.get(uuid=uuid)
    except (Campaign.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc
    if services.can_manage(user, campaign.municipality):
        return campaign
    if queries.entitlements_for(user, campaign).exists():
        return campaign
    raise Http404


@router.get(
    "/aid/campaigns/{uuid}/entitlements",
    response={200: list[EntitlementOut], **ERRORS},
    summary="Entitlements of a campaign (delivery list)",
    description="Coordinators see all; liaisons and volunteers those of the blocks they deliver to. Filter by "
    "``status`` and ``block``.",
)
@paginate(Paginator)
def list_entitlements(request, uuid: str, filters: Query[EntitlementFilters]):
    user = user_of(request)
    campaign = _entitlement_campaign(request, uuid)
    perm = Perm.MANAGE_AID if services.can_manage(user, campaign.municipality) else Perm.DELIVER_AID
    node = find_node(request, str(filters.block), loc=["query", "block"]) if filters.block else None
    return queries.entitlements_for(user, campaign, node=node, status=filters.status or None, perm=perm)


def _find_code(request, raw: str) -> Entitlement:
    code = codes.normalize(raw)
    if not codes.is_well_formed(code):
        raise NotFound(["body", "code"])
    try:
        return queries.entitlements_for(user_of(request)).get(code=code)
    except Entitlement.DoesNotExist as exc:
        raise NotFound(["body", "code"]) from exc


@router.get(
    "/aid/entitlements/{code}",
    response={200: EntitlementOut, **ERRORS},
    summary="Look an entitlement up by its code",
    description="For the delivery screen: codes outside the caller's delivery territory answer 404.",
)
def get_entitlement(request, code: str):
    try:
        return _find_code(request, code)
    except NotFound as exc:
        raise NotFound(["path", "code"]) from exc


@router.post(
    "/aid/deliveries",
    response={200: EntitlementOut, **WRITE_ERRORS},
    summary="Confirm a delivery by code",
    description="At the zone's site (``mode: site`` with the site) or at home. Already delivered, wrong site, "
    "not selected or a campaign not delivering answer 400 and are audited.",
)
def deliver(request, payload: DeliveryIn):
    user = user_of(request)
    with _finding(request, "aid.entitlement.deliver"):
        entitlement = _find_code(request, payload.code)
        site = None
        if payload.site:
            site = _get(
                Site.objects.filter(municipality_id=entitlement.municipality_id),
                payload.site,
                ["body", "site"],
            )
    done = confirm_delivery(
        entitlement, actor=user, mode=payload.mode, site=site, signature=payload.signature
    )
    return queries.entitlements_for(user).get(pk=done.pk)


@router.post(
    "/aid/deliveries/with-photo",
    response={200: EntitlementOut, **WRITE_ERRORS},
    summary="Confirm a delivery by code, with a photo (multipart)",
    description="The same as ``/aid/deliveries`` as a multipart form with a ``photo`` file (JPEG, PNG or WebP, "
    "at most 5 MB).",
)
def deliver_with_photo(
    request,
    photo: File[UploadedFile],
    code: Form[str],
    mode: Form[str] = "site",
    site: Form[str | None] = None,
    signature: Form[str | None] = None,
):
    user = user_of(request)
    with _finding(request, "aid.entitlement.deliver"):
        entitlement = _find_code(request, code)
        site_obj = None
        if site:
            site_obj = _get(
                Site.objects.filter(municipality_id=entitlement.municipality_id), site, ["body", "site"]
            )
    done = confirm_delivery(
        entitlement, actor=user, mode=mode, site=site_obj, photo=photo, signature=signature
    )
    return queries.entitlements_for(user).get(pk=done.pk)


# --- public -----------------------------------------------------------------------------------------------------------


@router.get(
    "/aid/public/campaigns/{uuid}",
    response={200: PublicReportOut, 404: ErrorOut},
    auth=None,
    summary="Public report of a campaign (no login)",
    description="Counts by sector and block, counts below 5 suppressed (null); no personal data.",
)
def public_report(request, uuid: str):
    try:
        campaign = Campaign.objects.select_related("template", "node", "municipality").get(uuid=uuid)
        return queries.public_report(campaign)
    except (Campaign.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


@router.get(
    "/aid/public/sites",
    response={200: SitesGeoJSON, 404: ErrorOut},
    auth=None,
    summary="Public aid sites and kitchens as GeoJSON (no login)",
)
def public_sites(request, municipality: str):
    key = (municipality or "").strip()
    lookup = {"code": key} if key.isdigit() and len(key) == 5 else {"uuid": key}
    try:
        found = Municipality.objects.get(**lookup)
    except (Municipality.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(["query", "municipality"]) from exc
    return queries.public_sites(found)
