"""Processing received messages (the dispatcher calls ``process_pending`` every half second).

Webhooks only store (``ingest``); this turns each PENDING ``Inbound`` row into its effect:

- a delivery status → ``outbox.apply_status``;
- a message → its contact (found or created and linked by phone: ``contacts.contact_for``; an unusable sender
  → IGNORED with the reason), ``last_inbound_at`` (the WhatsApp 24-hour window), flood control (more than
  ``FLOOD_LIMIT`` messages in ``FLOOD_WINDOW`` from one contact: stored, not processed, one ``flood`` reply),
  media (stickers, audio, images) → the ``media_unsupported`` reply, an unknown sender's first message → the
  ``unknown_sender`` welcome, then the conversation (``flows.run``: keywords BAJA/ALTA/MENU/OK, the menus,
  the actions). Replies go back through the account the message came in by (``outbox.enqueue``); a reply's
  menu options travel in ``Outbound.variables["options"]`` (``[{"id", "title"}]``).

Rows are claimed in id order (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two dispatchers never take
the same row) and each is processed in its own savepoint: a failure rolls back that row's effects, marks it
FAILED with the error (kept, and ``requeue`` puts it back), sends the person an apology, and the others go on.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from redes.audit.context import Channel, using_channel
from redes.core import clock

from . import contacts, flows, outbox, texts
from .models import Contact, Inbound

log = logging.getLogger(__name__)

FLOOD_LIMIT = 20
FLOOD_WINDOW = dt.timedelta(minutes=10)
MESSAGE_KINDS = (Inbound.Kind.TEXT, Inbound.Kind.INTERACTIVE, Inbound.Kind.LOCATION, Inbound.Kind.MEDIA)


def _claim(limit: int) -> list[Inbound]:
    qs = Inbound.objects.filter(state=Inbound.State.PENDING).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs.select_related("account")[:limit])


def process_pending(limit: int = 200) -> int:
    """Process up to ``limit`` waiting rows; returns how many were taken (done, failed or ignored)."""
    count = 0
    with transaction.atomic():
        rows = _claim(limit)
        statuses = [row for row in rows if row.kind == Inbound.Kind.STATUS]
        if statuses:
            _process_statuses(statuses)
            count += len(statuses)
        for row in rows:
            if row.kind != Inbound.Kind.STATUS:
                process_one(row)
                count += 1
    return count


def _process_statuses(rows: list[Inbound]) -> None:
    """Delivery statuses applied together (``outbox.apply_statuses``: a few statements for the whole batch, not
    several per row) and marked DONE in one UPDATE; if that fails, one by one like any other row."""
    try:
        with transaction.atomic():
            outbox.apply_statuses(rows)
            now = clock.now()
            Inbound.objects.filter(pk__in=[row.pk for row in rows]).update(
                state=Inbound.State.DONE, error="", processed_at=now
            )
        for row in rows:
            row.state, row.error, row.processed_at = Inbound.State.DONE, "", now
    except Exception:  # noqa: BLE001 - the slow path keeps each row's own outcome
        log.exception("Applying %s statuses together failed; applying them one by one", len(rows))
        for row in rows:
            process_one(row)


def process_one(row: Inbound) -> None:
    """Process one claimed row inside a savepoint; a failure leaves the row FAILED with the error."""
    contact = None
    try:
        with transaction.atomic():
            contact = _process(row)
    except Exception as exc:  # noqa: BLE001 - one bad row never stops the others, and is kept
        log.exception("Inbound %s failed", row.pk)
        row.state = Inbound.State.FAILED
        row.error = f"{type(exc).__name__}: {exc}"[:300]
        row.processed_at = clock.now()
        Inbound.objects.filter(pk=row.pk).update(
            state=row.state, error=row.error, processed_at=row.processed_at
        )
        contact = contact or _known_contact(row)
        if contact is not None:
            try:
                with transaction.atomic():
                    outbox.enqueue(
                        contact, texts.render(row.municipality_id, "action_failed"), account=row.account
                    )
            except Exception:  # noqa: BLE001 - the apology is a courtesy; the row stays FAILED either way
                log.exception("Could not queue the apology for inbound %s", row.pk)


def _known_contact(row: Inbound) -> Contact | None:
    if row.contact_id:
        return Contact.objects.filter(pk=row.contact_id).first()
    try:
        address = contacts.address_of(row.sender, row.account.medium)
    except ValidationError:
        return None
    return Contact.objects.filter(municipality_id=row.municipality_id, address=address).first()


def _finish(row: Inbound, state: str, error: str = "") -> None:
    row.state, row.error, row.processed_at = state, error[:300], clock.now()
    Inbound.objects.filter(pk=row.pk).update(
        state=row.state, error=row.error, processed_at=row.processed_at, contact=row.contact
    )


def _process(row: Inbound) -> Contact | None:
    if row.kind == Inbound.Kind.STATUS:
        outbox.apply_status(row)
        _finish(row, Inbound.State.DONE)
        return None
    if row.kind not in MESSAGE_KINDS:
        _finish(row, Inbound.State.IGNORED, f"Unknown kind {row.kind!r}.")
        return None
    medium = row.account.medium
    try:
        contact, created = contacts.contact_for(row.municipality_id, row.sender, medium)
    except ValidationError as exc:
        _finish(row, Inbound.State.IGNORED, "Unusable sender: " + " ".join(exc.messages))
        return None
    row.contact = contact
    channel = medium if medium in Channel.values else Channel.SYSTEM
    with using_channel(channel):
        _note_arrival(contact, row, medium)
        if contact.flood_count > FLOOD_LIMIT:
            if contact.flood_count == FLOOD_LIMIT + 1:
                _reply(contact, row, [texts.render(contact.municipality_id, "flood")])
            _finish(row, Inbound.State.IGNORED, "Flood: too many messages from this contact.")
            return contact
        replies: list = []
        if created and not contact.household_id and not contact.user_id:
            replies.append(_welcome(contact))
        if row.kind == Inbound.Kind.MEDIA:
            replies.append(texts.render(contact.municipality_id, "media_unsupported"))
            if created:
                replies += flows.run(contact, None, medium=medium)
        else:
            replies += flows.run(contact, row, medium=medium)
        _reply(contact, row, replies)
    _finish(row, Inbound.State.DONE)
    return contact


def _welcome(contact: Contact) -> str:
    from redes.territories.models import Municipality

    name = (
        Municipality.objects.filter(pk=contact.municipality_id).values_list("name", flat=True).first() or ""
    )
    return texts.render(contact.municipality_id, "unknown_sender", {"municipality": name})


def _note_arrival(contact: Contact, row: Inbound, medium: str) -> None:
    """``last_inbound_at`` (never moved back by an old row) and the flood window (by reception time)."""
    at = row.received_at
    if contact.last_inbound_at is None or at >= contact.last_inbound_at:
        contact.last_inbound_at = at
        contact.last_inbound_medium = medium
    if (
        contact.flood_started_at is None
        or at - contact.flood_started_at > FLOOD_WINDOW
        or at < contact.flood_started_at
    ):
        contact.flood_started_at = at
        contact.flood_count = 1
    else:
        contact.flood_count += 1
    Contact.objects.filter(pk=contact.pk).update(
        last_inbound_at=contact.last_inbound_at,
        last_inbound_medium=contact.last_inbound_medium,
        flood_started_at=contact.flood_started_at,
        flood_count=contact.flood_count,
    )


def _reply(contact: Contact, row: Inbound, replies) -> None:
    for reply in replies:
        if not str(reply).strip():
            continue
        options = list(getattr(reply, "options", None) or [])
        outbox.enqueue(
            contact,
            str(reply),
            account=row.account,
            variables={"options": options} if options else None,
        )


def requeue(rows) -> int:
    """Put FAILED rows back in the queue (after the cause was fixed); returns how many."""
    ids = [getattr(r, "pk", r) for r in rows]
    return Inbound.objects.filter(pk__in=ids, state=Inbound.State.FAILED).update(
        state=Inbound.State.PENDING, error="", processed_at=None
    )
