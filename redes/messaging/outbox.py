"""The outbox: messages waiting to be sent, sent by the dispatcher within each provider's rate limit.

``enqueue`` is the one way to put a single message in it; broadcasts build theirs set-based
(``broadcasts.build_outbox``)."""

from __future__ import annotations

from redes.core import clock

from . import accounts
from .models import ChannelAccount, Contact, Medium, Outbound


def medium_for(contact: Contact) -> str:
    """The medium a message to ``contact`` goes through: its preferred one when it can carry it."""
    if contact.preferred == Medium.WHATSAPP and not contact.whatsapp:
        return Medium.SMS
    if contact.preferred == Medium.TELEGRAM and not contact.address.startswith("telegram:"):
        return Medium.SMS
    return contact.preferred


def enqueue(
    contact: Contact,
    body: str = "",
    *,
    kind: str = Outbound.Kind.REPLY,
    template: str = "",
    variables: dict | None = None,
    account: ChannelAccount | None = None,
    broadcast=None,
    priority: int = 0,
) -> Outbound:
    """Queue one message to ``contact`` (through ``account``, else the route of its preferred medium)."""
    if account is None:
        account = accounts.route(contact.municipality_id, medium_for(contact))
    return Outbound.objects.create(
        municipality_id=contact.municipality_id,
        contact=contact,
        account=account,
        broadcast=broadcast,
        kind=kind,
        priority=priority,
        body=body,
        template=template,
        variables=variables or {},
        next_attempt_at=clock.now(),
    )
