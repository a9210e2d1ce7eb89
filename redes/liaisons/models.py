import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AssignmentQuerySet(models.QuerySet):
    def active(self, on=None):
        on = on or timezone.localdate()
        return self.filter(start_date__lte=on).filter(
            models.Q(end_date__isnull=True) | models.Q(end_date__gt=on)
        )


class LiaisonAssignment(models.Model):
    """A person holds the liaison post ("enlace") of a node from ``start_date`` until ``end_date``.

    The rows of a node are its history; at most one is open (no end date) at a time.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    municipality = models.ForeignKey(
        "territories.Municipality", on_delete=models.CASCADE, related_name="+", verbose_name=_("municipality")
    )
    node = models.ForeignKey(
        "territories.Node",
        on_delete=models.CASCADE,
        related_name="liaison_assignments",
        verbose_name=_("territory node"),
    )
    full_name = models.CharField(_("full name"), max_length=200)
    phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user account"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="liaison_assignments",
    )
    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("until"), null=True, blank=True)
    end_reason = models.CharField(_("reason for ending"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("appointed by"),
    )

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("liaison assignment")
        verbose_name_plural = _("liaison assignments")
        ordering = ["node", "-start_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["node"], condition=models.Q(end_date__isnull=True), name="one_open_liaison_per_node"
            ),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="liaison_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} @ {self.node_id}"

    @property
    def is_active(self) -> bool:
        today = timezone.localdate()
        return self.start_date <= today and (self.end_date is None or self.end_date > today)
