"""Deliveries: confirming an entitlement (by code at its site, or at home) and finishing a campaign.

A confirmation locks the entitlement row, so a package cannot be confirmed twice even by two phones at once; it
moves the package out of the zone's reserved stock (``distributed`` entries). Finishing a campaign returns every
undelivered package to its site's stock (``returned`` entries).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from redes.audit.services import record

from . import codes
from .common import _user, audited, can_deliver, invalid, require_manage
from .ledger import Move, post
from .models import (
    Campaign,
    CampaignStatus,
    DeliveryMode,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    Site,
)

MAX_SIGNATURE = 200_000
MAX_PHOTO = 5 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp"}


def find_by_code(raw: str, queryset=None) -> Entitlement:
    """The entitlement with this code (typed or scanned); ``ValidationError`` if the code is malformed or unknown.

    Pass a scoped queryset so that codes outside the caller's territory look unknown."""
    code = codes.normalize(raw)
    if not codes.is_well_formed(code):
        raise invalid(_("That is not an entitlement code (8 letters and digits)."), "bad_code", "code")
    qs = queryset if queryset is not None else Entitlement.objects.all()
    try:
        return qs.select_related("campaign", "zone__site", "node").get(code=code)
    except Entitlement.DoesNotExist as exc:
        raise invalid(
            _("No entitlement has the code %(code)s.") % {"code": codes.display(code)}, "unknown_code", "code"
        ) from exc


def _check_photo(photo) -> None:
    if photo is None:
        return
    size = getattr(photo, "size", None) or 0
    if size > MAX_PHOTO:
        raise invalid(_("The photo is too large (at most 5 MB)."), "photo_size", "photo")
    content_type = getattr(photo, "content_type", None)
    name = (getattr(photo, "name", "") or "").lower()
    if content_type and content_type not in PHOTO_TYPES:
        raise invalid(_("The photo must be a JPEG, PNG or WebP image."), "photo_type", "photo")
    if not content_type and not name.endswith((".jpg", ".jpeg", ".png", ".webp")):
        raise invalid(_("The photo must be a JPEG, PNG or WebP image."), "photo_type", "photo")


def _check_signature(signature: str | None) -> str | None:
    if signature is None or signature == "":
        return None
    if not isinstance(signature, str) or len(signature) > MAX_SIGNATURE:
        raise invalid(_("The signature is too large."), "signature_size", "signature")
    text = signature.strip()
    if not (
        text.startswith("<svg")
        or text.startswith("data:image/png;base64,")
        or text.startswith("data:image/svg")
    ):
        raise invalid(
            _("The signature must be an SVG drawing or a PNG data URL."), "signature_type", "signature"
        )
    if text.startswith("<svg") and ("<script" in text.lower() or "javascript:" in text.lower()):
        raise invalid(
            _("The signature must be an SVG drawing or a PNG data URL."), "signature_type", "signature"
        )
    return text


@audited("aid.entitlement.deliver")
def confirm_delivery(
    entitlement: Entitlement | str,
    *,
    actor,
    mode: str = DeliveryMode.SITE,
    site: Site | None = None,
    photo=None,
    signature: str | None = None,
) -> Entitlement:
    """Confirm that a selected household received its package, at its zone's site or at home.

    Refused with a clear message: an unknown code, a package already delivered (says when), a household not
    selected or held, a campaign not delivering, a code shown at another site. The caller needs ``DELIVER_AID``
    over the household's block."""
    if isinstance(entitlement, str):
        entitlement = find_by_code(entitlement)
    if not can_deliver(actor, entitlement.node):
        raise PermissionDenied(_("Your role does not allow confirming deliveries here."))
    if mode not in DeliveryMode.values:
        raise invalid(_("Say whether the package was handed over at the site or at home."), "mode", "mode")
    _check_photo(photo)
    signature = _check_signature(signature)
    with transaction.atomic():
        current = (
            Entitlement.objects.select_for_update(of=("self",))
            .select_related("campaign__template", "zone__site")
            .get(pk=entitlement.pk)
        )
        campaign = current.campaign
        if current.status == EntitlementStatus.DELIVERED:
            raise invalid(
                _("This package was already delivered on %(when)s.")
                % {
                    "when": formats.date_format(
                        timezone.localtime(current.delivered_at), "SHORT_DATETIME_FORMAT"
                    )
                },
                "already_delivered",
            )
        if current.status == EntitlementStatus.HELD:
            raise invalid(_("This household is on hold until its possible duplicate is reviewed."), "held")
        if current.status != EntitlementStatus.SELECTED:
            raise invalid(_("This household was not selected in this campaign."), "not_selected")
        if campaign.status != CampaignStatus.RUNNING:
            raise invalid(
                _("The campaign is not delivering (it is %(status)s).")
                % {"status": CampaignStatus(campaign.status).label.lower()},
                "campaign_not_running",
            )
        zone_site = current.zone.site
        if mode == DeliveryMode.SITE:
            if site is None:
                raise invalid(_("Choose the site where the package is handed over."), "required", "site")
            if site.pk != zone_site.pk:
                raise invalid(
                    _("This code belongs to %(site)s, not to this site.") % {"site": zone_site.name},
                    "wrong_site",
                    "site",
                )
        elif site is not None and site.pk != zone_site.pk:
            raise invalid(
                _("This code belongs to %(site)s, not to this site.") % {"site": zone_site.name},
                "wrong_site",
                "site",
            )
        lines = list(campaign.template.lines.select_related("item").order_by("item_id"))
        post(
            [
                Move(
                    zone_site,
                    line.item,
                    0,
                    EntryKind.DISTRIBUTED,
                    reserved=-line.quantity,
                    campaign=campaign,
                    entitlement=current,
                )
                for line in lines
            ],
            actor=actor,
        )
        current.status = EntitlementStatus.DELIVERED
        current.delivered_at = timezone.now()
        current.delivered_by = _user(actor)
        current.delivery_mode = mode
        current.delivered_site = zone_site if mode == DeliveryMode.SITE else None
        current.signature = signature
        fields = ["status", "delivered_at", "delivered_by", "delivery_mode", "delivered_site", "signature"]
        if photo is not None:
            current.photo.save(getattr(photo, "name", "photo.jpg") or "photo.jpg", photo, save=False)
            fields.append("photo")
        current.save(update_fields=fields)
        record(
            "aid.entitlement.deliver",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            node=current.node,
            changes={
                "campaign": str(campaign.uuid),
                "mode": mode,
                "photo": photo is not None,
                "signed": bool(signature),
            },
        )
    return current


@audited("aid.campaign.finish")
def finish_campaign(campaign: Campaign, *, actor) -> dict[str, int]:
    """Close a campaign: every package not delivered goes back to its site's stock (``returned`` entries)."""
    from .campaigns import REASON_UNCOLLECTED, _refresh, _return_reserved

    require_manage(actor, campaign.municipality_id)
    with transaction.atomic():
        current = (
            Campaign.objects.select_for_update(of=("self",)).select_related("template").get(pk=campaign.pk)
        )
        if current.status not in (CampaignStatus.RUNNING, CampaignStatus.ALLOCATED):
            if current.status == CampaignStatus.DRAFT:
                raise invalid(_("The campaign has not been allocated yet."), "not_allocated")
            raise invalid(
                _("The campaign is %(status)s: it can no longer be finished.")
                % {"status": CampaignStatus(current.status).label.lower()},
                "campaign_locked",
            )
        returned = _return_reserved(
            current,
            current.entitlements.filter(status=EntitlementStatus.SELECTED),
            actor=actor,
            new_status=EntitlementStatus.RETURNED,
            reason=REASON_UNCOLLECTED,
        )
        delivered = current.entitlements.filter(status=EntitlementStatus.DELIVERED).count()
        current.status = CampaignStatus.FINISHED
        current.finished_at = timezone.now()
        summary = dict(current.summary or {})
        summary["delivered"] = delivered
        summary["returned"] = returned
        current.summary = summary
        current.save(update_fields=["status", "finished_at", "summary"])
        record(
            "aid.campaign.finish",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            changes={"delivered": delivered, "returned": returned},
        )
    _refresh(campaign, current)
    return {"delivered": delivered, "returned": returned}


__all__ = ["ValidationError", "confirm_delivery", "find_by_code", "finish_campaign"]
