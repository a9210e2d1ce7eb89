"""Roles and what each may do: the one table of permissions.

A permission is held *at a territory node* through a membership and reaches everything under that node.
Observers sit on nation or state nodes and see aggregates only, never personal data.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from redes.territories.models import NodeKind


class Role(models.TextChoices):
    NATIONAL_OBSERVER = "national_observer", _("National observer")
    STATE_OBSERVER = "state_observer", _("State observer")
    COORDINATOR = "coordinator", _("Municipal coordinator")
    SECTOR_LIAISON = "sector_liaison", _("Sector liaison")
    BLOCK_LIAISON = "block_liaison", _("Block liaison")
    HOTLINE_OPERATOR = "hotline_operator", _("Hotline operator")
    CASE_OFFICER = "case_officer", _("Case officer")
    VOLUNTEER = "volunteer", _("Volunteer")


class Perm(models.TextChoices):
    VIEW_AGGREGATES = "view_aggregates", _("See counts, coverage and indicators")
    VIEW_TERRITORY = "view_territory", _("Browse the territory tree and map")
    VIEW_PERSONAL = "view_personal", _("See personal data (names, phones)")
    VIEW_SENSITIVE = "view_sensitive", _("See sensitive data (health, disability, violence)")
    MANAGE_TERRITORY = "manage_territory", _("Create, move, remove and import territory")
    ASSIGN_LIAISONS = "assign_liaisons", _("Assign and end liaison posts below one's node")
    MANAGE_USERS = "manage_users", _("Manage users and memberships")
    VIEW_AUDIT = "view_audit", _("Browse the audit log")
    EDIT_REGISTRY = "edit_registry", _("Register and edit households, persons, consents and visits")
    EDIT_SENSITIVE = "edit_sensitive", _("Record sensitive data (health, disability, violence)")
    MANAGE_REGISTRY = (
        "manage_registry",
        _("Import, merge duplicates, set priority weights, answer data requests"),
    )
    REPORT_NEEDS = "report_needs", _("Register needs for neighbours")
    HANDLE_NEEDS = "handle_needs", _("Triage, assign, refer, escalate and close needs")
    MANAGE_NEEDS = "manage_needs", _("Set need categories, routing rules, deadlines, offices and hotlines")
    MANAGE_AID = "manage_aid", _("Manage donors, donations, sites, stock and distribution campaigns")
    DELIVER_AID = "deliver_aid", _("Confirm aid deliveries")
    BROADCAST = "broadcast", _("Send broadcasts to one's territory and follow their acknowledgements")
    ACK_CASCADE = "ack_cascade", _("Acknowledge and relay cascade broadcasts reaching one's node")
    MANAGE_MESSAGING = (
        "manage_messaging",
        _("Set up channels, message templates, conversation flows and the group registry"),
    )


P = Perm
_OBSERVER = frozenset({P.VIEW_AGGREGATES, P.VIEW_TERRITORY})
_FIELD = frozenset(
    {P.VIEW_AGGREGATES, P.VIEW_TERRITORY, P.VIEW_PERSONAL, P.EDIT_REGISTRY, P.REPORT_NEEDS, P.HANDLE_NEEDS}
)

#: The permission table. Change access here, nowhere else.
PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.NATIONAL_OBSERVER: _OBSERVER,
    Role.STATE_OBSERVER: _OBSERVER,
    Role.COORDINATOR: _FIELD
    | {
        P.MANAGE_TERRITORY,
        P.ASSIGN_LIAISONS,
        P.MANAGE_USERS,
        P.VIEW_AUDIT,
        P.MANAGE_REGISTRY,
        P.MANAGE_NEEDS,
        P.MANAGE_AID,
        P.DELIVER_AID,
        P.BROADCAST,
        P.ACK_CASCADE,
        P.MANAGE_MESSAGING,
    },
    Role.SECTOR_LIAISON: _FIELD | {P.ASSIGN_LIAISONS, P.DELIVER_AID, P.BROADCAST, P.ACK_CASCADE},
    Role.BLOCK_LIAISON: _FIELD | {P.DELIVER_AID, P.ACK_CASCADE},
    Role.HOTLINE_OPERATOR: _FIELD,
    Role.CASE_OFFICER: _FIELD | {P.VIEW_SENSITIVE, P.EDIT_SENSITIVE},
    Role.VOLUNTEER: frozenset({P.VIEW_TERRITORY, P.DELIVER_AID}),
}

#: Permissions that reach only *strictly* below the node held (a sector liaison appoints block liaisons,
#: not their own successor).
STRICTLY_BELOW: frozenset[Perm] = frozenset({P.ASSIGN_LIAISONS})

#: Where each role may be held.
ROLE_NODE_KINDS: dict[Role, frozenset[str]] = {
    Role.NATIONAL_OBSERVER: frozenset({NodeKind.NATION}),
    Role.STATE_OBSERVER: frozenset({NodeKind.STATE}),
    Role.COORDINATOR: frozenset({NodeKind.MUNICIPALITY}),
    Role.SECTOR_LIAISON: frozenset({NodeKind.UNIT}),
    Role.BLOCK_LIAISON: frozenset({NodeKind.UNIT}),
    Role.HOTLINE_OPERATOR: frozenset({NodeKind.MUNICIPALITY}),
    Role.CASE_OFFICER: frozenset({NodeKind.MUNICIPALITY}),
    Role.VOLUNTEER: frozenset({NodeKind.MUNICIPALITY, NodeKind.UNIT}),
}


def role_has(role: str, perm: str) -> bool:
    return Perm(perm) in PERMISSIONS.get(Role(role), frozenset())


def roles_with(perm: str) -> list[str]:
    return [role.value for role, perms in PERMISSIONS.items() if Perm(perm) in perms]
