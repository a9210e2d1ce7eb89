"""Scoped reads of messaging for the API and the pages (through ``accounts.scoping``, the one door).

- Broadcasts: those under the user's ``BROADCAST`` grants, and those whose cascade reached the user as a liaison
  (not before the level above passed it on).
- Groups, contacts, the outbox and the inbox hold personal data (phones, texts): ``VIEW_PERSONAL`` over the
  contact's (or group's) node; rows with no node are for those holding ``MANAGE_MESSAGING`` over the
  municipality (coordinators). Observers get nothing here (aggregates only: ``broadcasts.progress`` counts).
- Channel accounts, templates and flows: ``MANAGE_MESSAGING`` over the municipality.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from redes.accounts import scoping
from redes.accounts.roles import Perm

from .models import (
    Broadcast,
    CascadeNode,
    ChannelAccount,
    Contact,
    Flow,
    Group,
    Inbound,
    MessageTemplate,
    Outbound,
)


def managed_municipality_ids(user, perm: str = Perm.MANAGE_MESSAGING) -> list[int] | None:
    """Municipalities whose whole territory the user holds ``perm`` over; None means all (superusers)."""
    if scoping.scope_q(user, perm) is None:
        return None
    return [
        m.pk
        for m in scoping.municipalities(user, perm).select_related("node")
        if scoping.can(user, perm, m.node)
    ]


def _in_managed(qs: QuerySet, user, field: str = "municipality_id") -> QuerySet:
    ids = managed_municipality_ids(user)
    return qs if ids is None else qs.filter(**{f"{field}__in": ids})


def broadcasts_for(user) -> QuerySet:
    q = scoping.scope_q(user, Perm.BROADCAST, via="node")
    if q is None:
        return Broadcast.objects.all()
    if not getattr(user, "is_authenticated", False):
        return Broadcast.objects.none()
    mine = (
        CascadeNode.objects.filter(user=user)
        .exclude(status=CascadeNode.Status.WAITING)
        .values("broadcast_id")
    )
    return Broadcast.objects.filter(q | Q(pk__in=mine))


def may_list_broadcasts(user) -> bool:
    """Who has a broadcast list at all: senders, and liaisons who acknowledge (not observers, volunteers)."""
    return scoping.can(user, Perm.BROADCAST) or scoping.can(user, Perm.VIEW_PERSONAL)


def waiting_acks(user) -> QuerySet:
    """Cascade rows waiting for the user's acknowledgement, oldest first."""
    if not getattr(user, "is_authenticated", False):
        return CascadeNode.objects.none()
    return (
        CascadeNode.objects.filter(
            user=user,
            status__in=(CascadeNode.Status.SENT, CascadeNode.Status.OVERDUE),
            broadcast__status=Broadcast.Status.SENDING,
        )
        .select_related("broadcast", "node")
        .order_by("sent_at", "id")
    )


def groups_for(user) -> QuerySet:
    return scoping.scoped(Group.objects.all(), user, Perm.VIEW_PERSONAL, via="node")


def contacts_for(user) -> QuerySet:
    """Contacts whose node the user sees personal data of; contacts with no node for coordinators."""
    q = scoping.scope_q(user, Perm.VIEW_PERSONAL, via="node")
    if q is None:
        return Contact.objects.all()
    ids = managed_municipality_ids(user)
    return Contact.objects.filter(q | Q(node__isnull=True, municipality_id__in=ids or []))


def outbox_for(user, *, broadcast: Broadcast | None = None, status: str = "", kind: str = "") -> QuerySet:
    qs = Outbound.objects.filter(contact__in=contacts_for(user))
    if broadcast is not None:
        qs = qs.filter(broadcast=broadcast)
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def inbox_for(user, *, state: str = "", kind: str = "") -> QuerySet:
    """Received messages of the user's contacts; rows with no contact (unknown or unusable senders, statuses)
    for coordinators of the municipality."""
    ids = managed_municipality_ids(user)
    qs = Inbound.objects.filter(
        Q(contact__in=contacts_for(user))
        | (Q(contact__isnull=True) & (Q() if ids is None else Q(municipality_id__in=ids)))
    )
    if state:
        qs = qs.filter(state=state)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def accounts_for(user) -> QuerySet:
    return _in_managed(ChannelAccount.objects.all(), user)


def templates_for(user) -> QuerySet:
    return _in_managed(MessageTemplate.objects.all(), user)


def flows_for(user) -> QuerySet:
    return _in_managed(Flow.objects.all(), user)
