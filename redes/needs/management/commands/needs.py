"""``redes needs sweep``: escalate overdue needs now (the background worker also does it every minute)."""

import datetime as dt

from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware, make_aware
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from tqdm import tqdm

from redes.needs import services
from redes.territories.management.commands._base import RedesCommand, find_municipality


def parse_instant(text: str) -> dt.datetime:
    value = parse_datetime((text or "").strip())
    if value is None:
        raise CommandError(
            _("“%(value)s” is not a date and time; use ISO 8601, e.g. 2026-03-01T08:00:00-06:00.")
            % {"value": text}
        )
    return value if is_aware(value) else make_aware(value)


class Command(RedesCommand):
    help = gettext_lazy(
        "Needs and cases: escalate every need past its deadline to the next liaison up the tree (the background "
        "worker does this every REDES_SWEEP_INTERVAL seconds)."
    )

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser("sweep", help=_("escalate overdue needs now"))
        p.add_argument(
            "--at",
            metavar="ISO",
            help=_("sweep as if it were this instant (ISO 8601; default: now)"),
        )
        p.add_argument("--municipality", metavar="CODE", help=_("only this municipality (its INEGI key)"))

    def handle_sweep(self, *, at=None, municipality=None, **options):
        when = parse_instant(at) if at else None
        muni = find_municipality(municipality) if municipality else None
        with tqdm(total=1, desc=_("Sweeping"), unit=_("sweeps"), file=self.stderr._out, disable=None) as bar:
            result = services.escalate_overdue(now=when, municipality=muni)
            bar.update(1)
        for line in result.lines():
            self.out(line)
