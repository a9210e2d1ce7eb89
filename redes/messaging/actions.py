"""What a conversation flow can do (``{"type": "action", "action": <name>}``), through the same services as
the web pages: report a need, the status of one's reports, opting out and in, and the liaisons' commands
(receive an escalated need, confirm a delivery by code, report a vacant household, acknowledge a cascade).

Each action is ``fn(conv, answer, user) -> Result``: ``answer`` is None when the flow arrives at the action and
the person's text when the action asked a follow-up question (``Result(wait=True)`` keeps the conversation on
the action's node; ``conv.data`` holds what it listed). Replies are written with ``conv.say_template``.

Liaison actions check, like the services do, that the contact is linked to an active account holding a
liaison or coordinator role in the municipality and the permission the service needs (through
``accounts.scoping``); anybody else gets the ``not_allowed`` reply and an audited refusal, whatever the flow
says. A refusal by a service (``ValidationError``/``PermissionDenied``) becomes the ``action_refused`` reply
with the service's reason in Spanish; any other error propagates, so that ``intake`` keeps the message as
FAILED (never lost) instead of pretending it was handled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record, record_denied
from redes.core import clock
from redes.needs.models import reference_of

from .models import Contact

#: Households visited within this many days are not offered as "vacant" candidates.
VISIT_RECENT_DAYS = 30
STATUS_LIMIT = 5
LANGUAGE = "es-mx"


@dataclass
class Result:
    #: Stay on the action's node: the next message is the answer to the action's question.
    wait: bool = False
    #: Go to this node instead of the node's ``next``.
    next: str | None = None


@dataclass(frozen=True)
class Action:
    fn: Callable
    #: None: anyone; else the permission the liaison needs (liaison or coordinator role required too).
    perm: str | None = None
    liaison: bool = False


def liaison_user(contact: Contact, perm: str | None):
    """The contact's account when it is a liaison/coordinator of the municipality holding ``perm``; else None."""
    from .flows import is_liaison

    if not is_liaison(contact):
        return None
    user = contact.user
    if perm is None:
        return user
    if any(g.municipality_id == contact.municipality_id for g in scoping.grants_for(user, perm)):
        return user
    return None


def call(name: str, conv, answer: str | None = None) -> Result:
    """Run the action ``name`` for the conversation (checks, Spanish, service refusals as replies)."""
    action = ACTIONS.get(name or "")
    if action is None:
        conv.say_template("action_failed")
        return Result()
    user = conv.contact.user if conv.contact.user_id else None
    if action.liaison:
        user = liaison_user(conv.contact, action.perm)
        if user is None:
            record_denied(
                f"messaging.action.{name}",
                actor=conv.contact.user,
                obj=conv.contact,
                municipality=conv.contact.municipality_id,
                reason="forbidden",
            )
            conv.say_template("not_allowed")
            return Result()
    try:
        with translation.override(LANGUAGE), transaction.atomic():
            return action.fn(conv, answer, user)
    except (ValidationError, PermissionDenied) as exc:
        conv.say_template("action_refused", {"reason": reason_of(exc)})
        return Result()


def reason_of(exc: Exception) -> str:
    with translation.override(LANGUAGE):
        if isinstance(exc, ValidationError):
            return " ".join(str(m) for m in exc.messages) or "datos no válidos."
        text = str(exc)
        return text or "no tiene permiso para hacerlo."


# --------------------------------------------------------------------------------------------- neighbours


def channel_of(medium: str) -> str:
    from redes.needs.models import NeedChannel

    return medium if medium in NeedChannel.values else NeedChannel.CONSOLE


def _phone_of(contact: Contact) -> str:
    return contact.address if contact.address.startswith("+") else ""


def report_need(conv, answer, user) -> Result:
    """Register the need described in the conversation (category, description, place) through
    ``needs.services.register_need``; a sensitive category goes to case officers only."""
    from redes.needs import services as need_services
    from redes.territories.models import Municipality

    contact = conv.contact
    municipality = Municipality.objects.select_related("node").get(pk=contact.municipality_id)
    place = conv.vars.get("place") if isinstance(conv.vars.get("place"), dict) else {}
    household = contact.household if contact.household_id else None
    if household is not None and household.municipality_id != municipality.pk:
        household = None
    person = contact.person if contact.person_id and household is not None else None
    if person is not None and person.household_id != household.pk:
        person = None
    lat, lon = place.get("lat"), place.get("lon")
    if household is not None:
        node = household.node
    elif lat is not None and lon is not None:
        node = need_services.locate_block(municipality, float(lat), float(lon)) or municipality.node
    else:
        node = municipality.node
    # A liaison reporting in their territory acts as themself; anyone else is a neighbour (the public).
    actor = user if user is not None and scoping.can(user, Perm.REPORT_NEEDS, node) else None
    need = need_services.register_need(
        actor=actor,
        municipality=municipality,
        category=str(conv.vars.get("category") or ""),
        description=str(conv.vars.get("description") or ""),
        channel=channel_of(conv.medium),
        node=node,
        household=household,
        person=person,
        lat=lat,
        lon=lon,
        address=str(place.get("address") or "")[:300],
        contact_phone=_phone_of(contact),
    )
    if need.sensitive:
        conv.say_template("need_registered_sensitive", {"reference": reference_of(need)})
    else:
        conv.say_template(
            "need_registered", {"reference": reference_of(need), "category": _category_name(need)}
        )
    return Result()


def _category_name(need) -> str:
    from .flows import category_label

    return category_label(need.category)


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%d/%m %H:%M")


def my_needs(conv, answer, user) -> Result:
    """The last reports of the contact's household, phone or account: reference, category, status, update."""
    from redes.needs.models import Need, NeedStatus

    contact = conv.contact
    q = Q(pk__in=[])
    if contact.household_id:
        q |= Q(household_id=contact.household_id)
    if _phone_of(contact):
        q |= Q(contact_phone=contact.address)
    if contact.user_id:
        q |= Q(reported_by_id=contact.user_id)
    needs = list(
        Need.objects.filter(municipality_id=contact.municipality_id)
        .filter(q)
        .select_related("category")
        .order_by("-created_at", "-id")[:STATUS_LIMIT]
    )
    if not needs:
        conv.say_template("no_needs")
        return Result()
    from . import texts

    lines = [
        texts.render(
            contact.municipality_id,
            "need_status_line",
            {
                "reference": reference_of(need),
                # A sensitive report is never named on the phone (someone else may read it).
                "category": "Reporte confidencial" if need.sensitive else _category_name(need),
                "status": str(NeedStatus(need.status).label),
                "updated": _when(need.updated_at),
            },
        )
        for need in needs
    ]
    conv.say_template("need_status", {"lines": "\n".join(lines)})
    return Result()


def opt_out(conv, answer, user) -> Result:
    """BAJA: no more broadcasts or notifications to this contact (the confirmation is the last message)."""
    contact = conv.contact
    if contact.opted_out_at is None:
        contact.opted_out_at = clock.now()
        Contact.objects.filter(pk=contact.pk).update(opted_out_at=contact.opted_out_at)
        record(
            "messaging.contact.opt_out",
            obj=contact,
            municipality=contact.municipality_id,
            node=contact.node,
            summary="Opted out by message",
            changes={"via": conv.medium},
        )
    conv.say_template("optout_done")
    return Result()


def opt_in(conv, answer, user) -> Result:
    """ALTA: messages again, with an explicit opt-in recorded."""
    contact = conv.contact
    contact.opted_out_at = None
    contact.opted_in_at = clock.now()
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=None, opted_in_at=contact.opted_in_at)
    record(
        "messaging.contact.opt_in",
        obj=contact,
        municipality=contact.municipality_id,
        node=contact.node,
        summary="Opted in by message",
        changes={"via": conv.medium},
    )
    conv.say_template("optin_done")
    return Result()


# --------------------------------------------------------------------------------------------- liaisons


def _pick_from(conv, answer: str, key: str) -> str | None:
    """The id the person picked by number from the list kept in ``conv.data[key]``."""
    from .flows import pick

    ids = conv.data.get(key) or []
    labels = conv.data.get(f"{key}_labels") or [str(i) for i in range(1, len(ids) + 1)]
    chosen = pick(answer or "", labels)
    return ids[chosen] if chosen is not None and chosen < len(ids) else None


def _offer(conv, key: str, template: str, ids: list[str], labels: list[str]) -> Result:
    from .flows import _options, numbered

    conv.data[key] = ids
    conv.data[f"{key}_labels"] = labels
    text = conv.context({"lines": numbered(labels)})
    from . import texts

    conv.say(texts.render(conv.municipality_id, template, text), _options(labels))
    return Result(wait=True)


def _ack_candidates(user):
    from redes.needs import queries
    from redes.needs.models import OPEN_STATUSES

    return (
        queries.visible_needs(user)
        .filter(
            holder_node_id__in=queries.held_node_ids(user),
            status__in=OPEN_STATUSES,
            acknowledged_at__isnull=True,
            sensitive=False,  # sensitive needs are handled by case officers on the web, never by SMS
        )
        .select_related("category", "node")
        .order_by("due_at", "id")[:9]
    )


def ack_need(conv, answer, user) -> Result:
    """List the open needs held at the liaison's posts and not yet received; the one picked is acknowledged."""
    from redes.needs import services as need_services
    from redes.needs.models import Need

    if answer is None:
        needs = list(_ack_candidates(user))
        if not needs:
            conv.say_template("ack_need_none")
            return Result()
        labels = [f"{reference_of(n)} {_category_name(n)}, {n.node.name}" for n in needs]
        return _offer(conv, "needs", "ack_need_list", [str(n.uuid) for n in needs], labels)
    chosen = _pick_from(conv, answer, "needs")
    if chosen is None:
        conv.say_template("menu_invalid")
        return _offer(
            conv, "needs", "ack_need_list", conv.data.get("needs", []), conv.data.get("needs_labels", [])
        )
    need = Need.objects.select_related("category", "node", "municipality").filter(uuid=chosen).first()
    if need is None:
        raise ValidationError("ya no existe.")
    need_services.acknowledge_need(need, actor=user)
    conv.say_template("ack_need_done", {"reference": reference_of(need)})
    return Result()


def confirm_delivery(conv, answer, user) -> Result:
    """Confirm a delivery at home by its entitlement code (codes outside the liaison's territory look unknown)."""
    from redes.aid import codes
    from redes.aid import delivery as aid_delivery
    from redes.aid.models import DeliveryMode, Entitlement

    code = str(conv.vars.get("code") or answer or "")
    entitlements = scoping.scoped(
        Entitlement.objects.filter(municipality_id=conv.municipality_id), user, Perm.DELIVER_AID, via="node"
    )
    entitlement = aid_delivery.find_by_code(code, entitlements)
    aid_delivery.confirm_delivery(entitlement, actor=user, mode=DeliveryMode.HOME)
    conv.say_template("delivery_done", {"code": codes.display(entitlement.code)})
    return Result()


def _vacant_candidates(user, municipality_id: int):
    from redes.registry.models import Household, RecordStatus

    recent = clock.now() - dt.timedelta(days=VISIT_RECENT_DAYS)
    qs = Household.objects.filter(municipality_id=municipality_id, status=RecordStatus.ACTIVE).filter(
        Q(last_visit_at__isnull=True) | Q(last_visit_at__lt=recent)
    )
    return scoping.scoped(qs, user, Perm.EDIT_REGISTRY, via="node")


def _short_address(household) -> str:
    text = f"{household.street} {household.ext_number}".strip()
    if household.int_number:
        text += f" int. {household.int_number}"
    return text or reference_of(household)


def report_vacant(conv, answer, user) -> Result:
    """List households of the liaison's territory not visited recently; the one picked is recorded vacant."""
    from redes.registry import services as registry_services
    from redes.registry.models import Visit

    candidates = _vacant_candidates(user, conv.municipality_id)
    if answer is None:
        rows = list(candidates.order_by("street", "ext_number", "id")[:9])
        if not rows:
            conv.say_template("vacant_none")
            return Result()
        return _offer(
            conv, "households", "vacant_list", [str(h.uuid) for h in rows], [_short_address(h) for h in rows]
        )
    chosen = _pick_from(conv, answer, "households")
    if chosen is None:
        conv.say_template("menu_invalid")
        return _offer(
            conv,
            "households",
            "vacant_list",
            conv.data.get("households", []),
            conv.data.get("households_labels", []),
        )
    household = candidates.filter(uuid=chosen).select_related("node").first()
    if household is None:
        raise ValidationError("esa vivienda ya no está en su lista.")
    if not scoping.can(user, Perm.EDIT_REGISTRY, household.node):  # pragma: no cover - scoped above
        raise PermissionDenied("no puede registrar visitas en esa manzana.")
    registry_services.record_visit(household, Visit.Outcome.VACANT, actor=user, note="Reportada por mensaje")
    conv.say_template("vacant_done", {"address": _short_address(household)})
    return Result()


def acknowledge_cascade(conv) -> bool:
    """OK/RECIBIDO: acknowledge the cascade node waiting for this contact; True (and a thank-you) if there was one."""
    try:
        from . import broadcasts
    except ImportError:
        return False
    acknowledge = getattr(broadcasts, "acknowledge_contact", None)
    if acknowledge is None:
        return False
    with transaction.atomic():
        node = acknowledge(conv.contact, via=conv.medium)
    if node is None:
        return False
    broadcast = getattr(node, "broadcast", None)
    node_name = getattr(getattr(node, "node", None), "name", "")
    conv.say_template("cascade_ack_thanks", {"title": getattr(broadcast, "title", ""), "node": node_name})
    return True


def ack_broadcast(conv, answer, user) -> Result:
    """The menu's "confirm a broadcast": like answering OK."""
    if not acknowledge_cascade(conv):
        conv.say_template("no_cascade_pending")
    return Result()


ACTIONS: dict[str, Action] = {
    "report_need": Action(report_need),
    "my_needs": Action(my_needs),
    "opt_out": Action(opt_out),
    "opt_in": Action(opt_in),
    "ack_need": Action(ack_need, Perm.HANDLE_NEEDS, liaison=True),
    "confirm_delivery": Action(confirm_delivery, Perm.DELIVER_AID, liaison=True),
    "report_vacant": Action(report_vacant, Perm.EDIT_REGISTRY, liaison=True),
    "ack_broadcast": Action(ack_broadcast, Perm.ACK_CASCADE, liaison=True),
}

__all__ = ["ACTIONS", "Result", "call"]
