"""Contacts: who writes to the network and whom it writes to (one per municipality and address).

``address_of`` turns what a provider reports into the contact key: a phone becomes its E.164 key (WhatsApp's
``521…`` mobile prefix, 044/045/01 and spaces are handled by ``core.phones``), a Telegram chat ``telegram:<id>``.
``contact_for`` finds or creates the contact and links it to the household whose phone it is and to the user
account (a liaison, a coordinator) with that phone.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from redes.core import clock
from redes.core.phones import normalize_phone

from .models import Contact, Medium

TELEGRAM_PREFIX = "telegram:"


def address_of(raw: str, medium: str) -> str:
    """The contact key of a sender; raises ValidationError (with the reason) for an unusable phone."""
    raw = str(raw or "").strip()
    if medium == Medium.TELEGRAM:
        if raw.startswith(TELEGRAM_PREFIX):
            raw = raw[len(TELEGRAM_PREFIX) :]
        if not raw.lstrip("-").isdigit():
            raise ValidationError("Not a Telegram chat id.")
        return TELEGRAM_PREFIX + raw
    digits = raw
    if medium == Medium.WHATSAPP and raw and not raw.startswith("+"):
        digits = "+" + raw  # WhatsApp sends the international number without "+": 5215512345678
    return normalize_phone(digits)


def _links(municipality_id: int, address: str) -> dict:
    """Household, person and user account that own ``address`` in the municipality (first match each)."""
    from redes.accounts.models import Membership
    from redes.registry.models import Person, Phone, RecordStatus

    found: dict = {}
    if address.startswith(TELEGRAM_PREFIX):
        return found
    phone = (
        Phone.objects.filter(
            municipality_id=municipality_id, number=address, household__status=RecordStatus.ACTIVE
        )
        .select_related("household")
        .order_by("id")
        .first()
    )
    if phone is not None:
        found["household"] = phone.household
        found["node_id"] = phone.household.node_id
        found["whatsapp"] = phone.whatsapp
        found["preferred"] = _preferred(phone.household.preferred_channel, phone.whatsapp)
    if phone is not None:
        # Persons' phones are not indexed: look only among the household's members.
        person = (
            Person.objects.filter(household=phone.household, phone=address, status=RecordStatus.ACTIVE)
            .order_by("id")
            .first()
        )
        if person is not None:
            found["person"] = person
    assignment = _liaison_with_phone(municipality_id, address)
    user = assignment.user if assignment else None
    if user is None:
        member = (
            Membership.objects.active()
            .filter(
                municipality_id=municipality_id,
                user__phone__in=_phone_variants(address),
                user__is_active=True,
            )
            .select_related("user")
            .order_by("id")
            .first()
        )
        user = member.user if member else None
    if user is not None:
        found["user"] = user
        if assignment is not None:
            found["node_id"] = assignment.node_id
        elif "node_id" not in found:
            member = (
                Membership.objects.active()
                .filter(user=user, municipality_id=municipality_id)
                .order_by("id")
                .first()
            )
            if member:
                found["node_id"] = member.node_id
    return found


def _same_phone(raw: str, address: str) -> bool:
    try:
        return normalize_phone(raw) == address
    except ValidationError:
        return False


def _liaison_with_phone(municipality_id: int, address: str):
    """The active liaison post (with a user account) whose free-form contact phone is ``address``."""
    from redes.liaisons.models import LiaisonAssignment

    posts = (
        LiaisonAssignment.objects.active()
        .filter(municipality_id=municipality_id, user__isnull=False)
        .exclude(phone="")
        .select_related("user")
        .order_by("-start_date", "id")
    )
    last_digits = address[-4:]
    for post in posts.iterator():
        if post.phone.replace(" ", "").endswith(last_digits) and _same_phone(post.phone, address):
            return post
    return None


def _phone_variants(address: str) -> list[str]:
    """How a stored free-form phone of a liaison or user may spell ``address`` (+52…, 10 digits)."""
    national = address[3:] if address.startswith("+52") else address
    return [address, national, "52" + national, "+521" + national]


def _preferred(channel: str, whatsapp: bool) -> str:
    if channel == "whatsapp" and whatsapp:
        return Medium.WHATSAPP
    return Medium.SMS


def contact_for(municipality, raw_sender: str, medium: str, *, relink: bool = False) -> tuple[Contact, bool]:
    """Find or create the contact of a sender; returns ``(contact, created)``.

    A new contact is linked to its household, person and user account; ``relink=True`` refreshes the links
    of an existing one. Raises ValidationError for an address that cannot be normalised."""
    municipality_id = getattr(municipality, "pk", municipality)
    address = address_of(raw_sender, medium)
    contact = Contact.objects.filter(municipality_id=municipality_id, address=address).first()
    created = False
    if contact is None:
        links = _links(municipality_id, address)
        preferred = links.pop("preferred", None) or (medium if medium != Medium.CONSOLE else Medium.SMS)
        if medium == Medium.WHATSAPP:
            links["whatsapp"] = True
            preferred = Medium.WHATSAPP
        elif medium == Medium.TELEGRAM:
            preferred = Medium.TELEGRAM
        try:
            with transaction.atomic():
                contact = Contact.objects.create(
                    municipality_id=municipality_id,
                    address=address,
                    preferred=preferred,
                    created_at=clock.now(),
                    **links,
                )
                created = True
        except IntegrityError:  # created meanwhile by another worker
            contact = Contact.objects.get(municipality_id=municipality_id, address=address)
    elif relink:
        links = _links(municipality_id, address)
        links.pop("preferred", None)
        for key, value in links.items():
            setattr(contact, key, value)
        contact.save()
    if medium == Medium.WHATSAPP and not contact.whatsapp:
        contact.whatsapp = True
        Contact.objects.filter(pk=contact.pk).update(whatsapp=True)
    return contact, created


def contact_for_user(user, municipality) -> Contact | None:
    """The contact through which a user account (a liaison, a coordinator) is reached, if it has a phone."""
    contact = Contact.objects.filter(
        municipality_id=getattr(municipality, "pk", municipality), user=user
    ).first()
    if contact is not None:
        return contact
    if not (user.phone or "").strip():
        return None
    try:
        contact, _ = contact_for(municipality, user.phone, Medium.SMS)
    except ValidationError:
        return None
    if contact.user_id != user.pk:
        Contact.objects.filter(pk=contact.pk).update(user=user)
        contact.user = user
    return contact
