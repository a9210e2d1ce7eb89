"""Liaison posts: appoint, end, and coverage (the share of units with an active liaison)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.audit.services import record
from redes.core.db import lock_tree
from redes.core.phones import normalize_phone
from redes.territories.models import Node, NodeKind

from .models import LiaisonAssignment


@transaction.atomic
def assign_liaison(
    node: Node,
    *,
    full_name: str,
    phone: str = "",
    user=None,
    start_date: dt.date | None = None,
    actor=None,
    reason: str = "",
) -> LiaisonAssignment:
    """Appoint the liaison of ``node``; the current holder, if any, ends on the new start date (end dates are exclusive)."""
    if node.kind not in (NodeKind.UNIT, NodeKind.MUNICIPALITY):
        raise ValidationError(_("Liaison posts exist only in municipalities and their units."))
    full_name = (full_name or "").strip()
    if not full_name:
        raise ValidationError(_("The liaison's full name is required."))
    phone = normalize_phone(phone) if phone and phone.strip() else ""
    start = start_date or timezone.localdate()
    lock_tree(node.municipality_id)
    current = LiaisonAssignment.objects.select_for_update().filter(node=node, end_date__isnull=True).first()
    if current is not None:
        if start < current.start_date:
            raise ValidationError(
                _("The new liaison cannot start before the current one (%(date)s).")
                % {"date": current.start_date.isoformat()}
            )
        current.end_date = start
        current.end_reason = reason or _("Replaced")
        current.save(update_fields=["end_date", "end_reason"])
    assignment = LiaisonAssignment.objects.create(
        municipality_id=node.municipality_id,
        node=node,
        full_name=full_name,
        phone=phone,
        user=user,
        start_date=start,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    record(
        "liaisons.assignment.create",
        actor=actor,
        obj=assignment,
        node=node,
        changes={"replaced": str(current.uuid) if current else None, "start_date": start.isoformat()},
    )
    return assignment


@transaction.atomic
def end_liaison(
    assignment: LiaisonAssignment, *, actor=None, end_date: dt.date | None = None, reason: str = ""
) -> LiaisonAssignment:
    """Close a liaison post: the node becomes vacant from ``end_date`` (default today)."""
    assignment = LiaisonAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.end_date is not None:
        raise ValidationError(_("This liaison post has already ended."))
    end = end_date or timezone.localdate()
    if end < assignment.start_date:
        raise ValidationError(_("A post cannot end before it started."))
    assignment.end_date = end
    assignment.end_reason = reason.strip()[:200]
    assignment.save(update_fields=["end_date", "end_reason"])
    record(
        "liaisons.assignment.end",
        actor=actor,
        obj=assignment,
        node=assignment.node,
        changes={"end_date": end.isoformat(), "reason": assignment.end_reason},
    )
    return assignment


def _active_liaison_exists(on: dt.date | None = None) -> Exists:
    return Exists(LiaisonAssignment.objects.active(on).filter(node=OuterRef("pk")))


@dataclass(frozen=True)
class Coverage:
    covered: int
    total: int

    @property
    def ratio(self) -> float | None:
        return self.covered / self.total if self.total else None

    @property
    def vacant(self) -> int:
        return self.total - self.covered

    @property
    def percent(self) -> int | None:
        return None if self.total == 0 else round(100 * self.covered / self.total)


def coverage(node: Node, on: dt.date | None = None) -> Coverage:
    """The share of the units below ``node`` that have an active liaison."""
    row = (
        Node.objects.subtree(node, include_self=False)
        .units()
        .aggregate(total=Count("pk"), covered=Count("pk", filter=Q(_active_liaison_exists(on))))
    )
    return Coverage(covered=row["covered"] or 0, total=row["total"] or 0)


def coverage_by_child(node: Node, on: dt.date | None = None) -> dict[int, Coverage]:
    """Coverage of each child of ``node`` in one GROUP BY over the ancestor column of the child's depth."""
    key = f"a{node.depth + 1}"
    rows = (
        Node.objects.subtree(node, include_self=False)
        .units()
        .exclude(depth=node.depth + 1)
        .values(key)
        .annotate(total=Count("pk"), covered=Count("pk", filter=Q(_active_liaison_exists(on))))
    )
    return {r[key]: Coverage(r["covered"], r["total"]) for r in rows}


def vacant_posts(node: Node, on: dt.date | None = None):
    """Units below ``node`` with no active liaison, shallowest first."""
    return (
        Node.objects.subtree(node, include_self=False)
        .units()
        .exclude(_active_liaison_exists(on))
        .order_by("depth", "code")
    )


def current_liaisons(nodes) -> dict[int, LiaisonAssignment]:
    """The active assignment of each node in ``nodes`` (one query)."""
    rows = LiaisonAssignment.objects.active().filter(node__in=nodes)
    return {a.node_id: a for a in rows}
