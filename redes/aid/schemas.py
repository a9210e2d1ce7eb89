"""Request and response schemas of the aid API."""

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

from ninja import Field, Schema

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.core.api import Input

from .codes import display


class Ref(Schema):
    uuid: UUID
    name: str


class NodeBrief(Schema):
    uuid: UUID
    code: str
    name: str


# --- catalogue --------------------------------------------------------------------------------------------------


class ItemOut(Schema):
    uuid: UUID
    code: str = Field(..., examples=["ARROZ"])
    name: str = Field(..., examples=["Arroz"])
    unit: str = Field(..., examples=["kg"], description="piece, kg, litre, portion or package.")
    whole_units: bool
    kcal: Decimal | None = Field(None, description="Per unit; null for non-food items.")
    protein_g: Decimal | None = None
    fat_g: Decimal | None = None
    active: bool


class ItemIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    code: str = Field(..., max_length=32)
    name: str = Field(..., max_length=120)
    unit: str = "piece"
    whole_units: bool = True
    kcal: Decimal | None = None
    protein_g: Decimal | None = None
    fat_g: Decimal | None = None
    active: bool = True


class ItemPatch(Input):
    code: str | None = Field(None, max_length=32)
    name: str | None = Field(None, max_length=120)
    unit: str | None = None
    whole_units: bool | None = None
    kcal: Decimal | None = None
    protein_g: Decimal | None = None
    fat_g: Decimal | None = None
    active: bool | None = None


# --- donors -----------------------------------------------------------------------------------------------------


class DonorOut(Schema):
    uuid: UUID
    kind: str = Field(..., examples=["business"])
    name: str
    public_name: str = Field(..., description="Shown on public pages; empty: anonymous.")
    contact_name: str
    phone: str
    email: str
    note: str
    created_at: dt.datetime


class DonorIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    kind: str = "other"
    name: str = Field(..., max_length=200)
    public_name: str = Field("", max_length=200)
    contact_name: str = Field("", max_length=200)
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)
    note: str = Field("", max_length=300)


class DonorPatch(Input):
    kind: str | None = None
    name: str | None = Field(None, max_length=200)
    public_name: str | None = Field(None, max_length=200)
    contact_name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    email: str | None = Field(None, max_length=254)
    note: str | None = Field(None, max_length=300)


class ImpactItem(Schema):
    item: str
    unit: str
    quantity: Decimal
    share_of_all_received: float


class ImpactSector(Schema):
    code: str
    name: str
    packages_delivered: int
    package_equivalents: float


class ImpactCampaign(Schema):
    uuid: UUID
    name: str
    share: float = Field(
        ..., description="The donor's share of the campaign's packages (by energy for food)."
    )
    packages_delivered: int
    package_equivalents: float
    sectors: list[ImpactSector]


class ImpactOut(Schema):
    public_name: str
    donations: int
    pledged_mxn: Decimal
    received: list[ImpactItem]
    campaigns: list[ImpactCampaign]


# --- sites ------------------------------------------------------------------------------------------------------


class SiteOut(Schema):
    uuid: UUID
    kind: str = Field(..., examples=["warehouse"], description="collection, stand, warehouse or kitchen.")
    name: str
    node: NodeBrief = Field(..., description="The area the site serves.")
    address: str
    lat: float | None = None
    lon: float | None = None
    schedule: str
    portions_per_day: int | None = None
    public: bool
    active: bool


class SiteIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    node: str = Field(..., description="UUID of the area served (the municipality or a unit).")
    kind: str
    name: str = Field(..., max_length=200)
    address: str = Field("", max_length=300)
    lat: float | None = None
    lon: float | None = None
    schedule: str = Field("", max_length=300)
    portions_per_day: int | None = Field(None, ge=0, le=1_000_000)
    public: bool = True
    active: bool = True


class SitePatch(Input):
    node: str | None = None
    kind: str | None = None
    name: str | None = Field(None, max_length=200)
    address: str | None = Field(None, max_length=300)
    lat: float | None = None
    lon: float | None = None
    schedule: str | None = Field(None, max_length=300)
    portions_per_day: int | None = Field(None, ge=0, le=1_000_000)
    public: bool | None = None
    active: bool | None = None


# --- donations and stock ----------------------------------------------------------------------------------------


class LineIn(Input):
    item: str = Field(..., description="Item UUID or code.")
    quantity: Decimal


class LineOut(Schema):
    item: str
    unit: str
    quantity: Decimal


class DonationIn(Input):
    donor: UUID
    site: UUID | None = Field(None, description="Where the items were received (in kind).")
    kind: str = "in_kind"
    lines: list[LineIn] = Field(default_factory=list, max_length=200)
    pledge_mxn: Decimal | None = Field(None, description="Money pledges: recorded, never processed.")
    note: str = Field("", max_length=300)
    received_at: dt.datetime | None = None


class DonationOut(Schema):
    uuid: UUID
    donor: Ref
    site: Ref | None = None
    kind: str
    pledge_mxn: Decimal | None = None
    received_at: dt.datetime
    note: str
    lines: list[LineOut]


class BalanceOut(Schema):
    site: Ref
    item: str
    item_uuid: UUID
    unit: str
    available: Decimal
    reserved: Decimal = Field(..., description="Set aside for allocated campaigns.")


class EntryOut(Schema):
    id: int
    site: Ref
    item: str
    kind: str
    quantity: Decimal = Field(..., description="Change of the available stock.")
    reserved: Decimal = Field(..., description="Change of the reserved stock.")
    reason: str
    transfer: UUID | None = None
    campaign: UUID | None = None
    donation: UUID | None = None
    created_at: dt.datetime


class TransferIn(Input):
    from_site: UUID
    to_site: UUID
    item: str = Field(..., description="Item UUID or code.")
    quantity: Decimal
    note: str = Field("", max_length=300)


class TransferOut(Schema):
    transfer: UUID


class AdjustIn(Input):
    site: UUID
    item: str = Field(..., description="Item UUID or code.")
    quantity: Decimal = Field(..., description="Signed: negative takes stock out.")
    reason: str = Field(..., max_length=300)


# --- templates --------------------------------------------------------------------------------------------------


class TemplateOut(Schema):
    uuid: UUID
    name: str
    persons: int
    days: int
    active: bool
    lines: list[LineOut]
    kcal_per_person_day: float
    sphere_ratio: float = Field(..., description="Energy per person-day against Sphere's 2,100 kcal.")
    protein_share: float
    fat_share: float
    warnings: list[str]


class TemplateIn(Input):
    municipality: str = Field(..., description="Municipality UUID or 5-digit INEGI key.")
    name: str = Field(..., max_length=120)
    persons: int = Field(4, ge=1, le=50)
    days: int = Field(7, ge=1, le=90)
    active: bool = True
    lines: list[LineIn] = Field(..., max_length=100)


class TemplatePatch(Input):
    name: str | None = Field(None, max_length=120)
    persons: int | None = Field(None, ge=1, le=50)
    days: int | None = Field(None, ge=1, le=90)
    active: bool | None = None
    lines: list[LineIn] | None = Field(None, max_length=100)


# --- campaigns --------------------------------------------------------------------------------------------------


class ZoneOut(Schema):
    site: Ref
    node: NodeBrief
    packages: int
    allocated: int


class CampaignOut(Schema):
    uuid: UUID
    name: str
    status: str = Field(
        ...,
        description="draft, allocating (queued from the pages), allocated, running, finished or cancelled.",
    )
    template: Ref
    node: NodeBrief = Field(..., description="The campaign's territory.")
    min_priority: int
    need_categories: list[str]
    include_without_needs: bool
    seed: int
    digest: str = Field(
        ..., description="sha256 of the allocation; equal inputs and seed give the same digest."
    )
    summary: dict[str, Any]
    created_at: dt.datetime
    allocated_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class CampaignDetail(CampaignOut):
    params: dict[str, Any]
    zones: list[ZoneOut]

    @staticmethod
    def resolve_zones(obj) -> list:
        return list(obj.zones.select_related("site", "node").order_by("id"))


class CampaignIn(Input):
    municipality: str | None = Field(
        None, description="Municipality UUID or INEGI key (default: the node's)."
    )
    name: str = Field(..., max_length=200)
    template: UUID
    node: UUID = Field(..., description="The campaign's territory (the municipality or a unit).")
    min_priority: int = Field(0, ge=0, le=100)
    need_categories: list[str] = Field(default_factory=list, max_length=50)
    include_without_needs: bool = True
    seed: int | None = Field(None, ge=0, description="Lottery seed; drawn when missing.")


class CampaignPatch(Input):
    name: str | None = Field(None, max_length=200)
    template: UUID | None = None
    node: UUID | None = None
    min_priority: int | None = Field(None, ge=0, le=100)
    need_categories: list[str] | None = Field(None, max_length=50)
    include_without_needs: bool | None = None
    seed: int | None = Field(None, ge=0)


class EntitlementOut(Schema):
    uuid: UUID
    code: str = Field(..., examples=["7KQ2-MX9P"], description="Shown as XXXX-XXXX; the QR encodes it.")
    household: UUID
    address: str = Field(..., description="Empty unless the caller may see personal data on the block.")
    block: NodeBrief
    site: Ref | None = Field(None, description="Where the package is handed out.")
    status: str = Field(..., description="selected, not_selected, held, delivered or returned.")
    reason: str
    reason_data: dict[str, Any]
    rank: int | None = None
    delivered_at: dt.datetime | None = None
    delivery_mode: str

    @staticmethod
    def resolve_code(obj) -> str:
        return display(obj.code)

    @staticmethod
    def resolve_household(obj) -> UUID:
        return obj.household.uuid

    @staticmethod
    def resolve_address(obj, context) -> str:
        request = context.get("request") if context else None
        user = getattr(request, "auth", None)
        if user is None or not scoping.can(user, Perm.VIEW_PERSONAL, obj.node):
            return ""  # volunteers deliver by code; the address is personal data
        return obj.household.address

    @staticmethod
    def resolve_block(obj):
        return obj.node

    @staticmethod
    def resolve_site(obj):
        return obj.zone.site if obj.zone_id else None


class EntitlementFilters(Input):
    status: str | None = None
    block: UUID | None = Field(None, description="Only this block (or any node above blocks).")


class DeliveryIn(Input):
    code: str = Field(..., max_length=20, description="The entitlement code, as typed or scanned.")
    mode: str = Field("site", description="site or home.")
    site: UUID | None = Field(None, description="The site where it is handed over (mode site).")
    signature: str | None = Field(None, max_length=200_000, description="An SVG drawing or a PNG data URL.")


class ProgressRow(Schema):
    code: str
    name: str
    households: int
    allocated: int
    delivered: int
    pending: int
    returned: int
    held: int
    not_selected: int
    delivered_share: float


class ProgressOut(Schema):
    total: ProgressRow
    sectors: list[ProgressRow]
    blocks: list[ProgressRow]


class FinishOut(Schema):
    delivered: int
    returned: int


class ReleaseOut(Schema):
    selected: int
    not_selected: int
    still_held: int


# --- public -----------------------------------------------------------------------------------------------------


_HIDDEN = (
    "Null: hidden — fewer than 5, or a complementary count hidden so that a small one cannot be worked out by "
    "subtraction from the total."
)


class PublicCounts(Schema):
    eligible: int | None = Field(None, description=_HIDDEN)
    allocated: int | None = Field(None, description=_HIDDEN)
    delivered: int | None = Field(None, description=_HIDDEN)
    coverage: float | None = Field(None, description="allocated / eligible; null unless both are shown.")
    delivered_share: float | None = Field(
        None, description="delivered / allocated; null unless both are shown."
    )


class PublicArea(PublicCounts):
    code: str
    name: str


class PublicBlock(PublicArea):
    sector: str | None = None


class PublicPackage(Schema):
    name: str
    persons: int
    days: int
    kcal_per_person_day: int
    sphere_ratio: float


class PublicReportOut(Schema):
    uuid: UUID
    name: str
    municipality: str
    territory: dict[str, str]
    status: str
    status_label: str
    allocated_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    digest: str
    package: PublicPackage
    method: dict[str, Any]
    suppress_below: int
    total: PublicCounts
    sectors: list[PublicArea]
    blocks: list[PublicBlock]


class SitesGeoJSON(Schema):
    type: str = Field("FeatureCollection")
    features: list[dict[str, Any]]


# --- ledger check ---------------------------------------------------------------------------------------------------


class LedgerMismatchOut(Schema):
    site: UUID
    site_name: str
    item: str = Field(..., description="The item's code.")
    ledger_available: Decimal = Field(..., description="The sum of the ledger's entries.")
    ledger_reserved: Decimal
    balance_available: Decimal = Field(..., description="The stored balance.")
    balance_reserved: Decimal


class LedgerCheckOut(Schema):
    municipality: str = Field(..., description="INEGI key.")
    ok: bool = Field(..., description="Every stored balance equals the sum of the ledger.")
    checked: int = Field(..., description="Balances (site × item) compared.")
    mismatches: list[LedgerMismatchOut]
