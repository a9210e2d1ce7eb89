"""Intake of needs: a block liaison from a household's page, a hotline operator taking a call, the public form.

All three produce the same Need through ``needs.services.register_need``; these views only check the input
and who may use which form. The public form needs no login: it is rate-limited per IP address and never shows
back what was typed (the thank-you page shows only a reference code).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.core.phones import normalize_phone
from redes.needs import services
from redes.needs.models import NeedChannel, reference_of
from redes.registry import queries as registry_queries
from redes.registry import services as registry_services
from redes.registry.models import Phone, RecordStatus
from redes.territories.models import Municipality, Node, NodeKind

from ..forms_needs import FieldIntakeForm, HotlineForm, PublicReportForm
from .common import add_service_errors, audit_rejected, require_or_refuse
from .needs_common import blocks_for, need_url, pick_municipality

LOOKUP_LIMIT = 20


def _done_message(request, need) -> None:
    if need.sensitive:
        messages.success(
            request,
            _("Registered and referred to a case officer. Reference %(ref)s.") % {"ref": reference_of(need)},
        )
    else:
        messages.success(request, _("Need registered. Reference %(ref)s.") % {"ref": reference_of(need)})


# ------------------------------------------------------------------------------------------------ field


def _household_or_404(request, uuid):
    qs = registry_queries.households(request.user).select_related("node", "node__municipality")
    return scoping.get_scoped_or_404(qs, request.user, Perm.VIEW_PERSONAL, via="node", uuid=uuid)


@login_required
@require_http_methods(["GET", "POST"])
def needs_new(request):
    """A liaison registers a need in a few taps; ``?household=<uuid>`` comes from the household's page."""
    user = request.user
    if not scoping.can(user, Perm.REPORT_NEEDS):
        raise PermissionDenied
    household_id = request.GET.get("household") or request.POST.get("household")
    household = members = blocks = None
    if household_id:
        household = _household_or_404(request, household_id)
        require_or_refuse(request, Perm.REPORT_NEEDS, household.node, "needs.need.create")
        municipality = household.node.municipality
        members = household.members.filter(status=RecordStatus.ACTIVE).order_by("pk")
    else:
        municipality = pick_municipality(request, Perm.REPORT_NEEDS)
        blocks = blocks_for(user, Perm.REPORT_NEEDS, municipality)
    form = FieldIntakeForm(
        request.POST or None,
        municipality=municipality,
        household=household,
        members=members,
        blocks=blocks,
    )
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "needs.need.create", form, obj=household, municipality=municipality)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        node = household.node if household else data["block"]
        try:
            need = services.register_need(
                actor=user,
                municipality=municipality,
                category=data["category"],
                description=data["description"],
                urgency=data["urgency"],
                channel=NeedChannel.FIELD,
                node=node,
                household=household,
                person=data.get("person"),
                address="" if household else data.get("address", ""),
                lat=household.lat if household else None,
                lon=household.lon if household else None,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            _done_message(request, need)
            return redirect(need_url(need))
    context = {"form": form, "household": household, "municipality": municipality}
    return render(request, "web/needs/new.html", context)


# ---------------------------------------------------------------------------------------------- hotline


def _lookup(user, municipality, raw: str) -> tuple[str, list, str]:
    """Households of the municipality (in the user's reach) with this phone: (E.164, households, error)."""
    raw = (raw or "").strip()
    if not raw:
        return "", [], ""
    try:
        number = normalize_phone(raw)
    except ValidationError as exc:
        return "", [], exc.messages[0]
    visible = registry_queries.households(user).filter(municipality=municipality)
    ids = Phone.objects.filter(number=number, municipality=municipality).values("household_id")
    found = list(visible.filter(pk__in=ids).select_related("node").order_by("-priority", "pk")[:LOOKUP_LIMIT])
    return number, found, ""


def _register_by_phone(user, municipality, data) -> object:
    """One transaction: the new household (if asked) and the need; a refusal leaves neither."""
    with transaction.atomic():
        household = data.get("household")
        if data.get("new_household"):
            phones = [{"number": data["caller_phone"], "voice": True}] if data.get("caller_phone") else []
            household = registry_services.create_household(
                data["block"],
                actor=user,
                street=data["street"],
                ext_number=data.get("ext_number", ""),
                colonia=data.get("colonia", ""),
                phones=phones,
            )
        node = household.node if household else data.get("block")
        return services.register_need(
            actor=user,
            municipality=municipality,
            category=data["category"],
            description=data["description"],
            urgency=data["urgency"],
            channel=NeedChannel.HOTLINE,
            node=node,
            household=household,
            address="" if household else data.get("address", ""),
            lat=household.lat if household else None,
            lon=household.lon if household else None,
            contact_phone=data.get("caller_phone", ""),
        )


@login_required
@require_http_methods(["GET", "POST"])
def needs_hotline(request):
    """A hotline operator takes a call: look the caller up by phone, pick or create the household, register."""
    user = request.user
    municipality = pick_municipality(request, Perm.REPORT_NEEDS)
    # The hotline works for the whole municipality: operators, coordinators and case officers.
    if not (
        scoping.can(user, Perm.REPORT_NEEDS, municipality.node)
        and scoping.can(user, Perm.EDIT_REGISTRY, municipality.node)
    ):
        if request.method == "POST":
            record_denied(
                "needs.need.create", actor=user, obj=municipality.node, reason="hotline not allowed"
            )
        raise PermissionDenied
    raw_phone = request.GET.get("phone") or ""
    number, found, lookup_error = _lookup(user, municipality, raw_phone)
    households = registry_queries.households(user).filter(municipality=municipality)
    blocks = blocks_for(user, Perm.EDIT_REGISTRY, municipality)
    initial = {"caller_phone": number or raw_phone}
    if len(found) == 1:
        initial["household"] = str(found[0].uuid)
    form = HotlineForm(
        request.POST or None,
        initial=initial,
        municipality=municipality,
        households=households,
        blocks=blocks,
    )
    if request.method == "POST" and not form.is_valid():
        audit_rejected(request, "needs.need.create", form, municipality=municipality)
    if request.method == "POST" and form.is_valid():
        try:
            need = _register_by_phone(user, municipality, form.cleaned_data)
        except ValidationError as exc:
            # The refusal's audit row went down with the rolled-back transaction: write it again outside.
            add_service_errors(form, exc)
            audit_rejected(request, "needs.need.create", form, municipality=municipality)
        else:
            _done_message(request, need)
            if need.sensitive:
                return redirect(f"{reverse('needs-hotline')}?m={municipality.code}")
            return redirect(need_url(need))
    chosen = form["household"].value() or ""
    context = {
        "form": form,
        "municipality": municipality,
        "phone": raw_phone,
        "number": number,
        "found": found,
        "lookup_error": lookup_error,
        "chosen": str(chosen),
        "searched": bool(raw_phone.strip()),
    }
    return render(request, "web/needs/hotline.html", context)


# ----------------------------------------------------------------------------------------------- public

_REF = re.compile(r"^[0-9A-F]{8}$")
_REF_KEY = "redes_needs_report_ref"


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _rate_limited(request) -> bool:
    """Count this submission against the IP's allowance; True when it is over."""
    limit = getattr(settings, "REDES_NEEDS_REPORT_LIMIT", 5)
    window = getattr(settings, "REDES_NEEDS_REPORT_WINDOW", 3600)
    key = f"redes:needs:report:{_client_ip(request)}"
    cache.add(key, 0, timeout=window)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        used = 1
    return used > limit


def _public_municipality(request) -> Municipality | None:
    code = (request.GET.get("m") or request.POST.get("m") or "").strip()
    qs = Municipality.objects.select_related("node")
    if code:
        return qs.filter(code=code).first()
    only = list(qs[:2])
    return only[0] if len(only) == 1 else None


@require_http_methods(["GET", "POST"])
def needs_report(request):
    """The public form: anyone reports a need or a situation, without an account."""
    municipality = _public_municipality(request)
    if municipality is None:
        choices = Municipality.objects.order_by("name").only("code", "name")
        return render(request, "web/needs/report_pick.html", {"municipalities": choices})
    units = Node.objects.filter(municipality=municipality, kind=NodeKind.UNIT)
    form = PublicReportForm(request.POST or None, municipality=municipality, units=units)
    status = 200
    if request.method == "POST" and form.is_valid():
        # Only complete reports count against the address's allowance (a typo does not use it up).
        if _rate_limited(request):
            messages.error(
                request,
                _("Too many reports from this connection. Please try again in an hour, or call the hotline."),
            )
            status = 429
        elif form.cleaned_data.get("website"):  # a bot filled the invisible field: store nothing
            return redirect("needs-report-thanks")
        else:
            data = form.cleaned_data
            try:
                need = services.register_need(
                    actor=None,
                    municipality=municipality,
                    category=data["category"],
                    description=data["description"],
                    urgency=data["urgency"],
                    channel=NeedChannel.PUBLIC,
                    node=data.get("block"),
                    lat=data.get("lat"),
                    lon=data.get("lon"),
                    address=data.get("address", ""),
                    contact_phone=data.get("phone", ""),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                # The reference travels in the session, so that nothing typed or derived shows in a URL.
                request.session[_REF_KEY] = reference_of(need)
                return redirect("needs-report-thanks")
    block_codes = list(
        units.filter(depth__lte=municipality.node.depth + 2)
        .order_by("code")
        .values_list("code", "name")[:500]
    )
    context = {
        "form": form,
        "municipality": municipality,
        "notice": registry_services.current_notice(municipality),
        "block_codes": block_codes,
        "tile_center": None,
    }
    return render(request, "web/needs/report.html", context, status=status)


@require_GET
def needs_report_thanks(request):
    ref = request.session.pop(_REF_KEY, "")
    return render(request, "web/needs/report_thanks.html", {"ref": ref if _REF.match(ref) else ""})
