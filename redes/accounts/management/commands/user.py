"""``redes user create|grant|revoke|list``: accounts and their memberships (a role at a territory node)."""

import getpass
import secrets
import sys

from django.core.management.base import CommandError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.accounts import services
from redes.accounts.models import Membership, User
from redes.accounts.roles import Role
from redes.territories.management.commands._base import (
    RedesCommand,
    add_place_arguments,
    find_municipality,
    find_place,
)


def parse_role(text: str) -> Role:
    key = (text or "").strip().lower().replace("-", "_").replace(" ", "_")
    for role in Role:
        if key in (role.value, str(role.label).lower().replace(" ", "_")):
            return role
    raise CommandError(
        _("Unknown role “%(role)s”. Roles: %(roles)s.") % {"role": text, "roles": ", ".join(Role.values)}
    )


def find_user(username: str) -> User:
    user = User.objects.filter(username__iexact=(username or "").strip()).first()
    if user is None:
        raise CommandError(_("There is no user “%(username)s”.") % {"username": username})
    return user


def describe(membership: Membership) -> str:
    node = membership.node
    place = f"{node.level_name}: {node.name} ({node.code})"
    if node.kind == "unit":
        place = f"{place}, {membership.municipality.name}"
    return f"{membership.get_role_display()} · {place}"


class Command(RedesCommand):
    help = gettext_lazy("Create users, grant and revoke their roles at territory nodes, and list them.")

    def add_arguments(self, parser):
        roles = ", ".join(Role.values)
        sub = self.subcommands(parser)
        p = sub.add_parser("create", help=_("create a user, optionally with a role at a node"))
        p.add_argument("username")
        p.add_argument("--full-name", default="")
        p.add_argument("--email", default="")
        p.add_argument("--phone", default="")
        password = p.add_mutually_exclusive_group()
        password.add_argument(
            "--password",
            help=_("the password (default: asked for on a terminal, else generated and printed)"),
        )
        password.add_argument(
            "--generate-password", action="store_true", help=_("generate a password and print it once")
        )
        password.add_argument(
            "--no-password", action="store_true", help=_("no password: the user cannot log in to the pages")
        )
        p.add_argument("--role", help=_("grant this role too: %(roles)s") % {"roles": roles})
        add_place_arguments(p)

        p = sub.add_parser("grant", help=_("give a user a role at a node"))
        p.add_argument("username")
        p.add_argument("--role", required=True, help=roles)
        add_place_arguments(p)

        p = sub.add_parser("revoke", help=_("end a user's memberships (all those that match)"))
        p.add_argument("username")
        p.add_argument("--role", help=roles)
        add_place_arguments(p)

        p = sub.add_parser("list", help=_("list users and their active roles"))
        p.add_argument(
            "--municipality", metavar="CODE", help=_("only users with a role in this municipality")
        )

    def handle_create(self, *, username, password, generate_password, no_password, role, **options):
        node = find_place(options)
        if (role is None) != (node is None):
            raise CommandError(
                _("Give both --role and where it is held (--municipality [--node], --state or --nation).")
            )
        role = parse_role(role) if role else None
        shown = None
        if not password and not no_password:
            if generate_password or not sys.stdin.isatty():
                password = shown = secrets.token_urlsafe(12)
            else:
                password = self.ask_password()
        with transaction.atomic():
            user = services.create_user(
                username,
                password=password or None,
                full_name=options["full_name"],
                email=options["email"],
                phone=options["phone"],
                check_password=not shown,
                municipality=node.municipality_id if node is not None else None,
            )
            membership = services.grant_membership(user, node, role) if role else None
        self.out(_("Created the user %(username)s.") % {"username": user.username})
        if membership:
            self.out(_("Role: %(membership)s.") % {"membership": describe(membership)})
        if shown:
            self.out(_("Password (shown only now): %(password)s") % {"password": shown})

    def ask_password(self) -> str:
        for _attempt in range(3):
            first = getpass.getpass(_("Password: "))
            if first and first == getpass.getpass(_("Password (again): ")):
                return first
            self.note(_("The passwords are empty or differ; try again."))
        raise CommandError(_("No password given."))

    def handle_grant(self, *, username, role, **options):
        user = find_user(username)
        node = find_place(options)
        if node is None:
            raise CommandError(_("Say where the role is held: --municipality [--node], --state or --nation."))
        membership = services.grant_membership(user, node, parse_role(role))
        self.out(
            _("%(username)s: %(membership)s.")
            % {"username": user.username, "membership": describe(membership)}
        )

    def handle_revoke(self, *, username, role, **options):
        user = find_user(username)
        node = find_place(options)
        if role is None and node is None:
            raise CommandError(
                _("Say which memberships to end: --role and/or --municipality [--node], --state or --nation.")
            )
        memberships = user.memberships.active().select_related("node", "municipality")
        if role:
            memberships = memberships.filter(role=parse_role(role))
        if node is not None:
            memberships = memberships.filter(node=node)
        memberships = list(memberships)
        if not memberships:
            raise CommandError(
                _("%(username)s has no active membership like that.") % {"username": user.username}
            )
        with transaction.atomic():
            for membership in memberships:
                services.end_membership(membership)
                self.out(
                    _("Ended: %(membership)s.") % {"membership": describe(membership)},
                )

    def handle_list(self, *, municipality, **options):
        users = User.objects.order_by("username")
        memberships = (
            Membership.objects.active().select_related("node", "municipality").order_by("created_at")
        )
        if municipality:
            muni = find_municipality(municipality)
            memberships = memberships.filter(municipality=muni)
            users = users.filter(pk__in=memberships.values("user"))
        held: dict[int, list[Membership]] = {}
        for membership in memberships.filter(user__in=users):
            held.setdefault(membership.user_id, []).append(membership)
        for user in users:
            flags = []
            if not user.is_active:
                flags.append(_("inactive"))
            if user.is_superuser:
                flags.append(_("superuser"))
            name = f"  {user.full_name}" if user.full_name else ""
            extra = f"  [{', '.join(str(f) for f in flags)}]" if flags else ""
            self.out(f"{user.username}{name}{extra}")
            for membership in held.get(user.pk, []):
                self.out(f"    {describe(membership)}")
