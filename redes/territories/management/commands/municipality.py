"""``redes municipality create|list|levels``: municipalities and their level schemas."""

from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from redes.territories import services
from redes.territories.models import Municipality, Node, NodeKind

from ._base import RedesCommand, find_municipality


def split_levels(text: str) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


class Command(RedesCommand):
    help = gettext_lazy("Create municipalities, list them, and show or change their level schemas.")

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser("create", help=_("create a municipality with its level schema"))
        p.add_argument(
            "--code", required=True, help=_("INEGI key, 5 digits (state + municipality), e.g. 19021")
        )
        p.add_argument("--name", required=True, help=_("the municipality's name"))
        p.add_argument("--state-name", default="", help=_("the state's name, when the state is new"))
        p.add_argument(
            "--levels",
            required=True,
            help=_("level names from the top down, separated by commas, e.g. “Sector,Manzana”"),
        )
        sub.add_parser("list", help=_("list the municipalities"))
        p = sub.add_parser("levels", help=_("show or change a municipality's level schema"))
        p.add_argument("code", help=_("the municipality's INEGI key"))
        p.add_argument(
            "--set",
            dest="new_levels",
            metavar="LEVELS",
            help=_("rename levels or add or drop levels at the bottom, e.g. “Sector,Zona,Manzana”"),
        )

    def handle_create(self, *, code, name, state_name, levels, **options):
        municipality = services.create_municipality(code, name, split_levels(levels), state_name=state_name)
        self.out(
            _("Created %(name)s (%(code)s) with the levels %(levels)s.")
            % {
                "name": municipality.name,
                "code": municipality.code,
                "levels": ", ".join(municipality.level_names()),
            }
        )

    def handle_list(self, **options):
        units = dict(
            Node.objects.filter(kind=NodeKind.UNIT)
            .values("municipality")
            .annotate(n=Count("pk"))
            .values_list("municipality", "n")
        )
        municipalities = Municipality.objects.select_related("node__parent").prefetch_related("levels")
        if not municipalities:
            self.out(_("No municipalities yet: create one with “redes municipality create”."))
            return
        for m in municipalities:
            levels = " / ".join(level.name for level in m.levels.all())
            self.out(
                ngettext(
                    "%(code)s  %(name)s, %(state)s  ·  %(levels)s  ·  %(units)s unit",
                    "%(code)s  %(name)s, %(state)s  ·  %(levels)s  ·  %(units)s units",
                    units.get(m.pk, 0),
                )
                % {
                    "code": m.code,
                    "name": m.name,
                    "state": m.node.parent.name,
                    "levels": levels,
                    "units": units.get(m.pk, 0),
                }
            )

    def handle_levels(self, *, code, new_levels, **options):
        municipality = find_municipality(code)
        if new_levels is not None:
            services.set_levels(municipality, split_levels(new_levels))
        for position, name in enumerate(municipality.level_names(), start=1):
            self.out(f"{position}  {name}")
