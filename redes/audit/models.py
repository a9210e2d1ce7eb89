"""The append-only audit log ("bitácora"): who did what to which record, when and through which channel.

Rows are never updated or deleted: the model refuses it, and the database refuses it too (triggers added by
migration ``0002_append_only_triggers``). Never put personal data in ``summary``: name the record by its id.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .context import Channel


class AppendOnlyError(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be changed")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")


class Outcome(models.TextChoices):
    OK = "ok", _("Done")
    DENIED = "denied", _("Denied")
    REJECTED = "rejected", _("Rejected (invalid input)")


class AuditEvent(models.Model):
    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who"),
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(_("who (as recorded)"), max_length=150, blank=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices, default=Outcome.OK)
    object_type = models.CharField(_("record type"), max_length=64, blank=True)
    object_id = models.CharField(_("record id"), max_length=64, blank=True, db_index=True)
    municipality = models.ForeignKey(
        "territories.Municipality",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("municipality"),
    )
    node_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("territory node id"))
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("IP address"))

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["municipality", "-at"], name="audit_muni_at")]

    def __str__(self) -> str:
        return (
            f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}:{self.object_id}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")
