"""What the administration commands (``redes municipality|territory|user|token …``) share.

Each command has sub-commands (argparse subparsers) dispatched to ``handle_<action>``. Writes go through the
services under the audit channel "cli" with no acting user; bad input (a ``ValidationError`` from a service, an
unknown key) is a ``CommandError``: one clear line and exit status 1, never a traceback.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from redes.audit.context import Channel, using_channel
from redes.territories.models import Municipality, Node, NodeKind


class RedesCommand(BaseCommand):
    # Like ``createsuperuser``: administration commands skip the system checks (``migrate`` runs them).
    requires_system_checks = []

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)  # a lazy translation at class level; argparse wants a str
        return super().create_parser(prog_name, subcommand, **kwargs)

    def execute(self, *args, **options):
        with using_channel(Channel.CLI):
            try:
                return super().execute(*args, **options)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc

    def handle(self, *args, **options):
        return getattr(self, "handle_" + options["action"].replace("-", "_"))(**options)

    def subcommands(self, parser):
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def out(self, text: str = "", **kwargs) -> None:
        self.stdout.write(str(text), **kwargs)

    def note(self, text: str) -> None:
        self.stderr.write(str(text), style_func=lambda x: x)


def find_municipality(code: str) -> Municipality:
    municipality = Municipality.objects.select_related("node").filter(code=(code or "").strip()).first()
    if municipality is None:
        raise CommandError(
            _("There is no municipality with the key “%(code)s” (see “redes municipality list”).")
            % {"code": code}
        )
    return municipality


def find_place(options: dict) -> Node | None:
    """The node named by ``--nation``, ``--state CODE`` or ``--municipality CODE [--node CODE]``, or None."""
    if options.get("nation"):
        node = Node.objects.filter(kind=NodeKind.NATION).first()
        if node is None:
            raise CommandError(_("There is no territory yet: create a municipality first."))
        return node
    if options.get("state"):
        node = Node.objects.filter(kind=NodeKind.STATE, code=options["state"].strip()).first()
        if node is None:
            raise CommandError(_("There is no state with the key “%(code)s”.") % {"code": options["state"]})
        return node
    if options.get("municipality"):
        municipality = find_municipality(options["municipality"])
        if not options.get("node"):
            return municipality.node
        node = Node.objects.filter(
            municipality=municipality, kind=NodeKind.UNIT, code=options["node"].strip()
        ).first()
        if node is None:
            raise CommandError(
                _("%(municipality)s has no unit with the code “%(code)s”.")
                % {"municipality": municipality.name, "code": options["node"]}
            )
        return node
    if options.get("node"):
        raise CommandError(
            _("--node needs --municipality: unit codes are unique within a municipality only.")
        )
    return None


def add_place_arguments(parser) -> None:
    parser.add_argument("--municipality", metavar="CODE", help=_("the municipality's INEGI key, e.g. 19021"))
    parser.add_argument(
        "--node", metavar="CODE", help=_("a unit's code within the municipality (default: the municipality)")
    )
    parser.add_argument("--state", metavar="CODE", help=_("a state's INEGI key, e.g. 19 (state observers)"))
    parser.add_argument("--nation", action="store_true", help=_("the nation (national observers)"))
