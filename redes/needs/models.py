"""Needs and cases: categories, intake, triage, deadlines, escalation, referrals (see docs/needs.md).

A ``Need`` is reported on a block (``node``) and held by the liaison of ``holder_node``, which climbs the tree
when a deadline passes (``services.escalate_overdue``). Every change is a ``NeedEvent`` (the timeline). The
description of a sensitive need (violence) lives only in ``sensitive_text``, encrypted (``registry.crypto``).
All writes go through ``needs.services``; reads through ``needs.queries``.
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from redes.core import clock
from redes.core.fields import NODE as _NODE
from redes.core.fields import municipality_fk as _municipality_fk
from redes.core.fields import user_fk as _user_fk
from redes.territories.models import MUNICIPALITY_DEPTH

#: The built-in categories: code → (translated label, sensitive). ``services.ensure_defaults`` creates them.
DEFAULT_CATEGORIES = {
    "alimentacion": (_("Food"), False),
    "salud": (_("Medicines and health"), False),
    "emocional": (_("Emotional support"), False),
    "seguridad": (_("Public safety"), False),
    "violencia": (_("Domestic or gender violence"), True),
    "economia": (_("Income and employment"), False),
    "informacion": (_("Information"), False),
    "otro": (_("Other"), False),
}


class Urgency(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class NeedChannel(models.TextChoices):
    FIELD = "field", _("Liaison (web app)")
    HOTLINE = "hotline", _("Hotline")
    PUBLIC = "public", _("Public form")
    API = "api", _("API")
    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    TELEGRAM = "telegram", _("Telegram")
    CONSOLE = "console", _("Console")


class NeedStatus(models.TextChoices):
    NEW = "new", _("New")
    TRIAGED = "triaged", _("Triaged")
    ASSIGNED = "assigned", _("Assigned")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")
    DUPLICATE = "duplicate", _("Duplicate")


S = NeedStatus
OPEN_STATUSES: tuple[str, ...] = (S.NEW, S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS)
FINAL_STATUSES: tuple[str, ...] = (S.RESOLVED, S.CLOSED, S.CANCELLED, S.DUPLICATE)
_REOPEN = frozenset({S.TRIAGED})
_ENDINGS = frozenset({S.RESOLVED, S.CLOSED, S.CANCELLED, S.DUPLICATE})

#: The lifecycle: from → the statuses it may move to. Closing needs no resolution first (it records one);
#: reopening goes back to "triaged".
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS}) | _ENDINGS,
    S.TRIAGED: frozenset({S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS}) | _ENDINGS,
    S.ASSIGNED: frozenset({S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS}) | _ENDINGS,
    S.IN_PROGRESS: frozenset({S.TRIAGED, S.ASSIGNED}) | _ENDINGS,
    S.RESOLVED: frozenset({S.CLOSED}) | _REOPEN,
    S.CLOSED: _REOPEN,
    S.CANCELLED: _REOPEN,
    S.DUPLICATE: _REOPEN,
}

_OPEN_Q = Q(status__in=OPEN_STATUSES)


class Outcome(models.TextChoices):
    SOLVED = "solved", _("Solved")
    PARTLY_SOLVED = "partly_solved", _("Partly solved")
    REFERRED = "referred", _("Referred to an office")
    NOT_SOLVED = "not_solved", _("Not solved")
    UNREACHABLE = "unreachable", _("The person could not be reached")
    WITHDRAWN = "withdrawn", _("Withdrawn by the person")


class NeedCategory(models.Model):
    """A node of a municipality's category tree; ``sensitive`` categories (violence) get case-officer handling."""

    municipality = _municipality_fk(db_index=False)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent category"),
    )
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(
        _("name"), max_length=120, blank=True, help_text=_("Empty: the built-in name of a default category.")
    )
    sensitive = models.BooleanField(
        _("sensitive"),
        default=False,
        help_text=_("Only case officers see these needs (violence); the description is encrypted."),
    )
    active = models.BooleanField(_("active"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("need category")
        verbose_name_plural = _("need categories")
        ordering = ["municipality", "order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "code"], name="need_category_code_unique"),
        ]

    def __str__(self) -> str:
        return str(self.label)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        default = DEFAULT_CATEGORIES.get(self.code)
        return str(default[0]) if default else self.code


class Office(models.Model):
    """A municipal office (DIF, health, public security, women's institute) or a hotline needs are referred to."""

    class Kind(models.TextChoices):
        OFFICE = "office", _("Office")
        HOTLINE = "hotline", _("Hotline")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.OFFICE)
    name = models.CharField(_("name"), max_length=200)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    hours = models.CharField(_("opening hours"), max_length=200, blank=True)
    categories = models.ManyToManyField(
        NeedCategory, blank=True, related_name="offices", verbose_name=_("categories")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("office or hotline")
        verbose_name_plural = _("offices and hotlines")
        ordering = ["municipality", "kind", "name"]

    def __str__(self) -> str:
        return self.name


class WorkingGroup(models.Model):
    """Volunteers and liaisons who take on needs of a theme in part of the territory."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    node = models.ForeignKey(
        _NODE, on_delete=models.CASCADE, related_name="+", verbose_name=_("territory node")
    )
    name = models.CharField(_("name"), max_length=200)
    theme = models.ForeignKey(
        NeedCategory,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("theme"),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="working_groups", verbose_name=_("members")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("working group")
        verbose_name_plural = _("working groups")
        ordering = ["municipality", "name"]

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Where new needs of a category (under a node) go; without a rule, the block's liaison holds them."""

    class Target(models.TextChoices):
        LIAISON = "liaison", _("The liaison of the block")
        USER = "user", _("A person")
        GROUP = "group", _("A working group")
        OFFICE = "office", _("An office or hotline")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk()
    category = models.ForeignKey(
        NeedCategory, on_delete=models.CASCADE, related_name="+", verbose_name=_("category")
    )
    node = models.ForeignKey(
        _NODE,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("under"),
        help_text=_("Empty: the whole municipality."),
    )
    target = models.CharField(_("send to"), max_length=10, choices=Target.choices, default=Target.LIAISON)
    user = _user_fk(_("person"))
    group = models.ForeignKey(
        WorkingGroup,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("working group"),
    )
    office = models.ForeignKey(
        Office, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("office")
    )
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")
        ordering = ["municipality", "order", "id"]

    def __str__(self) -> str:
        return f"{self.category_id} → {self.target}"


#: Built-in deadlines (minutes): urgency → (acknowledge, resolve).
DEFAULT_DEADLINES = {
    Urgency.CRITICAL: (60, 1440),
    Urgency.HIGH: (240, 4320),
    Urgency.NORMAL: (1440, 10080),
    Urgency.LOW: (4320, 20160),
}


class DeadlinePolicy(models.Model):
    """Minutes to acknowledge and to resolve a need of a category (empty: any) and urgency."""

    municipality = _municipality_fk(db_index=False)
    category = models.ForeignKey(
        NeedCategory,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
        help_text=_("Empty: every category without its own deadline."),
    )
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices)
    ack_minutes = models.PositiveIntegerField(_("minutes to acknowledge"))
    resolve_minutes = models.PositiveIntegerField(_("minutes to resolve"))

    class Meta:
        verbose_name = _("deadline")
        verbose_name_plural = _("deadlines")
        ordering = ["municipality", "category", "urgency"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "category", "urgency"], name="need_deadline_unique"
            ),
            models.UniqueConstraint(
                fields=["municipality", "urgency"],
                condition=Q(category__isnull=True),
                name="need_deadline_default_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.urgency}: {self.ack_minutes}/{self.resolve_minutes}"


def reference_of(record) -> str:
    """The short code people quote on the phone or by message (the first 8 hex digits of a need's UUID; of any
    record with a UUID, e.g. a household in a liaison's numbered list)."""
    return record.uuid.hex[:8].upper()


class Need(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No FK index: municipality leads the queue indexes.
    municipality = _municipality_fk(db_index=False)
    # No FK index: node leads need_node_open / need_node_status.
    node = models.ForeignKey(
        _NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("block"), db_index=False
    )
    holder_node = models.ForeignKey(
        _NODE,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("held at"),
        db_index=False,
        help_text=_("The node whose liaison holds the need now; it climbs on escalation."),
    )
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    # The optional foreign keys get partial indexes (only rows that have one; see Meta), so that the sweep's
    # updates do not write an index entry per need for each of them.
    household = models.ForeignKey(
        "registry.Household",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="needs",
        verbose_name=_("household"),
        db_index=False,
    )
    person = models.ForeignKey(
        "registry.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="needs",
        verbose_name=_("person"),
        db_index=False,
    )
    # No index: category filters ride on the queue indexes; deleting a category is rare (PROTECT).
    category = models.ForeignKey(
        NeedCategory,
        on_delete=models.PROTECT,
        related_name="needs",
        verbose_name=_("category"),
        db_index=False,
    )
    description = models.TextField(_("description"), blank=True)
    sensitive = models.BooleanField(_("sensitive"), default=False)
    #: Encrypted JSON (``{"text": ...}``) of a sensitive need's description; read via ``services.read_sensitive``.
    sensitive_text = models.TextField(blank=True, editable=False)
    lat = models.FloatField(_("latitude"), null=True, blank=True)
    lon = models.FloatField(_("longitude"), null=True, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    urgency = models.CharField(_("urgency"), max_length=10, choices=Urgency.choices, default=Urgency.NORMAL)
    channel = models.CharField(_("channel"), max_length=10, choices=NeedChannel.choices)
    status = models.CharField(_("status"), max_length=12, choices=NeedStatus.choices, default=NeedStatus.NEW)
    assigned_user = _user_fk(_("assigned to"), db_index=False)
    assigned_group = models.ForeignKey(
        WorkingGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="needs",
        verbose_name=_("working group"),
        db_index=False,
    )
    assigned_office = models.ForeignKey(
        Office,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="needs",
        verbose_name=_("office"),
        db_index=False,
    )
    # No index: "reported by me" is only ever combined with a territory filter.
    reported_by = _user_fk(_("reported by"), db_index=False)
    ack_due = models.DateTimeField(_("acknowledge by"), null=True, blank=True)
    resolve_due = models.DateTimeField(_("resolve by"), null=True, blank=True)
    #: The deadline shown and sorted on: ``ack_due`` until acknowledged, then ``resolve_due``; null when closed.
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    #: Minutes to acknowledge (from the deadline policy at intake/triage): the window after each escalation.
    ack_minutes = models.PositiveIntegerField(default=0, editable=False)
    #: The next instant the sweep looks at (null when nothing is pending).
    escalate_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, blank=True)
    outcome_note = models.TextField(_("outcome note"), blank=True)
    satisfaction = models.PositiveSmallIntegerField(
        _("satisfaction"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text=_("From 1 (very unsatisfied) to 5 (very satisfied)."),
    )
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicates",
        verbose_name=_("duplicate of"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"), default=clock.now)
    updated_at = models.DateTimeField(_("updated at"), default=clock.now)

    class Meta:
        verbose_name = _("need")
        verbose_name_plural = _("needs")
        ordering = ["-created_at", "-id"]
        # ``escalate_at`` is not indexed: the sweep finds its candidates through ``due_at`` (never later than
        # ``escalate_at`` for an open need), which ``need_muni_open`` orders. ``holder_node`` is (the queues
        # "held by me" and "escalated to you"), so the sweep's updates are not HOT; see docs/needs.md.
        indexes = [
            # Queues of open needs, most due first: per block, per holder, per municipality.
            models.Index(fields=["node", "due_at", "id"], condition=_OPEN_Q, name="need_node_open"),
            models.Index(fields=["holder_node", "due_at", "id"], condition=_OPEN_Q, name="need_holder_open"),
            models.Index(fields=["municipality", "due_at", "id"], condition=_OPEN_Q, name="need_muni_open"),
            # Any status, newest first.
            models.Index(fields=["node", "status", "created_at"], name="need_node_status"),
            models.Index(fields=["municipality", "status", "created_at"], name="need_muni_status"),
            *(
                models.Index(fields=[f], condition=Q(**{f"{f}__isnull": False}), name=f"need_{f}")
                for f in (
                    "household",
                    "person",
                    "assigned_user",
                    "assigned_group",
                    "assigned_office",
                    "duplicate_of",
                )
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="need_satisfaction_1_5",
            ),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at <= clock.now()

    @property
    def holder_label(self) -> str:
        """Who holds the need: the assignee if any, else the holder node (the coordination at the top)."""
        if self.assigned_user_id:
            return self.assigned_user.display_name
        if self.assigned_group_id:
            return self.assigned_group.name
        if self.assigned_office_id:
            return self.assigned_office.name
        if self.holder_node.depth <= MUNICIPALITY_DEPTH:
            return str(_("Municipal coordination"))
        return self.holder_node.name

    def can_move_to(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, frozenset())


class NeedEvent(models.Model):
    """One line of a need's timeline. ``data`` holds no personal data (sensitive notes are encrypted)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Registered")
        TRIAGED = "triaged", _("Triaged")
        ASSIGNED = "assigned", _("Assigned")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        STARTED = "started", _("Work started")
        ESCALATED = "escalated", _("Escalated")
        REFERRED = "referred", _("Referred")
        REFERRAL_UPDATED = "referral_updated", _("Referral updated")
        RESOLVED = "resolved", _("Resolved")
        CLOSED = "closed", _("Closed")
        CANCELLED = "cancelled", _("Cancelled")
        MARKED_DUPLICATE = "marked_duplicate", _("Marked as duplicate")
        REOPENED = "reopened", _("Reopened")
        NOTE = "note", _("Note")

    # No FK index: need_event_need_at (need, at) serves every lookup by need.
    need = models.ForeignKey(
        Need, on_delete=models.CASCADE, related_name="events", verbose_name=_("need"), db_index=False
    )
    at = models.DateTimeField(_("at"), default=clock.now)
    actor = _user_fk(_("by"), db_index=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    from_status = models.CharField(_("from"), max_length=12, choices=NeedStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=12, choices=NeedStatus.choices, blank=True)
    # No index: escalations per node are counted over the events of the needs of an area.
    node = models.ForeignKey(
        _NODE,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("node"),
        db_index=False,
    )
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("need event")
        verbose_name_plural = _("need events")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["need", "at"], name="need_event_need_at")]

    def __str__(self) -> str:
        return f"{self.need_id} {self.kind}"


class Referral(models.Model):
    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        ACCEPTED = "accepted", _("Accepted")
        RESOLVED = "resolved", _("Resolved")
        REJECTED = "rejected", _("Rejected")
        NO_ANSWER = "no_answer", _("No answer")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    need = models.ForeignKey(Need, on_delete=models.CASCADE, related_name="referrals", verbose_name=_("need"))
    office = models.ForeignKey(
        Office, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("office")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SENT)
    note = models.TextField(_("note"), blank=True)
    outcome = models.TextField(_("outcome"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=clock.now)
    created_by = _user_fk(_("referred by"), db_index=False)
    updated_at = models.DateTimeField(_("updated at"), default=clock.now)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return str(self.uuid)


class Notification(models.Model):
    """An in-app notice to a user about a need (the messaging issue also sends them). No personal data."""

    class Kind(models.TextChoices):
        ESCALATED = "escalated", _("A need was escalated to you")
        ASSIGNED = "assigned", _("A need was assigned to you")
        REFERRED = "referred", _("A need was referred")
        SENSITIVE = "sensitive", _("A sensitive report needs a case officer")
        REFERRAL_UPDATED = "referral_updated", _("A referral was updated")
        REOPENED = "reopened", _("A need was reopened")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="need_notifications",
        verbose_name=_("user"),
        db_index=False,
    )
    need = models.ForeignKey(
        Need,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("need"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=clock.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="need_notif_user"),
            models.Index(
                fields=["user", "created_at"], condition=Q(read_at__isnull=True), name="need_notif_unread"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}"
