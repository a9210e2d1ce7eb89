"""Bulk import of households and persons: the fast writer, reading, mapping, validation, placement, modes."""

import datetime as dt
import tempfile
import uuid

from django.test import TestCase

from redes.audit.models import AuditEvent
from redes.registry import bulk, services
from redes.registry.models import BlockCounts, Household, Person, Phone

from .base import RedesTestCase, build_world


def counts(node):
    return (
        BlockCounts.objects.filter(node=node)
        .values_list("households", "persons", "priority_households", "visited_households")
        .first()
    )


class BulkWriteTests(RedesTestCase):
    def rows(self):
        w = self.w
        households = [
            bulk.HouseholdRow(
                node_id=w.b11.pk,
                external_id="H1",
                street="Calle Hidalgo",
                ext_number="12",
                postal_code="66050",
                phones=[("+528112345678", True, True, True), ("+528112345678", True, True, True)],
            ),
            bulk.HouseholdRow(node_id=w.b21.pk, external_id="H2", street="Juárez", ext_number="3"),
        ]
        persons = [
            bulk.PersonRow(
                household=0,
                external_id="P1",
                full_name="Rosa María de la Cruz Núñez",
                given_name="Rosa María",
                surname1="de la Cruz",
                surname2="Núñez",
                birth_year=1950,
                age_stated=True,
                factors=["job_loss"],
            ),
            bulk.PersonRow(
                household=0, external_id="P2", full_name="Ana Pérez", given_name="Ana", surname1="Pérez"
            ),
            bulk.PersonRow(
                household=1,
                external_id="P3",
                full_name="Juan López",
                given_name="Juan",
                surname1="López",
                birth_date=dt.date(1990, 5, 1),
                birth_year=1990,
                sex="H",
            ),
        ]
        return households, persons

    def test_write_fills_keys_priority_and_counts(self):
        w = self.w
        households, persons = self.rows()
        result = bulk.write(w.esc.pk, households, persons, actor=w.coord)
        self.assertEqual(result.persons_created, 3)
        h1 = Household.objects.get(pk=result.household_ids[0])
        self.assertEqual(h1.members_count, 2)
        self.assertEqual(h1.address_key, "hidalgo 12 66050")
        # older adult (25) + job loss (20)
        self.assertEqual(h1.priority, 45)
        self.assertEqual({line["factor"] for line in h1.priority_explanation}, {"older_adult", "job_loss"})
        self.assertEqual(
            list(Phone.objects.filter(household=h1).values_list("number", flat=True)), ["+528112345678"]
        )
        rosa = Person.objects.get(pk=result.person_ids[0])
        self.assertEqual(
            (rosa.given_key, rosa.given2_key, rosa.surname1_key), ("rosa maria", "maria", "de la cruz")
        )
        self.assertEqual(rosa.relation, "head")
        self.assertEqual(Person.objects.get(pk=result.person_ids[1]).relation, "")
        self.assertEqual(rosa.created_by, w.coord)
        self.assertEqual(Person.objects.get(pk=result.person_ids[2]).birth_date, dt.date(1990, 5, 1))
        self.assertEqual(counts(w.b11), (1, 2, 1, 0))
        self.assertEqual(counts(w.b21), (1, 1, 0, 0))
        # a later census write keeps the counts in step with the bulk ones
        services.create_household(w.b11, actor=w.block1, street="Otra", ext_number="1")
        self.assertEqual(counts(w.b11), (2, 2, 1, 0))

    def test_update_rows_by_id_does_not_duplicate(self):
        w = self.w
        households, persons = self.rows()
        first = bulk.write(w.esc.pk, households, persons)
        households, persons = self.rows()
        for h, pk in zip(households, first.household_ids, strict=True):
            h.id = pk
        for p, pk in zip(persons, first.person_ids, strict=True):
            p.id = pk
        households[0].node_id = w.b12.pk
        persons[0].factors = []
        second = bulk.write(w.esc.pk, households, persons)
        self.assertEqual((second.households_created, second.households_updated), (0, 2))
        self.assertEqual(Household.objects.count(), 2)
        self.assertEqual(Person.objects.count(), 3)
        self.assertEqual(Person.objects.get(pk=first.person_ids[0]).node_id, w.b12.pk)
        self.assertEqual(Person.objects.get(pk=first.person_ids[0]).relation, "head")
        self.assertEqual(Household.objects.get(pk=first.household_ids[0]).priority, 25)
        self.assertEqual(counts(w.b12), (1, 2, 0, 0))
        self.assertFalse(BlockCounts.objects.filter(node=w.b11, households__gt=0).exists())

    def test_one_transaction(self):
        w = self.w
        households, persons = self.rows()
        persons[2].household = 5  # no such household: fails after the households were copied
        with self.assertRaises(IndexError):
            bulk.write(w.esc.pk, households, persons)
        self.assertEqual(Household.objects.count(), 0)
        self.assertEqual(Phone.objects.count(), 0)


# ------------------------------------------------------------------------------------------------ importing

import csv  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

from django.core.exceptions import PermissionDenied, ValidationError  # noqa: E402
from django.test import TransactionTestCase  # noqa: E402
from django.utils import translation  # noqa: E402

from redes.core.curp import curp_check_digit  # noqa: E402
from redes.registry import importing  # noqa: E402
from redes.registry.models import DuplicateCandidate, ImportJob  # noqa: E402
from redes.territories.services import create_node  # noqa: E402

#: Background tasks inline (tests/conftest.py sets REDES_TASKS_BACKEND after the settings are loaded).
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}


def curp(first17: str) -> str:
    return first17 + curp_check_digit(first17)


ROSA = curp("GOMR500312MNLRRS0")
JUAN = curp("LOPJ900501HNLPRN0")

HEADER = [
    "Folio hogar", "ID persona", "Nombre", "Primer apellido", "Segundo apellido", "Fecha de nacimiento", "Edad",
    "Sexo", "CURP", "Parentesco", "Calle", "Número", "Colonia", "C.P.", "Manzana", "Celular",
]  # fmt: skip


def person_row(**values):
    row = dict.fromkeys(HEADER, "")
    row.update(values)
    return [row[h] for h in HEADER]


GOOD_ROWS = [
    person_row(**{"Folio hogar": "H1", "ID persona": "P1", "Nombre": "Rosa María", "Primer apellido": "Gómez",
                  "Segundo apellido": "Ruiz", "Fecha de nacimiento": "12/03/1950", "Sexo": "Mujer", "CURP": ROSA,
                  "Parentesco": "Jefa de hogar", "Calle": "Calle Niño Artillero", "Número": "12",
                  "Colonia": "Peñón", "C.P.": "66050", "Manzana": "S01-M001", "Celular": "81 1234 5678"}),
    person_row(**{"Folio hogar": "H1", "ID persona": "P2", "Nombre": "Ana", "Primer apellido": "Gómez",
                  "Edad": "8", "Sexo": "M", "Parentesco": "hija", "Calle": "Calle Niño Artillero", "Número": "12",
                  "Colonia": "Peñón", "C.P.": "66050", "Manzana": "S01-M001", "Celular": "81 1234 5678"}),
    person_row(**{"Folio hogar": "H2", "ID persona": "P3", "Nombre": "Juan", "Primer apellido": "López",
                  "Segundo apellido": "Pérez", "Fecha de nacimiento": "1990-05-01", "Sexo": "H", "CURP": JUAN,
                  "Calle": "Juárez", "Número": "3", "C.P.": "66050", "Manzana": "S02-M001"}),
]  # fmt: skip


def csv_bytes(rows, header=HEADER, delimiter=",", encoding="utf-8"):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows, header=HEADER):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append([int(v) if v.isdigit() and len(v) > 6 else v for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


class ImportTests(RedesTestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="redes-import-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        override = self.settings(REDES_IMPORT_DIR=self.tmp / "imports", TASKS=IMMEDIATE_TASKS)
        override.enable()
        self.addCleanup(override.disable)
        translation.activate("en")
        self.addCleanup(translation.activate, "es-mx")

    def file(self, content: bytes, name="hogares.csv") -> Path:
        path = self.tmp / name
        path.write_bytes(content)
        return path

    def job(self, content: bytes, name="hogares.csv", node=None, mode="valid_rows", actor=None, mapping=None):
        job = importing.create_job(self.w.esc, node, self.file(content, name), actor=actor or self.w.coord)
        importing.set_mapping(job, mapping or job.mapping, mode, actor=self.w.coord)
        return job

    def run_job(self, job):
        importing.start(job, actor=self.w.coord)
        job.refresh_from_db()
        return job

    def errors(self, job):
        return [(e["row"], e["column"], e["message"]) for e in job.report["errors"]]

    # -- reading

    def test_mapping_suggested_from_spanish_headers(self):
        job = importing.create_job(self.w.esc, None, self.file(csv_bytes(GOOD_ROWS)), actor=self.w.coord)
        self.assertEqual(
            job.mapping,
            {
                "household_id": "Folio hogar",
                "person_id": "ID persona",
                "given_name": "Nombre",
                "surname1": "Primer apellido",
                "surname2": "Segundo apellido",
                "birth_date": "Fecha de nacimiento",
                "age": "Edad",
                "sex": "Sexo",
                "curp": "CURP",
                "relation": "Parentesco",
                "street": "Calle",
                "ext_number": "Número",
                "colonia": "Colonia",
                "postal_code": "C.P.",
                "block": "Manzana",
                "mobile": "Celular",
            },
        )
        self.assertEqual(job.encoding, "utf-8")
        self.assertEqual(job.report["columns"], HEADER)

    def test_english_headers_and_full_name(self):
        mapping = importing.suggest_mapping(
            ["Name", "Date of birth", "Street", "Postal code", "Latitude", "Longitude", "Phone", "WhatsApp"]
        )
        self.assertEqual(
            mapping,
            {
                "full_name": "Name",
                "birth_date": "Date of birth",
                "street": "Street",
                "postal_code": "Postal code",
                "lat": "Latitude",
                "lon": "Longitude",
                "phone": "Phone",
                "whatsapp": "WhatsApp",
            },
        )
        self.assertEqual(
            importing.suggest_mapping(["Apellido paterno", "Apellido materno", "Nombre(s)"])["given_name"],
            "Nombre(s)",
        )

    def test_csv_import_writes_households_persons_and_counts(self):
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS, delimiter=";")))
        self.assertEqual(job.status, ImportJob.Status.DONE, job.report)
        self.assertEqual(job.report["delimiter"], ";")
        self.assertEqual((job.total_rows, job.processed_rows, job.invalid_rows), (3, 3, 0))
        self.assertEqual((job.households_created, job.persons_created), (2, 3))
        h1 = Household.objects.get(external_id="H1")
        self.assertEqual((h1.node_id, h1.members_count, h1.colonia), (self.w.b11.pk, 2, "Peñón"))
        self.assertEqual(list(h1.phones.values_list("number", "sms")), [("+528112345678", True)])
        rosa = Person.objects.get(external_id="P1")
        self.assertEqual(
            (rosa.birth_date, rosa.sex, rosa.relation, rosa.curp), (dt.date(1950, 3, 12), "M", "head", ROSA)
        )
        ana = Person.objects.get(external_id="P2")
        self.assertTrue(ana.age_stated)
        self.assertEqual(ana.relation, "child")
        self.assertEqual(counts(self.w.b11), (1, 2, 0, 0))  # older adult: 25 points, under the threshold
        self.assertEqual(counts(self.w.b21), (1, 1, 0, 0))
        self.assertTrue(AuditEvent.objects.filter(action="registry.import.run").exists())

    def test_xlsx_import(self):
        job = self.run_job(self.job(xlsx_bytes(GOOD_ROWS), name="hogares.xlsx"))
        self.assertEqual(job.report["format"], "xlsx")
        self.assertEqual(job.status, ImportJob.Status.DONE, job.report)
        self.assertEqual(job.persons_created, 3)
        self.assertEqual(Person.objects.get(external_id="P1").birth_date, dt.date(1950, 3, 12))

    def test_latin1_file_is_detected(self):
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS, encoding="latin-1")))
        self.assertEqual(job.encoding, "cp1252")
        self.assertEqual(job.status, ImportJob.Status.DONE, job.report)
        self.assertEqual(Household.objects.get(external_id="H1").street, "Calle Niño Artillero")

    def test_utf8_bom_and_tabs(self):
        job = self.job(b"\xef\xbb\xbf" + csv_bytes(GOOD_ROWS, delimiter="\t"))
        self.assertEqual((job.encoding, job.report["delimiter"]), ("utf-8-sig", "\t"))
        self.assertEqual(job.mapping["household_id"], "Folio hogar")

    def test_undecodable_file_is_refused(self):
        import random

        rnd = random.Random(7)
        garbage = b"nombre,calle\n" + bytes(
            rnd.choice([0x81, 0x8D, 0x8F, 0x90, 0x9D, 0x83, 0x98]) for _ in range(400)
        )
        with self.assertRaises(ValidationError) as ctx:
            importing.create_job(self.w.esc, None, self.file(garbage), actor=self.w.coord)
        self.assertIn("UTF-8", ctx.exception.messages[0])
        self.assertIn("cp1252", ctx.exception.messages[0])
        self.assertFalse(ImportJob.objects.exists())

    def test_empty_unknown_and_old_excel_files_are_refused(self):
        for content, name, says in [
            (b"", "a.csv", "empty"),
            (b"hello", "a.pdf", "Unknown file type"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a.xls", ".xls"),
            (b"PK\x03\x04nonsense", "a.xlsx", "could not be opened"),
        ]:
            with self.subTest(name=name), self.assertRaises(ValidationError) as ctx:
                importing.create_job(self.w.esc, None, self.file(content, name), actor=self.w.coord)
            self.assertIn(says, " ".join(ctx.exception.messages))
        with self.settings(REDES_IMPORT_MAX_BYTES=10), self.assertRaises(ValidationError) as ctx:
            importing.create_job(self.w.esc, None, self.file(csv_bytes(GOOD_ROWS)), actor=self.w.coord)
        self.assertIn("too big", ctx.exception.messages[0])

    def test_mapping_needs_a_name_and_a_place(self):
        job = importing.create_job(self.w.esc, None, self.file(csv_bytes(GOOD_ROWS)), actor=self.w.coord)
        with self.assertRaises(ValidationError) as ctx:
            importing.set_mapping(job, {"curp": "CURP"}, "valid_rows", actor=self.w.coord)
        text = " ".join(ctx.exception.messages)
        self.assertIn("name", text)
        self.assertIn("block code", text)
        with self.assertRaises(ValidationError):
            importing.set_mapping(
                job, {"full_name": "Nope", "block": "Manzana"}, "valid_rows", actor=self.w.coord
            )
        with self.assertRaises(ValidationError):
            importing.set_mapping(job, job.mapping, "some", actor=self.w.coord)

    # -- validation

    def bad_rows(self):
        base = dict(zip(HEADER, GOOD_ROWS[2], strict=True))
        return [
            *GOOD_ROWS,
            person_row(**{**base, "ID persona": "B1", "CURP": ROSA[:17] + "9"}),  # row 5
            person_row(**{**base, "ID persona": "B2", "CURP": "", "Celular": "12345"}),  # row 6
            person_row(
                **{**base, "ID persona": "B3", "CURP": "", "Fecha de nacimiento": "31/02/1990"}
            ),  # row 7
            person_row(
                **{**base, "Folio hogar": "H9", "ID persona": "B4", "CURP": "", "Manzana": "Z-99"}
            ),  # row 8
            person_row(**{**base, "Folio hogar": "H8", "ID persona": "B5", "CURP": "", "Sexo": "Z"}),
        ]

    def test_errors_are_row_addressed_and_say_why(self):
        job = self.run_job(self.job(csv_bytes(self.bad_rows())))
        self.assertEqual(job.status, ImportJob.Status.DONE)
        self.assertEqual((job.total_rows, job.invalid_rows, job.persons_created), (8, 5, 3))
        errors = self.errors(job)
        self.assertEqual(
            [e[:2] for e in errors],
            [(5, "CURP"), (6, "Celular"), (7, "Fecha de nacimiento"), (8, "Manzana"), (9, "Sexo")],
        )
        self.assertIn("check digit should be", errors[0][2])
        self.assertIn("10 digits", errors[1][2])
        self.assertIn("31/02/1990", errors[2][2])
        self.assertIn("no block with the code “Z-99”", errors[3][2])
        self.assertIn("Unknown sex “Z”", errors[4][2])
        # the full report is a CSV next to the file
        lines = importing.errors_csv_path(job).read_text(encoding="utf-8-sig").splitlines()
        self.assertEqual(len(lines), 6)
        self.assertTrue(lines[1].startswith("5,CURP,"))

    def test_errors_in_the_uploaders_language(self):
        with translation.override("es-mx"):
            job = self.job(csv_bytes(self.bad_rows()))
        job = self.run_job(job)  # the task runs in English here, the report in the uploader's Spanish
        self.assertEqual(job.report["language"], "es-mx")
        self.assertIn("tiene 10 dígitos", self.errors(job)[1][2])

    def test_all_or_nothing_writes_nothing(self):
        job = self.run_job(self.job(csv_bytes(self.bad_rows()), mode="all_or_nothing"))
        self.assertEqual(job.status, ImportJob.Status.REJECTED)
        self.assertEqual(job.invalid_rows, 5)
        self.assertEqual((Household.objects.count(), Person.objects.count()), (0, 0))
        self.assertFalse(BlockCounts.objects.filter(persons__gt=0).exists())
        self.assertEqual(len(job.report["errors"]), 5)

    def test_all_or_nothing_writes_when_all_valid(self):
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS), mode="all_or_nothing"))
        self.assertEqual((job.status, job.persons_created), (ImportJob.Status.DONE, 3))

    def test_preview_counts_the_whole_file(self):
        job = self.job(csv_bytes(self.bad_rows()))
        result = importing.preview(job, limit=4)
        self.assertEqual(
            (result["total"], result["valid"], result["invalid"], result["households"]), (8, 3, 5, 2)
        )
        self.assertEqual([r["row"] for r in result["rows"]], [2, 3, 4, 5])
        self.assertEqual(result["rows"][0]["values"]["curp"], ROSA)
        self.assertEqual(result["rows"][0]["values"]["block"], "S01-M001")
        self.assertIn("CURP", result["rows"][3]["errors"])
        self.assertEqual(Person.objects.count(), 0)

    def test_rerun_with_external_ids_updates(self):
        self.run_job(self.job(csv_bytes(GOOD_ROWS)))
        changed = [list(r) for r in GOOD_ROWS]
        changed[2][HEADER.index("Calle")] = "Juárez Norte"
        job = self.run_job(self.job(csv_bytes(changed)))
        self.assertEqual(job.status, ImportJob.Status.DONE, job.report)
        self.assertEqual((job.households_created, job.households_updated), (0, 2))
        self.assertEqual((job.persons_created, job.persons_updated), (0, 3))
        self.assertEqual((Household.objects.count(), Person.objects.count()), (2, 3))
        self.assertEqual(Household.objects.get(external_id="H2").street, "Juárez Norte")
        self.assertEqual(counts(self.w.b11), (1, 2, 0, 0))
        self.assertEqual(job.duplicates_flagged, 0)

    def test_households_grouped_by_address_without_id(self):
        rows = [list(r) for r in GOOD_ROWS]
        for r in rows:
            r[0] = r[1] = ""
        job = self.run_job(self.job(csv_bytes(rows), mapping=None))
        self.assertEqual((job.households_created, job.persons_created), (2, 3))
        self.assertEqual(Household.objects.get(street="Calle Niño Artillero").members_count, 2)

    def test_duplicates_are_flagged(self):
        # an existing person entered by a liaison, and the same CURP in the file
        house = services.create_household(self.w.b11, actor=self.w.block1, street="Otra", ext_number="5")
        existing = services.add_person(
            house, actor=self.w.block1, full_name="Juan López Pérez", curp=JUAN, check_duplicates=False
        )
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS)))
        self.assertGreaterEqual(job.duplicates_flagged, 1)
        juan = Person.objects.get(external_id="P3")
        pair = DuplicateCandidate.objects.get(
            person_a=min(existing.pk, juan.pk), person_b=max(existing.pk, juan.pk)
        )
        self.assertEqual(pair.source, "import")
        self.assertGreaterEqual(pair.score, 0.9)
        # mother and daughter in the same household are not flagged
        rosa, ana = Person.objects.get(external_id="P1"), Person.objects.get(external_id="P2")
        self.assertFalse(
            DuplicateCandidate.objects.filter(
                person_a=min(rosa.pk, ana.pk), person_b=max(rosa.pk, ana.pk)
            ).exists()
        )

    def test_duplicates_found_in_a_second_process_are_the_same(self):
        house = services.create_household(self.w.b11, actor=self.w.block1, street="Otra", ext_number="5")
        existing = services.add_person(
            house, actor=self.w.block1, full_name="Juan López Pérez", curp=JUAN, check_duplicates=False
        )
        # the same Juan twice in the file too (another household, no CURP): pairs among the file's own rows
        rows = [*GOOD_ROWS, person_row(**{"Folio hogar": "H3", "ID persona": "P4", "Nombre": "Juan",
                                          "Primer apellido": "Lopez", "Segundo apellido": "Perez",
                                          "Fecha de nacimiento": "01/05/1990", "Sexo": "H", "Calle": "Juárez",
                                          "Número": "3", "C.P.": "66050", "Manzana": "S02-M001"})]  # fmt: skip
        with mock.patch.object(importing, "PARALLEL_ABOVE", 0):
            self.assertTrue(importing._parallel_allowed(2))
            job = self.run_job(self.job(csv_bytes(rows)))
        self.assertEqual(job.status, "done", job.report)
        juan, juan2 = Person.objects.get(external_id="P3"), Person.objects.get(external_id="P4")
        pairs = set(DuplicateCandidate.objects.values_list("person_a_id", "person_b_id"))
        self.assertIn(tuple(sorted((existing.pk, juan.pk))), pairs)
        self.assertIn(tuple(sorted((juan.pk, juan2.pk))), pairs)
        self.assertEqual(job.duplicates_flagged, len(pairs))
        # a re-run of the file stores no pair twice
        again = self.run_job(self.job(csv_bytes(rows)))
        self.assertEqual(again.status, "done", again.report)
        self.assertEqual(again.persons_updated, 4)
        self.assertEqual(again.duplicates_flagged, 0)
        self.assertEqual(set(DuplicateCandidate.objects.values_list("person_a_id", "person_b_id")), pairs)

    def test_inline_and_forked_search_agree(self):
        from redes.registry import matching

        records = [
            matching.MatchRecord(id=0, given="Juan", surname1="López", surname2="Pérez",
                                 birth_date=dt.date(1990, 5, 1), curp=JUAN, household="n0"),
            matching.MatchRecord(id=1, given="Juan", surname1="Lopez", surname2="Perez",
                                 birth_date=dt.date(1990, 5, 1), household="n1"),
            matching.MatchRecord(id=2, given="Rosa", surname1="Gómez", surname2="Ruiz",
                                 birth_date=dt.date(1950, 3, 12), household="n2"),
        ]  # fmt: skip
        inline = importing._search_pairs(records)
        self.assertTrue(inline)
        self.assertEqual(importing._Forked(importing._search_pairs, records).result(), inline)
        with self.assertRaisesMessage(RuntimeError, "ZeroDivisionError"):
            importing._Forked(lambda: 1 / 0).result()

    def test_block_outside_the_import_territory(self):
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS), node=self.w.s1))
        self.assertEqual((job.persons_created, job.invalid_rows), (2, 1))
        (error,) = self.errors(job)
        self.assertEqual(error[:2], (4, "Manzana"))
        self.assertIn("“S02-M001” is outside Sector 1", error[2])

    # -- placement by point in polygon

    def test_points_placed_on_blocks_by_strtree(self):
        w = self.w

        def square(x0, y0, x1, y1):
            return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}

        west = create_node(
            w.esc, w.s1, "S01-M010", "Manzana 10", geometry=square(-100.33, 25.79, -100.325, 25.80)
        )
        east = create_node(
            w.esc, w.s1, "S01-M011", "Manzana 11", geometry=square(-100.325, 25.79, -100.32, 25.80)
        )
        header = ["Nombre completo", "Latitud", "Longitud"]
        rows = [
            ["Pedro Páramo Ruiz", "25.795", "-100.328"],
            ["Susana San Juan", "25,795", "-100,322"],
            ["Juan Preciado", "25.795", "-100.325"],  # on the shared edge
            ["Abundio Martínez", "19.43", "-99.13"],  # far away
        ]
        job = self.run_job(self.job(csv_bytes(rows, header=header), node=w.s1))
        self.assertEqual(job.persons_created, 3, job.report)
        self.assertEqual(Person.objects.get(full_name="Pedro Páramo Ruiz").node_id, west.pk)
        self.assertEqual(Person.objects.get(full_name="Susana San Juan").node_id, east.pk)
        self.assertIn(Person.objects.get(full_name="Juan Preciado").node_id, (west.pk, east.pk))
        (error,) = self.errors(job)
        self.assertEqual(error[:2], (5, "Latitud"))
        self.assertIn("not inside any block of Sector 1", error[2])
        self.assertEqual(counts(west)[1] + counts(east)[1], 3)

    # -- who may import

    def test_importer_outside_their_territory_is_refused(self):
        with self.assertRaises(PermissionDenied):
            importing.create_job(self.w.esc, None, self.file(csv_bytes(GOOD_ROWS)), actor=self.w.other_coord)
        with self.assertRaises(PermissionDenied):
            importing.create_job(self.w.esc, self.w.s1, self.file(csv_bytes(GOOD_ROWS)), actor=self.w.block1)
        self.assertFalse(ImportJob.objects.exists())
        self.assertTrue(AuditEvent.objects.filter(action="registry.import.create", outcome="denied").exists())

    def test_a_job_runs_once(self):
        job = self.run_job(self.job(csv_bytes(GOOD_ROWS)))
        with self.assertRaises(ValidationError):
            importing.start(job, actor=self.w.coord)
        with self.assertRaises(ValidationError):
            importing.set_mapping(job, job.mapping, "valid_rows", actor=self.w.coord)


class BackgroundWorkerTests(TransactionTestCase):
    """The import queued on the database task queue is run by the worker thread that ``redes serve`` starts."""

    def test_worker_thread_runs_a_queued_import(self):
        import time

        from redes.core import worker

        w = build_world()
        tmp = Path(tempfile.mkdtemp(prefix="redes-worker-test-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        database_queue = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}
        # The messaging dispatcher thread stays off: this is about the task worker (and it would share
        # the in-memory test database with it).
        with self.settings(REDES_IMPORT_DIR=tmp, TASKS=database_queue, REDES_MESSAGING=False):
            path = tmp / "hogares.csv"
            path.write_bytes(csv_bytes(GOOD_ROWS))
            job = importing.create_job(w.esc, None, path, actor=w.coord)
            importing.set_mapping(job, job.mapping, "valid_rows", actor=w.coord)
            job = importing.start(job, actor=w.coord)
            self.assertEqual(job.status, ImportJob.Status.QUEUED)
            self.assertEqual(Person.objects.count(), 0)
            thread = worker.start_background_worker(interval=0.05)
            self.addCleanup(worker.stop_background_worker)
            self.assertTrue(thread.daemon)
            self.assertIs(worker.start_background_worker(), thread)  # once per process
            deadline = time.monotonic() + 60  # a bound for a stuck worker, not a performance assertion
            while time.monotonic() < deadline:
                job.refresh_from_db()
                if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
                    break
                time.sleep(0.05)
            worker.stop_background_worker()
        self.assertEqual(job.status, ImportJob.Status.DONE, job.report)
        self.assertEqual(Person.objects.count(), 3)

    def test_no_worker_with_the_immediate_backend(self):
        from redes.core import worker

        with self.settings(TASKS=IMMEDIATE_TASKS):
            self.assertIsNone(worker.start_background_worker())


class FastPathTests(RedesTestCase):
    """The importer's shortcuts give the verdicts of core.curp / core.phones, exactly."""

    def test_fast_curp_agrees_with_normalize_curp(self):
        import random

        from redes.core.curp import normalize_curp

        rnd = random.Random(5)
        samples = [
            ROSA,
            JUAN,
            ROSA.lower(),
            f" {JUAN} ",
            ROSA[:17] + "0",
            "GOMR501312MNLRRS0",
            "XYZ",
            "GOMR500312MZZRRS0",
        ]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        for base in (ROSA, JUAN):
            for _ in range(300):
                chars = list(base)
                chars[rnd.randrange(18)] = rnd.choice(alphabet)
                samples.append("".join(chars))
        for raw in samples:
            try:
                expected = normalize_curp(raw)
            except ValidationError:
                expected = ""
            self.assertEqual(importing.fast_curp(raw), expected, raw)

    def test_fast_person_path_agrees_with_the_checked_path(self):
        job = ImportJob(mapping=importing.suggest_mapping(HEADER))
        validator = importing._Validator(job, HEADER)
        variants = [
            {"Nombre": "  Rosa   María ", "Primer apellido": "Gómez"},
            {"Nombre": "Rosa María Gómez de la Cruz", "Primer apellido": ""},
            {"Fecha de nacimiento": "1990-05-01", "CURP": JUAN, "Sexo": ""},
            {"Fecha de nacimiento": "01/05/1990", "CURP": JUAN.lower(), "Sexo": "hombre"},
            {"Fecha de nacimiento": "1-5-1990"},
            {"Fecha de nacimiento": "31/02/1990"},
            {"Fecha de nacimiento": "01/05/2990"},
            {"Edad": "130"},
            {"Edad": "7", "Fecha de nacimiento": "12/03/1950"},
            {"Edad": "x"},
            {"CURP": ROSA[:17] + "0"},
            {"CURP": ROSA, "Fecha de nacimiento": "13/03/1950"},
            {"Sexo": "otro"},
            {"Parentesco": "Hija"},
            {"Parentesco": "vecina"},
            {"ID persona": "  P 9  "},
            {"Nombre": "", "Primer apellido": "", "Segundo apellido": ""},
        ]
        for base in GOOD_ROWS:
            for change in [{}, *variants]:
                row = dict(zip(HEADER, base, strict=True))
                row.update(change)
                cells = validator.pad([row[h] for h in HEADER])
                fast = validator.person_fast(cells)
                cleaned, errors = validator.person(cells)
                if errors:
                    self.assertIsNone(fast, (change, errors))
                    continue
                cleaned.pop("age", None)
                f = importing._person_fields(cleaned)
                expected = tuple(f[k] for k in ("external_id", "full_name", "given_name", "surname1", "surname2",
                                                "birth_date", "birth_year", "age_stated", "sex", "curp", "phone",
                                                "relation"))  # fmt: skip
                self.assertIsNotNone(fast, change)
                self.assertEqual(fast[:-1], expected, change)
                self.assertEqual(list(fast[-1]), f["factors"], change)

    def test_phone_shape_agrees_with_normalize_phone(self):
        import random

        from redes.core.phones import normalize_phone

        rnd = random.Random(9)
        validator = importing._Validator.__new__(importing._Validator)
        validator._phones = {}
        samples = [
            "81 1234 5678",
            "044 81 1234 5678",
            "+52 1 81 1234 5678",
            "521 55 1234 5678",
            "01 744 123 4567",
            "12345",
            "+1 202 555 0100",
            "0044 81 1234 5678",
            "(744) 123-45-67",
        ]
        for _ in range(400):
            samples.append("".join(rnd.choice("0123456789") for _ in range(rnd.choice([10, 10, 10, 12, 13]))))
        for raw in samples:
            try:
                expected = normalize_phone(raw)
            except ValidationError as exc:
                expected = exc.messages
            try:
                got = validator.phone(raw)
            except ValidationError as exc:
                got = exc.messages
            self.assertEqual(got, expected, raw)


class LiveProgressTests(TestCase):
    def test_sqlite_write_progress_goes_beside_the_database_and_is_cleaned_up(self):
        from django.db import connection

        from redes.registry import importing

        if connection.vendor != "sqlite":
            self.skipTest("the side file is the SQLite path; PostgreSQL uses a second connection")
        job = ImportJob(uuid=uuid.uuid4())
        job.pk = 0
        with tempfile.TemporaryDirectory() as tmp, self.settings(REDES_IMPORT_DIR=tmp):
            side = importing._SideProgress(job)
            self.assertIsNone(importing.live_progress(job))
            side.update(1234)
            self.assertEqual(importing.live_progress(job), 1234)
            side.close()
            self.assertIsNone(importing.live_progress(job))
