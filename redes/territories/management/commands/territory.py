"""``redes territory import|export``: a municipality's territory from and to CSV or GeoJSON files."""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from tqdm import tqdm

from redes.territories.importers import FORMATS, export_territory, import_territory

from ._base import RedesCommand, find_municipality

#: Row errors listed on the terminal; the rest are counted.
MAX_LISTED_ERRORS = 50
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".geojson": "geojson", ".json": "geojson"}


class ProgressBars:
    """tqdm bars on stderr, one per phase of the import (validation, then writing)."""

    def __init__(self, stream, enabled: bool | None):
        self.stream = stream
        self.disable = None if enabled is None else not enabled  # None: only on a terminal
        self.phase = None
        self.bar = None
        self.labels = {"validate": _("Checking"), "write": _("Writing")}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=total,
                desc=self.labels.get(phase, phase),
                unit=_("rows"),
                unit_scale=True,
                file=self.stream,
                disable=self.disable,
                leave=True,
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Command(RedesCommand):
    help = gettext_lazy("Import a municipality's territory from CSV or GeoJSON, or export it.")

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser(
            "import",
            help=_("add units from a CSV or GeoJSON file; nothing is imported when any row is wrong"),
        )
        p.add_argument("municipality", metavar="CODE", help=_("the municipality's INEGI key, e.g. 19021"))
        p.add_argument("file", metavar="FILE", help=_("a .csv or .geojson file, or - for standard input"))
        p.add_argument("--format", choices=FORMATS, help=_("the file's format (default: from its name)"))
        p.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help=_("show progress bars even when standard error is not a terminal"),
        )
        p.add_argument("--no-progress", dest="progress", action="store_false", help=_("no progress bars"))
        p = sub.add_parser("export", help=_("write the municipality's units as CSV or GeoJSON"))
        p.add_argument("municipality", metavar="CODE", help=_("the municipality's INEGI key, e.g. 19021"))
        p.add_argument("--format", choices=FORMATS, default="csv")
        p.add_argument("--output", "-o", metavar="FILE", help=_("write to FILE instead of standard output"))

    def handle_import(self, *, municipality, file, format, progress, **options):
        muni = find_municipality(municipality)
        fmt = format or SUFFIXES.get(Path(file).suffix.lower())
        if not fmt:
            raise CommandError(
                _("Cannot tell the file's format from its name: give --format csv or geojson.")
            )
        data = self.read(file)
        bars = ProgressBars(getattr(self.stderr, "_out", sys.stderr), progress)
        try:
            report = import_territory(muni, data, fmt, progress=bars)
        finally:
            bars.close()
        if report.ok:
            self.out(
                ngettext(
                    "Imported %(created)s unit into %(municipality)s.",
                    "Imported %(created)s units into %(municipality)s.",
                    report.created,
                )
                % {"created": report.created, "municipality": muni.name}
            )
            return
        for error in report.errors[:MAX_LISTED_ERRORS]:
            where = (
                _("row %(row)s, %(field)s") % {"row": error.row, "field": error.field}
                if error.row and error.field
                else _("row %(row)s") % {"row": error.row}
                if error.row
                else _("file")
            )
            self.note(f"{where}: {error.message}")
        rest = report.error_count - min(len(report.errors), MAX_LISTED_ERRORS)
        if rest > 0:
            self.note(
                ngettext("… and %(count)s more error.", "… and %(count)s more errors.", rest)
                % {"count": rest}
            )
        raise CommandError(
            ngettext(
                "Nothing was imported: the file has %(count)s error.",
                "Nothing was imported: the file has %(count)s errors.",
                report.error_count,
            )
            % {"count": report.error_count}
        )

    def read(self, file: str) -> bytes:
        limit = settings.REDES_MAX_IMPORT_BYTES
        if file == "-":
            return sys.stdin.buffer.read(limit + 1)
        path = Path(file)
        if not path.is_file():
            raise CommandError(_("There is no file “%(file)s”.") % {"file": file})
        if path.stat().st_size > limit:
            raise CommandError(
                _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
                % {"size": round(path.stat().st_size / 2**20, 1), "limit": round(limit / 2**20, 1)}
            )
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CommandError(
                _("Cannot read “%(file)s”: %(error)s") % {"file": file, "error": exc.strerror}
            ) from exc

    def handle_export(self, *, municipality, format, output, **options):
        text = export_territory(find_municipality(municipality), format)
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="" if text.endswith("\n") else "\n")
