"""Distribution campaigns: eligibility, zones and their stock, the fair allocation, and the campaign lifecycle.

``allocate_campaign`` reads the eligible households (stable order: by id), the zones (the sites serving the
campaign's territory, with their stock in whole packages), builds ``allocation.Problem``, calls
``allocation.allocate`` and writes one ``Entitlement`` per eligible household (selected or not, and why), then
reserves the selected packages in the stock ledger (``allocated`` entries). The inputs are kept in
``Campaign.params`` and the result's sha256 in ``Campaign.digest``: the same inputs and seed give the same digest
and the same ``export_entitlements`` bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.audit.services import record
from redes.territories.models import Node, NodeKind

from . import codes
from .common import _municipality, _user, audited, invalid, require_manage
from .ledger import Move, post
from .models import (
    Campaign,
    CampaignStatus,
    CampaignZone,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    PackageTemplate,
    Site,
    SiteKind,
    StockBalance,
)

CAMPAIGN_FIELDS = (
    "name",
    "template",
    "node",
    "min_priority",
    "need_categories",
    "include_without_needs",
    "seed",
)
MAX_SEED = 2**62
BATCH = 5000

#: Reasons written by this module (the allocation engine adds its own, see ``allocation``).
REASON_HELD = "held_duplicate"
REASON_NO_SITE = "no_site"
REASON_RELEASED = "released_after_review"
REASON_NO_STOCK_LEFT = "no_stock_left"
REASON_MERGED = "duplicate_merged"
REASON_UNCOLLECTED = "not_collected"
REASON_CANCELLED = "campaign_cancelled"


# --------------------------------------------------------------------------------------------------- needs


def need_model():
    """``redes.needs.models.Need`` when the needs app provides it, else None (the campaign ignores needs)."""
    try:
        from redes.needs.models import Need
    except ImportError:
        return None
    required = {"household", "category", "status", "municipality"}
    names = {f.name for f in Need._meta.get_fields()}
    return Need if required <= names else None


def _open_statuses():
    try:
        from redes.needs.models import OPEN_STATUSES
    except ImportError:
        return ("new", "triaged", "assigned", "in_progress")
    return OPEN_STATUSES


def known_need_categories(municipality) -> set[str] | None:
    """Codes of the municipality's need categories (None: the needs app is not there)."""
    try:
        from redes.needs.models import NeedCategory
    except ImportError:
        return None
    return set(NeedCategory.objects.filter(municipality=municipality).values_list("code", flat=True))


def _open_need_households(municipality, categories) -> tuple[set[int], set[int]] | None:
    """(households with an open need in ``categories`` or their subcategories, households with any open need)."""
    Need = need_model()
    if Need is None:
        return None
    open_needs = Need.objects.filter(
        municipality=municipality, status__in=_open_statuses(), household__isnull=False
    )
    any_need = set(open_needs.values_list("household_id", flat=True))
    in_categories = set(
        open_needs.filter(
            Q(category__code__in=categories) | Q(category__parent__code__in=categories)
        ).values_list("household_id", flat=True)
    )
    return in_categories, any_need


# --------------------------------------------------------------------------------------------------- input


def _clean_campaign(campaign: Campaign) -> None:
    municipality = _municipality(campaign.municipality_id)
    if not (campaign.name or "").strip():
        raise invalid(_("Give the campaign a name."), "required", "name")
    campaign.name = campaign.name.strip()
    if len(campaign.name) > 200:
        raise invalid(_("The name is too long (at most 200 characters)."), "too_long", "name")
    template = campaign.template if campaign.template_id else None
    if template is None or template.municipality_id != municipality.pk:
        raise invalid(_("Choose a package template of this municipality."), "template", "template")
    if not template.active:
        raise invalid(_("The package template is no longer in use."), "inactive", "template")
    node = campaign.node if campaign.node_id else None
    if (
        node is None
        or node.municipality_id != municipality.pk
        or node.kind not in (NodeKind.MUNICIPALITY, NodeKind.UNIT)
    ):
        raise invalid(_("Choose the campaign's territory in this municipality."), "node", "node")
    try:
        campaign.min_priority = int(campaign.min_priority or 0)
    except (TypeError, ValueError) as exc:
        raise invalid(
            _("The minimum priority must be a whole number from 0 to 100."), "priority", "min_priority"
        ) from exc
    if not 0 <= campaign.min_priority <= 100:
        raise invalid(
            _("The minimum priority must be a whole number from 0 to 100."), "priority", "min_priority"
        )
    categories = campaign.need_categories or []
    if isinstance(categories, str):
        categories = [c.strip() for c in categories.split(",") if c.strip()]
    if not isinstance(categories, list | tuple) or not all(isinstance(c, str) and c for c in categories):
        raise invalid(_("Need categories must be a list of category codes."), "categories", "need_categories")
    categories = sorted(set(categories))
    known = known_need_categories(municipality)
    if categories and known is not None:
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise invalid(
                _("Unknown need categories: %(codes)s.") % {"codes": ", ".join(unknown)},
                "categories",
                "need_categories",
            )
    campaign.need_categories = categories
    try:
        campaign.seed = int(campaign.seed)
    except (TypeError, ValueError) as exc:
        raise invalid(_("The seed must be a whole number."), "seed", "seed") from exc
    if not 0 <= campaign.seed < MAX_SEED:
        raise invalid(_("The seed must be a whole number from 0 to 2^62."), "seed", "seed")
    campaign.include_without_needs = bool(campaign.include_without_needs)


@audited("aid.campaign.create")
def create_campaign(
    *,
    actor,
    name: str,
    template: PackageTemplate,
    node: Node,
    municipality=None,
    min_priority: int = 0,
    need_categories=(),
    include_without_needs: bool = True,
    seed: int | None = None,
) -> Campaign:
    """A draft campaign. Without a seed, one is drawn (and kept, so the allocation can be re-run)."""
    municipality = _municipality(municipality or node.municipality_id)
    require_manage(actor, municipality)
    campaign = Campaign(
        municipality=municipality,
        name=name or "",
        template=template,
        node=node,
        min_priority=min_priority,
        need_categories=list(need_categories or []),
        include_without_needs=include_without_needs,
        seed=secrets.randbelow(2**31) if seed is None else seed,
        created_by=_user(actor),
    )
    _clean_campaign(campaign)
    with transaction.atomic():
        campaign.save()
        record("aid.campaign.create", actor=actor, obj=campaign, municipality=municipality, node=node)
    return campaign


def _locked(campaign: Campaign, action: str) -> ValidationError:
    status = CampaignStatus(campaign.status).label.lower()
    messages = {
        "start": _("The campaign is %(status)s: it can no longer be started."),
        "cancel": _("The campaign is %(status)s: it can no longer be cancelled."),
        "change": _("The campaign is %(status)s: its held households can no longer change."),
    }
    return invalid(messages[action] % {"status": status}, "campaign_locked")


@audited("aid.campaign.update")
def update_campaign(campaign: Campaign, *, actor, **fields) -> Campaign:
    """Change a draft campaign. After allocation the inputs are frozen: a clear error, audited."""
    require_manage(actor, campaign.municipality_id)
    unknown = sorted(set(fields) - set(CAMPAIGN_FIELDS))
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(unknown)}")
    with transaction.atomic():
        current = Campaign.objects.select_for_update(of=("self",)).get(pk=campaign.pk)
        if current.status != CampaignStatus.DRAFT:
            raise invalid(
                _(
                    "The campaign has been allocated: its inputs can no longer change. Cancel it and make a new one."
                ),
                "campaign_locked",
            )
        changed = []
        for name, value in fields.items():
            if getattr(current, name) != value:
                setattr(current, name, value)
                changed.append(name)
        _clean_campaign(current)
        current.save()
        record(
            "aid.campaign.update",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            changes={"fields": sorted(changed)},
        )
    for name in CAMPAIGN_FIELDS:
        setattr(campaign, name, getattr(current, name))
    return campaign


# --------------------------------------------------------------------------------------------------- eligibility


@dataclass
class Eligible:
    household_ids: list[int]
    node_ids: list[int]
    priorities: list[int]
    held: set[int]
    needs_available: bool


def eligible_households(campaign: Campaign) -> Eligible:
    """Active households under the campaign's territory with at least the minimum priority and (when need
    categories are given) an open need in them; by id. ``held``: those in a pending possible duplicate."""
    from redes.registry.models import DuplicateCandidate, Household, Person, RecordStatus

    node = campaign.node
    qs = Household.objects.filter(
        municipality_id=campaign.municipality_id,
        status=RecordStatus.ACTIVE,
        priority__gte=campaign.min_priority,
        **{f"node__a{node.depth}": node.pk},
    )
    rows = list(qs.order_by("id").values_list("id", "node_id", "priority"))
    needs_available = True
    if campaign.need_categories:
        found = _open_need_households(campaign.municipality_id, campaign.need_categories)
        if found is None:
            needs_available = False
            if not campaign.include_without_needs:
                rows = []
        else:
            in_categories, any_need = found
            rows = [
                r
                for r in rows
                if r[0] in in_categories or (campaign.include_without_needs and r[0] not in any_need)
            ]
    pending = DuplicateCandidate.objects.filter(
        municipality_id=campaign.municipality_id, status=DuplicateCandidate.Status.PENDING
    )
    person_ids = set(pending.values_list("person_a_id", flat=True)) | set(
        pending.values_list("person_b_id", flat=True)
    )
    held_households = set()
    if person_ids:
        ids = sorted(person_ids)
        for start in range(0, len(ids), BATCH):
            held_households |= set(
                Person.objects.filter(pk__in=ids[start : start + BATCH]).values_list(
                    "household_id", flat=True
                )
            )
    eligible_ids = {r[0] for r in rows}
    return Eligible(
        household_ids=[r[0] for r in rows],
        node_ids=[r[1] for r in rows],
        priorities=[r[2] for r in rows],
        held=held_households & eligible_ids,
        needs_available=needs_available,
    )


# --------------------------------------------------------------------------------------------------- zones


#: Where a campaign's packages are handed out (collection points only gather; kitchens serve meals).
ZONE_KINDS = (SiteKind.STAND, SiteKind.WAREHOUSE)


def candidate_sites(campaign: Campaign) -> list[Site]:
    """Active stands and warehouses whose area is inside the campaign's territory or above it; by id."""
    node = campaign.node
    above = node.ancestor_ids
    return list(
        Site.objects.filter(municipality_id=campaign.municipality_id, active=True, kind__in=ZONE_KINDS)
        .filter(Q(**{f"node__a{node.depth}": node.pk}) | Q(node_id__in=above))
        .select_related("node")
        .order_by("id")
    )


def zone_of_blocks(block_ids, sites: list[Site], stock: dict[int, int] | None = None) -> dict[int, Site]:
    """Each block's zone: the site whose area is the nearest (deepest) ancestor of the block, ties to the oldest
    site. With ``stock`` (packages per site), sites without a package are passed over when a site further up
    has some, so that an empty stand does not leave its blocks without aid."""
    by_node: dict[int, list[Site]] = {}
    for site in sites:
        by_node.setdefault(site.node_id, []).append(site)
    blocks = Node.objects.in_bulk(sorted(set(block_ids)))
    out = {}
    for block_id, block in blocks.items():
        serving = [s for ancestor in reversed(block.ancestor_ids) for s in by_node.get(ancestor, ())]
        if not serving:
            continue
        if stock is not None:
            stocked = [s for s in serving if stock.get(s.pk, 0) > 0]
            serving = stocked or serving
        out[block_id] = serving[0]
    return out


def packages_in_stock(template: PackageTemplate, sites: list[Site], *, lock: bool = False) -> dict[int, int]:
    """Whole packages each site can make from its available stock: min over lines of floor(balance / qty)."""
    lines = list(template.lines.all())
    if not lines or not sites:
        return {s.pk: 0 for s in sites}
    qs = StockBalance.objects.filter(
        site_id__in=[s.pk for s in sites], item_id__in=[line.item_id for line in lines]
    )
    if lock:
        qs = qs.select_for_update().order_by("site_id", "item_id")
    have = {(b.site_id, b.item_id): b.quantity for b in qs}
    out = {}
    for site in sites:
        out[site.pk] = int(
            min(have.get((site.pk, line.item_id), Decimal(0)) // line.quantity for line in lines)
        )
    return out


def preview_zones(campaign: Campaign) -> list[dict]:
    """The zones as the allocation would see them now (for the campaign page before allocating)."""
    eligible = eligible_households(campaign)
    sites = candidate_sites(campaign)
    stock = packages_in_stock(campaign.template, sites)
    zone_of = zone_of_blocks(eligible.node_ids, sites, stock)
    used = {s.pk: s for s in zone_of.values()}
    counts: dict[int, int] = {}
    for node_id, household_id in zip(eligible.node_ids, eligible.household_ids, strict=True):
        site = zone_of.get(node_id)
        if site is not None and household_id not in eligible.held:
            counts[site.pk] = counts.get(site.pk, 0) + 1
    return [{"site": used[pk], "packages": stock[pk], "households": counts.get(pk, 0)} for pk in sorted(used)]


# --------------------------------------------------------------------------------------------------- allocation


def _canonical(data) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _result_list(result, name, n, default=None):
    value = getattr(result, name, None)
    if value is None:
        return [default] * n
    return list(value.tolist() if hasattr(value, "tolist") else value)


@audited("aid.campaign.allocate")
def allocate_campaign(campaign: Campaign, *, actor) -> Campaign:
    """Run the fair allocation of a draft campaign and reserve the selected packages in the ledger, in this
    request (the API, commands, the demo). The pages queue it instead: ``jobs.queue_allocation``."""
    return _allocate(campaign, actor=actor)


def _no_progress(phase: str, done: int = 0, total: int = 0) -> None:
    return None


def _allocate(
    campaign: Campaign,
    *,
    actor,
    progress=_no_progress,
    expect: str = CampaignStatus.DRAFT,
    job=None,
    before_commit=None,
) -> Campaign:
    """The allocation, one transaction. ``progress(phase, done, total)`` is told each phase (eligibility,
    solving, writing, reserving); ``expect`` is the status the campaign must have (draft, or allocating when run
    by an ``AllocationJob``, which is marked done in the same transaction)."""
    import numpy as np

    from . import allocation
    from .models import AllocationJob

    require_manage(actor, campaign.municipality_id)
    with transaction.atomic():
        current = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "node")
            .get(pk=campaign.pk)
        )
        if current.status != expect:
            if current.status == CampaignStatus.ALLOCATING:
                raise invalid(_("The campaign is already being allocated."), "allocating")
            if current.status == CampaignStatus.CANCELLED:
                raise invalid(_("The campaign was cancelled."), "campaign_locked")
            raise invalid(_("The campaign has already been allocated."), "campaign_locked")
        progress("eligibility")
        _clean_campaign(current)
        template = current.template
        lines = list(template.lines.select_related("item").order_by("item_id"))
        if not lines:
            raise invalid(_("The package template has no items."), "template", "template")
        if Entitlement.objects.filter(campaign=current).exists():
            raise invalid(_("The campaign already has entitlements."), "campaign_locked")

        eligible = eligible_households(current)
        sites = candidate_sites(current)
        stock_by_site = packages_in_stock(template, sites, lock=True)
        zone_of = zone_of_blocks(eligible.node_ids, sites, stock_by_site)
        zone_sites = sorted({s.pk: s for s in zone_of.values()}.values(), key=lambda s: s.pk)
        zone_index = {s.pk: i for i, s in enumerate(zone_sites)}

        # The problem: households not held and in a block with a zone, in id order.
        in_problem = [
            i
            for i, hid in enumerate(eligible.household_ids)
            if hid not in eligible.held and eligible.node_ids[i] in zone_of
        ]
        block_ids = sorted({eligible.node_ids[i] for i in in_problem})
        block_index = {b: k for k, b in enumerate(block_ids)}
        problem = allocation.Problem(
            block_of=np.array([block_index[eligible.node_ids[i]] for i in in_problem], dtype=np.int64),
            zone_of_block=np.array([zone_index[zone_of[b].pk] for b in block_ids], dtype=np.int64),
            priority=np.array([float(eligible.priorities[i]) for i in in_problem], dtype=np.float64),
            stock=np.array([stock_by_site[s.pk] for s in zone_sites], dtype=np.int64),
            household_ids=np.array([eligible.household_ids[i] for i in in_problem], dtype=np.int64),
        )
        progress("solving")
        result = allocation.allocate(problem, int(current.seed), bound=False)
        n = len(in_problem)
        selected = [bool(x) for x in _result_list(result, "selected", n, False)]
        reasons = [str(x) for x in _result_list(result, "reason", n, "")]
        ranks = _result_list(result, "rank", n, None)
        coverage = _block_coverage(result, problem, selected)
        t_star = float(getattr(result, "t_star", 0.0) or 0.0)

        zones = {
            s.pk: CampaignZone.objects.create(
                campaign=current, site=s, node=s.node, packages=stock_by_site[s.pk], allocated=0
            )
            for s in zone_sites
        }
        position = {hid: k for k, hid in enumerate(eligible.household_ids)}
        outcome = {eligible.household_ids[i]: k for k, i in enumerate(in_problem)}
        all_codes = codes.new_codes(len(eligible.household_ids), check=False)
        rows = []
        for hid in eligible.household_ids:
            i = position[hid]
            node_id = eligible.node_ids[i]
            site = zone_of.get(node_id)
            data = {"priority": eligible.priorities[i]}
            if hid in eligible.held:
                status, reason, rank = EntitlementStatus.HELD, REASON_HELD, None
            elif site is None:
                status, reason, rank = EntitlementStatus.NOT_SELECTED, REASON_NO_SITE, None
            else:
                k = outcome[hid]
                status = EntitlementStatus.SELECTED if selected[k] else EntitlementStatus.NOT_SELECTED
                if hasattr(result, "explain"):
                    reason, why = result.explain(k)
                    data.update(why)
                else:
                    reason = reasons[k] or ("selected" if selected[k] else "not_selected")
                    data.update({"block_coverage": round(coverage[block_index[node_id]], 4)})
                rank = None if ranks[k] is None or int(ranks[k]) < 0 else int(ranks[k])
                if selected[k]:
                    zones[site.pk].allocated += 1
            rows.append(
                (
                    hid,
                    node_id,
                    zones[site.pk].pk if site is not None else None,
                    all_codes[i],
                    status,
                    reason,
                    data,
                    rank,
                )
            )
        if len({r[0] for r in rows}) != len(rows):  # the unique constraint is the second lock
            raise invalid(_("A household appears twice in the campaign."), "duplicate_household")
        progress("writing", 0, len(rows))
        _write_entitlements(current, rows, progress)
        for zone in zones.values():
            if zone.allocated > zone.packages:
                raise invalid(_("The allocation exceeds a zone's stock."), "over_allocated")
            zone.save(update_fields=["allocated"])

        moves = [
            Move(
                zones[pk].site,
                line.item,
                -line.quantity * zones[pk].allocated,
                EntryKind.ALLOCATED,
                reserved=line.quantity * zones[pk].allocated,
                campaign=current,
            )
            for pk in sorted(zones)
            if zones[pk].allocated
            for line in lines
        ]
        progress("reserving", len(rows), len(rows))
        post(moves, actor=actor)

        counts = dict.fromkeys(EntitlementStatus.values, 0)
        for row in rows:
            counts[row[4]] += 1
        current.params = {
            "seed": current.seed,
            "eligibility": current.eligibility,
            "needs_available": eligible.needs_available,
            "territory": str(current.node.uuid),
            "template": {
                "uuid": str(template.uuid),
                "persons": template.persons,
                "days": template.days,
                "lines": [[str(line.item.uuid), str(line.quantity)] for line in lines],
            },
            "zones": [[str(s.uuid), str(s.node.uuid), stock_by_site[s.pk]] for s in zone_sites],
            "households": len(eligible.household_ids),
            "held": len(eligible.held),
            "in_problem": n,
            "inputs_sha256": hashlib.sha256(
                _canonical(
                    {
                        "households": problem.household_ids.tolist(),
                        "block_of": problem.block_of.tolist(),
                        "zone_of_block": problem.zone_of_block.tolist(),
                        "priority": problem.priority.tolist(),
                        "stock": problem.stock.tolist(),
                        "seed": current.seed,
                    }
                )
            ).hexdigest(),
        }
        current.digest = result.digest() if hasattr(result, "digest") else ""
        current.summary = {
            "counts": counts,
            "t_star": round(t_star, 6),
            "objective": float(getattr(result, "objective", 0.0) or 0.0),
            "packages": sum(stock_by_site[s.pk] for s in zone_sites),
            "allocated": sum(z.allocated for z in zones.values()),
            "blocks": len(block_ids),
            "min_block_coverage": round(min(coverage), 6) if coverage else None,
        }
        current.status = CampaignStatus.ALLOCATED
        current.allocated_at = timezone.now()
        current.save(update_fields=["params", "digest", "summary", "status", "allocated_at"])
        record(
            "aid.campaign.allocate",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            node=current.node,
            changes={"digest": current.digest, "counts": counts},
        )
        if job is not None:
            if before_commit is not None:
                before_commit()
            AllocationJob.objects.filter(pk=job.pk).update(
                status=AllocationJob.Status.DONE,
                phase="done",
                done=len(rows),
                total=len(rows),
                finished_at=timezone.now(),
            )
    _refresh(campaign, current)
    return campaign


ENTITLEMENT_COLUMNS = (
    "id", "uuid", "municipality_id", "campaign_id", "household_id", "node_id", "zone_id", "code", "status",
    "reason", "reason_data", "rank", "delivery_mode",
)  # fmt: skip


def _write_entitlements(campaign: Campaign, rows: list[tuple], progress=_no_progress) -> None:
    """Write the entitlements once each, ids reserved up front: COPY on PostgreSQL, executemany on SQLite (the
    registry's bulk writer). ``rows``: (household, block, zone, code, status, reason, reason data, rank)."""
    from redes.core.db import copy_rows, reserve_ids
    from redes.registry.bulk import uuid4_hexes

    def write(chunk, chunk_codes):
        ids = reserve_ids(Entitlement, len(chunk))
        copy_rows(
            Entitlement,
            ENTITLEMENT_COLUMNS,
            [
                (pk, u, campaign.municipality_id, campaign.pk, hid, node_id, zone_id, code, str(status), reason,
                 json.dumps(data, sort_keys=True), rank, "")
                for pk, u, code, (hid, node_id, zone_id, _code, status, reason, data, rank) in zip(
                    ids, uuid4_hexes(len(chunk)), chunk_codes, chunk, strict=True
                )
            ],
        )  # fmt: skip

    # COPY raises the driver's own error (it bypasses Django's wrapper): catch both.
    refused = (IntegrityError, connection.Database.IntegrityError)
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        try:
            with transaction.atomic():
                write(chunk, [row[3] for row in chunk])
        except refused:
            # A code already taken (rare): draw this batch's codes again, checked. A household twice would fail
            # again here, and the unique constraint refuses it.
            try:
                with transaction.atomic():
                    write(chunk, codes.new_codes(len(chunk), check=True))
            except refused as exc:
                raise invalid(_("A household appears twice in the campaign."), "duplicate_household") from exc
        progress("writing", start + len(chunk), len(rows))


def _block_coverage(result, problem, selected) -> list[float]:
    n_blocks = len(problem.zone_of_block)
    value = None
    for name in ("coverage", "block_coverage"):
        value = getattr(result, name, None)
        if value is not None:
            break
    if value is not None and len(value) == n_blocks:
        return [float(x) for x in value]
    totals = [0] * n_blocks
    chosen = [0] * n_blocks
    for b, s in zip(problem.block_of.tolist(), selected, strict=True):
        totals[b] += 1
        chosen[b] += int(s)
    return [c / t if t else 0.0 for c, t in zip(chosen, totals, strict=True)]


def _refresh(target: Campaign, source: Campaign) -> None:
    for f in ("status", "params", "digest", "summary", "allocated_at", "started_at", "finished_at"):
        setattr(target, f, getattr(source, f))


def export_entitlements(campaign: Campaign) -> bytes:
    """The allocation as CSV bytes, one row per household in id order (no codes, no personal data): equal for
    equal inputs and seed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["household", "block", "zone_site", "status", "reason", "rank"])
    rows = (
        Entitlement.objects.filter(campaign=campaign)
        .order_by("household_id")
        .values_list("household__uuid", "node__code", "zone__site__uuid", "status", "reason", "rank")
    )
    for household, block, site, status, reason, rank in rows.iterator(chunk_size=BATCH):
        writer.writerow([household, block, site or "", status, reason, "" if rank is None else rank])
    return out.getvalue().encode()


# --------------------------------------------------------------------------------------------------- lifecycle


@audited("aid.campaign.start")
def start_campaign(campaign: Campaign, *, actor) -> Campaign:
    """Open an allocated campaign for deliveries."""
    require_manage(actor, campaign.municipality_id)
    with transaction.atomic():
        current = Campaign.objects.select_for_update(of=("self",)).get(pk=campaign.pk)
        if current.status != CampaignStatus.ALLOCATED:
            if current.status == CampaignStatus.DRAFT:
                raise invalid(_("Allocate the campaign before starting deliveries."), "not_allocated")
            raise _locked(current, "start")
        current.status = CampaignStatus.RUNNING
        current.started_at = timezone.now()
        current.save(update_fields=["status", "started_at"])
        record("aid.campaign.start", actor=actor, obj=current, municipality=current.municipality_id)
    _refresh(campaign, current)
    return campaign


def _return_reserved(campaign: Campaign, entitlement_qs, *, actor, new_status: str, reason: str) -> int:
    """Return the packages of ``entitlement_qs`` (selected, undelivered) to their zone's stock."""
    lines = list(campaign.template.lines.select_related("item").order_by("item_id"))
    per_zone: dict[int, int] = {}
    ids = []
    for pk, zone_id in entitlement_qs.values_list("pk", "zone_id"):
        ids.append(pk)
        per_zone[zone_id] = per_zone.get(zone_id, 0) + 1
    if not ids:
        return 0
    zones = CampaignZone.objects.select_related("site").in_bulk(sorted(per_zone))
    moves = [
        Move(
            zones[zone_id].site,
            line.item,
            line.quantity * count,
            EntryKind.RETURNED,
            reserved=-line.quantity * count,
            campaign=campaign,
        )
        for zone_id, count in sorted(per_zone.items())
        for line in lines
    ]
    post(moves, actor=actor)
    for start in range(0, len(ids), BATCH):
        Entitlement.objects.filter(pk__in=ids[start : start + BATCH]).update(status=new_status, reason=reason)
    return len(ids)


@audited("aid.campaign.cancel")
def cancel_campaign(campaign: Campaign, *, actor) -> Campaign:
    """Cancel a campaign before any delivery; its reserved packages go back to stock."""
    require_manage(actor, campaign.municipality_id)
    with transaction.atomic():
        current = (
            Campaign.objects.select_for_update(of=("self",)).select_related("template").get(pk=campaign.pk)
        )
        if current.status not in (
            CampaignStatus.DRAFT,
            CampaignStatus.ALLOCATING,  # a worker that died leaves it allocating: cancelling ends it
            CampaignStatus.ALLOCATED,
            CampaignStatus.RUNNING,
        ):
            raise _locked(current, "cancel")
        if current.entitlements.filter(status=EntitlementStatus.DELIVERED).exists():
            raise invalid(
                _("Packages of this campaign have been delivered: finish it instead of cancelling it."),
                "has_deliveries",
            )
        returned = _return_reserved(
            current,
            current.entitlements.filter(status=EntitlementStatus.SELECTED),
            actor=actor,
            new_status=EntitlementStatus.RETURNED,
            reason=REASON_CANCELLED,
        )
        current.status = CampaignStatus.CANCELLED
        current.finished_at = timezone.now()
        current.save(update_fields=["status", "finished_at"])
        record(
            "aid.campaign.cancel",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            changes={"returned": returned},
        )
    _refresh(campaign, current)
    return campaign


@audited("aid.campaign.release_held")
def release_held(campaign: Campaign, *, actor) -> dict[str, int]:
    """Decide the held households whose possible duplicate has been reviewed: a merged record is dropped; the
    others get a package if their zone's site still has one in stock (reserved now), else none."""
    from redes.registry.models import DuplicateCandidate, RecordStatus

    require_manage(actor, campaign.municipality_id)
    counts = {"selected": 0, "not_selected": 0, "still_held": 0}
    with transaction.atomic():
        current = (
            Campaign.objects.select_for_update(of=("self",)).select_related("template").get(pk=campaign.pk)
        )
        if current.status not in (CampaignStatus.ALLOCATED, CampaignStatus.RUNNING):
            raise _locked(current, "change")
        held = list(
            current.entitlements.filter(status=EntitlementStatus.HELD)
            .select_related("household", "zone__site")
            .order_by("household_id")
        )
        pending = DuplicateCandidate.objects.filter(
            municipality_id=current.municipality_id, status=DuplicateCandidate.Status.PENDING
        )
        lines = list(current.template.lines.select_related("item").order_by("item_id"))
        for entitlement in held:
            household = entitlement.household
            if pending.filter(
                Q(person_a__household_id=household.pk) | Q(person_b__household_id=household.pk)
            ).exists():
                counts["still_held"] += 1
                continue
            if household.status != RecordStatus.ACTIVE:
                entitlement.status, entitlement.reason = EntitlementStatus.NOT_SELECTED, REASON_MERGED
            elif entitlement.zone is None:
                entitlement.status, entitlement.reason = EntitlementStatus.NOT_SELECTED, REASON_NO_SITE
            else:
                site = entitlement.zone.site
                available = packages_in_stock(current.template, [site], lock=True)[site.pk]
                if available >= 1:
                    post(
                        [
                            Move(
                                site,
                                line.item,
                                -line.quantity,
                                EntryKind.ALLOCATED,
                                reserved=line.quantity,
                                campaign=current,
                            )
                            for line in lines
                        ],
                        actor=actor,
                    )
                    entitlement.status, entitlement.reason = EntitlementStatus.SELECTED, REASON_RELEASED
                    CampaignZone.objects.filter(pk=entitlement.zone_id).update(
                        allocated=entitlement.zone.allocated + 1
                    )
                    entitlement.zone.allocated += 1
                else:
                    entitlement.status, entitlement.reason = (
                        EntitlementStatus.NOT_SELECTED,
                        REASON_NO_STOCK_LEFT,
                    )
            entitlement.save(update_fields=["status", "reason"])
            counts["selected" if entitlement.status == EntitlementStatus.SELECTED else "not_selected"] += 1
        record(
            "aid.campaign.release_held",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            changes=counts,
        )
    return counts
