"""The group registry: the network's WhatsApp and Telegram groups (block, sector, municipal, theme), their
rules and moderators, linked to a territory node and, for theme groups, a working group.

Writes need ``MANAGE_MESSAGING`` over the group's node (coordinators); every write and refusal is audited.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record
from redes.territories.models import Node

from .broadcasts import _invalid, _user, audited
from .models import Contact, Group, Medium

MAX_RULES = 4000


def can_manage(actor, node: Node) -> bool:
    return actor is None or scoping.can(actor, Perm.MANAGE_MESSAGING, node)


def _clean_moderators(municipality_id: int, moderators) -> list:
    from redes.accounts.models import Membership, User

    users = []
    for value in moderators or ():
        user = value if isinstance(value, User) else User.objects.filter(pk=value).first()
        if user is None or not user.is_active:
            raise _invalid(
                _("Choose moderators among the network's active accounts."), "moderator", "moderators"
            )
        users.append(user)
    members = set(
        Membership.objects.active()
        .filter(municipality_id=municipality_id, user__in=users)
        .values_list("user_id", flat=True)
    )
    if any(u.pk not in members for u in users):
        raise _invalid(_("Moderators must work in this municipality."), "moderator", "moderators")
    return list(dict.fromkeys(users))


@audited("messaging.group.save")
def save_group(
    municipality,
    *,
    actor,
    name: str,
    kind: str,
    node: Node,
    working_group=None,
    invite_link: str = "",
    rules: str = "",
    moderators=(),
    medium: str = Medium.WHATSAPP,
    active: bool = True,
    group: Group | None = None,
) -> Group:
    """Register a group, or change ``group``. Refuses a node of another municipality, a duplicate name, an
    invite link that is not a URL, moderators from elsewhere."""
    municipality_id = getattr(municipality, "pk", municipality)
    if group is not None and group.municipality_id != municipality_id:
        raise PermissionDenied(_("This group belongs to another municipality."))
    if node is None or node.municipality_id != municipality_id:
        raise _invalid(_("Choose a territory of this municipality."), "node", "node")
    if not can_manage(actor, node) or (group is not None and not can_manage(actor, group.node)):
        raise PermissionDenied(_("You may not register groups in this territory."))
    errors: dict[str, list] = {}
    name = (name or "").strip()
    if not name or len(name) > 120:
        errors["name"] = [_("Give the group a name (at most 120 characters).")]
    if kind not in Group.Kind.values:
        errors["kind"] = [_("Choose the kind of group.")]
    if medium not in (Medium.WHATSAPP, Medium.TELEGRAM, Medium.SMS):
        errors["medium"] = [_("Groups live on WhatsApp, Telegram or SMS lists.")]
    invite_link = (invite_link or "").strip()
    if invite_link:
        try:
            URLValidator(schemes=["https", "http"])(invite_link)
        except ValidationError:
            errors["invite_link"] = [_("The invite link must be a web address (https://…).")]
    rules = (rules or "").strip()
    if len(rules) > MAX_RULES:
        errors["rules"] = [_("The rules are too long (at most %(n)s characters).") % {"n": MAX_RULES}]
    if working_group is not None and working_group.municipality_id != municipality_id:
        errors["working_group"] = [_("Choose a working group of this municipality.")]
    if errors:
        raise ValidationError(errors, code="invalid")
    users = _clean_moderators(municipality_id, moderators)
    created = group is None
    with transaction.atomic():
        target = group or Group(municipality_id=municipality_id)
        target.name, target.kind, target.medium, target.node = name, kind, medium, node
        target.working_group = working_group
        target.invite_link, target.rules, target.active = invite_link, rules, bool(active)
        try:
            with transaction.atomic():
                target.save()
        except IntegrityError:
            raise _invalid(_("A group with this name already exists."), "duplicate", "name") from None
        target.moderators.set(users)
        record(
            "messaging.group.create" if created else "messaging.group.update",
            actor=_user(actor),
            obj=target,
            node=node,
            changes={"kind": kind, "moderators": len(users)},
        )
    return target


def _member_group_check(group: Group, actor) -> None:
    if not can_manage(actor, group.node):
        raise PermissionDenied(_("You may not change the members of this group."))


@audited("messaging.group.members")
def add_members(group: Group, contacts, *, actor) -> int:
    """Add contacts (of the group's municipality) to the group; returns how many were new."""
    _member_group_check(group, actor)
    wanted = [c for c in contacts if isinstance(c, Contact)]
    if any(c.municipality_id != group.municipality_id for c in wanted):
        raise _invalid(_("These contacts belong to another municipality."), "contact", "members")
    before = group.members.count()
    group.members.add(*wanted)
    added = group.members.count() - before
    record(
        "messaging.group.members", actor=_user(actor), obj=group, node=group.node, changes={"added": added}
    )
    return added


@audited("messaging.group.members")
def remove_members(group: Group, contacts, *, actor) -> int:
    _member_group_check(group, actor)
    before = group.members.count()
    group.members.remove(*[c for c in contacts if isinstance(c, Contact)])
    removed = before - group.members.count()
    record(
        "messaging.group.members",
        actor=_user(actor),
        obj=group,
        node=group.node,
        changes={"removed": removed},
    )
    return removed
