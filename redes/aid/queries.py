"""Scoped reads of aid, shared by pages and the API, and the public (anonymous) aggregates.

Management lists need ``MANAGE_AID`` over the municipality (coordinators); the delivery lists need
``DELIVER_AID`` over the household's block (liaisons, volunteers, coordinators). ``public_report``,
``public_sites`` and ``donor_impact`` hold no personal data: counts per block and sector (below
``SUPPRESS_BELOW`` shown as None), site names and places, donors' public names.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.territories.models import MUNICIPALITY_DEPTH, Node

from .models import (
    Campaign,
    CampaignStatus,
    Donation,
    DonationKind,
    DonationLine,
    Donor,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    Item,
    PackageTemplate,
    Site,
    StockBalance,
    StockEntry,
)

#: Public counts below this are suppressed (shown as None) so no household can be singled out.
SUPPRESS_BELOW = 5
SECTOR_DEPTH = MUNICIPALITY_DEPTH + 1
_MUNI_NODE = "municipality__node"


# --------------------------------------------------------------------------------------------------- lists


def items(user, municipality=None) -> QuerySet:
    qs = scoping.scoped(Item.objects.all(), user, Perm.MANAGE_AID, via=_MUNI_NODE)
    return qs.filter(municipality=municipality) if municipality is not None else qs


def donors(user, municipality=None) -> QuerySet:
    qs = scoping.scoped(Donor.objects.all(), user, Perm.MANAGE_AID, via=_MUNI_NODE)
    return qs.filter(municipality=municipality) if municipality is not None else qs


def donations(user, donor=None, site=None) -> QuerySet:
    qs = scoping.scoped(Donation.objects.all(), user, Perm.MANAGE_AID, via=_MUNI_NODE)
    if donor is not None:
        qs = qs.filter(donor=donor)
    if site is not None:
        qs = qs.filter(site=site)
    return qs.select_related("donor", "site").prefetch_related("lines__item")


def sites(user, perm: str = Perm.MANAGE_AID, municipality=None) -> QuerySet:
    qs = scoping.scoped(Site.objects.all(), user, perm, via="node")
    return qs.filter(municipality=municipality) if municipality is not None else qs


def templates(user, municipality=None) -> QuerySet:
    qs = scoping.scoped(PackageTemplate.objects.all(), user, Perm.MANAGE_AID, via=_MUNI_NODE)
    if municipality is not None:
        qs = qs.filter(municipality=municipality)
    return qs.prefetch_related("lines__item")


def campaigns(user, perm: str = Perm.MANAGE_AID, municipality=None) -> QuerySet:
    qs = scoping.scoped(Campaign.objects.all(), user, perm, via="node")
    if municipality is not None:
        qs = qs.filter(municipality=municipality)
    return qs.select_related("template", "node")


def balances(user, site=None, item=None, *, nonzero: bool = False) -> QuerySet:
    """Stock per site and item the user manages (available and reserved)."""
    qs = scoping.scoped(StockBalance.objects.all(), user, Perm.MANAGE_AID, via="site__node")
    if site is not None:
        qs = qs.filter(site=site)
    if item is not None:
        qs = qs.filter(item=item)
    if nonzero:
        qs = qs.exclude(quantity=0, reserved=0)
    return qs.select_related("site", "item").order_by("site__name", "site_id", "item__name", "item_id")


def ledger(user, site=None, item=None, kind=None) -> QuerySet:
    """Ledger entries, newest first."""
    qs = scoping.scoped(StockEntry.objects.all(), user, Perm.MANAGE_AID, via="site__node")
    if site is not None:
        qs = qs.filter(site=site)
    if item is not None:
        qs = qs.filter(item=item)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.select_related("site", "item", "campaign", "donation__donor", "created_by").order_by("-id")


def entitlements_for(
    user, campaign=None, *, node=None, status=None, perm: str = Perm.DELIVER_AID
) -> QuerySet:
    """Entitlements of households on blocks where the user may confirm deliveries (or ``perm``)."""
    qs = scoping.scoped(Entitlement.objects.all(), user, perm, via="node")
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    if node is not None:
        qs = qs.filter(**{f"node__a{node.depth}": node.pk})
    if status:
        qs = qs.filter(status__in=[status] if isinstance(status, str) else list(status))
    return qs.select_related("campaign", "household", "node", "zone__site").order_by(
        "node__code", "household_id"
    )


def deliverable_campaigns(user) -> QuerySet:
    """Running campaigns with at least one entitlement where the user may confirm deliveries."""
    ids = entitlements_for(user).filter(campaign__status=CampaignStatus.RUNNING).values("campaign_id")
    return Campaign.objects.filter(pk__in=ids).order_by("-started_at", "-id")


# --------------------------------------------------------------------------------------------------- progress

STATUS_KEYS = tuple(EntitlementStatus.values)


def _status_counts(campaign) -> dict[int, dict[str, int]]:
    per_block: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_KEYS, 0))
    rows = Entitlement.objects.filter(campaign=campaign).values("node_id", "status").annotate(n=Count("id"))
    for row in rows:
        per_block[row["node_id"]][row["status"]] = row["n"]
    return per_block


def _with_totals(counts: dict[str, int]) -> dict:
    allocated = counts["selected"] + counts["delivered"] + counts["returned"]
    out = dict(counts)
    out["households"] = sum(counts.values())
    out["allocated"] = allocated
    out["pending"] = counts["selected"]
    out["delivered_share"] = counts["delivered"] / allocated if allocated else 0.0
    return out


def _sector_of(nodes: dict[int, Node]) -> dict[int, int | None]:
    return {
        pk: (getattr(n, f"a{SECTOR_DEPTH}", None) if n.depth >= SECTOR_DEPTH else None)
        for pk, n in nodes.items()
    }


def campaign_progress(campaign: Campaign) -> dict:
    """Counts per status for the campaign, each sector and each block (entitlements: selected = to deliver,
    delivered, returned, held, not selected), with ``delivered_share`` = delivered / allocated."""
    per_block = _status_counts(campaign)
    blocks = Node.objects.in_bulk(list(per_block))
    sector_of = _sector_of(blocks)
    sectors = Node.objects.in_bulk({s for s in sector_of.values() if s})
    per_sector: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_KEYS, 0))
    total = dict.fromkeys(STATUS_KEYS, 0)
    for block_id, counts in per_block.items():
        for key, value in counts.items():
            total[key] += value
            sector = sector_of.get(block_id)
            if sector:
                per_sector[sector][key] += value
    return {
        "campaign": campaign,
        "total": _with_totals(total),
        "sectors": [
            {"node": sectors[pk], **_with_totals(per_sector[pk])}
            for pk in sorted(per_sector, key=lambda pk: (sectors[pk].code, pk))
        ],
        "blocks": [
            {"node": blocks[pk], "sector": sectors.get(sector_of.get(pk)), **_with_totals(per_block[pk])}
            for pk in sorted(per_block, key=lambda pk: (blocks[pk].code, pk))
        ],
    }


# --------------------------------------------------------------------------------------------------- public


def suppress(value: int | None) -> int | None:
    """A count for the public: None when it is below ``SUPPRESS_BELOW`` (but 0 is shown as 0)."""
    if value is None:
        return None
    return value if value == 0 or value >= SUPPRESS_BELOW else None


MEASURES = ("eligible", "allocated", "delivered")


def protect(total: dict, sectors: list[dict], blocks: list[dict]) -> tuple[set, set, set]:
    """Which counts the public report hides: (total measures, (sector index, measure), (block index, measure)).

    Primary: counts from 1 to ``SUPPRESS_BELOW - 1``. Complementary (secondary) suppression, to a fixpoint, so that
    no hidden count can be worked out by subtraction: within each published parent (the campaign total over its
    sectors, a sector over its blocks) a single hidden child, or hidden children summing to fewer than
    ``SUPPRESS_BELOW``, hide the next smallest child as well; a hidden sector hides at least one of its blocks (else
    it is their sum); and a hidden allocated count hides the delivered one of that row (delivered ≤ allocated).
    ``total``/``sectors``/``blocks`` hold the raw counts under ``MEASURES``; blocks carry their sector's index as
    ``sector_index`` (None: no sector)."""

    def primary(value):
        return 0 < value < SUPPRESS_BELOW

    hidden_total = {m for m in MEASURES if primary(total[m])}
    hidden_sectors = {(i, m) for i, row in enumerate(sectors) for m in MEASURES if primary(row[m])}
    hidden_blocks = {(i, m) for i, row in enumerate(blocks) for m in MEASURES if primary(row[m])}
    children: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(blocks):
        if row.get("sector_index") is not None:
            children[row["sector_index"]].append(i)

    def complete(parent_hidden: bool, rows: list[dict], indexes: list[int], hidden: set, m: str, hide_parent):
        if parent_hidden or not indexes:
            return False
        shut = [i for i in indexes if (i, m) in hidden]
        if not shut or (len(shut) >= 2 and sum(rows[i][m] for i in shut) >= SUPPRESS_BELOW):
            return False
        shown = [i for i in indexes if (i, m) not in hidden and rows[i][m] > 0]
        if not shown:  # no sibling left to hide: the parent goes instead
            hide_parent()
            return True
        hidden.add((min(shown, key=lambda i: (rows[i][m], i)), m))
        return True

    changed = True
    while changed:
        changed = False
        for m in MEASURES:
            hide_total = functools.partial(hidden_total.add, m)
            changed |= complete(
                m in hidden_total, sectors, list(range(len(sectors))), hidden_sectors, m, hide_total
            )
            # Blocks outside any sector add up to the total with the sectors: treated as one more group.
            loose = [i for i, row in enumerate(blocks) if row.get("sector_index") is None]
            if loose and not sectors:
                changed |= complete(m in hidden_total, blocks, loose, hidden_blocks, m, hide_total)
            for s, indexes in children.items():
                if (s, m) in hidden_sectors:
                    if all((i, m) not in hidden_blocks for i in indexes):
                        shown = [i for i in indexes if blocks[i][m] > 0]
                        if shown:
                            hidden_blocks.add((min(shown, key=lambda i: (blocks[i][m], i)), m))
                            changed = True
                else:
                    hide_sector = functools.partial(hidden_sectors.add, (s, m))
                    changed |= complete(False, blocks, indexes, hidden_blocks, m, hide_sector)
        for hidden, rows in ((hidden_sectors, sectors), (hidden_blocks, blocks)):
            for i, row in enumerate(rows):
                if (i, "allocated") in hidden and (i, "delivered") not in hidden and row["delivered"]:
                    hidden.add((i, "delivered"))
                    changed = True
        if "allocated" in hidden_total and "delivered" not in hidden_total and total["delivered"]:
            hidden_total.add("delivered")
            changed = True
    return hidden_total, hidden_sectors, hidden_blocks


def _shown(counts: dict, hidden) -> dict:
    """The public counts of one row, ``hidden`` the measures not shown; ratios only between shown counts."""
    eligible, allocated, delivered = (counts[m] for m in MEASURES)
    out = {m: (None if m in hidden else counts[m]) for m in MEASURES}
    out["coverage"] = (
        round(allocated / eligible, 3)
        if eligible and "eligible" not in hidden and "allocated" not in hidden
        else None
    )
    out["delivered_share"] = (
        round(delivered / allocated, 3)
        if allocated and "allocated" not in hidden and "delivered" not in hidden
        else None
    )
    return out


def _public_counts(counts: dict) -> dict:
    eligible = counts["households"]
    allocated = counts["allocated"]
    delivered = counts["delivered"]
    return {
        "eligible": suppress(eligible),
        "allocated": suppress(allocated),
        "delivered": suppress(delivered),
        "coverage": round(allocated / eligible, 3) if eligible >= SUPPRESS_BELOW else None,
        "delivered_share": round(delivered / allocated, 3) if allocated >= SUPPRESS_BELOW else None,
    }


PUBLIC_STATUSES = (CampaignStatus.ALLOCATED, CampaignStatus.RUNNING, CampaignStatus.FINISHED)


def public_report(campaign: Campaign) -> dict:
    """The campaign as the public sees it: no names, no addresses, no codes; counts by sector and block with small
    counts suppressed. Raises ``Campaign.DoesNotExist`` for a draft or cancelled campaign."""
    if campaign.status not in PUBLIC_STATUSES:
        raise Campaign.DoesNotExist
    progress = campaign_progress(campaign)
    template = campaign.template
    return {
        "uuid": str(campaign.uuid),
        "name": campaign.name,
        "municipality": campaign.municipality.name,
        "territory": {"code": campaign.node.code, "name": campaign.node.name},
        "status": campaign.status,
        "status_label": str(CampaignStatus(campaign.status).label),
        "allocated_at": campaign.allocated_at,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "digest": campaign.digest,
        "package": {
            "name": template.name,
            "persons": template.persons,
            "days": template.days,
            "kcal_per_person_day": round(template.kcal_per_person_day),
            "sphere_ratio": round(template.sphere_ratio, 3),
        },
        "method": {
            "min_block_coverage": (campaign.summary or {}).get("t_star"),
            "seed": campaign.seed,
            "min_priority": campaign.min_priority,
            "need_categories": list(campaign.need_categories or []),
        },
        "suppress_below": SUPPRESS_BELOW,
        **_protected_rows(progress),
    }


def _raw(row: dict) -> dict:
    return {"eligible": row["households"], "allocated": row["allocated"], "delivered": row["delivered"]}


def _protected_rows(progress: dict) -> dict:
    """The total, sectors and blocks of ``campaign_progress`` with small counts hidden, and complementary counts
    hidden too (``protect``)."""
    sector_index = {row["node"].pk: i for i, row in enumerate(progress["sectors"])}
    total = _raw(progress["total"])
    sectors = [_raw(row) for row in progress["sectors"]]
    blocks = [
        {**_raw(row), "sector_index": sector_index.get(row["sector"].pk) if row["sector"] else None}
        for row in progress["blocks"]
    ]
    hidden_total, hidden_sectors, hidden_blocks = protect(total, sectors, blocks)
    return {
        "total": _shown(total, hidden_total),
        "sectors": [
            {
                "code": row["node"].code,
                "name": row["node"].name,
                **_shown(sectors[i], {m for m in MEASURES if (i, m) in hidden_sectors}),
            }
            for i, row in enumerate(progress["sectors"])
        ],
        "blocks": [
            {
                "code": row["node"].code,
                "name": row["node"].name,
                "sector": row["sector"].code if row["sector"] else None,
                **_shown(blocks[i], {m for m in MEASURES if (i, m) in hidden_blocks}),
            }
            for i, row in enumerate(progress["blocks"])
        ],
    }


def public_sites(municipality) -> dict:
    """Public, active sites as a GeoJSON FeatureCollection (no personal data; sites without coordinates left out)."""
    from .models import SiteKind

    qs = Site.objects.filter(
        municipality=municipality, public=True, active=True, lat__isnull=False, lon__isnull=False
    )
    features = []
    for site in qs.order_by("kind", "name", "id"):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
                "properties": {
                    "uuid": str(site.uuid),
                    "name": site.name,
                    "kind": site.kind,
                    "kind_label": str(SiteKind(site.kind).label),
                    "address": site.address,
                    "schedule": site.schedule,
                    "portions_per_day": site.portions_per_day,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def public_campaigns(municipality) -> QuerySet:
    return (
        Campaign.objects.filter(municipality=municipality, status__in=PUBLIC_STATUSES)
        .select_related("template", "node")
        .order_by("-allocated_at", "-id")
    )


# --------------------------------------------------------------------------------------------------- donors


def donor_impact(donor: Donor) -> dict:
    """What a donor's gifts became: items received, money pledged, and their share of each campaign's delivered
    packages, by sector.

    Stock is fungible, so the share is proportional: for each item, the donor's part of everything the
    municipality received of it; a campaign's share is that part averaged over its package's lines, weighted by
    energy (kcal) when the package holds food, else by quantity."""
    municipality_id = donor.municipality_id
    received = list(
        DonationLine.objects.filter(donation__donor=donor, donation__kind=DonationKind.IN_KIND)
        .values("item_id")
        .annotate(q=Sum("quantity"))
        .order_by("item_id")
    )
    item_ids = [row["item_id"] for row in received]
    all_received = dict(
        StockEntry.objects.filter(
            municipality_id=municipality_id, kind=EntryKind.RECEIVED, item_id__in=item_ids
        )
        .values("item_id")
        .annotate(q=Sum("quantity"))
        .values_list("item_id", "q")
    )
    share_of_item = {
        row["item_id"]: (row["q"] / all_received[row["item_id"]])
        if all_received.get(row["item_id"])
        else Decimal(0)
        for row in received
    }
    item_objs = Item.objects.in_bulk(item_ids)
    donations_qs = Donation.objects.filter(donor=donor)
    pledged = donations_qs.filter(kind=DonationKind.MONEY_PLEDGE).aggregate(s=Sum("pledge_mxn"))[
        "s"
    ] or Decimal(0)

    campaigns_out = []
    if item_ids:
        campaign_ids = (
            StockEntry.objects.filter(
                municipality_id=municipality_id, kind=EntryKind.DISTRIBUTED, item_id__in=item_ids
            )
            .values_list("campaign_id", flat=True)
            .distinct()
        )
        for campaign in (
            Campaign.objects.filter(pk__in=list(campaign_ids))
            .select_related("template")
            .order_by("-allocated_at", "-id")
        ):
            lines = list(campaign.template.lines.select_related("item"))
            food = any(line.item.kcal for line in lines)
            weights = [(float(line.item.kcal or 0) if food else 1.0) * float(line.quantity) for line in lines]
            total_weight = sum(weights)
            share = (
                sum(
                    w * float(share_of_item.get(line.item_id, 0))
                    for w, line in zip(weights, lines, strict=True)
                )
                / total_weight
                if total_weight
                else 0.0
            )
            delivered = Entitlement.objects.filter(campaign=campaign, status=EntitlementStatus.DELIVERED)
            per_sector = dict(
                delivered.values(f"node__a{SECTOR_DEPTH}")
                .annotate(n=Count("id"))
                .values_list(f"node__a{SECTOR_DEPTH}", "n")
            )
            sectors = Node.objects.in_bulk([k for k in per_sector if k])
            total_delivered = sum(per_sector.values())
            campaigns_out.append(
                {
                    "campaign": campaign,
                    "share": round(share, 4),
                    "packages_delivered": total_delivered,
                    "package_equivalents": round(total_delivered * share, 1),
                    "sectors": [
                        {
                            "node": sectors[pk],
                            "packages_delivered": n,
                            "package_equivalents": round(n * share, 1),
                        }
                        for pk, n in sorted(
                            per_sector.items(), key=lambda kv: sectors[kv[0]].code if kv[0] else ""
                        )
                        if pk
                    ],
                }
            )
    return {
        "donor": donor,
        "public_name": donor.display_public_name,
        "donations": donations_qs.count(),
        "pledged_mxn": pledged,
        "received": [
            {
                "item": item_objs[row["item_id"]],
                "quantity": row["q"],
                "share_of_all_received": round(float(share_of_item[row["item_id"]]), 4),
            }
            for row in received
        ],
        "campaigns": campaigns_out,
    }
