"""Messaging: channel accounts, contacts, the inbound store, the outbox, broadcasts with their cascade,
the group registry, message templates and conversation flows (see ``docs/messaging.md``).

Personal data: a contact's address (phone number or chat id) and message bodies are personal data; they are
shown only to roles holding ``VIEW_PERSONAL`` over the contact's node (or ``MANAGE_MESSAGING`` for contacts with
no node), never to observers. Audit rows name records by UUID, never by number or text.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from redes.core import clock
from redes.core.fields import NODE as _NODE
from redes.core.fields import municipality_fk as _municipality_fk
from redes.core.fields import user_fk as _user_fk


class Provider(models.TextChoices):
    """The adapter behind an account; each lives in ``messaging/channels/<provider>/``."""

    CONSOLE = "console", _("Console (built in)")
    WHATSAPP = "whatsapp", _("WhatsApp Cloud API")
    TWILIO = "twilio", _("Twilio SMS")
    GATEWAY = "gateway", _("SMS gateway (HTTP)")
    TELEGRAM = "telegram", _("Telegram bot")


class Medium(models.TextChoices):
    """What reaches the person's phone: the medium a contact prefers, whichever provider carries it."""

    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")
    TELEGRAM = "telegram", _("Telegram")
    CONSOLE = "console", _("Console")


#: The medium each provider carries.
PROVIDER_MEDIUM = {
    Provider.CONSOLE: Medium.CONSOLE,
    Provider.WHATSAPP: Medium.WHATSAPP,
    Provider.TWILIO: Medium.SMS,
    Provider.GATEWAY: Medium.SMS,
    Provider.TELEGRAM: Medium.TELEGRAM,
}


class ChannelAccount(models.Model):
    """One number or bot of a municipality at a provider. Secrets are encrypted at rest (``registry.crypto``).

    ``config`` holds what is not secret (API base URL, phone number id, account SID, sender number, bot name);
    ``secrets`` holds the encrypted JSON of tokens (access token, app secret, verify token, auth token, bot
    token, webhook secret). ``medium`` says what it carries; the console account stands in for every medium
    when a municipality has no real account for it (the embedded default, so the demo needs no provider).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(related_name="channel_accounts")
    provider = models.CharField(_("provider"), max_length=10, choices=Provider.choices)
    name = models.CharField(_("name"), max_length=80)
    address = models.CharField(
        _("number or bot"),
        max_length=64,
        blank=True,
        help_text=_("The number people write to, or the bot's name."),
    )
    config = models.JSONField(_("settings"), default=dict, blank=True)
    secrets = models.TextField(blank=True, editable=False)
    rate_per_second = models.FloatField(_("messages per second"), default=80.0)
    burst = models.PositiveIntegerField(_("burst"), default=80)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        verbose_name = _("channel account")
        verbose_name_plural = _("channel accounts")
        ordering = ["municipality", "provider", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["municipality", "provider", "name"], name="channel_account_name_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.name}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        from .ingest import forget_accounts  # the webhooks' short-lived cache of accounts

        forget_accounts()

    @property
    def medium(self) -> str:
        return PROVIDER_MEDIUM[Provider(self.provider)]


class Contact(models.Model):
    """Someone the network writes to or hears from: one per municipality and address.

    ``address`` is the E.164 key of a phone (``core.phones.normalize_phone``) or ``telegram:<chat id>``. Links
    to a household, a person or a user account are optional (an unknown sender has none). ``node`` is where
    the contact lives in the territory (the household's block, or the liaison's node), used by targeting and
    by access. ``state`` is the conversation in progress (flow, step, variables, expiry).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(db_index=False)
    address = models.CharField(_("number or chat"), max_length=64)
    whatsapp = models.BooleanField(_("has WhatsApp"), default=False)
    preferred = models.CharField(
        _("preferred channel"), max_length=10, choices=Medium.choices, default=Medium.SMS
    )
    household = models.ForeignKey(
        "registry.Household",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("household"),
        db_index=False,
    )
    person = models.ForeignKey(
        "registry.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("person"),
        db_index=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("user account"),
        db_index=False,
    )
    node = models.ForeignKey(
        _NODE,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("territory node"),
    )
    language = models.CharField(_("language"), max_length=10, default="es-mx")
    #: Explicit opt-in by message ("ALTA"); broadcasts to households also accept a registry consent to messages.
    opted_in_at = models.DateTimeField(_("opted in"), null=True, blank=True)
    #: "BAJA": nothing but the confirmation is sent until the contact opts back in.
    opted_out_at = models.DateTimeField(_("opted out"), null=True, blank=True)
    #: The last message received: WhatsApp allows free text within 24 h of it, templates otherwise.
    last_inbound_at = models.DateTimeField(_("last message received"), null=True, blank=True)
    last_inbound_medium = models.CharField(max_length=10, choices=Medium.choices, blank=True)
    state = models.JSONField(default=dict, blank=True, editable=False)
    #: Flood control: messages counted in the current window and when the window began.
    flood_count = models.PositiveIntegerField(default=0, editable=False)
    flood_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["municipality", "address"], name="contact_address_unique")
        ]
        indexes = [
            models.Index(
                fields=["household"], condition=Q(household__isnull=False), name="contact_household"
            ),
            models.Index(fields=["user"], condition=Q(user__isnull=False), name="contact_user"),
        ]

    def __str__(self) -> str:
        return str(self.uuid)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


class WebhookLog(models.Model):
    """Every request a webhook received, stored before anything is parsed: nothing is lost, and a payload
    that could not be read stays here for inspection (``outcome`` says why)."""

    class Outcome(models.TextChoices):
        STORED = "stored", _("Stored")
        DUPLICATE = "duplicate", _("Already received (provider retry)")
        MALFORMED = "malformed", _("Could not be read")
        FORGED = "forged", _("Signature missing or wrong")
        IGNORED = "ignored", _("Nothing to process")

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        ChannelAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    municipality = _municipality_fk(db_index=False)
    received_at = models.DateTimeField(_("received at"), default=clock.now)
    body = models.TextField(_("raw payload"), blank=True)
    truncated = models.BooleanField(default=False)
    headers = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    error = models.CharField(_("error"), max_length=300, blank=True)
    events = models.PositiveIntegerField(_("events"), default=0)

    class Meta:
        verbose_name = _("webhook request")
        verbose_name_plural = _("webhook requests")
        indexes = [models.Index(fields=["municipality", "-received_at"], name="webhook_log_recent")]

    def __str__(self) -> str:
        return f"{self.received_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class Inbound(models.Model):
    """One event a provider reported: a message from a person, or a status of a message we sent.

    Unique per account and provider id, so a provider's retry never creates a second row. Rows are processed
    by the dispatcher (``intake.process_pending``) after the webhook answered: ``processed_at`` stays empty
    until then, and a failure is kept in ``error`` with the row.
    """

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        INTERACTIVE = "interactive", _("Button or list reply")
        LOCATION = "location", _("Location")
        MEDIA = "media", _("Media or other (not read)")
        STATUS = "status", _("Delivery status")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DONE = "done", _("Processed")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored")

    id = models.BigAutoField(primary_key=True)
    municipality = _municipality_fk(db_index=False)
    account = models.ForeignKey(ChannelAccount, on_delete=models.CASCADE, related_name="+", db_index=False)
    log = models.ForeignKey(
        WebhookLog, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    provider_id = models.CharField(_("provider id"), max_length=128)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    sender = models.CharField(_("from"), max_length=64, blank=True, help_text=_("Normalised address."))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound", db_index=False
    )
    text = models.TextField(_("text"), blank=True)
    #: The event as the adapter parsed it (location, button id, status, error codes, media type...).
    data = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), default=clock.now)
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default=State.PENDING)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("received message")
        verbose_name_plural = _("received messages")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "provider_id", "kind"], name="inbound_once_per_provider_id"
            )
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(state="pending"), name="inbound_pending"),
            models.Index(
                fields=["contact", "-received_at"], condition=Q(contact__isnull=False), name="inbound_contact"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.provider_id}"


class Outbound(models.Model):
    """One message to send, in the outbox until a provider took it; then its delivery status.

    A broadcast's rows carry no body of their own (it is rendered from the broadcast when sent), so building
    the outbox of a large broadcast is one narrow ``INSERT … SELECT``. ``lease_until`` marks a row a worker has
    claimed; a row whose lease expired while ``sending`` is *in doubt* (the worker died mid-call) and is
    reconciled from the provider's status callbacks before it is ever sent again (``outbox``).

    Its foreign keys are not database constraints (``db_constraint=False``): PostgreSQL checks a constraint
    row by row at commit, which cost more than the rest of building a 500k-row outbox. The ORM still cascades
    (and protects) on delete; ``broadcasts.build_outbox`` takes the parent rows' key-share locks once instead.
    Reply and notification rows are written through the ORM with existing contacts and accounts.
    """

    class Kind(models.TextChoices):
        REPLY = "reply", _("Reply")
        NOTIFICATION = "notification", _("Notification")
        BROADCAST = "broadcast", _("Broadcast")
        CASCADE = "cascade", _("Cascade relay")
        REMINDER = "reminder", _("Reminder")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not sent (opted out or no consent)")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.BigAutoField(primary_key=True)
    municipality = models.ForeignKey(
        "territories.Municipality",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("municipality"),
        db_index=False,
        db_constraint=False,
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="outbound", db_index=False, db_constraint=False
    )
    account = models.ForeignKey(
        ChannelAccount, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    broadcast = models.ForeignKey(
        "Broadcast",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="outbound",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.REPLY)
    #: 0 is sent first (replies, notifications); broadcasts use 5.
    priority = models.PositiveSmallIntegerField(default=0)
    body = models.TextField(_("text"), blank=True)
    #: Template key and variables when the text is rendered at send time (or a WhatsApp template is needed).
    template = models.CharField(max_length=60, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=40, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=128, blank=True)
    error_code = models.CharField(_("error code"), max_length=20, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    fallback_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    created_at = models.DateTimeField(_("created at"), default=clock.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message to send")
        verbose_name_plural = _("outbox")
        constraints = [
            models.UniqueConstraint(
                fields=["broadcast", "contact", "kind"],
                condition=Q(broadcast__isnull=False),
                name="outbound_once_per_broadcast",
            )
        ]
        indexes = [
            models.Index(
                fields=["priority", "next_attempt_at", "id"],
                condition=Q(status__in=["queued", "sending"]),
                name="outbound_due",
            ),
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="outbound_provider_id"),
            models.Index(fields=["contact", "-created_at"], name="outbound_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.status}"


class Group(models.Model):
    """A WhatsApp (or Telegram) group of the network, its rules and moderators, linked to a territory node
    and, for theme groups, a working group."""

    class Kind(models.TextChoices):
        BLOCK = "block", _("Block or street")
        SECTOR = "sector", _("Sector")
        MUNICIPAL = "municipal", _("Municipality")
        THEME = "theme", _("Theme")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(db_index=False)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    medium = models.CharField(_("app"), max_length=10, choices=Medium.choices, default=Medium.WHATSAPP)
    node = models.ForeignKey(
        _NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("territory node")
    )
    working_group = models.ForeignKey(
        "needs.WorkingGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_groups",
        verbose_name=_("working group"),
    )
    invite_link = models.URLField(_("invite link"), blank=True)
    rules = models.TextField(_("rules"), blank=True)
    moderators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="moderated_groups", verbose_name=_("moderators")
    )
    members = models.ManyToManyField(Contact, blank=True, related_name="groups", verbose_name=_("members"))
    members_count = models.PositiveIntegerField(_("members (as reported)"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        verbose_name = _("group")
        verbose_name_plural = _("groups")
        ordering = ["municipality", "kind", "name"]
        constraints = [models.UniqueConstraint(fields=["municipality", "name"], name="group_name_unique")]

    def __str__(self) -> str:
        return self.name


class MessageTemplate(models.Model):
    """A message text of a municipality, in Spanish, with ``{placeholders}``; optionally the name of the
    approved WhatsApp template to use outside the 24-hour window."""

    class WhatsAppStatus(models.TextChoices):
        NONE = "", _("Not submitted")
        PENDING = "pending", _("Submitted, waiting for approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(db_index=False)
    key = models.SlugField(_("key"), max_length=60)
    name = models.CharField(_("name"), max_length=120)
    body = models.TextField(_("text"))
    whatsapp_name = models.CharField(_("WhatsApp template name"), max_length=120, blank=True)
    whatsapp_language = models.CharField(_("WhatsApp template language"), max_length=10, default="es_MX")
    whatsapp_status = models.CharField(
        _("WhatsApp approval"), max_length=10, choices=WhatsAppStatus.choices, default="", blank=True
    )
    system = models.BooleanField(_("used by the system"), default=False)
    updated_at = models.DateTimeField(_("updated at"), default=clock.now)
    updated_by = _user_fk(_("updated by"), db_index=False)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["municipality", "key"]
        constraints = [
            models.UniqueConstraint(fields=["municipality", "key"], name="message_template_key_unique")
        ]

    def __str__(self) -> str:
        return self.key


class Flow(models.Model):
    """A conversation menu as data (``flows.py`` validates and runs it), editable per municipality."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(db_index=False)
    key = models.SlugField(_("key"), max_length=40)
    name = models.CharField(_("name"), max_length=120)
    definition = models.JSONField(_("definition"), default=dict)
    version = models.PositiveIntegerField(_("version"), default=1)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), default=clock.now)
    updated_by = _user_fk(_("updated by"), db_index=False)

    class Meta:
        verbose_name = _("conversation flow")
        verbose_name_plural = _("conversation flows")
        ordering = ["municipality", "key"]
        constraints = [models.UniqueConstraint(fields=["municipality", "key"], name="flow_key_unique")]

    def __str__(self) -> str:
        return self.key


class Broadcast(models.Model):
    """A message to many: a territory subtree's households, holders of a role, a group, or a segment.

    In cascade mode the message goes down the liaison tree: each node's liaison acknowledges and the message is
    then released to the liaisons of its children (and, at the last level, to the households when
    ``reach_households``); ``CascadeNode`` rows track every node.
    """

    class Target(models.TextChoices):
        SUBTREE = "subtree", _("Everyone in a territory")
        ROLE = "role", _("People with a role")
        GROUP = "group", _("A group")
        SEGMENT = "segment", _("A segment of households")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = _municipality_fk(db_index=False)
    node = models.ForeignKey(_NODE, on_delete=models.PROTECT, related_name="+", verbose_name=_("territory"))
    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("message"))
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("WhatsApp template (outside the 24-hour window)"),
    )
    target = models.CharField(_("to"), max_length=10, choices=Target.choices, default=Target.SUBTREE)
    roles = models.JSONField(_("roles"), default=list, blank=True)
    group = models.ForeignKey(
        Group,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="broadcasts",
        verbose_name=_("group"),
    )
    #: Segment filters: {"min_priority": int, "categories": [need category codes], "vulnerable": bool}.
    segment = models.JSONField(_("segment"), default=dict, blank=True)
    cascade = models.BooleanField(_("cascade down the liaison tree"), default=False)
    reach_households = models.BooleanField(_("the last level sends to households"), default=False)
    ack_minutes = models.PositiveIntegerField(_("minutes to acknowledge"), default=60)
    remind_minutes = models.PositiveIntegerField(_("remind after (minutes)"), default=30)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    recipients = models.PositiveIntegerField(_("recipients"), default=0)
    created_at = models.DateTimeField(_("created at"), default=clock.now)
    created_by = _user_fk(_("sent by"), db_index=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["municipality", "-created_at"], name="broadcast_recent")]

    def __str__(self) -> str:
        return self.title


class CascadeNode(models.Model):
    """One territory node of a cascade broadcast: its liaison, when the message reached them, their
    acknowledgement, reminders and escalation."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting for the level above")
        SENT = "sent", _("Sent, not acknowledged")
        ACKED = "acked", _("Acknowledged")
        OVERDUE = "overdue", _("Not acknowledged in time")
        VACANT = "vacant", _("No liaison: passed on")

    id = models.BigAutoField(primary_key=True)
    broadcast = models.ForeignKey(
        Broadcast, on_delete=models.CASCADE, related_name="cascade_nodes", db_index=False
    )
    node = models.ForeignKey(_NODE, on_delete=models.CASCADE, related_name="+")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    depth = models.PositiveSmallIntegerField()
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    user = _user_fk(_("liaison"), db_index=False)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.WAITING)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    acked_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    ack_via = models.CharField(_("acknowledged through"), max_length=10, blank=True)
    reminders = models.PositiveSmallIntegerField(_("reminders"), default=0)
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("cascade node")
        verbose_name_plural = _("cascade nodes")
        constraints = [models.UniqueConstraint(fields=["broadcast", "node"], name="cascade_node_once")]
        indexes = [
            models.Index(fields=["broadcast", "depth", "status"], name="cascade_progress"),
            models.Index(fields=["due_at"], condition=Q(status="sent"), name="cascade_due"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id} {self.status}"


class RateBucket(models.Model):
    """A token bucket kept in the database, for installations without Redis (``ratelimit``)."""

    key = models.CharField(max_length=100, primary_key=True)
    tokens = models.FloatField(default=0)
    updated = models.FloatField(default=0, help_text="time.time() of the last refill")

    def __str__(self) -> str:
        return self.key


class Cursor(models.Model):
    """How far a background reader has got in an append-only table (e.g. need notifications sent out)."""

    name = models.CharField(max_length=60, primary_key=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.position}"
