"""Bulk import of households and persons from CSV and XLSX files (issue 3, item 6).

The file has **one row per person**, with the household's columns (address, block or coordinates, phones)
repeated on each member's row. The steps, each usable on its own by the pages (``web``) and the CLI:

1. ``create_job`` stores the file under ``settings.REDES_IMPORT_DIR``, detects its format (CSV with any of the
   delimiters ``, ; tab |``, or XLSX), its encoding (UTF-8 with or without BOM, UTF-16 with BOM, else the
   Western encodings Excel exports — cp1252, Latin-1, Latin-9, Mac Roman, cp850 — through charset-normalizer;
   a file none of them reads confidently is refused with the list tried) and its columns, and suggests a
   column mapping from the header names (Spanish and English, ``FIELDS``/``SYNONYMS``).
2. ``set_mapping`` stores the mapping (field code → column header) and the mode.
3. ``preview`` validates the whole file without writing: the first rows with their cleaned values and
   per-field errors, and the counts of valid and invalid rows.
4. ``start`` queues ``tasks.run_import``; ``run`` is its body: read → validate → place → write → flag
   duplicates, updating ``ImportJob.phase``/``processed_rows`` as it goes.

Rules:

- Households are grouped by the household id column (``household_id``); without one, rows with the same
  address (street, number, interior, postal code) and block are one household; a row with neither an id nor
  an address is a household of its own. The first valid row of a household gives its address and phones.
- Placement: a row with coordinates goes to the block of the import's territory that contains the point (shapely
  STRtree bulk query over the leaf blocks' GeoJSON); a row without coordinates goes to the block named in the
  block code column; else to the block of an existing household at the same address; else the row is an
  error, as is a point or a block outside the import's territory.
- Validation reuses the services' rules (``services.clean_person_data``: CURP structure and check digit,
  phones, dates, sex, relation, factors; postal codes and coordinates), with the row number as in the file
  (the header is row 1), the column's name as in the file, and the reason.
- Modes: ``valid_rows`` writes the valid rows and reports the others; ``all_or_nothing`` writes nothing unless
  every row is valid. The write (``registry.bulk.write``) and the duplicate flags are one transaction: a
  failure leaves nothing half-written.
- Re-running a file updates instead of duplicating: households are matched by their external id, persons by
  theirs, and persons without one by their names within an existing household. Without external ids, a
  re-run adds the rows again (and the duplicate detector flags them).
- Duplicates: the pure matcher (``registry.matching.find_duplicates``) runs over the imported persons plus the
  existing persons of the municipality that share a surname, CURP or birth date with them; the pairs found
  are stored as ``DuplicateCandidate`` rows with source "import".
- The report keeps the counts and the first ``MAX_REPORTED_ERRORS`` errors in ``ImportJob.report``; every error
  goes to a CSV next to the file (``errors_csv_path``).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record, record_denied
from redes.core.curp import STATE_CODES, curp_check_digit
from redes.core.db import lock_tree
from redes.core.phones import normalize_phone
from redes.territories.models import Municipality, Node, NodeKind

from . import bulk, dedupe, services, vulnerability
from .models import DuplicateCandidate, Household, ImportJob, Person, RecordStatus, Relation
from .text import address_key, fold, split_full_name

#: Errors kept in ``ImportJob.report`` (all of them go to the errors CSV).
MAX_REPORTED_ERRORS = 200
#: Rows between two progress writes to ``ImportJob``.
PROGRESS_EVERY = 5000
#: Files larger than this are refused (``REDES_IMPORT_MAX_BYTES`` in the settings overrides it).
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
WESTERN_ENCODINGS = ["cp1252", "latin_1", "iso8859_15", "mac_roman", "cp850"]
DELIMITERS = [",", ";", "\t", "|"]

#: (code, label, required) in the order of the mapping form.
FIELDS: list[tuple[str, str, bool]] = [
    ("household_id", gettext_lazy("Household id"), False),
    ("person_id", gettext_lazy("Person id"), False),
    ("full_name", gettext_lazy("Full name"), False),
    ("given_name", gettext_lazy("Given name(s)"), False),
    ("surname1", gettext_lazy("First surname"), False),
    ("surname2", gettext_lazy("Second surname"), False),
    ("birth_date", gettext_lazy("Birth date"), False),
    ("age", gettext_lazy("Age"), False),
    ("sex", gettext_lazy("Sex"), False),
    ("curp", gettext_lazy("CURP"), False),
    ("person_phone", gettext_lazy("Person's phone"), False),
    ("relation", gettext_lazy("Relation to the head"), False),
    ("factors", gettext_lazy("Vulnerability factors"), False),
    ("street", gettext_lazy("Street"), False),
    ("ext_number", gettext_lazy("Number"), False),
    ("int_number", gettext_lazy("Interior"), False),
    ("colonia", gettext_lazy("Neighbourhood (colonia)"), False),
    ("postal_code", gettext_lazy("Postal code"), False),
    ("reference", gettext_lazy("How to find it"), False),
    ("block", gettext_lazy("Block code"), False),
    ("lat", gettext_lazy("Latitude"), False),
    ("lon", gettext_lazy("Longitude"), False),
    ("phone", gettext_lazy("Household phone"), False),
    ("mobile", gettext_lazy("Mobile phone"), False),
    ("whatsapp", gettext_lazy("WhatsApp number"), False),
    ("preferred_channel", gettext_lazy("Preferred channel"), False),
]
FIELD_CODES = [code for code, _label, _required in FIELDS]

#: Header names (folded: lower case, no accents or punctuation) suggesting each field.
SYNONYMS: dict[str, list[str]] = {
    "household_id": [
        "id hogar", "hogar", "folio hogar", "folio", "clave hogar", "clave de hogar", "id de hogar",
        "numero de hogar", "household id", "household", "household external id",
    ],
    "person_id": [
        "id persona", "folio persona", "clave persona", "id de persona", "person id", "person external id",
        "id", "external id",
    ],
    "full_name": ["nombre completo", "nombre y apellidos", "full name", "name", "nombre"],
    "given_name": ["nombre s", "nombres", "nombre de pila", "given name", "given names", "first name", "nombre"],
    "surname1": [
        "primer apellido", "apellido paterno", "paterno", "ap paterno", "apellido 1", "apellido1", "apellido",
        "surname", "first surname", "last name", "surname1",
    ],
    "surname2": [
        "segundo apellido", "apellido materno", "materno", "ap materno", "apellido 2", "apellido2",
        "second surname", "surname2",
    ],
    "birth_date": [
        "fecha de nacimiento", "fecha nacimiento", "f nac", "fec nac", "nacimiento", "fecha nac", "birth date",
        "date of birth", "dob", "birthdate",
    ],
    "age": ["edad", "anos", "age"],
    "sex": ["sexo", "genero", "sex", "gender"],
    "curp": ["curp", "clave curp"],
    "person_phone": [
        "telefono de la persona", "telefono personal", "celular de la persona", "person phone", "personal phone",
    ],
    "relation": ["parentesco", "relacion", "relacion con el jefe", "relation", "relationship"],
    "factors": ["factores", "vulnerabilidad", "factores de vulnerabilidad", "factors", "vulnerability"],
    "street": ["calle", "domicilio", "direccion", "street", "address", "vialidad"],
    "ext_number": [
        "numero", "num", "no", "num ext", "numero exterior", "no ext", "exterior", "number", "house number",
        "ext number",
    ],
    "int_number": ["interior", "num int", "numero interior", "no int", "int", "apartment", "int number"],
    "colonia": ["colonia", "barrio", "fraccionamiento", "asentamiento", "neighborhood", "neighbourhood"],
    "postal_code": ["cp", "c p", "codigo postal", "cod postal", "postal code", "zip", "zip code", "postcode"],
    "reference": ["referencia", "referencias", "entre calles", "reference", "directions"],
    "block": [
        "manzana", "clave de manzana", "clave manzana", "cve manzana", "cve mza", "mza", "block", "block code",
    ],
    "lat": ["latitud", "lat", "latitude", "y"],
    "lon": ["longitud", "lon", "lng", "long", "longitude", "x"],
    "phone": ["telefono", "tel", "telefono fijo", "telefono casa", "phone", "telephone", "landline"],
    "mobile": ["celular", "cel", "movil", "telefono celular", "mobile", "cell", "cellphone"],
    "whatsapp": ["whatsapp", "numero whatsapp", "wa", "whatsapp number"],
    "preferred_channel": ["canal preferido", "canal", "medio de contacto", "preferred channel", "channel"],
}  # fmt: skip

_SEXES = {
    "m": "M", "mujer": "M", "f": "M", "femenino": "M", "female": "M", "woman": "M",
    "h": "H", "hombre": "H", "masculino": "H", "male": "H", "man": "H",
    "x": "X", "no binario": "X", "non binary": "X", "nb": "X",
}  # fmt: skip
_RELATIONS = {
    **{code: code for code in Relation.values if code},
    "jefe": "head", "jefa": "head", "jefe de hogar": "head", "jefa de hogar": "head", "jefe a": "head",
    "titular": "head",
    "esposo": "spouse", "esposa": "spouse", "conyuge": "spouse", "pareja": "spouse", "esposo a": "spouse",
    "hijo": "child", "hija": "child", "hijo a": "child",
    "padre": "parent", "madre": "parent", "papa": "parent", "mama": "parent",
    "hermano": "sibling", "hermana": "sibling", "hermano a": "sibling",
    "nieto": "grandchild", "nieta": "grandchild", "nieto a": "grandchild",
    "otro pariente": "relative", "pariente": "relative", "tio": "relative", "tia": "relative",
    "sobrino": "relative", "sobrina": "relative", "abuelo": "relative", "abuela": "relative",
    "suegro": "relative", "suegra": "relative", "yerno": "relative", "nuera": "relative",
    "cunado": "relative", "cunada": "relative",
    "no pariente": "other", "sin parentesco": "other", "otro": "other", "otra": "other",
}  # fmt: skip
_FACTORS = {
    **{code: code for code in vulnerability.DECLARED},
    **{fold(str(vulnerability.FACTORS[code].label)): code for code in vulnerability.DECLARED},
    "cuidador unico": "single_caregiver", "cuidadora unica": "single_caregiver",
    "perdio empleo": "job_loss", "desempleo": "job_loss", "sin empleo": "job_loss",
    "sin ingresos": "no_income", "sin ingreso": "no_income",
    "inseguridad alimentaria": "food_insecurity", "sin alimentos": "food_insecurity",
    "sin telefono": "no_phone",
}  # fmt: skip
_CHANNELS = {
    "whatsapp": "whatsapp", "wa": "whatsapp", "sms": "sms", "mensaje": "sms", "voice": "voice", "llamada": "voice",
    "telefono": "voice", "visit": "visit", "visita": "visit",
}  # fmt: skip
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d", "%d.%m.%Y")
_COORD = re.compile(r"^-?\d+(?:[.,]\d+)?$")


#: The person columns ``_Validator.person_fast`` reads, in its order.
_PERSON_FAST_FIELDS = (
    "full_name", "given_name", "surname1", "surname2", "birth_date", "age", "sex", "curp", "person_phone",
    "relation", "factors", "person_id",
)  # fmt: skip


def _factor_codes(raw: str) -> tuple[str, ...] | None:
    """The declared factor codes of a cell (in order, once each), or None when a part is unknown."""
    codes = []
    for part in re.split(r"[,;|/]", raw):
        part = fold(part)
        if not part:
            continue
        code = _FACTORS.get(part) or _FACTORS.get(part.replace(" ", "_"))
        if code is None or code not in vulnerability.DECLARED:
            return None
        codes.append(code)
    return tuple(dict.fromkeys(codes))


class ImportFileError(ValidationError):
    """The file itself cannot be read (format, encoding, size, columns)."""


# ------------------------------------------------------------------------------------------------ the file


def _max_bytes() -> int:
    return int(getattr(settings, "REDES_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def import_dir() -> Path:
    path = Path(settings.REDES_IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _format_of(path: Path, head: bytes, filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        if suffix in ("", ".xlsx", ".xlsm"):
            return "xlsx"
        raise ImportFileError(
            _("“%(name)s” is a compressed file, not a spreadsheet: upload a .csv or .xlsx file.")
            % {"name": filename}
        )
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _("“%(name)s” is an old Excel file (.xls): save it as .xlsx or as CSV and upload it again.")
            % {"name": filename}
        )
    if suffix in (".xlsx", ".xlsm"):
        raise ImportFileError(_("“%(name)s” is not a valid .xlsx file.") % {"name": filename})
    if suffix not in ("", ".csv", ".txt", ".tsv"):
        raise ImportFileError(
            _("Unknown file type “%(suffix)s”: upload a .csv or .xlsx file.") % {"suffix": suffix}
        )
    return "csv"


def detect_encoding(path: Path) -> str:
    """The encoding of a text file: UTF-8 (BOM or not), UTF-16 with BOM, or a Western encoding when confident."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        sample = b""
        try:
            while chunk := f.read(1 << 20):
                if b"\x00" in chunk:
                    raise ImportFileError(_("The file is not a text (CSV) file: it contains binary data."))
                if len(sample) < (1 << 21):
                    sample += chunk
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError as exc:
            # Check the part around the first byte UTF-8 rejected, and the beginning of the file.
            f.seek(max(0, f.tell() - len(chunk) + exc.start - 4096))
            sample = sample[: 1 << 20] + b"\n" + f.read(8192)
    import charset_normalizer

    best = charset_normalizer.from_bytes(sample, cp_isolation=WESTERN_ENCODINGS).best()
    if best is None or best.chaos > 0.1:
        tried = ", ".join(["UTF-8", "UTF-16", *(e.replace("_", "-") for e in WESTERN_ENCODINGS)])
        raise ImportFileError(
            _(
                "The file's characters could not be read with any known encoding (tried: %(tried)s). "
                "Save it from your spreadsheet as “CSV UTF-8” and upload it again."
            )
            % {"tried": tried}
        )
    return best.encoding


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def iter_rows(job: ImportJob) -> Iterator[tuple[int, list[str]]]:
    """``(row number as in the file, cells)`` for every non-empty row, the header row first."""
    path = Path(job.stored_path)
    if job.report.get("format") == "xlsx":
        import openpyxl

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                cells = [_cell(v) for v in values]
                if any(c.strip() for c in cells):
                    yield number, cells
        finally:
            workbook.close()
        return
    delimiter = job.report.get("delimiter") or ","
    with open(path, encoding=job.encoding or "utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        number = 0
        for cells in reader:
            number = reader.line_num if number == 0 else number + 1
            joined = "".join(cells)
            if joined and not joined.isspace():
                yield number, cells


def _read_header(path: Path, fmt: str, encoding: str) -> tuple[list[str], str]:
    if fmt == "xlsx":
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure of a corrupt workbook
            raise ImportFileError(
                _("The .xlsx file could not be opened: it is damaged or not a workbook.")
            ) from exc
        try:
            if not workbook.worksheets:
                return [], ""
            for values in workbook.worksheets[0].iter_rows(values_only=True):
                cells = [_cell(v).strip() for v in values]
                if any(cells):
                    while cells and not cells[-1]:
                        cells.pop()
                    return cells, ""
            return [], ""
        finally:
            workbook.close()
    with open(path, encoding=encoding, newline="") as f:
        try:
            text = f.read(1 << 16)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                _("The file is not in the encoding detected (%(enc)s).") % {"enc": encoding}
            ) from exc
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = _sniff_delimiter(first)
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    return [h.strip() for h in header], delimiter


def suggest_mapping(headers: list[str]) -> dict[str, str]:
    """Field code → header for the headers that look like a known field (exact folded names first)."""
    folded = {fold(h): h for h in reversed(headers) if h}
    mapping: dict[str, str] = {}
    used: set[str] = set()
    has_surname = any(fold(h) in SYNONYMS["surname1"] for h in headers)
    order = list(SYNONYMS)
    if has_surname:  # "nombre" next to surname columns is the given name, else the full name
        order.remove("given_name")
        order.insert(order.index("full_name"), "given_name")
    for code in order:
        for synonym in SYNONYMS[code]:
            header = folded.get(synonym)
            if header and header not in used:
                mapping[code] = header
                used.add(header)
                break
    for code in order:  # then headers that start with a synonym ("Teléfono (10 dígitos)")
        if code in mapping:
            continue
        for synonym in SYNONYMS[code]:
            if len(synonym) < 4:
                continue
            header = next(
                (h for f, h in folded.items() if f.startswith(synonym + " ") and h not in used), None
            )
            if header:
                mapping[code] = header
                used.add(header)
                break
    return {code: mapping[code] for code in FIELD_CODES if code in mapping}


def create_job(
    municipality: Municipality,
    node: Node | None,
    uploaded_file_or_path,
    *,
    actor,
    filename: str | None = None,
) -> ImportJob:
    """Store an uploaded file (or a path on disk), detect format, encoding and columns, suggest a mapping."""
    node = node or municipality.node
    if node.municipality_id != municipality.pk and node.pk != municipality.node_id:
        raise ValidationError(_("The territory chosen is not in %(m)s.") % {"m": municipality.name})
    if actor is not None and not scoping.can(actor, Perm.MANAGE_REGISTRY, node):
        record_denied(
            "registry.import.create", actor=actor, obj=node, node=node, reason=_("Not allowed here")
        )
        raise PermissionDenied(_("You may not import households into %(node)s.") % {"node": node.name})
    if isinstance(uploaded_file_or_path, str | Path):
        source = Path(uploaded_file_or_path)
        if not source.is_file():
            raise ImportFileError(_("There is no file “%(name)s”.") % {"name": str(source)})
        filename = filename or source.name
        size = source.stat().st_size
    else:
        source = uploaded_file_or_path
        filename = filename or Path(getattr(source, "name", "") or "import.csv").name
        size = getattr(source, "size", None)
    if size is not None and size > _max_bytes():
        raise ImportFileError(
            _("The file is too big (%(size)s MB; the limit is %(limit)s MB).")
            % {"size": size // (1024 * 1024), "limit": _max_bytes() // (1024 * 1024)}
        )
    job = ImportJob(
        municipality=municipality,
        node=node,
        filename=filename[:200],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    target = import_dir() / f"{job.uuid}{Path(filename).suffix.lower()[:6]}"
    try:
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            with open(target, "wb") as out:
                for chunk in (
                    source.chunks() if hasattr(source, "chunks") else iter(lambda: source.read(1 << 20), b"")
                ):
                    out.write(chunk)
        size = target.stat().st_size
        if size == 0:
            raise ImportFileError(_("The file is empty."))
        if size > _max_bytes():
            raise ImportFileError(
                _("The file is too big (%(size)s MB; the limit is %(limit)s MB).")
                % {"size": size // (1024 * 1024), "limit": _max_bytes() // (1024 * 1024)}
            )
        with open(target, "rb") as f:
            head = f.read(8)
        fmt = _format_of(target, head, filename)
        encoding = "" if fmt == "xlsx" else detect_encoding(target)
        headers, delimiter = _read_header(target, fmt, encoding)
        if not [h for h in headers if h]:
            raise ImportFileError(_("The file has no header row: the first row must name the columns."))
        duplicated = sorted({h for h in headers if h and headers.count(h) > 1})
        if duplicated:
            raise ImportFileError(
                _("Some columns have the same name: %(names)s. Rename them so each name is unique.")
                % {"names": ", ".join(duplicated)}
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    job.stored_path = str(target)
    job.encoding = encoding
    job.mapping = suggest_mapping(headers)
    job.report = {
        "format": fmt,
        "delimiter": delimiter,
        "columns": headers,
        "language": translation.get_language() or settings.LANGUAGE_CODE,
    }
    with transaction.atomic():
        job.save()
        record(
            "registry.import.create",
            actor=actor,
            obj=job,
            node=node,
            summary=_("File uploaded for import"),
            changes={"format": fmt, "encoding": encoding, "columns": len(headers)},
        )
    return job


def set_mapping(job: ImportJob, mapping: dict, mode: str, *, actor) -> ImportJob:
    """Store the column mapping (field code → column header; blank values are dropped) and the mode."""
    if job.status not in (ImportJob.Status.UPLOADED,):
        raise ValidationError(_("This import has already started; upload the file again to change it."))
    if mode not in ImportJob.Mode.values:
        raise ValidationError(_("Unknown import mode “%(mode)s”.") % {"mode": mode})
    columns = job.report.get("columns", [])
    cleaned = {}
    errors = []
    for code, header in (mapping or {}).items():
        if not header:
            continue
        if code not in FIELD_CODES:
            errors.append(_("Unknown field “%(code)s”.") % {"code": code})
        elif header not in columns:
            errors.append(_("The file has no column “%(column)s”.") % {"column": header})
        else:
            cleaned[code] = header
    used = list(cleaned.values())
    twice = sorted({h for h in used if used.count(h) > 1})
    if twice:
        errors.append(_("Each column can fill one field only: %(columns)s.") % {"columns": ", ".join(twice)})
    errors += mapping_problems(cleaned)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        job.mapping, job.mode = cleaned, mode
        job.save(update_fields=["mapping", "mode"])
        record(
            "registry.import.update",
            actor=actor,
            obj=job,
            node=job.node,
            summary=_("Column mapping set"),
            changes={"mapping": cleaned, "mode": mode},
        )
    return job


def mapping_problems(mapping: dict) -> list[str]:
    """What a mapping lacks to import anything: a name, and a way to place the household."""
    problems = []
    if not ({"full_name", "given_name", "surname1"} & set(mapping)):
        problems.append(
            _("Choose the column with the person's name (full name, or given name and surnames).")
        )
    if not ({"block", "street"} & set(mapping) or {"lat", "lon"} <= set(mapping)):
        problems.append(
            _(
                "Choose how to place each household: the coordinates (latitude and longitude), the block code or the address."
            )
        )
    if ("lat" in mapping) != ("lon" in mapping):
        problems.append(_("Choose both the latitude and the longitude columns."))
    return problems


# ------------------------------------------------------------------------------------------------ validation


@dataclass(slots=True)
class RowError:
    row: int
    column: str
    message: str
    value: str = ""


@dataclass
class _Household:
    key: tuple
    row: bulk.HouseholdRow
    block_code: str = ""
    first_row: int = 0
    rows: list[int] = field(default_factory=list)


@dataclass
class Analysis:
    total: int = 0
    households: list[_Household] = field(default_factory=list)
    #: (row number, household index, PersonRow) of the valid rows.
    persons: list[tuple[int, int, bulk.PersonRow]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_rows: set[int] = field(default_factory=set)
    #: row number → cleaned values, for the preview (first rows only).
    cleaned: dict[int, dict] = field(default_factory=dict)


class _Blocks:
    """The leaf blocks of the import's territory: by code, and an STRtree over their polygons."""

    def __init__(self, node: Node):
        self.node = node
        if node.kind == NodeKind.MUNICIPALITY:
            units = Node.objects.filter(municipality_id=node.municipality_id, kind=NodeKind.UNIT)
        else:
            units = Node.objects.subtree(node).filter(kind=NodeKind.UNIT)
        rows = list(units.values_list("pk", "code", "parent_id", "geometry"))
        parents = {r[2] for r in rows}
        leaves = [r for r in rows if r[0] not in parents]
        self.by_code = {r[1]: r[0] for r in leaves}
        self.by_upper = {r[1].upper(): r[0] for r in leaves}
        self.ids = {r[0] for r in leaves}
        self.outside = dict(
            Node.objects.filter(municipality_id=node.municipality_id, kind=NodeKind.UNIT)
            .exclude(pk__in=[r[0] for r in rows])
            .values_list("code", "pk")
        )
        self._tree = None
        self._with_geometry = [r for r in leaves if r[3]]

    def find_code(self, code: str) -> int | None:
        return self.by_code.get(code) or self.by_upper.get(code.upper())

    def locate(self, points: list[tuple[float, float]]) -> list[int | None]:
        """The block id containing each (lat, lon), or None."""
        if not points or not self._with_geometry:
            return [None] * len(points)
        import numpy as np
        import shapely
        from shapely.geometry import shape

        if self._tree is None:
            try:
                geoms = shapely.from_geojson([json.dumps(r[3]) for r in self._with_geometry])
            except Exception:  # noqa: BLE001 - one malformed stored geometry: build them one by one
                geoms = []
                for r in self._with_geometry:
                    try:
                        geoms.append(shape(r[3]))
                    except Exception:  # noqa: BLE001 - a malformed stored geometry places nothing
                        geoms.append(shapely.Point())
            self._ids = np.array([r[0] for r in self._with_geometry])
            self._tree = shapely.STRtree(geoms)
        lats = np.array([p[0] for p in points])
        lons = np.array([p[1] for p in points])
        found: list[int | None] = [None] * len(points)
        pts = shapely.points(lons, lats)
        for predicate in ("within", "intersects"):  # then points on a shared edge
            todo = np.array([i for i, f in enumerate(found) if f is None], dtype=np.int64)
            if not len(todo):
                break
            src, tree_idx = self._tree.query(pts[todo], predicate=predicate)
            for s, t in zip(src.tolist(), tree_idx.tolist(), strict=True):
                i = int(todo[s])
                if found[i] is None:
                    found[i] = int(self._ids[t])
        return found


_CURP = re.compile(r"^[A-Z][AEIOUX][A-Z]{2}\d{6}[HMX][A-Z]{2}[B-DF-HJ-NP-TV-Z]{3}[A-Z0-9]\d$")
_DIGITS = re.compile(r"\d")


def fast_curp(raw: str) -> str:
    """The CURP when it passes every check of ``core.curp.normalize_curp`` (structure, birth date, state, check
    digit), else "" — then callers use ``normalize_curp`` itself for the reason. Same verdict, without the
    per-character message lookups that make ``normalize_curp`` cost ~0.8 ms (an import checks millions)."""
    found = fast_curp_and_birth(raw)
    return found[0] if found else ""


def fast_curp_and_birth(raw: str) -> tuple[str, dt.date] | None:
    """``(CURP, its birth date)`` when ``fast_curp`` accepts ``raw``, else None."""
    curp = raw.strip().upper().replace(" ", "").replace("-", "")
    if not _CURP.match(curp) or curp[11:13] not in STATE_CODES or curp_check_digit(curp[:17]) != curp[17]:
        return None
    try:
        birth = curp_birth_date(curp)
    except ValueError:
        return None
    return (curp, birth) if birth <= dt.date.today() else None


def curp_birth_date(curp: str) -> dt.date:
    from redes.core.curp import _birth_date

    return _birth_date(curp)


def phone_shape(raw: str) -> tuple[str, str]:
    r"""``(raw with its last 7 digits zeroed, those 7 digits)``; ``("raw", "")`` when it has fewer than 10 digits.

    ``normalize_phone`` only looks at the number of digits and the leading ones (prefixes, then libphonenumber's
    Mexican patterns, which are a 2–3 digit area code followed by ``\d{7}``), so its verdict on the shape is its
    verdict on the number, and the key of the number is the shape's key with the last 7 digits put back."""
    digits = _DIGITS.findall(raw)
    if len(digits) < 10:
        return raw, ""
    last7 = "".join(digits[-7:])
    out, left = [], 7
    for ch in reversed(raw):
        if left and ch.isdigit():
            out.append("0")
            left -= 1
        else:
            out.append(ch)
    return "".join(reversed(out)), last7


_DATES: dict[str, dt.date] = {}


def _parse_date(value: str) -> dt.date:
    """A date written YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY, YYYY/MM/DD or DD.MM.YYYY (a time part is ignored)."""
    found = _DATES.get(value)
    if found is None:
        found = _parse_date_uncached(value)
        if len(_DATES) < 100000:
            _DATES[value] = found
    return found


_DMY = re.compile(r"(\d\d)/(\d\d)/(\d{4})")
_YMD = re.compile(r"(\d{4})-(\d\d)-(\d\d)")


def _parse_date_uncached(value: str) -> dt.date:
    value = value.strip()
    # The two usual forms without strptime (same result; anything else, or an impossible date, goes the long way).
    m = _DMY.fullmatch(value)
    if m:
        try:
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            pass
    m = _YMD.fullmatch(value)
    if m:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            pass
    if " " in value or "T" in value:
        value = re.split(r"[ T]", value, maxsplit=1)[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a date, not a moment
        except ValueError:
            continue
    raise ValueError(value)


def _coordinate(value: str) -> str:
    value = value.strip()
    if "," in value and "." not in value and _COORD.match(value):
        return value.replace(",", ".")
    return value


class _Validator:
    """Turns the file's rows into households and persons; one instance per analysis (it caches)."""

    def __init__(self, job: ImportJob, headers: list[str]):
        self.job = job
        self.today = timezone.localdate()
        index = {h.strip(): i for i, h in enumerate(headers)}
        self.columns = {code: index[h] for code, h in job.mapping.items() if h in index}
        missing = [h for h in job.mapping.values() if h not in index]
        if missing:
            raise ImportFileError(
                _("The file has no column “%(column)s”: check the mapping.") % {"column": missing[0]}
            )
        self.header_of = {code: headers[i] for code, i in self.columns.items()}
        self.household_columns = [
            self.columns.get(c)
            for c in ("household_id", "street", "ext_number", "int_number", "colonia", "postal_code", "reference",
                      "block", "lat", "lon", "phone", "mobile", "whatsapp", "preferred_channel")
        ]  # fmt: skip
        self._household_cache: dict[tuple, tuple[dict, list, tuple | None, bool]] = {}
        self._phones: dict[str, str | ValidationError] = {}
        # Rows are padded to ``width + 1`` cells (``pad``): a field without a column reads the last, blank cell.
        self.width = len(headers)
        self._household_get = itemgetter(*(self.width if i is None else i for i in self.household_columns))
        self._person_get = itemgetter(*(self.columns.get(c, self.width) for c in _PERSON_FAST_FIELDS))
        self.today_year = self.today.year
        # Per distinct value: the cleaned value, or None when the row must take the checked (slow) path.
        self._spaces: dict[str, str] = {}
        self._splits: dict[str, tuple[str, str, str]] = {}
        self._codes: dict[tuple[str, str], str | None] = {}
        self._factor_cache: dict[str, tuple[str, ...] | None] = {}
        self._ages: dict[str, int | None] = {}
        self._births: dict[str, dt.date | None] = {}
        self._curps: dict[str, tuple[str, dt.date] | None] = {}
        self._person_phones: dict[str, str | None] = {}

    def pad(self, cells: list[str]) -> list[str]:
        """The row with at least ``width + 1`` cells, the last blank (in place)."""
        short = self.width - len(cells)
        if short > 0:
            cells.extend([""] * short)
        cells.append("")
        return cells

    def col(self, code: str) -> str:
        return self.header_of.get(code, code)

    def phone(self, raw: str) -> str:
        """``core.phones.normalize_phone``, memoised by the number's shape (see ``phone_shape``)."""
        shape, last7 = phone_shape(raw)
        found = self._phones.get(shape)
        if found is None:
            try:
                found = normalize_phone(shape)
            except ValidationError as exc:
                found = exc
            if len(self._phones) < 100000:
                self._phones[shape] = found
        if isinstance(found, ValidationError):
            return normalize_phone(raw)  # raises, with the message naming the number as written
        return found[:-7] + last7 if last7 else found

    def household(self, cells: list[str]) -> tuple[dict, list[tuple[str, str]], tuple | None, bool]:
        """``(data, errors, grouping key or None for "a household of its own", placeable)`` of a padded row."""
        key = self._household_get(cells)
        cached = self._household_cache.get(key)
        if cached is not None:
            return cached
        raw = tuple(v.strip() for v in key)
        hid, street, ext, inner, colonia, cp, reference, block, lat, lon, phone, mobile, whatsapp, channel = (
            raw
        )
        errors: list[tuple[str, str]] = []
        data = {
            "external_id": hid[:64],
            "street": street[:200],
            "ext_number": ext[:20],
            "int_number": inner[:20],
            "colonia": colonia[:120],
            "reference": reference[:200],
            "block": block,
        }
        try:
            data["postal_code"] = services.clean_postal_code(cp)
        except ValidationError as exc:
            errors.append(("postal_code", " ".join(exc.messages)))
            data["postal_code"] = ""
        try:
            data["lat"], data["lon"] = services.clean_coordinates(_coordinate(lat), _coordinate(lon))
        except ValidationError as exc:
            errors.append(("lat" if lat else "lon", " ".join(exc.messages)))
            data["lat"] = data["lon"] = None
        phones: dict[str, list[bool]] = {}
        for code, value, caps in (
            ("whatsapp", whatsapp, (True, True, True)),
            ("mobile", mobile, (False, True, True)),
            ("phone", phone, (False, False, True)),
        ):
            if not value:
                continue
            try:
                number = self.phone(value)
            except ValidationError as exc:
                errors.append((code, " ".join(exc.messages)))
                continue
            if number in phones:
                phones[number] = [a or b for a, b in zip(phones[number], caps, strict=True)]
            else:
                phones[number] = list(caps)
        data["phones"] = [(n, *caps) for n, caps in phones.items()]
        if channel:
            chosen = _CHANNELS.get(fold(channel))
            if chosen is None:
                errors.append(
                    (
                        "preferred_channel",
                        _("Unknown channel “%(value)s”: use WhatsApp, SMS, llamada or visita.")
                        % {"value": channel},
                    )
                )
            data["preferred_channel"] = chosen or "whatsapp"
        elif any(caps[0] for caps in phones.values()):
            data["preferred_channel"] = "whatsapp"
        elif any(caps[1] for caps in phones.values()):
            data["preferred_channel"] = "sms"
        elif phones:
            data["preferred_channel"] = "voice"
        else:
            data["preferred_channel"] = "visit"
        if data["external_id"]:
            group = ("id", data["external_id"])
        elif data["street"] or data["ext_number"]:
            group = (
                "address",
                address_key(data["street"], data["ext_number"], data["postal_code"]),
                fold(data["int_number"]),
                data["block"],
                data["lat"],
                data["lon"],
            )
        else:
            group = None
        placeable = not (data["lat"] is None and not data["block"] and not data["street"])
        result = (data, errors, group, placeable)
        if len(self._household_cache) < 500000:
            self._household_cache[key] = result
        return result

    def _space(self, value: str) -> str:
        found = self._spaces.get(value)
        if found is None:
            found = " ".join(value.split())
            if len(self._spaces) < 500000:
                self._spaces[value] = found
        return found

    def _code(self, table: dict, raw: str) -> str | None:
        found = self._codes.get((id(table), raw), "?")
        if found == "?":
            found = table.get(fold(raw.strip()))
            self._codes[(id(table), raw)] = found
        return found

    def person_fast(self, cells: list[str]) -> tuple | None:
        """The ``PersonRow`` fields (after ``household``) of a padded row whose every value is valid, with the
        same cleaned values as ``person`` (names as ``services.clean_person_data`` writes them, CURP through
        ``fast_curp``…); None when any value needs checking with its message (the caller uses ``person``).
        Each distinct value is checked once (column values repeat a lot: dates, ages, codes)."""
        full, given, s1, s2, birth, age, sex, curp, phone, relation, factors, pid = self._person_get(cells)
        space = self._space
        full, given, s1, s2 = space(full), space(given), space(s1), space(s2)
        if not given and not s1 and full:
            split = self._splits.get(full)
            if split is None:
                split = self._splits[full] = split_full_name(full)
            given, s1, s2 = split
        if not full:
            full = " ".join(p for p in (given, s1, s2) if p)
            if not full:
                return None
        birth_date = birth_year = None
        age_stated = False
        if birth:
            birth_date = self._births.get(birth, False)
            if birth_date is False:
                try:
                    birth_date = _parse_date(birth.strip())
                    if birth_date > self.today or birth_date.year < self.today_year - 120:
                        birth_date = None
                except ValueError:
                    birth_date = None
                self._births[birth] = birth_date
            if birth_date is None:
                return None
            birth_year = birth_date.year
        if age:
            years = self._ages.get(age, False)
            if years is False:
                try:
                    years = int(age.strip())
                    if not 0 <= years <= 120:
                        years = None
                except ValueError:
                    years = None
                self._ages[age] = years
            if years is None:
                return None
            if birth_date is None:
                birth_year, age_stated = self.today_year - years, True
        sex_code = ""
        if sex:
            sex_code = self._code(_SEXES, sex)
            if sex_code is None:
                return None
        relation_code = ""
        if relation:
            relation_code = self._code(_RELATIONS, relation)
            if relation_code is None:
                return None
        codes: tuple[str, ...] = ()
        if factors:
            codes = self._factor_cache.get(factors, ())
            if codes == ():
                codes = self._factor_cache[factors] = _factor_codes(factors)
            if codes is None:
                return None
        valid_curp = ""
        if curp:
            found = self._curps.get(curp)
            if found is None:
                found = fast_curp_and_birth(curp)
                if found is None:
                    return None
                if len(self._curps) < 200000:
                    self._curps[curp] = found
            valid_curp = found[0]
            if birth_date is not None and birth_date != found[1]:
                return None
            if not sex_code:
                sex_code = valid_curp[10]
        number = ""
        if phone:
            number = self._person_phones.get(phone)
            if number is None:
                try:
                    number = self.phone(phone.strip())
                except ValidationError:
                    return None
                if len(self._person_phones) < 200000:
                    self._person_phones[phone] = number
        return (
            " ".join(pid.strip()[:64].split()), full[:200], given[:100], s1[:100], s2[:100], birth_date,
            birth_year, age_stated, sex_code, valid_curp, number, relation_code, codes,
        )  # fmt: skip

    def person(self, cells: list[str]) -> tuple[dict, list[tuple[str, str]]]:
        def get(code):
            i = self.columns.get(code)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        errors: list[tuple[str, str]] = []
        data = {
            "full_name": get("full_name"),
            "given_name": get("given_name"),
            "surname1": get("surname1"),
            "surname2": get("surname2"),
            "curp": get("curp"),
            "phone": get("person_phone"),
            "external_id": get("person_id")[:64],
        }
        birth = get("birth_date")
        if birth:
            try:
                data["birth_date"] = _parse_date(birth)
            except ValueError:
                errors.append(
                    (
                        "birth_date",
                        _("“%(value)s” is not a date: write it as DD/MM/YYYY or YYYY-MM-DD.")
                        % {"value": birth},
                    )
                )
        else:
            data["birth_date"] = None
        age = get("age")
        if age:
            data["age"] = age
        sex = get("sex")
        if sex:
            code = _SEXES.get(fold(sex))
            if code is None:
                errors.append(
                    (
                        "sex",
                        _("Unknown sex “%(value)s”: use M (woman), H (man) or X (non-binary).")
                        % {"value": sex},
                    )
                )
            else:
                data["sex"] = code
        relation = get("relation")
        if relation:
            code = _RELATIONS.get(fold(relation))
            if code is None:
                errors.append(("relation", _("Unknown relation “%(value)s”.") % {"value": relation}))
            else:
                data["relation"] = code
        factors = get("factors")
        if factors:
            codes = []
            for part in re.split(r"[,;|/]", factors):
                part = fold(part)
                if not part:
                    continue
                code = _FACTORS.get(part) or _FACTORS.get(part.replace(" ", "_"))
                if code is None:
                    errors.append(
                        ("factors", _("Unknown vulnerability factor “%(value)s”.") % {"value": part})
                    )
                else:
                    codes.append(code)
            data["factors"] = codes
        # Fast paths (the same result as the services' checks, without their per-call costs; see fast_curp):
        # sex and relation are already codes; a CURP that passes fast_curp is what normalize_curp returns.
        checked = {k: data.pop(k) for k in ("sex", "relation") if k in data}
        valid_curp = fast_curp(data["curp"]) if data["curp"] else ""
        if valid_curp:
            data["curp"] = ""
        phone = data.pop("phone")
        if phone:
            try:
                checked["phone"] = self.phone(phone)
            except ValidationError as exc:
                errors.append(("person_phone", " ".join(exc.messages)))
        try:
            cleaned = services.clean_person_data(data, self.today)
            cleaned.update(checked)
            if valid_curp:
                cleaned["curp"] = valid_curp
                birth = curp_birth_date(valid_curp)
                if cleaned.get("birth_date") and cleaned["birth_date"] != birth:
                    raise ValidationError(
                        {"curp": [_("The CURP's birth date does not match the birth date given.")]}
                    )
                if not cleaned.get("sex"):
                    cleaned["sex"] = valid_curp[10]
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                column = key
                if key == "full_name":
                    column = next(
                        (c for c in ("full_name", "given_name", "surname1") if c in self.columns), key
                    )
                if key == "phone":
                    column = "person_phone"
                for message in messages:
                    errors.append((column, message))
            cleaned = {}
        if cleaned:
            for key, limit in (("full_name", 200), ("given_name", 100), ("surname1", 100), ("surname2", 100)):
                cleaned[key] = (cleaned.get(key) or "")[:limit]
        return cleaned, errors


def analyse(
    job: ImportJob, *, keep_cleaned: int = 0, progress: Callable[[str, int, int], None] | None = None
) -> Analysis:
    """Read and validate the whole file, group households and place them; no write."""
    result = Analysis()
    rows = iter_rows(job)
    try:
        header_number, headers = next(rows)
    except StopIteration:
        raise ImportFileError(_("The file is empty.")) from None
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            _("The file is not in the encoding detected (%(enc)s).") % {"enc": job.encoding}
        ) from exc
    problems = mapping_problems(job.mapping)
    if problems:
        raise ImportFileError(" ".join(problems))
    validator = _Validator(job, [h.strip() for h in headers])
    col = validator.col
    blocks = _Blocks(job.node)
    groups: dict[tuple, int] = {}
    pending_points: list[int] = []
    by_address: dict[str, int] | None = None
    households = result.households
    persons = result.persons
    household_of = validator.household
    person_fast = validator.person_fast
    pad = validator.pad
    person_row = bulk.PersonRow
    unplaced = _("The row has no coordinates, no block code and no address: it cannot be placed on a block.")
    total = 0
    try:
        for number, cells in rows:
            total += 1
            pad(cells)
            hdata, herrors, key, placeable = household_of(cells)
            fields = None
            if not herrors and placeable and not (keep_cleaned and len(result.cleaned) < keep_cleaned):
                fields = person_fast(cells)
            if fields is None:  # a value to check with its message, or a preview row: the checked path
                pdata, perrors = validator.person(cells)
                row_errors = [RowError(number, col(c), m) for c, m in (*herrors, *perrors)]
                if not placeable:
                    row_errors.append(RowError(number, col("block"), unplaced))
                if keep_cleaned and len(result.cleaned) < keep_cleaned:
                    result.cleaned[number] = {**{k: v for k, v in hdata.items() if k != "phones"},
                                              "phones": [p[0] for p in hdata["phones"]], **pdata}  # fmt: skip
                if row_errors:
                    result.errors.extend(row_errors)
                    result.invalid_rows.add(number)
                    if total % PROGRESS_EVERY == 0 and progress:
                        progress("validate", total, 0)
                    continue
                pdata.pop("age", None)
                f = _person_fields(pdata)
                fields = (
                    f["external_id"], f["full_name"], f["given_name"], f["surname1"], f["surname2"],
                    f["birth_date"], f["birth_year"], f["age_stated"], f["sex"], f["curp"], f["phone"],
                    f["relation"], f["factors"],
                )  # fmt: skip
            if key is None:
                key = ("row", number)
            index = groups.get(key)
            if index is None:
                index = groups[key] = len(households)
                household = _Household(
                    key=key,
                    row=bulk.HouseholdRow(
                        node_id=0,
                        external_id=hdata["external_id"],
                        street=hdata["street"],
                        ext_number=hdata["ext_number"],
                        int_number=hdata["int_number"],
                        colonia=hdata["colonia"],
                        postal_code=hdata["postal_code"],
                        reference=hdata["reference"],
                        lat=hdata["lat"],
                        lon=hdata["lon"],
                        preferred_channel=hdata["preferred_channel"],
                        phones=hdata["phones"],
                    ),
                    block_code=hdata["block"],
                    first_row=number,
                )
                households.append(household)
                if household.row.lat is not None:
                    pending_points.append(index)
            households[index].rows.append(number)
            persons.append((number, index, person_row(index, *fields)))
            if total % PROGRESS_EVERY == 0 and progress:
                progress("validate", total, 0)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            _("The file is not in the encoding detected (%(enc)s).") % {"enc": job.encoding}
        ) from exc
    except csv.Error as exc:
        raise ImportFileError(_("The CSV file is malformed: %(reason)s.") % {"reason": str(exc)}) from exc
    finally:
        result.total = total
    if progress:
        progress("validate", result.total, result.total)

    # ---- placement: points first (one bulk query), then block codes, then known addresses
    located = blocks.locate(
        [(result.households[i].row.lat, result.households[i].row.lon) for i in pending_points]
    )
    for i, block_id in zip(pending_points, located, strict=True):
        result.households[i].row.node_id = block_id or 0
    bad_households: dict[int, RowError] = {}
    for i, household in enumerate(result.households):
        row = household.row
        if row.node_id:
            continue
        if household.block_code:
            block_id = blocks.find_code(household.block_code)
            if block_id:
                row.node_id = block_id
                continue
            if household.block_code in blocks.outside:
                message = _("The block “%(code)s” is outside %(node)s, the territory of this import.") % {
                    "code": household.block_code,
                    "node": job.node.name,
                }
            else:
                message = _("There is no block with the code “%(code)s” in %(node)s.") % {
                    "code": household.block_code,
                    "node": job.node.name,
                }
            bad_households[i] = RowError(0, col("block"), message)
            continue
        if row.lat is not None:
            bad_households[i] = RowError(
                0,
                col("lat"),
                _(
                    "The point (%(lat)s, %(lon)s) is not inside any block of %(node)s, the territory of this import."
                )
                % {"lat": row.lat, "lon": row.lon, "node": job.node.name},
            )
            continue
        if by_address is None:
            by_address = dict(
                Household.objects.filter(
                    municipality_id=job.municipality_id, node_id__in=blocks.ids, status=RecordStatus.ACTIVE
                )
                .exclude(address_key="")
                .values_list("address_key", "node_id")
            )
        block_id = by_address.get(address_key(row.street, row.ext_number, row.postal_code))
        if block_id:
            row.node_id = block_id
            continue
        bad_households[i] = RowError(
            0,
            col("street"),
            _("The address is not known in %(node)s: give the block code or the coordinates.")
            % {"node": job.node.name},
        )
    if bad_households:
        for i, error in bad_households.items():
            for number in result.households[i].rows:
                result.errors.append(RowError(number, error.column, error.message))
                result.invalid_rows.add(number)
        result.persons = [p for p in result.persons if p[1] not in bad_households]
        keep = [i for i in range(len(result.households)) if i not in bad_households]
        renumber = {old: new for new, old in enumerate(keep)}
        result.households = [result.households[i] for i in keep]
        for _number, _index, person in result.persons:
            person.household = renumber[person.household]
        result.persons = [(n, p.household, p) for n, _i, p in result.persons]
    result.errors.sort(key=lambda e: e.row)
    if keep_cleaned:
        codes = {pk: code for code, pk in blocks.by_code.items()}
        for number, index, _person in result.persons:
            if number in result.cleaned:
                result.cleaned[number]["block"] = codes.get(result.households[index].row.node_id, "")
    return result


def _person_fields(data: dict) -> dict:
    return {
        "external_id": data.get("external_id", ""),
        "full_name": data.get("full_name", ""),
        "given_name": data.get("given_name", ""),
        "surname1": data.get("surname1", ""),
        "surname2": data.get("surname2", ""),
        "birth_date": data.get("birth_date"),
        "birth_year": data.get("birth_year"),
        "age_stated": bool(data.get("age_stated")),
        "sex": data.get("sex", "") or "",
        "curp": data.get("curp", "") or "",
        "phone": data.get("phone", "") or "",
        "relation": data.get("relation", "") or "",
        "factors": list(data.get("factors") or ()),
    }


# ------------------------------------------------------------------------------------------------ preview


def preview(job: ImportJob, limit: int = 20) -> dict:
    """Validate the whole file without writing.

    Returns ``{"rows": [{"row", "values": {field: cleaned value}, "errors": {field code or column: [messages]}}],
    "valid": n, "invalid": n, "total": n, "households": n, "errors": [first errors as dicts]}``."""
    analysis = analyse(job, keep_cleaned=limit)
    if job.total_rows != analysis.total:
        # The row count is known from here on: the progress bar of the run has its denominator.
        ImportJob.objects.filter(pk=job.pk).update(total_rows=analysis.total)
        job.total_rows = analysis.total
    by_row: dict[int, dict[str, list[str]]] = {}
    for error in analysis.errors:
        if error.row in analysis.cleaned:
            by_row.setdefault(error.row, {}).setdefault(error.column, []).append(error.message)
    rows = [
        {"row": number, "values": values, "errors": by_row.get(number, {})}
        for number, values in sorted(analysis.cleaned.items())
    ]
    return {
        "rows": rows,
        "total": analysis.total,
        "valid": analysis.total - len(analysis.invalid_rows),
        "invalid": len(analysis.invalid_rows),
        "households": len(analysis.households),
        "errors": [_error_dict(e) for e in analysis.errors[:MAX_REPORTED_ERRORS]],
        "errors_total": len(analysis.errors),
    }


def _error_dict(error: RowError) -> dict:
    return {"row": error.row, "column": error.column, "message": error.message}


# ------------------------------------------------------------------------------------------------ running


def start(job: ImportJob, *, actor, enqueue: bool = True) -> ImportJob:
    """Queue the import (status "queued"); the background task runs ``run``.

    ``enqueue=False`` only marks it queued: the caller runs ``run`` itself (the CLI, with its progress bars)."""
    from . import tasks

    problems = mapping_problems(job.mapping)
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.UPLOADED).update(
            status=ImportJob.Status.QUEUED, phase="queued"
        )
        if not updated:
            raise ValidationError(_("This import has already been started."))
        record("registry.import.start", actor=actor, obj=job, node=job.node, summary=_("Import queued"))
    if enqueue:
        tasks.run_import.enqueue(job.pk)
        job.refresh_from_db()
    return job


def errors_csv_path(job: ImportJob) -> Path:
    return import_dir() / f"{job.uuid}-errors.csv"


def _progress_to_db(job_id: int, phase: str, done: int, total: int | None = None) -> None:
    values = {"phase": phase, "processed_rows": done}
    if total is not None:
        values["total_rows"] = total
    ImportJob.objects.filter(pk=job_id).update(**values)


def run(job_id: int, progress: Callable[[str, int, int], None] | None = None) -> ImportJob:
    """The task body: read, validate, place, write and flag duplicates; status → done/rejected/failed.

    ``progress(phase, done, total)`` is called as it goes (the CLI's bars); ``ImportJob`` is updated between
    batches outside the writing transaction. A failure leaves nothing written (the write and the duplicate flags
    are one transaction) and the job "failed" with the reason in its report."""
    import gc

    job = ImportJob.objects.select_related("node", "municipality", "created_by").get(pk=job_id)
    language = job.report.get("language") or settings.LANGUAGE_CODE
    # Millions of small objects and no reference cycles: the cyclic collector's full passes would make the
    # import superlinear, so it is paused for the run (memory is freed by reference counting as usual).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with translation.override(language):
            return _run(job, progress)
    finally:
        if collecting:
            gc.enable()


def _run(job: ImportJob, progress) -> ImportJob:
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.QUEUED):
        raise ValidationError(_("This import has already run."))
    actor = job.created_by
    job.status, job.started_at, job.phase = ImportJob.Status.RUNNING, timezone.now(), "reading"
    job.save(update_fields=["status", "started_at", "phase"])

    def report_progress(phase, done, total):
        if phase == "validate":
            _progress_to_db(job.pk, "validating", done, total or job.total_rows or None)
        if progress:
            progress(phase, done, total)

    try:
        analysis = analyse(job, progress=report_progress)
        job.total_rows = analysis.total
        job.invalid_rows = len(analysis.invalid_rows)
        _write_errors_csv(job, analysis.errors)
        report = dict(job.report)
        report["errors"] = [_error_dict(e) for e in analysis.errors[:MAX_REPORTED_ERRORS]]
        report["errors_total"] = len(analysis.errors)
        job.report = report
        if not analysis.persons or (job.mode == ImportJob.Mode.ALL_OR_NOTHING and analysis.invalid_rows):
            job.status = ImportJob.Status.REJECTED
            job.phase = "done"
            job.processed_rows = analysis.total
            job.finished_at = timezone.now()
            job.save()
            record(
                "registry.import.reject",
                actor=actor,
                obj=job,
                node=job.node,
                summary=_("Nothing imported"),
                changes={"rows": analysis.total, "invalid": job.invalid_rows},
            )
            return job
        _progress_to_db(job.pk, "writing", 0, analysis.total)
        households, persons = _match_existing(job, analysis)
        bulk.fill_keys(persons)
        addresses = [address_key(h.street, h.ext_number, h.postal_code) for h in households]
        written = [0]
        total = len(households) + len(persons)
        side = _SideProgress(job)

        def write_progress(n):
            written[0] += n
            side.update(min(analysis.total, round(analysis.total * written[0] / total)))
            if progress:
                progress("write", written[0], total)

        with transaction.atomic():
            lock_tree(job.municipality_id)
            if connection.vendor == "postgresql":
                # The commit does not wait for its WAL to reach the disk (~1.5 s per 100k persons). Trade-off: a
                # server crash in the following ~0.6 s (3 × wal_writer_delay) loses the whole import, job status
                # included (it stays "running"); nothing is ever half-written.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit = off")
            # The duplicate search needs only what is in memory plus the existing persons that share a key with
            # the file's: it runs in a second process while this one writes (large imports), else after.
            search = _DuplicateSearch(job, households, persons, addresses)
            try:
                result = bulk.write(
                    job.municipality_id,
                    households,
                    persons,
                    actor=actor,
                    progress=write_progress,
                    action="registry.import.write",
                    address_keys=addresses,
                    keys_filled=True,
                )
            finally:
                side.close()
            if progress:
                progress("duplicates", 0, 1)
            flagged = search.store(result.person_ids, actor=actor)
            if progress:
                progress("duplicates", 1, 1)
            job.households_created, job.households_updated = (
                result.households_created,
                result.households_updated,
            )
            job.persons_created, job.persons_updated = result.persons_created, result.persons_updated
            job.duplicates_flagged = flagged
            job.processed_rows = analysis.total
            job.status, job.phase, job.finished_at = ImportJob.Status.DONE, "done", timezone.now()
            job.save()
            record(
                "registry.import.run",
                actor=actor,
                obj=job,
                node=job.node,
                summary=_("Import finished"),
                changes={
                    "rows": analysis.total,
                    "invalid": job.invalid_rows,
                    "households_created": job.households_created,
                    "households_updated": job.households_updated,
                    "persons_created": job.persons_created,
                    "persons_updated": job.persons_updated,
                    "duplicates": flagged,
                },
            )
        return job
    except Exception as exc:
        reason = (
            " ".join(exc.messages) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
        )
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.FAILED,
            phase="failed",
            finished_at=timezone.now(),
            report={**job.report, "failure": reason[:2000]},
            households_created=0,
            households_updated=0,
            persons_created=0,
            persons_updated=0,
            duplicates_flagged=0,
        )
        record("registry.import.fail", actor=actor, obj=job, node=job.node, summary=reason[:300])
        job.refresh_from_db()
        if isinstance(exc, ValidationError):
            return job
        raise


def _write_errors_csv(job: ImportJob, errors: list[RowError]) -> None:
    path = errors_csv_path(job)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([_("row"), _("column"), _("error")])
        for error in errors:
            writer.writerow([error.row, error.column, error.message])


def _match_existing(
    job: ImportJob, analysis: Analysis
) -> tuple[list[bulk.HouseholdRow], list[bulk.PersonRow]]:
    """Set the ids of households and persons that exist already (by external id; persons without one by name)."""
    households = [h.row for h in analysis.households]
    persons = [p for _n, _i, p in analysis.persons]
    municipality_id = job.municipality_id
    if not Household.objects.filter(municipality_id=municipality_id).exists():
        return households, persons  # a first import: nothing to match
    ext_ids = [h.external_id for h in households if h.external_id]
    existing_h: dict[str, int] = {}
    for start in range(0, len(ext_ids), 5000):
        existing_h.update(
            Household.objects.filter(
                municipality_id=municipality_id, external_id__in=ext_ids[start : start + 5000]
            ).values_list("external_id", "pk")
        )
    for h in households:
        if h.external_id:
            h.id = existing_h.get(h.external_id)
    person_ext = [p.external_id for p in persons if p.external_id]
    existing_p: dict[str, int] = {}
    for start in range(0, len(person_ext), 5000):
        existing_p.update(
            Person.objects.filter(
                municipality_id=municipality_id, external_id__in=person_ext[start : start + 5000]
            ).values_list("external_id", "pk")
        )
    existing_household_ids = [h.id for h in households if h.id]
    by_name: dict[tuple, int] = {}
    for start in range(0, len(existing_household_ids), 5000):
        for pk, household_id, given, s1, s2 in Person.objects.filter(
            household_id__in=existing_household_ids[start : start + 5000],
            external_id="",
            status=RecordStatus.ACTIVE,
        ).values_list("pk", "household_id", "given_key", "surname1_key", "surname2_key"):
            by_name.setdefault((household_id, given, s1, s2), pk)
    seen: set[int] = set()
    for p in persons:
        pk = existing_p.get(p.external_id) if p.external_id else None
        if pk is None and not p.external_id and households[p.household].id:
            key = (households[p.household].id, fold(p.given_name), fold(p.surname1), fold(p.surname2))
            pk = by_name.get(key)
        if pk is not None and pk not in seen:
            p.id = pk
            seen.add(pk)
    return households, persons


# ------------------------------------------------------------------------------------------------ duplicates


#: Imports of at least this many persons search duplicates in a second (forked) process while the rows are
#: written; smaller ones search after writing, in this process. ``REDES_IMPORT_PARALLEL = False`` in the settings
#: turns the second process off.
PARALLEL_ABOVE = 20000


def _search_pairs(records: list) -> list[tuple[int, int, float, list[str]]]:
    from . import matching

    return [(p.id_a, p.id_b, p.score, list(p.reasons)) for p in matching.find_duplicates(records)]


def _child(send, fn, args) -> None:
    try:
        send.send((True, fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - any failure goes back to the parent as its reason
        send.send((False, f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()


class _Forked:
    """``fn(*args)`` in a forked child process (it inherits the arguments, sends the result back by a pipe)."""

    def __init__(self, fn, *args):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
        self._proc.start()
        send.close()

    def result(self):
        try:
            ok, value = self._recv.recv()
        except EOFError:
            ok, value = False, _("The duplicate search process stopped.")
        finally:
            self._recv.close()
            self._proc.join()
        if not ok:
            raise RuntimeError(value)
        return value


def _parallel_allowed(count: int) -> bool:
    import multiprocessing

    return (
        count >= PARALLEL_ABOVE
        and getattr(settings, "REDES_IMPORT_PARALLEL", True)
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


class _DuplicateSearch:
    """The duplicate search of one import: the matcher (``registry.matching.find_duplicates``) over the file's
    persons, as held in memory, plus the existing active persons of the municipality that share a surname key,
    a CURP or a birth date with them (none at all for a first import into an empty municipality).

    Created inside the writing transaction, before the write (it reads the existing persons as they were);
    ``store`` takes the ids the write gave the file's persons and stores the pairs as ``DuplicateCandidate`` rows
    (source "import")."""

    def __init__(self, job: ImportJob, households: list, persons: list, addresses: list[str]):
        from . import matching  # noqa: F401 - imported before a fork

        self.job = job
        self.persons = persons
        self.node_of = [h.node_id for h in households]
        records = []
        for j, p in enumerate(persons):
            h = households[p.household]
            records.append(
                matching.MatchRecord(
                    id=j, given=p.given_name, surname1=p.surname1, surname2=p.surname2, birth_date=p.birth_date,
                    birth_year=p.birth_year, sex=p.sex, curp=p.curp, address=addresses[p.household],
                    phone=p.phone, household=h.id if h.id is not None else f"n{p.household}",
                )
            )  # fmt: skip
        self.others = self._others(persons)
        for k, row in enumerate(self.others):
            record_ = dedupe.to_record(row)
            record_.id = len(persons) + k
            records.append(record_)
        self._pending = None
        self._pairs = None
        if len(records) < 2:
            self._pairs = []
        elif _parallel_allowed(len(records)):
            try:
                self._pending = _Forked(_search_pairs, records)
            except (OSError, ValueError, AssertionError):  # no process to spare: search here, after the write
                self._records = records
        else:
            self._records = records

    def _others(self, persons: list) -> list[dict]:
        from django.db.models import Q

        municipality_id = self.job.municipality_id
        mine = {p.id for p in persons if p.id is not None}
        active = Person.objects.filter(municipality_id=municipality_id, status=RecordStatus.ACTIVE)
        count = active.count()
        if count <= len(mine):  # perhaps every active person is in the file (a re-import), or none exists
            ordered = sorted(mine)
            in_file = sum(
                active.filter(pk__in=ordered[start : start + 5000]).count()
                for start in range(0, len(ordered), 5000)
            )
            if count == in_file:
                return []
        surnames = sorted({k for p in persons for k in (p.surname1_key, p.surname2_key) if k})
        curps = sorted({p.curp for p in persons if p.curp})
        births = sorted({p.birth_date for p in persons if p.birth_date})
        fields = (*dedupe._FIELDS, "node_id")
        found: dict[int, dict] = {}
        for values, make_q in (
            (surnames, lambda v: Q(surname1_key__in=v) | Q(surname2_key__in=v)),
            (curps, lambda v: Q(curp__in=v)),
            (births, lambda v: Q(birth_date__in=v)),
        ):
            for start in range(0, len(values), 500):
                for row in active.filter(make_q(values[start : start + 500])).values(*fields).iterator(5000):
                    if row["pk"] not in mine:
                        found.setdefault(row["pk"], row)
        return list(found.values())

    def store(self, person_ids: list[int], *, actor=None) -> int:
        """Store the pairs found that involve at least one of the file's persons; returns how many are new."""
        if self._pairs is None:
            self._pairs = self._pending.result() if self._pending else _search_pairs(self._records)
        n = len(self.persons)
        others = self.others
        existing = {p.id for p in self.persons if p.id is not None} | {row["pk"] for row in others}
        rows = []
        for id_a, id_b, score, reasons in self._pairs:
            if id_a >= n and id_b >= n:
                continue
            pa = person_ids[id_a] if id_a < n else others[id_a - n]["pk"]
            pb = person_ids[id_b] if id_b < n else others[id_b - n]["pk"]
            node_id = (
                self.node_of[self.persons[id_a].household]
                if id_a < n
                else (self.node_of[self.persons[id_b].household])
            )
            if pa > pb:
                pa, pb = pb, pa
            if pa == pb:
                continue
            rows.append((pa, pb, node_id, score, reasons))
        # Only pairs of two persons that existed before the import can be stored already.
        old = [(a, b) for a, b, *_rest in rows if a in existing and b in existing]
        stored: set[tuple[int, int]] = set()
        for start in range(0, len(old), 2000):
            chunk = old[start : start + 2000]
            stored.update(
                DuplicateCandidate.objects.filter(
                    person_a_id__in={a for a, _b in chunk}, person_b_id__in={b for _a, b in chunk}
                ).values_list("person_a_id", "person_b_id")
            )
        seen: set[tuple[int, int]] = set()
        fresh = []
        for pa, pb, node_id, score, reasons in rows:
            if (pa, pb) in stored or (pa, pb) in seen:
                continue
            seen.add((pa, pb))
            fresh.append((pa, pb, node_id, score, reasons))
        if not fresh:
            return 0
        bulk.add_duplicate_candidates(self.job.municipality_id, fresh, source="import")
        record(
            "registry.duplicate.flag",
            actor=actor,
            obj=self.job,
            node=self.job.node,
            summary=_("Possible duplicates found"),
            changes={"pairs": len(fresh)},
        )
        return len(fresh)


def _progress_path(job: ImportJob) -> Path:
    return Path(settings.REDES_IMPORT_DIR) / f"{job.uuid}.progress"


def live_progress(job: ImportJob) -> int | None:
    """The processed count written beside the database while the job's write transaction is open (SQLite)."""
    try:
        return int(_progress_path(job).read_text() or 0)
    except (OSError, ValueError):
        return None


class _SideProgress:
    """The processed count of a job, published while the import's own transaction is open.

    PostgreSQL: from a second, autocommit connection (short ``UPDATE``s, at most one a second), so the page
    shows the write advancing. SQLite has one writer at a time and the import holds it, so the count goes to a
    small file next to the uploaded file (``live_progress``), which the progress page reads while the job is
    "writing" (the embedded set-up runs on one machine)."""

    def __init__(self, job: ImportJob):
        self.job_id = job.pk
        self.conn = None
        self.last = 0.0
        self.path = None
        if connection.vendor != "postgresql":
            self.path = _progress_path(job)
            return
        try:
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params["autocommit"] = True
            self.conn = psycopg.connect(**params)
            self.conn.execute("SET lock_timeout = '1s'")
            self.conn.execute("SET statement_timeout = '5s'")
        except Exception:  # noqa: BLE001 - progress is a courtesy: the import goes on without it
            self.conn = None

    def update(self, done: int) -> None:
        import time

        if (self.conn is None and self.path is None) or time.monotonic() - self.last < 0.5:
            return
        self.last = time.monotonic()
        if self.path is not None:
            try:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(str(int(done)))
                tmp.replace(self.path)
            except OSError:
                self.path = None
            return
        try:
            self.conn.execute(
                "UPDATE registry_importjob SET processed_rows = %s WHERE id = %s", (int(done), self.job_id)
            )
        except Exception:  # noqa: BLE001 - see above
            self.close()

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
