"""The stock ledger: append entries and keep the balances, under row locks; recompute and compare."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from .common import ZERO, _user, format_quantity, invalid
from .models import Campaign, Donation, Item, Site, StockBalance, StockEntry, Unit

# --------------------------------------------------------------------------------------------------- the ledger


@dataclass
class Move:
    """One ledger line to post: the change of available (``quantity``) and reserved stock at a site."""

    site: Site
    item: Item
    quantity: Decimal
    kind: str
    reserved: Decimal = ZERO
    reason: str = ""
    donation: Donation | None = None
    transfer: uuidlib.UUID | None = None
    campaign: Campaign | None = None
    entitlement: object = None


def _short_message(balance: StockBalance, move: Move, available: Decimal) -> str:
    if available <= 0:
        return _("There is no %(item)s available at %(site)s.") % {
            "item": move.item.name,
            "site": move.site.name,
        }
    return _("Only %(available)s %(unit)s of %(item)s available at %(site)s; %(asked)s asked.") % {
        "available": format_quantity(available),
        "unit": Unit(move.item.unit).label,
        "item": move.item.name,
        "site": move.site.name,
        "asked": format_quantity(-move.quantity),
    }


def _lock(keys: list[tuple[int, int]]) -> dict[tuple[int, int], StockBalance]:
    """Lock the balance rows of ``keys`` (sorted) in (site, item) order: one query per site."""
    balances = {}
    for site_id in sorted({s for s, _i in keys}):
        item_ids = [i for s, i in keys if s == site_id]
        qs = StockBalance.objects.select_for_update().filter(site_id=site_id, item_id__in=item_ids)
        for balance in qs.order_by("item_id"):
            balances[(balance.site_id, balance.item_id)] = balance
    return balances


def post(moves: list[Move], *, actor) -> list[StockEntry]:
    """Append ``moves`` to the ledger and apply them to the balances. Must run inside a transaction.

    The balance rows are created if missing, then locked in (site, item) order; a move that would take a
    balance below zero refuses the whole batch (``ValidationError`` code ``insufficient``)."""
    if not moves:
        return []
    keys = sorted({(m.site.pk, m.item.pk) for m in moves})
    balances = _lock(keys)
    missing = [key for key in keys if key not in balances]
    if missing:
        municipality_of = {m.site.pk: m.site.municipality_id for m in moves}
        StockBalance.objects.bulk_create(
            [StockBalance(site_id=s, item_id=i, municipality_id=municipality_of[s]) for s, i in missing],
            ignore_conflicts=True,
        )
        # Lock again, all of them in (site, item) order (a new row is empty: nobody else can be taking from it).
        balances = _lock(keys)
    for move in moves:
        balance = balances[(move.site.pk, move.item.pk)]
        new_quantity = balance.quantity + move.quantity
        new_reserved = balance.reserved + move.reserved
        if new_quantity < 0:
            raise invalid(_short_message(balance, move, balance.quantity), "insufficient", "quantity")
        if new_reserved < 0:
            raise invalid(
                _("The reserved stock of %(item)s at %(site)s would go below zero.")
                % {"item": move.item.name, "site": move.site.name},
                "insufficient_reserved",
            )
        balance.quantity = new_quantity
        balance.reserved = new_reserved
    now = timezone.now()
    for balance in balances.values():
        balance.updated_at = now
    StockBalance.objects.bulk_update(list(balances.values()), ["quantity", "reserved", "updated_at"])
    user = _user(actor)
    entries = [
        StockEntry(
            municipality_id=m.site.municipality_id,
            site=m.site,
            item=m.item,
            quantity=m.quantity,
            reserved=m.reserved,
            kind=m.kind,
            reason=m.reason,
            donation=m.donation,
            transfer=m.transfer,
            campaign=m.campaign,
            entitlement=m.entitlement,
            created_by=user,
        )
        for m in moves
    ]
    try:
        with transaction.atomic():
            return StockEntry.objects.bulk_create(entries)
    except IntegrityError as exc:  # pragma: no cover - the checks above come first
        raise invalid(_("The stock change was refused by the database."), "integrity") from exc


@dataclass
class LedgerReport:
    checked: int = 0
    mismatches: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify_ledger(municipality=None) -> LedgerReport:
    """Recompute every balance from the ledger and compare it with the stored one."""
    entries = StockEntry.objects.all()
    balances = StockBalance.objects.all()
    if municipality is not None:
        municipality_id = getattr(municipality, "pk", municipality)
        entries = entries.filter(municipality_id=municipality_id)
        balances = balances.filter(municipality_id=municipality_id)
    sums = {
        (row["site_id"], row["item_id"]): (row["q"] or ZERO, row["r"] or ZERO)
        for row in entries.values("site_id", "item_id").annotate(q=Sum("quantity"), r=Sum("reserved"))
    }
    stored = {(b.site_id, b.item_id): (b.quantity, b.reserved) for b in balances}
    report = LedgerReport()
    for key in sorted(set(sums) | set(stored)):
        report.checked += 1
        expected = sums.get(key, (ZERO, ZERO))
        actual = stored.get(key, (ZERO, ZERO))
        if expected[0] != actual[0] or expected[1] != actual[1]:
            report.mismatches.append(
                {
                    "site_id": key[0],
                    "item_id": key[1],
                    "ledger": [str(expected[0]), str(expected[1])],
                    "balance": [str(actual[0]), str(actual[1])],
                }
            )
    return report
