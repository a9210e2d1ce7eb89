"""Every write of aid: catalogue, donors, donations, sites, the stock ledger, package templates, campaigns and
deliveries.

Each function takes the acting user as ``actor=`` (``None`` for system jobs such as the demo), checks the actor's
permission itself (``MANAGE_AID`` over the municipality; ``DELIVER_AID`` over the household's block for
deliveries), runs in a transaction and writes an audit row that names records by UUID, never by personal data.
A refusal (``PermissionDenied``, or ``ValidationError`` with a clear, translated message and a ``code``) writes
nothing and is itself audited, with the code as summary.

The stock ledger: every change of stock is an append-only ``StockEntry``; the per site × item
``StockBalance`` is updated in the same transaction after locking its row (``select_for_update``; rows locked in
(site, item) order so that two transfers in opposite directions cannot deadlock). The database refuses a
negative balance (CHECK), so stock cannot go below zero even if a caller forgot the lock.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.audit.services import record
from redes.territories.models import NodeKind

from .common import (
    _municipality,
    _same_tenant,
    _user,
    audited,
    can_deliver,
    can_manage,
    format_quantity,
    invalid,
    parse_quantity,
    require_manage,
)
from .ledger import LedgerReport, Move, post, verify_ledger
from .models import (
    CampaignStatus,
    Donation,
    DonationKind,
    DonationLine,
    Donor,
    DonorKind,
    EntryKind,
    Item,
    PackageLine,
    PackageTemplate,
    Site,
    SiteKind,
    StockBalance,
    StockEntry,
    Unit,
)

# --------------------------------------------------------------------------------------------------- catalogue


def _apply(instance, fields: dict, allowed: Iterable[str]) -> list[str]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(unknown)}")
    changed = []
    for name, value in fields.items():
        try:
            current = getattr(instance, name)
        except ObjectDoesNotExist:  # an unset foreign key
            current = None
        if current != value:
            setattr(instance, name, value)
            changed.append(name)
    return changed


def _full_clean(instance, exclude=None) -> None:
    instance.full_clean(exclude=exclude, validate_unique=True, validate_constraints=True)


def _save_record(model, instance, *, actor, municipality, fields, allowed, action, extra_check=None):
    creating = instance is None or instance.pk is None
    if instance is None:
        if municipality is None:
            raise invalid(_("A municipality is required."), "required", "municipality")
        instance = model(municipality=_municipality(municipality))
    elif municipality is not None and instance.municipality_id != getattr(municipality, "pk", municipality):
        raise invalid(_("All records must belong to the same municipality."), "other_municipality")
    municipality = _municipality(instance.municipality_id)
    require_manage(actor, municipality)
    if not creating:
        # Compare against what is stored, even when the caller already set the new values on the instance.
        stored = model.objects.get(pk=instance.pk)
        changed = [name for name in allowed if getattr(stored, name) != getattr(instance, name)]
        changed += [c for c in _apply(instance, fields, allowed) if c not in changed]
    else:
        changed = _apply(instance, fields, allowed)
    if extra_check:
        extra_check(instance)
    _full_clean(instance)
    with transaction.atomic():
        instance.save()
        record(
            f"{action}.{'create' if creating else 'update'}",
            actor=actor,
            obj=instance,
            municipality=municipality,
            changes={"fields": sorted(changed)},
        )
    return instance


ITEM_FIELDS = ("code", "name", "unit", "whole_units", "kcal", "protein_g", "fat_g", "active")


@audited("aid.item.save")
def save_item(item: Item | None = None, *, actor, municipality=None, **fields) -> Item:
    """Create (``item=None``) or change a catalogue item. ``item`` may carry new values already (a form's
    unsaved instance); ``fields`` are applied on top."""

    def check(obj):
        if obj.unit in (Unit.PIECE, Unit.PACKAGE, Unit.PORTION) and not obj.whole_units:
            raise invalid(
                _("Pieces, packages and portions are counted in whole units."), "whole_units", "whole_units"
            )
        for name in ("kcal", "protein_g", "fat_g"):
            value = getattr(obj, name)
            if value is not None and Decimal(str(value)) < 0:
                raise invalid(_("Nutrition values cannot be negative."), "negative", name)
        if obj.pk is not None and not obj.whole_units:
            return
        if obj.pk is not None and obj.whole_units:
            # Turning whole units on is only possible while every stored quantity is whole.
            fractional = [
                b for b in StockBalance.objects.filter(item=obj) if b.quantity % 1 or b.reserved % 1
            ]
            if fractional:
                raise invalid(
                    _("Some stock of this item is fractional; it cannot be made whole-unit only."),
                    "fractional_stock",
                    "whole_units",
                )

    return _save_record(
        Item,
        item,
        actor=actor,
        municipality=municipality,
        fields=fields,
        allowed=ITEM_FIELDS,
        action="aid.item",
        extra_check=check,
    )


DONOR_FIELDS = ("kind", "name", "public_name", "contact_name", "phone", "email", "note")


@audited("aid.donor.save")
def save_donor(donor: Donor | None = None, *, actor, municipality=None, **fields) -> Donor:
    """Create or change a donor. The audit row names the fields changed, never their values."""
    if "phone" in fields and fields["phone"]:
        from redes.core.phones import normalize_phone

        try:
            fields["phone"] = normalize_phone(fields["phone"])
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}, code="phone") from exc
    if "kind" in fields and fields["kind"] not in DonorKind.values:
        raise invalid(_("Unknown donor kind."), "kind", "kind")

    def check(obj):
        if obj.created_by_id is None and obj.pk is None:
            obj.created_by = _user(actor)

    return _save_record(
        Donor,
        donor,
        actor=actor,
        municipality=municipality,
        fields=fields,
        allowed=DONOR_FIELDS,
        action="aid.donor",
        extra_check=check,
    )


SITE_FIELDS = (
    "node",
    "kind",
    "name",
    "address",
    "lat",
    "lon",
    "schedule",
    "portions_per_day",
    "public",
    "active",
)


@audited("aid.site.save")
def save_site(site: Site | None = None, *, actor, municipality=None, **fields) -> Site:
    """Create or change an aid site (collection point, stand, warehouse or community kitchen)."""

    def check(obj):
        node = obj.node if obj.node_id else None
        if node is None:
            raise invalid(_("Choose the area the site serves."), "required", "node")
        if node.municipality_id != obj.municipality_id or node.kind not in (
            NodeKind.MUNICIPALITY,
            NodeKind.UNIT,
        ):
            raise invalid(_("The area must be in the site's municipality."), "other_municipality", "node")
        if obj.kind not in SiteKind.values:
            raise invalid(_("Unknown site kind."), "kind", "kind")
        if (obj.lat is None) != (obj.lon is None):
            raise invalid(_("Give both latitude and longitude, or neither."), "coordinates", "lat")
        if obj.lat is not None and not (-90 <= obj.lat <= 90 and -180 <= obj.lon <= 180):
            raise invalid(_("The coordinates are out of range."), "coordinates", "lat")
        if obj.kind == SiteKind.KITCHEN and not obj.portions_per_day:
            raise invalid(
                _("A community kitchen needs the portions it serves per day."), "required", "portions_per_day"
            )

    return _save_record(
        Site,
        site,
        actor=actor,
        municipality=municipality,
        fields=fields,
        allowed=SITE_FIELDS,
        action="aid.site",
        extra_check=check,
    )


# --------------------------------------------------------------------------------------------------- donations


def _lines(municipality_id: int, lines, *, field_name="lines") -> list[tuple[Item, Decimal]]:
    cleaned: dict[int, tuple[Item, Decimal]] = {}
    for index, line in enumerate(lines or ()):
        try:
            item, quantity = line
        except (TypeError, ValueError) as exc:
            raise invalid(_("Each line needs an item and a quantity."), "line", field_name) from exc
        if not isinstance(item, Item):
            raise invalid(_("Unknown item."), "item", field_name)
        if item.municipality_id != municipality_id:
            raise invalid(_("The item belongs to another municipality."), "other_municipality", field_name)
        if not item.active:
            raise invalid(
                _("%(item)s is no longer in the catalogue.") % {"item": item.name}, "inactive", field_name
            )
        qty = parse_quantity(item, quantity, field_name=field_name)
        if item.pk in cleaned:
            raise invalid(
                _("%(item)s appears twice; put it on one line.") % {"item": item.name},
                "duplicate_line",
                field_name,
            )
        cleaned[item.pk] = (item, qty)
        del index
    return list(cleaned.values())


@audited("aid.donation.receive")
def receive_donation(
    *,
    actor,
    donor: Donor,
    site: Site | None = None,
    lines=(),
    kind: str = DonationKind.IN_KIND,
    pledge_mxn=None,
    note: str = "",
    received_at=None,
) -> Donation:
    """Record a donation. In kind: the items enter the site's stock (``received`` entries). A money pledge is
    recorded only (nothing is charged or processed here)."""
    municipality = _municipality(donor.municipality_id)
    require_manage(actor, municipality)
    if kind not in DonationKind.values:
        raise invalid(_("Unknown donation kind."), "kind", "kind")
    pledge = None
    if kind == DonationKind.IN_KIND:
        if site is None:
            raise invalid(_("Choose the site where the donation was received."), "required", "site")
        _same_tenant(municipality, site, field_name="site")
        if not site.active:
            raise invalid(_("The site is closed."), "inactive", "site")
        cleaned = _lines(municipality.pk, lines)
        if not cleaned:
            raise invalid(_("Add at least one item."), "required", "lines")
    else:
        if site is not None:
            _same_tenant(municipality, site, field_name="site")
        if lines:
            raise invalid(_("A money pledge has no items."), "pledge_lines", "lines")
        cleaned = []
        try:
            pledge = Decimal(str(pledge_mxn)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError, TypeError):
            pledge = None
        if pledge is None or not pledge.is_finite() or pledge <= 0 or pledge > Decimal("1e11"):
            raise invalid(_("Give the pledged amount in pesos, greater than zero."), "pledge", "pledge_mxn")
    if len(note or "") > 300:
        raise invalid(_("The note is too long (at most 300 characters)."), "too_long", "note")
    with transaction.atomic():
        donation = Donation.objects.create(
            municipality=municipality,
            donor=donor,
            site=site,
            kind=kind,
            pledge_mxn=pledge,
            received_at=received_at or timezone.now(),
            note=note or "",
            created_by=_user(actor),
        )
        DonationLine.objects.bulk_create(
            [DonationLine(donation=donation, item=item, quantity=qty) for item, qty in cleaned]
        )
        post(
            [Move(site, item, qty, EntryKind.RECEIVED, donation=donation) for item, qty in cleaned],
            actor=actor,
        )
        record(
            "aid.donation.receive",
            actor=actor,
            obj=donation,
            municipality=municipality,
            node=site.node if site else None,
            changes={"donor": str(donor.uuid), "lines": len(cleaned), "kind": kind},
        )
    return donation


# --------------------------------------------------------------------------------------------------- stock


@audited("aid.stock.transfer")
def transfer_stock(
    *, actor, from_site: Site, to_site: Site, item: Item, quantity, note: str = ""
) -> uuidlib.UUID:
    """Move stock between two sites of a municipality: a ``transfer_out`` and a ``transfer_in`` entry that share
    a transfer id. Refused if the source does not hold enough."""
    municipality = _municipality(from_site.municipality_id)
    require_manage(actor, municipality)
    _same_tenant(municipality, to_site, item, field_name="to_site")
    if from_site.pk == to_site.pk:
        raise invalid(_("Choose two different sites."), "same_site", "to_site")
    if not to_site.active:
        raise invalid(_("The destination site is closed."), "inactive", "to_site")
    qty = parse_quantity(item, quantity)
    transfer = uuidlib.uuid4()
    with transaction.atomic():
        post(
            [
                Move(from_site, item, -qty, EntryKind.TRANSFER_OUT, transfer=transfer, reason=note[:300]),
                Move(to_site, item, qty, EntryKind.TRANSFER_IN, transfer=transfer, reason=note[:300]),
            ],
            actor=actor,
        )
        record(
            "aid.stock.transfer",
            actor=actor,
            obj=from_site,
            municipality=municipality,
            summary=f"transfer {transfer}",
            changes={"to": str(to_site.uuid), "item": str(item.uuid), "quantity": str(qty)},
        )
    return transfer


@audited("aid.stock.adjust")
def adjust_stock(*, actor, site: Site, item: Item, quantity, reason: str) -> StockEntry:
    """Correct a site's stock (count after an inventory, spoilage, loss) by a signed quantity, with a reason."""
    municipality = _municipality(site.municipality_id)
    require_manage(actor, municipality)
    _same_tenant(municipality, item, field_name="item")
    reason = (reason or "").strip()
    if not reason:
        raise invalid(_("Say why the stock is adjusted."), "reason_required", "reason")
    if len(reason) > 300:
        raise invalid(_("The reason is too long (at most 300 characters)."), "too_long", "reason")
    qty = parse_quantity(item, quantity, allow_negative=True)
    with transaction.atomic():
        (entry,) = post([Move(site, item, qty, EntryKind.ADJUSTED, reason=reason)], actor=actor)
        record(
            "aid.stock.adjust",
            actor=actor,
            obj=site,
            municipality=municipality,
            changes={"item": str(item.uuid), "quantity": str(qty)},
        )
    return entry


# --------------------------------------------------------------------------------------------------- templates


def _template_locked(template: PackageTemplate) -> bool:
    return template.pk is not None and template.campaigns.exclude(status=CampaignStatus.DRAFT).exists()


@audited("aid.template.save")
def save_template(
    template: PackageTemplate | None = None, *, actor, municipality=None, lines=None, **fields
) -> PackageTemplate:
    """Create or change a package template; ``lines`` ([(item, quantity)]) replace the old lines when given.

    The lines of a template used by an allocated campaign cannot change (its reserved stock depends on them)."""
    if template is None:
        if municipality is None:
            raise invalid(_("A municipality is required."), "required", "municipality")
        template = PackageTemplate(municipality=_municipality(municipality))
    municipality = _municipality(template.municipality_id)
    require_manage(actor, municipality)
    creating = template.pk is None
    changed = _apply(template, fields, ("name", "persons", "days", "active"))
    if not template.persons or template.persons < 1 or template.persons > 50:
        raise invalid(_("A package is for 1 to 50 persons."), "persons", "persons")
    if not template.days or template.days < 1 or template.days > 90:
        raise invalid(_("A package lasts 1 to 90 days."), "days", "days")
    cleaned = None
    if lines is not None:
        cleaned = _lines(municipality.pk, lines)
        if not cleaned:
            raise invalid(_("Add at least one item."), "required", "lines")
        if _template_locked(template):
            current = {(line.item_id, line.quantity) for line in template.lines.all()}
            if current != {(item.pk, qty) for item, qty in cleaned}:
                raise invalid(
                    _(
                        "This package is used by an allocated campaign: its items cannot change. Make a new one."
                    ),
                    "template_locked",
                    "lines",
                )
    elif creating:
        raise invalid(_("Add at least one item."), "required", "lines")
    if _template_locked(template) and {"persons", "days"} & set(changed):
        raise invalid(
            _("This package is used by an allocated campaign: its items cannot change. Make a new one."),
            "template_locked",
        )
    _full_clean(template)
    with transaction.atomic():
        template.save()
        if cleaned is not None:
            template.lines.all().delete()
            PackageLine.objects.bulk_create(
                [PackageLine(template=template, item=item, quantity=qty) for item, qty in cleaned]
            )
            changed.append("lines")
        record(
            f"aid.template.{'create' if creating else 'update'}",
            actor=actor,
            obj=template,
            municipality=municipality,
            changes={
                "fields": sorted(set(changed)),
                "kcal_per_person_day": round(template.kcal_per_person_day),
            },
        )
    if hasattr(template, "_prefetched_objects_cache"):
        template._prefetched_objects_cache.pop("lines", None)
    return template


# --------------------------------------------------------------------------------------------------- campaigns
# (in campaigns.py and delivery.py; re-exported here so that every write is found in services)

from .campaigns import (  # noqa: E402
    allocate_campaign,
    cancel_campaign,
    create_campaign,
    release_held,
    start_campaign,
    update_campaign,
)
from .delivery import confirm_delivery, finish_campaign  # noqa: E402
from .jobs import queue_allocation  # noqa: E402

__all__ = [
    "LedgerReport",
    "Move",
    "can_deliver",
    "can_manage",
    "format_quantity",
    "parse_quantity",
    "require_manage",
    "adjust_stock",
    "allocate_campaign",
    "cancel_campaign",
    "confirm_delivery",
    "create_campaign",
    "finish_campaign",
    "post",
    "queue_allocation",
    "receive_donation",
    "release_held",
    "save_donor",
    "save_item",
    "save_site",
    "save_template",
    "start_campaign",
    "transfer_stock",
    "update_campaign",
    "verify_ledger",
]
