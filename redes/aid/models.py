"""Aid: donors, donations, sites, stock ledger, package templates, campaigns, deliveries (see docs/aid.md).

Every tenant row carries its municipality. Stock lives in an append-only ledger (``StockEntry``); the balance
per site and item (``StockBalance``) is derived from it, kept by ``aid.services`` in the same transaction under a
row lock, and can never go below zero (a database CHECK). All writes go through ``aid.services``.
"""

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from redes.core.fields import MUNICIPALITY as _MUNICIPALITY
from redes.core.fields import NODE as _NODE
from redes.core.fields import municipality_fk as _municipality_fk
from redes.core.fields import user_fk

#: The Sphere Handbook's planning figure: 2,100 kcal per person per day.
SPHERE_KCAL = 2100
#: Sphere: about 10 % of the energy from protein and 17 % from fat.
SPHERE_PROTEIN_SHARE = 0.10
SPHERE_FAT_SHARE = 0.17
KCAL_PER_G_PROTEIN = 4
KCAL_PER_G_FAT = 9

QUANTITY = {"max_digits": 14, "decimal_places": 3}


def _user_fk(verbose_name, related_name="+"):
    return user_fk(verbose_name, related_name, db_index=False)


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a ledger entry."""


class Unit(models.TextChoices):
    PIECE = "piece", _("piece")
    KG = "kg", _("kg")
    LITRE = "litre", _("litre")
    PORTION = "portion", _("portion")
    PACKAGE = "package", _("package")


class Item(models.Model):
    """An item of the municipality's catalogue; food items carry kcal, protein and fat per unit."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=120)
    unit = models.CharField(_("unit"), max_length=10, choices=Unit.choices, default=Unit.PIECE)
    whole_units = models.BooleanField(
        _("whole units only"), default=True, help_text=_("Quantities must be whole numbers.")
    )
    kcal = models.DecimalField(_("kcal per unit"), max_digits=10, decimal_places=2, null=True, blank=True)
    protein_g = models.DecimalField(
        _("protein (g) per unit"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    fat_g = models.DecimalField(_("fat (g) per unit"), max_digits=10, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["municipality", "code"], name="aid_item_code_unique")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_food(self) -> bool:
        return self.kcal is not None


class DonorKind(models.TextChoices):
    BUSINESS = "business", _("Business")
    CSO = "cso", _("Civil society organisation")
    CHURCH = "church", _("Church")
    NEIGHBOUR = "neighbour", _("Neighbour")
    GOVERNMENT = "government", _("Government programme")
    OTHER = "other", _("Other")


class Donor(models.Model):
    """Who gives. ``public_name`` is what public pages show (blank: "anonymous donor"); contact data is personal."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(related_name="donors")
    kind = models.CharField(_("kind"), max_length=12, choices=DonorKind.choices, default=DonorKind.OTHER)
    name = models.CharField(_("name"), max_length=200)
    public_name = models.CharField(
        _("public name"),
        max_length=200,
        blank=True,
        help_text=_("Shown on public pages; leave it empty to appear as an anonymous donor."),
    )
    contact_name = models.CharField(_("contact person"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=16, blank=True)
    email = models.EmailField(_("email"), blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("registered by"))

    class Meta:
        verbose_name = _("donor")
        verbose_name_plural = _("donors")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def display_public_name(self) -> str:
        return self.public_name or str(_("Anonymous donor"))


class SiteKind(models.TextChoices):
    COLLECTION = "collection", _("Collection point")
    STAND = "stand", _("Aid stand")
    WAREHOUSE = "warehouse", _("Warehouse")
    KITCHEN = "kitchen", _("Community kitchen")


class Site(models.Model):
    """A place that receives, keeps or hands out aid, serving an area of the territory (``node``)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(related_name="aid_sites")
    node = models.ForeignKey(
        _NODE,
        on_delete=models.PROTECT,
        related_name="aid_sites",
        verbose_name=_("area served"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=SiteKind.choices)
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300, blank=True)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    schedule = models.CharField(_("schedule"), max_length=300, blank=True)
    portions_per_day = models.PositiveIntegerField(_("portions per day"), null=True, blank=True)
    public = models.BooleanField(_("shown on the public map"), default=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("aid site")
        verbose_name_plural = _("aid sites")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class DonationKind(models.TextChoices):
    IN_KIND = "in_kind", _("In kind")
    MONEY_PLEDGE = "money_pledge", _("Money pledge (recorded, not processed)")


class Donation(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    donor = models.ForeignKey(
        Donor, on_delete=models.PROTECT, related_name="donations", verbose_name=_("donor")
    )
    site = models.ForeignKey(
        Site,
        on_delete=models.PROTECT,
        related_name="donations",
        verbose_name=_("received at site"),
        null=True,
        blank=True,
    )
    kind = models.CharField(
        _("kind"), max_length=14, choices=DonationKind.choices, default=DonationKind.IN_KIND
    )
    pledge_mxn = models.DecimalField(
        _("pledge (MXN)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    received_at = models.DateTimeField(_("received at"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("registered by"))

    class Meta:
        verbose_name = _("donation")
        verbose_name_plural = _("donations")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return str(self.uuid)


class DonationLine(models.Model):
    donation = models.ForeignKey(Donation, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY)

    class Meta:
        verbose_name = _("donation line")
        verbose_name_plural = _("donation lines")
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="aid_donation_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} × {self.quantity}"


class EntryKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    TRANSFER_OUT = "transfer_out", _("Transferred out")
    TRANSFER_IN = "transfer_in", _("Transferred in")
    ALLOCATED = "allocated", _("Reserved for a campaign")
    RETURNED = "returned", _("Returned to stock")
    DISTRIBUTED = "distributed", _("Distributed")
    ADJUSTED = "adjusted", _("Adjusted")


class StockEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("stock entries cannot be changed")

    def delete(self):
        raise AppendOnlyError("stock entries cannot be deleted")


class StockEntry(models.Model):
    """One line of the append-only stock ledger of a site.

    ``quantity`` is the signed change of the stock *available* at the site; ``reserved`` the signed change of the
    stock set aside for a campaign (``allocated``: available → reserved; ``distributed``: reserved → out;
    ``returned``: reserved → available). The balance is the sum of the entries (``services.verify_ledger``).
    """

    municipality = _municipality_fk()
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("site"))
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY)
    reserved = models.DecimalField(_("reserved"), default=Decimal(0), **QUANTITY)
    kind = models.CharField(_("kind"), max_length=14, choices=EntryKind.choices)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    donation = models.ForeignKey(
        Donation, on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_index=False
    )
    transfer = models.UUIDField(
        _("transfer"), null=True, blank=True, help_text=_("Pairs a transfer's two entries.")
    )
    campaign = models.ForeignKey(
        "aid.Campaign",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        db_index=False,
    )
    entitlement = models.ForeignKey(
        "aid.Entitlement", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("registered by"))

    objects = StockEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("stock entry")
        verbose_name_plural = _("stock entries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["site", "item", "id"], name="aid_ledger_site_item"),
            models.Index(fields=["campaign", "kind"], name="aid_ledger_campaign"),
            models.Index(fields=["donation"], name="aid_ledger_donation"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="adjusted") | ~Q(reason=""), name="aid_entry_adjusted_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.site_id}/{self.item_id} {self.quantity}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("stock entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("stock entries cannot be deleted")


class StockBalance(models.Model):
    """Stock of an item at a site, derived from the ledger: ``quantity`` available, ``reserved`` for campaigns."""

    municipality = _municipality_fk()
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="balances", verbose_name=_("site"))
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    quantity = models.DecimalField(_("available"), default=Decimal(0), **QUANTITY)
    reserved = models.DecimalField(_("reserved"), default=Decimal(0), **QUANTITY)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("stock balance")
        verbose_name_plural = _("stock balances")
        ordering = ["site_id", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "item"], name="aid_balance_once"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="aid_balance_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="aid_reserved_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id}/{self.item_id}: {self.quantity}"


class PackageTemplate(models.Model):
    """A package ("despensa"): what it holds, for how many persons and days; checked against Sphere's 2,100 kcal."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    name = models.CharField(_("name"), max_length=120)
    persons = models.PositiveSmallIntegerField(_("persons"), default=4)
    days = models.PositiveSmallIntegerField(_("days"), default=7)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("package template")
        verbose_name_plural = _("package templates")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def _lines(self):
        cached = getattr(self, "_prefetched_objects_cache", {}).get("lines")
        return list(cached) if cached is not None else list(self.lines.select_related("item"))

    def _per_person_day(self, attr: str) -> float:
        person_days = (self.persons or 0) * (self.days or 0)
        if not person_days:
            return 0.0
        total = sum(float(getattr(line.item, attr) or 0) * float(line.quantity) for line in self._lines())
        return total / person_days

    @property
    def kcal_per_person_day(self) -> float:
        return self._per_person_day("kcal")

    @property
    def protein_g_per_person_day(self) -> float:
        return self._per_person_day("protein_g")

    @property
    def fat_g_per_person_day(self) -> float:
        return self._per_person_day("fat_g")

    @property
    def sphere_ratio(self) -> float:
        """Energy per person-day against Sphere's 2,100 kcal (1.0 = exactly the reference)."""
        return self.kcal_per_person_day / SPHERE_KCAL

    @property
    def protein_share(self) -> float:
        """Share of the energy that comes from protein (Sphere: about 10 %)."""
        kcal = self.kcal_per_person_day
        return self.protein_g_per_person_day * KCAL_PER_G_PROTEIN / kcal if kcal else 0.0

    @property
    def fat_share(self) -> float:
        """Share of the energy that comes from fat (Sphere: about 17 %)."""
        kcal = self.kcal_per_person_day
        return self.fat_g_per_person_day * KCAL_PER_G_FAT / kcal if kcal else 0.0

    @property
    def warnings(self) -> list[str]:
        """What falls short of the Sphere reference, as translated sentences."""
        from .nutrition import template_warnings

        return template_warnings(self)


class PackageLine(models.Model):
    template = models.ForeignKey(PackageTemplate, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+", verbose_name=_("item"))
    quantity = models.DecimalField(_("quantity"), **QUANTITY)

    class Meta:
        verbose_name = _("package line")
        verbose_name_plural = _("package lines")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "item"], name="aid_package_item_once"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="aid_package_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} × {self.quantity}"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ALLOCATING = "allocating", _("Allocating")
    ALLOCATED = "allocated", _("Allocated")
    RUNNING = "running", _("Delivering")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


class Campaign(models.Model):
    """A distribution campaign: who is eligible in a territory, the stock per zone, a seeded fair allocation."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(related_name="aid_campaigns")
    name = models.CharField(_("name"), max_length=200)
    template = models.ForeignKey(
        PackageTemplate, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("package")
    )
    #: The territory the campaign covers (its root node).
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("territory"))
    min_priority = models.PositiveSmallIntegerField(
        _("minimum priority"),
        default=0,
        help_text=_("Households below this registry priority are not eligible."),
    )
    need_categories = models.JSONField(
        _("need categories"),
        default=list,
        blank=True,
        help_text=_("Households with an open need in one of these categories are eligible."),
    )
    include_without_needs = models.BooleanField(
        _("include households without an open need"),
        default=True,
        help_text=_("When need categories are given, also include households with no open need at all."),
    )
    seed = models.BigIntegerField(_("lottery seed"), default=0)
    status = models.CharField(
        _("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    params = models.JSONField(_("inputs at allocation"), default=dict, blank=True)
    digest = models.CharField(_("result digest"), max_length=64, blank=True)
    summary = models.JSONField(_("allocation summary"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("created by"))
    allocated_at = models.DateTimeField(_("allocated at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def root(self):
        return self.node

    @property
    def eligibility(self) -> dict:
        return {
            "min_priority": self.min_priority,
            "need_categories": list(self.need_categories or []),
            "include_without_needs": self.include_without_needs,
        }

    @property
    def is_editable(self) -> bool:
        return self.status == CampaignStatus.DRAFT


class AllocationJob(models.Model):
    """A campaign's allocation run in the background (``aid.tasks.run_allocation``), with its progress.

    The allocation itself is one transaction; while it is open the progress is published from outside it
    (``aid.jobs.Publisher``), so the page can show the phase and the share written. A failure rolls the whole
    allocation back, sets the campaign back to draft and keeps the reason here."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Allocating")
        DONE = "done", _("Finished")
        FAILED = "failed", _("Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="allocation_jobs")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    #: queued, eligibility, solving, writing, reserving, done, failed
    phase = models.CharField(max_length=20, default="queued")
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    language = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("created by"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("allocation job")
        verbose_name_plural = _("allocation jobs")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.status}"


class CampaignZone(models.Model):
    """A site that hands out a campaign's packages to the blocks it serves, with its whole packages in stock."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="zones")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("area served"))
    packages = models.PositiveIntegerField(_("packages available"), default=0)
    allocated = models.PositiveIntegerField(_("packages allocated"), default=0)

    class Meta:
        verbose_name = _("campaign zone")
        verbose_name_plural = _("campaign zones")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "site"], name="aid_zone_site_once")]

    def __str__(self) -> str:
        return f"{self.campaign_id}@{self.site_id}"


class EntitlementStatus(models.TextChoices):
    SELECTED = "selected", _("Selected")
    NOT_SELECTED = "not_selected", _("Not selected")
    HELD = "held", _("Held (possible duplicate)")
    DELIVERED = "delivered", _("Delivered")
    RETURNED = "returned", _("Not collected (returned to stock)")


class DeliveryMode(models.TextChoices):
    SITE = "site", _("At the site")
    HOME = "home", _("At home")


def _photo_path(instance, filename: str) -> str:
    return f"aid/deliveries/{instance.campaign_id}/{instance.uuid}{_suffix(filename)}"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    ext = filename[dot:].lower() if dot >= 0 else ""
    return ext if ext in {".jpg", ".jpeg", ".png", ".webp"} else ".jpg"


class Entitlement(models.Model):
    """A household's place in a campaign: whether (and why) it was chosen, its code, and its delivery."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No FK index on municipality or campaign: reads go by block (scoping) or by campaign first, which the
    # composite indexes below lead with; fewer indexes make a campaign's 100k-row write faster.
    municipality = models.ForeignKey(
        _MUNICIPALITY,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("municipality"),
        db_index=False,
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="entitlements", db_index=False
    )
    household = models.ForeignKey(
        "registry.Household", on_delete=models.PROTECT, related_name="+", verbose_name=_("household")
    )
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"))
    zone = models.ForeignKey(
        CampaignZone, on_delete=models.PROTECT, null=True, blank=True, related_name="entitlements"
    )
    code = models.CharField(_("code"), max_length=12, unique=True)
    status = models.CharField(_("status"), max_length=14, choices=EntitlementStatus.choices)
    reason = models.CharField(_("reason"), max_length=32)
    reason_data = models.JSONField(_("why"), default=dict, blank=True)
    rank = models.PositiveIntegerField(_("rank"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    delivered_by = _user_fk(_("delivered by"))
    delivery_mode = models.CharField(_("delivery"), max_length=6, choices=DeliveryMode.choices, blank=True)
    delivered_site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    photo = models.FileField(_("photo"), upload_to=_photo_path, null=True, blank=True, max_length=200)
    signature = models.TextField(_("signature"), null=True, blank=True)

    class Meta:
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        ordering = ["campaign_id", "node_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "household"], name="aid_entitlement_once_per_campaign"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "node", "status"], name="aid_entitlement_block")]

    def __str__(self) -> str:
        return self.code

    @property
    def is_deliverable(self) -> bool:
        return self.status == EntitlementStatus.SELECTED
