"""Aid pages for coordinators: donors, donations, sites with their ledger, stock, the item catalogue, packages.

Every page needs ``MANAGE_AID`` (403 without it anywhere); records come through the scoping door (404 for
missing and not-yours alike). Forms check the shape of the input, ``aid.services`` checks the rules and writes
(a refusal shows on the form, the ledger unchanged, the attempt audited by the service).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from redes.accounts.roles import Perm
from redes.territories.models import Node, NodeKind

from ..forms_aid import (
    AdjustForm,
    DonationForm,
    DonorForm,
    ItemForm,
    LedgerFilterForm,
    PackageTemplateForm,
    ReceiveForm,
    SiteForm,
    TransferForm,
)
from .aid import chosen_municipality, donors_of, get_or_404, items_of, sites_of
from .common import PAGE_SIZE, add_service_errors, audit_rejected, require_perm

LEDGER_SHOWN = 50
SPHERE_KCAL = 2100


def _services():
    from redes.aid import services

    return services


def _manage(request, action: str = ""):
    require_perm(request, Perm.MANAGE_AID, action)


def _site_or_404(request, uuid):
    return get_or_404(sites_of(request.user).select_related("node", "municipality"), uuid=uuid)


def _donor_or_404(request, uuid):
    return get_or_404(donors_of(request.user).select_related("municipality"), uuid=uuid)


def _municipality_nodes(municipality):
    """Units of a municipality a site or campaign may serve (the municipality itself first)."""
    return (
        Node.objects.filter(
            **{f"a{municipality.node.depth}": municipality.node_id},
        )
        .filter(kind__in=[NodeKind.MUNICIPALITY, NodeKind.UNIT])
        .order_by("depth", "code")
    )


def _map_center(municipality) -> list[float] | None:
    """Where a site's map opens when it has no point yet: another site, else a unit's centroid."""
    from redes.aid.models import Site

    point = (
        Site.objects.filter(municipality=municipality, lat__isnull=False)
        .order_by("pk")
        .values_list("lat", "lon")
        .first()
    )
    if point:
        return list(point)
    node = (
        Node.objects.filter(
            **{f"a{municipality.node.depth}": municipality.node_id}, centroid_lat__isnull=False
        )
        .order_by("depth", "pk")
        .values_list("centroid_lat", "centroid_lon")
        .first()
    )
    return list(node) if node else None


# -------------------------------------------------------------------------------------------------- donors


@login_required
@require_http_methods(["GET", "POST"])
def donors(request):
    from redes.aid.models import Donor

    municipality, choices = chosen_municipality(request, "aid.donor.save")
    form = DonorForm(request.POST or None)
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.donor.save", form, municipality)
    if request.method == "POST" and form.is_valid():
        try:
            donor = _services().save_donor(actor=request.user, municipality=municipality, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Donor added."))
            return redirect("aid-donor", uuid=donor.uuid)
    qs = (
        Donor.objects.filter(municipality=municipality)
        .annotate(donations_count=Count("donations"))
        .order_by("name", "pk")
    )
    query = (request.GET.get("q") or "").strip()
    if query:
        qs = qs.filter(name__icontains=query)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "donors": list(page.object_list),
        "form": form,
        "query": query,
    }
    return render(request, "web/aid/donors.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def donor_detail(request, uuid):
    _manage(request, "aid.donor.update")
    donor = _donor_or_404(request, uuid)
    initial = {
        f: getattr(donor, f) for f in ("kind", "name", "public_name", "contact_name", "phone", "email")
    }
    form = DonorForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            _services().save_donor(donor, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Donor saved."))
            return redirect("aid-donor", uuid=donor.uuid)
    donations = (
        donor.donations.select_related("site").prefetch_related("lines__item").order_by("-received_at")
    )
    page = Paginator(donations, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"donor": donor, "form": form, "page": page, "donations": list(page.object_list)}
    return render(request, "web/aid/donor.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def donor_impact(request, uuid):
    """What a donor's gifts became: received, delivered to how many households, where (aggregates)."""
    from redes.aid import queries

    _manage(request)
    donor = _donor_or_404(request, uuid)
    impact = queries.donor_impact(donor)
    return render(request, "web/aid/donor_impact.html", {"donor": donor, "impact": impact})


# ----------------------------------------------------------------------------------------------- donations


@login_required
@require_GET
def donations(request):
    from redes.aid.models import Donation

    municipality, choices = chosen_municipality(request)
    qs = (
        Donation.objects.filter(donor__municipality=municipality)
        .select_related("donor", "site")
        .prefetch_related("lines__item")
        .order_by("-received_at", "-pk")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "donations": list(page.object_list),
    }
    return render(request, "web/aid/donations.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def donation_new(request):
    municipality, choices = chosen_municipality(request, "aid.donation.receive")
    donors_qs = donors_of(request.user).filter(municipality=municipality).order_by("name")
    sites_qs = sites_of(request.user).filter(municipality=municipality, active=True).order_by("name")
    initial = {}
    for name, qs in (("donor", donors_qs), ("site", sites_qs)):
        wanted = request.GET.get(name)
        if wanted:
            found = qs.filter(uuid=wanted).first() if _is_uuid(wanted) else None
            if found is not None:
                initial[name] = found
    form = DonationForm(
        request.POST or None,
        donors=donors_qs,
        sites=sites_qs,
        items=items_of(municipality),
        initial={"kind": "in_kind", **initial},
    )
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.donation.receive", form, municipality)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services = _services()
        try:
            donor = data["donor"]
            if donor is None:
                donor = services.save_donor(
                    actor=request.user,
                    municipality=municipality,
                    kind=data["new_donor_kind"] or "other",
                    name=data["new_donor_name"].strip(),
                    public_name=data["new_donor_public_name"],
                )
            donation = services.receive_donation(
                actor=request.user,
                donor=donor,
                site=data["site"],
                lines=data["lines"],
                kind=data["kind"],
                pledge_mxn=data["pledge_mxn"],
                note=data["note"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Donation recorded."))
            return redirect(reverse("aid-donations") + f"#donation-{donation.uuid}")
    context = {"municipality": municipality, "municipalities": choices, "form": form}
    return render(request, "web/aid/donation_new.html", context, status=400 if form.errors else 200)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------- sites


@login_required
@require_http_methods(["GET", "POST"])
def sites(request):
    municipality, choices = chosen_municipality(request, "aid.site.save")
    form = SiteForm(request.POST or None, nodes=_municipality_nodes(municipality))
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.site.save", form, municipality)
    if request.method == "POST" and form.is_valid():
        try:
            site = _services().save_site(actor=request.user, municipality=municipality, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Site added."))
            return redirect("aid-site", uuid=site.uuid)
    qs = (
        sites_of(request.user)
        .filter(municipality=municipality)
        .select_related("node")
        .annotate(stock_total=Sum("balances__quantity"))
        .order_by("-active", "kind", "name")
    )
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "page": page,
        "sites": list(page.object_list),
        "form": form,
        "map_center": _map_center(municipality),
    }
    return render(request, "web/aid/sites.html", context, status=400 if form.errors else 200)


def _site_context(request, site, **forms) -> dict:
    from redes.aid import queries

    user = request.user
    items = items_of(site.municipality)
    others = (
        sites_of(user)
        .filter(municipality=site.municipality, active=True)
        .exclude(pk=site.pk)
        .order_by("name")
    )
    donors_qs = donors_of(user).filter(municipality=site.municipality).order_by("name")
    balances = list(queries.balances(user, site=site).select_related("item").order_by("item__name"))
    ledger = queries.ledger(user, site=site)
    page = Paginator(ledger, LEDGER_SHOWN).get_page(request.GET.get("page"))
    initial = {f: getattr(site, f) for f in SiteForm.base_fields if hasattr(site, f)}
    initial["node"] = site.node
    return {
        "site": site,
        "balances": balances,
        "page": page,
        "ledger": list(page.object_list),
        "receive_form": forms.get("receive") or ReceiveForm(prefix="receive", donors=donors_qs, items=items),
        "transfer_form": forms.get("transfer") or TransferForm(prefix="transfer", sites=others, items=items),
        "adjust_form": forms.get("adjust") or AdjustForm(prefix="adjust", items=items),
        "edit_form": forms.get("edit")
        or SiteForm(prefix="edit", nodes=_municipality_nodes(site.municipality), initial=initial),
        "open_tool": next(iter(forms), ""),
        "has_donors": donors_qs.exists(),
        "map_center": _map_center(site.municipality),
        "has_others": others.exists(),
    }


@login_required
@require_GET
def site_detail(request, uuid):
    require_perm(request, Perm.MANAGE_AID)
    site = _site_or_404(request, uuid)
    return render(request, "web/aid/site.html", _site_context(request, site))


def _receive(request, site, data):
    return _services().receive_donation(
        actor=request.user, donor=data["donor"], site=site, lines=[(data["item"], data["quantity"])]
    )


def _transfer(request, site, data):
    return _services().transfer_stock(
        actor=request.user,
        from_site=site,
        to_site=data["to_site"],
        item=data["item"],
        quantity=data["quantity"],
    )


def _adjust(request, site, data):
    return _services().adjust_stock(
        actor=request.user, site=site, item=data["item"], quantity=data["quantity"], reason=data["reason"]
    )


def _edit(request, site, data):
    return _services().save_site(site, actor=request.user, **data)


#: The forms of a site's page: the audit action of a refusal, the service call and the message when done.
SITE_ACTIONS = {
    "receive": ("aid.donation.receive", _receive, gettext_lazy("Stock received.")),
    "transfer": ("aid.stock.transfer", _transfer, gettext_lazy("Stock transferred.")),
    "adjust": ("aid.stock.adjust", _adjust, gettext_lazy("Stock adjusted.")),
    "edit": ("aid.site.save", _edit, gettext_lazy("Site saved.")),
}


def _site_action_form(request, site, action):
    user, items = request.user, items_of(site.municipality)
    if action == "receive":
        donors_qs = donors_of(user).filter(municipality=site.municipality)
        return ReceiveForm(request.POST, prefix=action, donors=donors_qs, items=items)
    if action == "transfer":
        others = sites_of(user).filter(municipality=site.municipality, active=True).exclude(pk=site.pk)
        return TransferForm(request.POST, prefix=action, sites=others, items=items)
    if action == "adjust":
        return AdjustForm(request.POST, prefix=action, items=items)
    return SiteForm(request.POST, prefix=action, nodes=_municipality_nodes(site.municipality))


@login_required
@require_POST
def site_action(request, uuid, action):
    """Receive, transfer, adjust or edit at a site; a refusal shows on the form, the ledger unchanged."""
    if action not in SITE_ACTIONS:
        raise PermissionDenied
    audit_action, call, done = SITE_ACTIONS[action]
    require_perm(request, Perm.MANAGE_AID, audit_action)
    site = _site_or_404(request, uuid)
    form = _site_action_form(request, site, action)
    if not form.is_valid():
        audit_rejected(request, audit_action, form, site)
    else:
        try:
            call(request, site, form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, str(done))
            return redirect("aid-site", uuid=site.uuid)
    context = _site_context(request, site, **{action: form})
    return render(request, "web/aid/site.html", context, status=400)


# --------------------------------------------------------------------------------------------------- stock


@login_required
@require_http_methods(["GET", "POST"])
def stock(request):
    """Balances by site and item, the ledger with filters, and the item catalogue."""
    from redes.aid import queries
    from redes.aid.models import Item

    municipality, choices = chosen_municipality(request, "aid.item.save")
    user = request.user
    item_form = ItemForm(request.POST or None, prefix="item")
    if request.method == "POST" and not item_form.is_valid():
        audit_rejected(request, "aid.item.save", item_form, municipality)
    if request.method == "POST" and item_form.is_valid():
        try:
            _services().save_item(actor=user, municipality=municipality, **item_form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(item_form, exc)
        else:
            messages.success(request, _("Item added to the catalogue."))
            return redirect(reverse("aid-stock") + "#catalogue")
    site_qs = sites_of(user).filter(municipality=municipality).order_by("name")
    all_items = Item.objects.filter(municipality=municipality).order_by("name")
    filters = LedgerFilterForm(request.GET or None, sites=site_qs, items=all_items)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    ledger = queries.ledger(
        user, site=chosen.get("site"), item=chosen.get("item"), kind=chosen.get("kind") or None
    ).filter(site__municipality=municipality)
    page = Paginator(ledger, LEDGER_SHOWN).get_page(request.GET.get("page"))
    balances = (
        queries.balances(user)
        .filter(site__municipality=municipality)
        .select_related("site", "item")
        .order_by("item__name", "site__name")
    )
    by_item: dict = {}
    for balance in balances:
        entry = by_item.setdefault(balance.item, {"item": balance.item, "total": 0, "sites": []})
        entry["total"] += balance.quantity
        entry["sites"].append(balance)
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "by_item": list(by_item.values()),
        "filters": filters,
        "page": page,
        "ledger": list(page.object_list),
        "items": list(all_items),
        "item_form": item_form,
    }
    return render(request, "web/aid/stock.html", context, status=400 if item_form.errors else 200)


# ----------------------------------------------------------------------------------------------- templates


@login_required
@require_http_methods(["GET", "POST"])
def templates(request):
    """Package templates ("despensas") with their energy per person and day against Sphere's 2,100 kcal."""
    from redes.aid.models import PackageTemplate

    municipality, choices = chosen_municipality(request, "aid.template.save")
    form = PackageTemplateForm(request.POST or None, items=items_of(municipality))
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "aid.template.save", form, municipality)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        lines = data.pop("lines")
        data = {k: data[k] for k in ("name", "persons", "days")}
        try:
            _services().save_template(actor=request.user, municipality=municipality, lines=lines, **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Package saved."))
            return redirect("aid-templates")
    rows = []
    for template in (
        PackageTemplate.objects.filter(municipality=municipality)
        .prefetch_related("lines__item")
        .order_by("name")
    ):
        kcal = template.kcal_per_person_day
        ratio = template.sphere_ratio
        rows.append(
            {
                "template": template,
                "kcal": kcal,
                "percent": round(100 * ratio) if ratio is not None else None,
                "below": ratio is not None and ratio < 1,
                "warnings": template.warnings,
            }
        )
    context = {
        "municipality": municipality,
        "municipalities": choices,
        "rows": rows,
        "form": form,
        "sphere_kcal": SPHERE_KCAL,
    }
    return render(request, "web/aid/templates.html", context, status=400 if form.errors else 200)
