"""The household and person registry: who lives on each block, how to reach them, who is vulnerable.

Every row carries its municipality (the tenant) and its block (a leaf ``territories.Node``), so reads go through
``accounts.scoping`` with ``via="node"``. Sensitive data (health, disability, violence risk) lives only in
``Person.sensitive_data``, encrypted (``registry.crypto``), and is read only through
``registry.services.read_sensitive``, which audits every read. All writes go through ``registry.services``.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from redes.core.fields import MUNICIPALITY as _MUNICIPALITY
from redes.core.fields import NODE as _NODE
from redes.core.fields import municipality_fk as _municipality_fk
from redes.core.fields import user_fk as _user_fk


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    VOICE = "voice", _("Phone call")
    VISIT = "visit", _("Home visit only")


class RecordStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    MERGED = "merged", _("Merged into another record")
    BLOCKED = "blocked", _("Blocked (cancellation requested)")
    ANONYMISED = "anonymised", _("Anonymised")


class Household(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No FK index: municipality leads household_address (and the external-id constraint).
    municipality = _municipality_fk(db_index=False)
    # No FK index: node leads household_block_list.
    node = models.ForeignKey(
        _NODE, on_delete=models.PROTECT, related_name="households", verbose_name=_("block"), db_index=False
    )
    external_id = models.CharField(
        _("external id"), max_length=64, blank=True, help_text=_("The id in the source file of an import.")
    )
    street = models.CharField(_("street"), max_length=200, blank=True)
    ext_number = models.CharField(_("number"), max_length=20, blank=True)
    int_number = models.CharField(_("interior"), max_length=20, blank=True)
    colonia = models.CharField(_("neighbourhood (colonia)"), max_length=120, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=5, blank=True)
    reference = models.CharField(_("how to find it"), max_length=200, blank=True)
    address_key = models.CharField(max_length=120, blank=True, editable=False)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=10, choices=Channel.choices, default=Channel.WHATSAPP
    )
    members_count = models.PositiveSmallIntegerField(_("members"), default=0)
    priority = models.PositiveSmallIntegerField(_("priority"), default=0, db_index=True)
    priority_explanation = models.JSONField(_("why this priority"), default=list, blank=True)
    last_visit_at = models.DateTimeField(_("last visit"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=RecordStatus.choices, default=RecordStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    # No FK index: no query filters on it (only a user's deletion, rare, scans to set it null).
    created_by = _user_fk(_("registered by"), db_index=False)

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "external_id"],
                condition=~Q(external_id=""),
                name="household_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["node", "status", "priority"], name="household_block_list"),
            models.Index(fields=["municipality", "address_key"], name="household_address"),
        ]

    def __str__(self) -> str:
        return self.address or str(self.uuid)

    @property
    def address(self) -> str:
        parts = [f"{self.street} {self.ext_number}".strip()]
        if self.int_number:
            parts.append(_("int. %(n)s") % {"n": self.int_number})
        parts += [self.colonia, self.postal_code]
        return ", ".join(p for p in parts if p)


class Phone(models.Model):
    """A household's phone number with what it can do; ``number`` is the E.164 key (``core.phones``)."""

    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="phones")
    municipality = _municipality_fk()
    number = models.CharField(_("phone"), max_length=16, db_index=True)
    whatsapp = models.BooleanField(_("WhatsApp"), default=False)
    sms = models.BooleanField(_("SMS"), default=True)
    voice = models.BooleanField(_("calls"), default=True)
    label = models.CharField(_("whose"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("phone")
        verbose_name_plural = _("phones")
        constraints = [
            models.UniqueConstraint(fields=["household", "number"], name="phone_once_per_household")
        ]

    def __str__(self) -> str:
        return self.number


class Sex(models.TextChoices):
    WOMAN = "M", _("Woman")
    MAN = "H", _("Man")
    NON_BINARY = "X", _("Non-binary")
    UNKNOWN = "", _("Not stated")


class Relation(models.TextChoices):
    HEAD = "head", _("Head of household")
    SPOUSE = "spouse", _("Spouse or partner")
    CHILD = "child", _("Son or daughter")
    PARENT = "parent", _("Father or mother")
    SIBLING = "sibling", _("Brother or sister")
    GRANDCHILD = "grandchild", _("Grandchild")
    OTHER_RELATIVE = "relative", _("Other relative")
    NON_RELATIVE = "other", _("Not related")


class Person(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No FK index: municipality leads the name, birth-date and CURP indexes.
    municipality = _municipality_fk(db_index=False)
    household = models.ForeignKey(
        Household, on_delete=models.PROTECT, related_name="members", verbose_name=_("household")
    )
    #: The household's block, kept in step by the services so that scoping needs no extra join.
    #: No FK index: node leads person_block_list.
    node = models.ForeignKey(
        _NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"), db_index=False
    )
    external_id = models.CharField(_("external id"), max_length=64, blank=True)
    full_name = models.CharField(_("full name"), max_length=200)
    given_name = models.CharField(_("given name(s)"), max_length=100, blank=True)
    surname1 = models.CharField(_("first surname"), max_length=100, blank=True)
    surname2 = models.CharField(_("second surname"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    birth_year = models.PositiveSmallIntegerField(
        _("birth year"),
        null=True,
        blank=True,
        help_text=_("From the birth date, or estimated from a stated age."),
    )
    age_stated = models.BooleanField(default=False, help_text=_("The birth year comes from a stated age."))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    curp = models.CharField(_("CURP"), max_length=18, blank=True)
    phone = models.CharField(_("phone"), max_length=16, blank=True)
    relation = models.CharField(
        _("relation to the head"), max_length=10, choices=Relation.choices, blank=True
    )
    #: Declared, non-sensitive vulnerability factors (codes from ``registry.vulnerability``).
    factors = models.JSONField(_("vulnerability factors"), default=list, blank=True)
    #: Encrypted JSON of sensitive factors and notes; never decrypted outside ``services.read_sensitive``.
    sensitive_data = models.TextField(blank=True, editable=False)
    sensitive_updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: Matching and search keys (accents, case and punctuation removed), kept by the services.
    given_key = models.CharField(max_length=100, blank=True, editable=False)
    #: The given names after the first ("maría" of "Rosa María"), so that either can be searched by prefix.
    given2_key = models.CharField(max_length=100, blank=True, editable=False)
    surname1_key = models.CharField(max_length=100, blank=True, editable=False)
    surname2_key = models.CharField(max_length=100, blank=True, editable=False)
    status = models.CharField(
        _("status"), max_length=12, choices=RecordStatus.choices, default=RecordStatus.ACTIVE
    )
    # No FK index: only followed forwards (merged -> kept); nothing looks up who was merged into a person.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged into"),
        db_index=False,
    )
    blocked_at = models.DateTimeField(_("blocked at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    # No FK index: no query filters on it (only a user's deletion, rare, scans to set it null).
    created_by = _user_fk(_("registered by"), db_index=False)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "external_id"],
                condition=~Q(external_id=""),
                name="person_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["node", "status"], name="person_block_list"),
            # Name search (queries.search_persons): each index is walked in key order from a prefix and checks
            # the other name words inside the index (covering), so a page of 50 never sorts every match.
            models.Index(
                fields=["municipality", "surname1_key", "surname2_key", "given_key", "given2_key", "status"],
                name="person_surname1",
                include=["id"],  # PostgreSQL: index-only scans (SQLite indexes carry the rowid)
            ),
            models.Index(
                fields=["municipality", "surname2_key", "surname1_key", "given_key", "given2_key", "status"],
                name="person_surname2",
                include=["id"],  # PostgreSQL: index-only scans (SQLite indexes carry the rowid)
            ),
            models.Index(
                fields=["municipality", "given_key", "surname1_key", "surname2_key", "given2_key", "status"],
                name="person_given",
                include=["id"],  # PostgreSQL: index-only scans (SQLite indexes carry the rowid)
            ),
            models.Index(
                fields=["municipality", "given2_key", "surname1_key", "surname2_key", "given_key", "status"],
                name="person_given2",
                include=["id"],  # PostgreSQL: index-only scans (SQLite indexes carry the rowid)
            ),
            models.Index(fields=["municipality", "birth_date"], name="person_birth_date"),
            models.Index(fields=["municipality", "curp"], name="person_curp"),
        ]

    def __str__(self) -> str:
        return self.full_name


class RegistryPolicy(models.Model):
    """A municipality's registry settings: vulnerability weights, the priority threshold, retention."""

    municipality = models.OneToOneField(
        _MUNICIPALITY,
        on_delete=models.CASCADE,
        related_name="registry_policy",
        verbose_name=_("municipality"),
    )
    weights = models.JSONField(
        _("vulnerability weights"),
        default=dict,
        blank=True,
        help_text=_("Factor code → points; missing codes take the default."),
    )
    priority_threshold = models.PositiveSmallIntegerField(
        _("priority threshold"), default=40, help_text=_("Households at or above it count as priority.")
    )
    retention_days = models.PositiveIntegerField(
        _("blocking period (days)"),
        default=365,
        help_text=_("How long a cancelled record stays blocked before it is anonymised."),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    updated_by = _user_fk(_("updated by"))

    class Meta:
        verbose_name = _("registry policy")
        verbose_name_plural = _("registry policies")

    def __str__(self) -> str:
        return str(self.municipality_id)


class PrivacyNotice(models.Model):
    """A version of the municipality's privacy notice ("aviso de privacidad") and the purposes it names."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(related_name="privacy_notices")
    version = models.CharField(_("version"), max_length=20)
    text = models.TextField(_("text"))
    #: ``[{"code": "aid", "label": "...", "necessary": true}, ...]``
    purposes = models.JSONField(_("purposes"), default=list)
    published_at = models.DateTimeField(_("published at"))

    class Meta:
        verbose_name = _("privacy notice")
        verbose_name_plural = _("privacy notices")
        constraints = [
            models.UniqueConstraint(fields=["municipality", "version"], name="notice_version_unique")
        ]

    def __str__(self) -> str:
        return self.version


class Consent(models.Model):
    """What a person accepted, under which notice, through which channel, captured by whom; revocable."""

    class Via(models.TextChoices):
        IN_PERSON = "in_person", _("In person")
        PHONE = "phone", _("Phone call")
        PAPER = "paper", _("Signed paper form")
        WEB = "web", _("Web form")
        WHATSAPP = "whatsapp", _("WhatsApp")
        SMS = "sms", _("SMS")
        IMPORT = "import", _("Imported record")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    person = models.ForeignKey(
        Person, on_delete=models.CASCADE, related_name="consents", verbose_name=_("person")
    )
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"))
    notice = models.ForeignKey(
        PrivacyNotice, on_delete=models.PROTECT, related_name="consents", verbose_name=_("privacy notice")
    )
    purposes = models.JSONField(_("purposes accepted"), default=list)
    sensitive = models.BooleanField(_("express consent for sensitive data"), default=False)
    channel = models.CharField(_("channel"), max_length=12, choices=Via.choices)
    captured_by = _user_fk(_("captured by"))
    captured_at = models.DateTimeField(_("captured at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = _user_fk(_("revoked by"))
    revoke_reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        indexes = [models.Index(fields=["person", "revoked_at"], name="consent_current")]

    def __str__(self) -> str:
        return f"{self.person_id}@{self.notice_id}"


class Visit(models.Model):
    class Outcome(models.TextChoices):
        CONTACTED = "contacted", _("Spoke with them")
        NOT_HOME = "not_home", _("Nobody home")
        MOVED = "moved", _("They moved out")
        REFUSED = "refused", _("Did not want to talk")
        VACANT = "vacant", _("The dwelling is empty")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="visits")
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"))
    visited_at = models.DateTimeField(_("visited at"))
    visited_by = _user_fk(_("visited by"))
    outcome = models.CharField(_("outcome"), max_length=12, choices=Outcome.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        indexes = [models.Index(fields=["household", "visited_at"], name="visit_history")]

    def __str__(self) -> str:
        return f"{self.household_id} {self.visited_at:%Y-%m-%d}"


class BlockCounts(models.Model):
    """Per-block counts kept by the services (ADR 0004); dashboards roll them up, never the raw rows."""

    node = models.OneToOneField(
        _NODE, on_delete=models.CASCADE, primary_key=True, related_name="registry_counts"
    )
    municipality = _municipality_fk()
    households = models.PositiveIntegerField(default=0)
    persons = models.PositiveIntegerField(default=0)
    priority_households = models.PositiveIntegerField(default=0)
    visited_households = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("block counts")
        verbose_name_plural = _("block counts")

    def __str__(self) -> str:
        return str(self.node_id)


class DataRequest(models.Model):
    """A data-subject (ARCO) request: access, rectification, cancellation or objection; due in 20 business days."""

    class Kind(models.TextChoices):
        ACCESS = "access", _("Access (a copy of my data)")
        RECTIFICATION = "rectification", _("Rectification")
        CANCELLATION = "cancellation", _("Cancellation")
        OBJECTION = "objection", _("Objection to a purpose")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        REJECTED = "rejected", _("Rejected")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="data_requests", verbose_name=_("person")
    )
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"))
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    received_at = models.DateTimeField(_("received at"))
    due_on = models.DateField(_("answer due"), db_index=True)
    details = models.TextField(_("what is asked"), blank=True)
    purpose = models.CharField(_("purpose objected to"), max_length=40, blank=True)
    changes = models.JSONField(_("corrections asked"), default=dict, blank=True)
    response = models.TextField(_("answer"), blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    answered_by = _user_fk(_("answered by"))
    created_by = _user_fk(_("registered by"))

    class Meta:
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class DuplicateCandidate(models.Model):
    """Two person records that may be the same person, with the score and the reasons; reviewed by a human."""

    class Status(models.TextChoices):
        PENDING = "pending", _("To review")
        MERGED = "merged", _("Merged")
        DISTINCT = "distinct", _("Different persons")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"))
    person_a = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    person_b = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(_("score"))
    reasons = models.JSONField(_("reasons"), default=list)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(_("found on"), max_length=10, default="entry")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = _user_fk(_("decided by"))

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        constraints = [models.UniqueConstraint(fields=["person_a", "person_b"], name="duplicate_pair_once")]
        indexes = [models.Index(fields=["municipality", "status", "score"], name="duplicate_queue")]

    def __str__(self) -> str:
        return f"{self.person_a_id}~{self.person_b_id}"


class Merge(models.Model):
    """History of a merge: the record that was folded into another, as it was (sensitive data stays encrypted)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    kept = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="merges")
    merged = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    snapshot = models.JSONField(default=dict)
    merged_at = models.DateTimeField(_("merged at"))
    merged_by = _user_fk(_("merged by"))

    class Meta:
        verbose_name = _("merge")
        verbose_name_plural = _("merges")

    def __str__(self) -> str:
        return f"{self.merged_id}→{self.kept_id}"


class ImportJob(models.Model):
    """A bulk import of households and persons from a CSV or XLSX file, run as a background task."""

    class Mode(models.TextChoices):
        VALID_ROWS = "valid_rows", _("Import the valid rows")
        ALL_OR_NOTHING = "all_or_nothing", _("Import nothing unless all rows are valid")

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        QUEUED = "queued", _("Waiting to start")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Finished")
        REJECTED = "rejected", _("Nothing imported: some rows are invalid")
        FAILED = "failed", _("Failed")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    node = models.ForeignKey(
        _NODE,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("territory"),
        help_text=_("Rows must fall under this node."),
    )
    filename = models.CharField(_("file"), max_length=200)
    stored_path = models.CharField(max_length=500, editable=False)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices, default=Mode.VALID_ROWS)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=20, blank=True)
    households_created = models.PositiveIntegerField(default=0)
    households_updated = models.PositiveIntegerField(default=0)
    persons_created = models.PositiveIntegerField(default=0)
    persons_updated = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    duplicates_flagged = models.PositiveIntegerField(default=0)
    #: The first row errors (row number, column, message); the full report is a CSV next to the file.
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = _user_fk(_("uploaded by"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.filename
