"""Households, phones, consents and needs for the broadcast tests (direct rows: quick to build)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from redes.messaging.models import ChannelAccount, Contact, Provider
from redes.registry.models import Consent, Household, Person, Phone, PrivacyNotice

_counter = {"n": 0}


def notice_for(municipality_id: int) -> PrivacyNotice:
    notice, _ = PrivacyNotice.objects.get_or_create(
        municipality_id=municipality_id,
        version="1",
        defaults={
            "text": "Aviso",
            "purposes": [{"code": "aid", "necessary": True}, {"code": "messages"}],
            "published_at": timezone.now(),
        },
    )
    return notice


def home(
    block,
    number: str,
    *,
    consent: bool = True,
    purposes=("aid", "messages"),
    revoked: bool = False,
    person_status: str = "active",
    whatsapp: bool = False,
    channel: str = "whatsapp",
    priority: int = 0,
    status: str = "active",
    extra_phones=(),
) -> Household:
    """A household on ``block`` with phone ``number`` (E.164) and, by default, a consent to messages."""
    _counter["n"] += 1
    household = Household.objects.create(
        municipality_id=block.municipality_id,
        node=block,
        street=f"Calle {_counter['n']}",
        priority=priority,
        preferred_channel=channel,
        status=status,
    )
    for i, phone in enumerate((number, *extra_phones)):
        Phone.objects.create(
            household=household,
            municipality_id=block.municipality_id,
            number=phone,
            whatsapp=whatsapp and i == 0,
        )
    if consent:
        person = Person.objects.create(
            municipality_id=block.municipality_id,
            household=household,
            node=block,
            full_name=f"Persona {_counter['n']}",
            status=person_status,
        )
        Consent.objects.create(
            municipality_id=block.municipality_id,
            person=person,
            node=block,
            notice=notice_for(block.municipality_id),
            purposes=list(purposes),
            channel="in_person",
            captured_at=timezone.now() - dt.timedelta(days=1),
            revoked_at=timezone.now() if revoked else None,
        )
    return household


def contact(municipality_id: int, address: str, **fields) -> Contact:
    return Contact.objects.create(municipality_id=municipality_id, address=address, **fields)


def whatsapp_account(municipality_id: int) -> ChannelAccount:
    return ChannelAccount.objects.create(
        municipality_id=municipality_id, provider=Provider.WHATSAPP, name="wa", address="+528100000000"
    )
