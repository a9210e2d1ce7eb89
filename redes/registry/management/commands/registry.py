"""``redes registry import|recount|rotate-keys|anonymise-due``: the registry's administration commands."""

import json
import sys
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from tqdm import tqdm

from redes.accounts.models import User
from redes.registry import importing, services
from redes.registry.models import ImportJob
from redes.territories.management.commands._base import RedesCommand, find_municipality, find_place
from redes.territories.management.commands.territory import ProgressBars
from redes.territories.models import Municipality

#: Row errors listed on the terminal; the rest are in the errors CSV.
MAX_LISTED_ERRORS = 50


class Command(RedesCommand):
    help = gettext_lazy(
        "The household registry: import households and persons from CSV or XLSX, rebuild the per-block counts, "
        "re-encrypt sensitive data under the newest key, anonymise records whose blocking period is over."
    )

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser(
            "import",
            help=_("import households and persons from a CSV or XLSX file (one row per person)"),
        )
        p.add_argument("file", metavar="FILE", help=_("a .csv or .xlsx file"))
        p.add_argument(
            "--municipality",
            metavar="CODE",
            required=True,
            help=_("the municipality's INEGI key, e.g. 19021"),
        )
        p.add_argument(
            "--node",
            metavar="CODE",
            help=_("a unit's code: every row must fall under it (default: the whole municipality)"),
        )
        p.add_argument(
            "--mapping",
            metavar="JSON",
            help=_(
                "field → column, as JSON or a .json file, over the suggested mapping "
                '(e.g. \'{"block": "Mza"}\'; an empty column drops a field)'
            ),
        )
        p.add_argument(
            "--mode",
            choices=ImportJob.Mode.values,
            default=ImportJob.Mode.VALID_ROWS,
            help=_("valid_rows: import the valid rows; all_or_nothing: nothing unless every row is valid"),
        )
        p.add_argument(
            "--preview",
            action="store_true",
            help=_("show the mapping, the first rows and the errors; write nothing"),
        )
        p.add_argument(
            "--actor",
            metavar="USERNAME",
            help=_("import as this user (their territory and permissions apply)"),
        )
        p.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help=_("show progress bars even when standard error is not a terminal"),
        )
        p.add_argument("--no-progress", dest="progress", action="store_false", help=_("no progress bars"))
        p = sub.add_parser("recount", help=_("rebuild the per-block counts from the records"))
        p.add_argument(
            "--municipality", metavar="CODE", help=_("only this municipality (default: every municipality)")
        )
        sub.add_parser("rotate-keys", help=_("re-encrypt every sensitive value under the newest key"))
        sub.add_parser(
            "anonymise-due", help=_("anonymise the blocked records whose blocking period has ended")
        )

    # ------------------------------------------------------------------------------------------- import

    def handle_import(self, *, file, municipality, node, mapping, mode, preview, actor, progress, **options):
        muni = find_municipality(municipality)
        place = find_place({"municipality": municipality, "node": node})
        user = None
        if actor:
            user = User.objects.filter(username=actor, is_active=True).first()
            if user is None:
                raise CommandError(_("There is no active user “%(username)s”.") % {"username": actor})
        if not Path(file).is_file():
            raise CommandError(_("There is no file “%(file)s”.") % {"file": file})
        try:
            job = importing.create_job(muni, place, file, actor=user)
        except PermissionDenied as exc:
            raise CommandError(
                _("%(username)s may not import households into %(node)s.")
                % {"username": actor, "node": place.name}
            ) from exc
        chosen = dict(job.mapping)
        if mapping:
            chosen.update(self.read_mapping(mapping))
        importing.set_mapping(job, {k: v for k, v in chosen.items() if v}, mode, actor=user)
        job.refresh_from_db()
        self.note(
            _("File: %(name)s (%(format)s%(encoding)s)")
            % {
                "name": job.filename,
                "format": job.report["format"].upper(),
                "encoding": f", {job.encoding}" if job.encoding else "",
            }
        )
        labels = {code: str(label) for code, label, _required in importing.FIELDS}
        for code, column in job.mapping.items():
            self.note(f"  {labels[code]} ← {column}")
        if preview:
            return self.show_preview(job)
        importing.start(job, actor=user, enqueue=False)
        bars = ProgressBars(getattr(self.stderr, "_out", sys.stderr), progress)
        bars.labels.update({"duplicates": _("Duplicates")})
        try:
            job = importing.run(job.pk, progress=bars)
        finally:
            bars.close()
        self.show_report(job)

    def read_mapping(self, text: str) -> dict:
        if text.strip().endswith(".json") and Path(text).is_file():
            text = Path(text).read_text(encoding="utf-8")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise CommandError(_("--mapping is not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
            raise CommandError(_("--mapping must be a JSON object of field → column name."))
        return {k: v or "" for k, v in value.items()}

    def list_errors(self, errors: list[dict], total: int) -> None:
        for error in errors[:MAX_LISTED_ERRORS]:
            self.note(
                _("row %(row)s, %(field)s") % {"row": error["row"], "field": error["column"]}
                + f": {error['message']}"
            )
        rest = total - min(len(errors), MAX_LISTED_ERRORS)
        if rest > 0:
            self.note(
                ngettext("… and %(count)s more error.", "… and %(count)s more errors.", rest)
                % {"count": rest}
            )

    def show_preview(self, job: ImportJob) -> None:
        result = importing.preview(job, limit=5)
        for row in result["rows"]:
            values = ", ".join(f"{k}={v}" for k, v in row["values"].items() if v not in ("", None, [], ()))
            self.out(_("row %(row)s: %(values)s") % {"row": row["row"], "values": values})
        self.list_errors(result["errors"], result["errors_total"])
        self.out(
            _(
                "%(total)s rows: %(valid)s valid, %(invalid)s with errors, %(households)s households. Nothing written."
            )
            % result
        )

    def show_report(self, job: ImportJob) -> None:
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(_("The import failed: %(reason)s") % {"reason": job.report.get("failure", "")})
        self.list_errors(job.report.get("errors", []), job.report.get("errors_total", 0))
        if job.report.get("errors_total"):
            self.note(_("Every error: %(path)s") % {"path": importing.errors_csv_path(job)})
        self.out(
            _(
                "%(rows)s rows read, %(invalid)s with errors. Households: %(hc)s new, %(hu)s updated. "
                "Persons: %(pc)s new, %(pu)s updated. Possible duplicates to review: %(dups)s."
            )
            % {
                "rows": job.total_rows,
                "invalid": job.invalid_rows,
                "hc": job.households_created,
                "hu": job.households_updated,
                "pc": job.persons_created,
                "pu": job.persons_updated,
                "dups": job.duplicates_flagged,
            }
        )
        if job.status == ImportJob.Status.REJECTED:
            if job.mode == ImportJob.Mode.ALL_OR_NOTHING and job.invalid_rows:
                raise CommandError(
                    ngettext(
                        "Nothing was imported: %(count)s row has errors (mode all_or_nothing).",
                        "Nothing was imported: %(count)s rows have errors (mode all_or_nothing).",
                        job.invalid_rows,
                    )
                    % {"count": job.invalid_rows}
                )
            raise CommandError(_("Nothing was imported: the file has no valid row."))

    # ------------------------------------------------------------------------------------------- upkeep

    def handle_recount(self, *, municipality, **options):
        munis = (
            [find_municipality(municipality)] if municipality else list(Municipality.objects.order_by("code"))
        )
        for muni in munis:
            blocks = services.recount(muni)
            self.out(
                ngettext(
                    "%(municipality)s: %(count)s block counted.",
                    "%(municipality)s: %(count)s blocks counted.",
                    blocks,
                )
                % {"municipality": muni.name, "count": blocks}
            )

    def handle_rotate_keys(self, **options):
        with tqdm(desc=_("Re-encrypting"), unit=_("values"), file=sys.stderr, disable=None) as bar:
            done = services.rotate_keys(progress=bar.update)
        self.out(
            ngettext(
                "%(count)s sensitive value re-encrypted under the newest key.",
                "%(count)s sensitive values re-encrypted under the newest key.",
                done,
            )
            % {"count": done}
        )

    def handle_anonymise_due(self, **options):
        done = services.anonymise_due()
        self.out(
            ngettext("%(count)s blocked record anonymised.", "%(count)s blocked records anonymised.", done)
            % {"count": done}
        )
