"""Need notifications (``needs.Notification``, the in-app notices of escalations, assignments, referrals…) go
out as messages too: ``pump`` reads the rows added since the ``Cursor("notifications")`` position and queues
one NOTIFICATION message (template ``need_notification``) for each user reachable through a contact.

The text names what happened, the need's reference, its category and its block: never the neighbour (no name,
phone or address; a sensitive need's category is left out too). On its first run the cursor starts at the
notifications of the last ``FIRST_RUN_HOURS`` hours, so installing messaging does not replay a year of them.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import translation

from redes.core import clock
from redes.needs.models import reference_of

from . import outbox
from .contacts import contact_for_user
from .models import Cursor, Outbound

CURSOR = "notifications"
FIRST_RUN_HOURS = 24
LANGUAGE = "es-mx"


def _cursor() -> Cursor:
    from redes.needs.models import Notification

    cursor = Cursor.objects.select_for_update().filter(name=CURSOR).first()
    if cursor is None:
        since = clock.now() - dt.timedelta(hours=FIRST_RUN_HOURS)
        older = Notification.objects.filter(created_at__lt=since).order_by("-id").values_list("id", flat=True)
        Cursor.objects.get_or_create(name=CURSOR, defaults={"position": older.first() or 0})
        cursor = Cursor.objects.select_for_update().get(name=CURSOR)
    return cursor


def variables_of(notification) -> dict:
    """The template's variables: what happened, the reference, category and block (no personal data)."""
    from redes.needs.models import Notification

    with translation.override(LANGUAGE):  # the conversation's language, whatever the worker's
        kind = (
            str(Notification.Kind(notification.kind).label)
            if notification.kind in Notification.Kind.values
            else ""
        )
        need = notification.need
        if need is None:
            count = (notification.data or {}).get("count")
            return {"kind": kind, "reference": f"({count})" if count else "", "category": "", "node": ""}
        return {
            "kind": kind,
            "reference": reference_of(need),
            "category": "" if need.sensitive or need.category.sensitive else str(need.category.label),
            "node": need.node.name,
        }


def _municipality_of(notification) -> int | None:
    from redes.accounts.models import Membership

    if notification.need is not None:
        return notification.need.municipality_id
    return (
        Membership.objects.active()
        .filter(user_id=notification.user_id, municipality__isnull=False)
        .order_by("id")
        .values_list("municipality_id", flat=True)
        .first()
    )


def pump(limit: int = 1000) -> int:
    """Queue messages for the notifications added since the last run; returns how many were queued.

    The cursor row is locked for the whole run and moves in the same transaction as the queued messages, so
    each notification is sent at most once even with several dispatchers."""
    from redes.needs.models import Notification

    queued = 0
    with transaction.atomic():
        cursor = _cursor()
        rows = list(
            Notification.objects.filter(id__gt=cursor.position)
            .select_related("user", "need", "need__category", "need__node")
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
        contacts: dict[tuple[int, int], object] = {}
        for notification in rows:
            municipality_id = _municipality_of(notification)
            if municipality_id is None or not notification.user.is_active:
                continue
            key = (notification.user_id, municipality_id)
            if key not in contacts:
                contacts[key] = contact_for_user(notification.user, municipality_id)
            contact = contacts[key]
            if contact is None:
                continue
            outbox.enqueue(
                contact,
                kind=Outbound.Kind.NOTIFICATION,
                template="need_notification",
                variables=variables_of(notification),
            )
            queued += 1
        Cursor.objects.filter(name=CURSOR).update(position=rows[-1].id)
    return queued
