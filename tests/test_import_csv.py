import json
from pathlib import Path

from django.test import override_settings

from redes.audit.models import AuditEvent, Outcome
from redes.territories.importers import (
    MAX_REPORTED_ERRORS,
    ErrorCode,
    export_territory,
    import_territory,
)
from redes.territories.models import Node
from redes.territories.services import create_municipality

from .base import RedesTestCase

DATA = Path(__file__).parent / "data"
SQUARE = (
    '{"type":"Polygon","coordinates":[[[-100.33,25.79],[-100.32,25.79],[-100.32,25.80],'
    "[-100.33,25.80],[-100.33,25.79]]]}"
)


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


class CsvImportTestCase(RedesTestCase):
    def setUp(self):
        self.muni = self.w.esc
        self.before = self.unit_codes()

    def unit_codes(self, muni=None) -> set[str]:
        return set(
            Node.objects.filter(municipality=muni or self.muni, kind="unit").values_list("code", flat=True)
        )

    def run_import(self, data: bytes, fmt: str = "csv", **kwargs):
        return import_territory(self.muni, data, fmt, **kwargs)

    def assert_rejected(self, report, *expected: tuple[int, str]):
        """The import failed with (row, code) errors, and nothing was written."""
        self.assertFalse(report.ok)
        self.assertEqual(report.created, 0)
        found = {(e.row, e.code) for e in report.errors}
        for item in expected:
            self.assertIn(item, found, report.errors)
        self.assertEqual(self.unit_codes(), self.before)
        json.dumps(report.as_dict())  # the API returns it as is
        self.assertTrue(
            AuditEvent.objects.filter(
                action="territories.territory.import", outcome=Outcome.REJECTED
            ).exists()
        )
        self.assertFalse(
            AuditEvent.objects.filter(action="territories.territory.import", outcome=Outcome.OK).exists()
        )


class CsvHappyPathTests(CsvImportTestCase):
    def test_it_imports_units_with_their_parents_and_ancestors(self):
        report = self.run_import(
            csv_bytes(
                "code,name,level,parent",
                "S03,Sector 3,Sector,",
                "S03-M001,Manzana 1,Manzana,S03",
                "S03-M002,Manzana 2,Manzana,S03",
                "S01-M003,Manzana 3,Manzana,S01",
            ),
            actor=self.w.coord,
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual((report.total_rows, report.created), (4, 4))
        s3 = Node.objects.get(municipality=self.muni, code="S03")
        self.assertEqual(s3.parent_id, self.w.esc_node.pk)
        self.assertEqual(s3.depth, 3)
        m = Node.objects.get(municipality=self.muni, code="S03-M002")
        self.assertEqual(m.ancestor_ids, [*s3.ancestor_ids, m.pk])
        self.assertEqual(Node.objects.subtree(self.w.s1).count(), 4)
        events = AuditEvent.objects.filter(action="territories.territory.import")
        self.assertEqual(events.count(), 1)
        self.assertEqual(events.get().actor, self.w.coord)
        self.assertEqual(events.get().changes, {"created": 4})

    def test_rows_may_come_in_any_order(self):
        report = self.run_import(
            csv_bytes("code,name,level,parent", "S03-M001,Manzana 1,Manzana,S03", "S03,Sector 3,Sector,")
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03-M001").parent.code, "S03")

    def test_it_accepts_spanish_headers_without_accents_or_case(self):
        report = self.run_import(
            csv_bytes(
                "Código,NOMBRE,Nivel,Código Padre",
                "S03,Sector 3,sector,",
                "S03-M001,Manzana 1,MANZANA,S03",
            )
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(report.created, 2)

    def test_levels_may_be_given_by_position_or_without_accents(self):
        muni = create_municipality("12002", "Ahuacuotzingo", ["Sección", "Manzana"], state_name="Guerrero")
        report = import_territory(
            muni,
            csv_bytes("clave,nombre,nivel,padre", "X1,Uno,seccion,", "X1-1,Uno uno,2,X1", "X2,Dos,1,"),
            "csv",
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(
            sorted(Node.objects.filter(municipality=muni, depth=3).values_list("code", flat=True)),
            ["X1", "X2"],
        )

    def test_without_a_level_column_a_unit_is_one_level_below_its_parent(self):
        report = self.run_import(
            csv_bytes("code,name,parent_code", "S03,Sector 3,", "S03-M001,Manzana 1,S03")
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03-M001").depth, 4)

    def test_the_municipality_key_as_parent_means_level_one(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "S03,Sector 3,Sector,19021"))
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03").parent_id, self.w.esc_node.pk)

    def test_it_reads_a_latin1_file_with_semicolons_and_crlf(self):
        report = self.run_import((DATA / "escobedo_latin1_semicolon.csv").read_bytes())
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(report.created, 3)
        self.assertEqual(
            Node.objects.get(municipality=self.muni, code="S10-M1").name, "Manzana Uno de Peñitas"
        )

    def test_it_reads_utf8_with_a_bom(self):
        data = "\ufeffcódigo,nombre,nivel,padre\nS03,Sector Ñandú,Sector,\n".encode()
        report = self.run_import(data)
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03").name, "Sector Ñandú")

    def test_it_reads_windows_1252_quotes(self):
        data = "code;name;level;parent\nS03;Sector “Centro”;Sector;\n".encode("cp1252")
        report = self.run_import(data)
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03").name, "Sector “Centro”")

    def test_it_reads_excel_files_with_a_sep_line(self):
        report = self.run_import(
            csv_bytes("sep=;", "Clave;Nombre;Nivel;Padre", "S03;Sector 3, Norte;Sector;")
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03").name, "Sector 3, Norte")

    def test_it_reads_tabs_and_quoted_cells(self):
        report = self.run_import(
            csv_bytes("code\tname\tlevel\tparent", 'S03\t"Sector\t3, ""Norte"""\tSector\t')
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="S03").name, 'Sector\t3, "Norte"')

    def test_it_reads_points_and_geometries(self):
        data = csv_bytes(
            "code;name;level;parent;lat;lon;geometry",
            "S03;Sector 3;Sector;;25,79;-100,32;",
            f"S04;Sector 4;Sector;;;;{SQUARE}",
            "S05;Sector 5;Sector;;;;POINT (-100.3 25.7)",
        )
        report = self.run_import(data)
        self.assertTrue(report.ok, report.errors)
        s3, s4, s5 = (Node.objects.get(municipality=self.muni, code=c) for c in ("S03", "S04", "S05"))
        self.assertEqual((s3.centroid_lat, s3.centroid_lon, s3.geometry), (25.79, -100.32, None))
        self.assertEqual(s4.geometry["type"], "Polygon")
        self.assertAlmostEqual(s4.centroid_lat, 25.795)
        self.assertEqual((s5.geometry["type"], s5.centroid_lon), ("Point", -100.3))

    def test_it_reports_progress_of_validation_and_writing(self):
        calls = []
        report = self.run_import(
            csv_bytes("code,name,level,parent", "S03,Sector 3,Sector,", "S03-M1,M1,Manzana,S03"),
            progress=lambda phase, done, total: calls.append((phase, done, total)),
        )
        self.assertTrue(report.ok)
        self.assertIn(("validate", 2, 2), calls)
        self.assertEqual(calls[-1], ("write", 2, 2))

    def test_cvegeo_codes_find_their_parent_by_prefix(self):
        report = self.run_import(
            csv_bytes(
                "cvegeo,nombre",
                "1902100010010001,Manzana 1",
                "1902100010010,AGEB 0010",
                "1902100010010002,Manzana 2",
            )
        )
        self.assertTrue(report.ok, report.errors)
        ageb = Node.objects.get(municipality=self.muni, code="1902100010010")
        self.assertEqual(ageb.parent_id, self.w.esc_node.pk)
        self.assertEqual(
            sorted(ageb.children.values_list("code", flat=True)), ["1902100010010001", "1902100010010002"]
        )

    def test_export_round_trips_through_import(self):
        text = export_territory(self.muni, "csv")
        copy = create_municipality("19039", "Monterrey", ["Sector", "Manzana"], state_name="Nuevo León")
        report = import_territory(copy, text.encode(), "csv")
        self.assertTrue(report.ok, report.errors)

        def shape(muni):
            return sorted(
                (n.code, n.name, n.depth, n.parent.code, n.geometry, n.centroid_lat)
                for n in Node.objects.filter(municipality=muni, kind="unit").select_related("parent")
            )

        self.assertEqual(
            [row[:3] + row[4:] for row in shape(copy)], [row[:3] + row[4:] for row in shape(self.muni)]
        )
        parents = {row[0]: row[3] for row in shape(copy)}
        self.assertEqual(parents["S01-M001"], "S01")
        self.assertEqual(parents["S01"], "19039")


class CsvBadInputTests(CsvImportTestCase):
    def test_it_refuses_rows_without_code_or_name(self):
        report = self.run_import(
            csv_bytes("code,name,level,parent", ",Sin clave,Sector,", "S03,,Sector,", "S04,Bien,Sector,")
        )
        self.assert_rejected(report, (2, ErrorCode.REQUIRED), (3, ErrorCode.REQUIRED))
        self.assertEqual({e.field for e in report.errors}, {"code", "name"})

    def test_it_refuses_unknown_level_names(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "S03,Sector 3,Colonia,", "S04,S4,7,"))
        self.assert_rejected(report, (2, ErrorCode.UNKNOWN_LEVEL), (3, ErrorCode.UNKNOWN_LEVEL))
        self.assertIn("Sector", report.errors[0].message)

    def test_it_refuses_unknown_parents(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "S01-M009,Manzana 9,Manzana,S99"))
        self.assert_rejected(report, (2, ErrorCode.UNKNOWN_PARENT))

    def test_it_refuses_parents_at_the_wrong_level(self):
        report = self.run_import(
            csv_bytes(
                "code,name,level,parent",
                "M-SUELTA,Manzana sin sector,Manzana,",  # a block needs a sector
                "S03,Sector 3,Sector,S01",  # a sector hangs from the municipality
                "M-EN-M,Manzana en manzana,Manzana,S01-M001",  # a block's parent is a sector
                "S04,Sector 4,Sector,",
            )
        )
        self.assert_rejected(
            report, (2, ErrorCode.WRONG_LEVEL), (3, ErrorCode.WRONG_LEVEL), (4, ErrorCode.WRONG_LEVEL)
        )
        self.assertEqual(report.error_count, 3)

    def test_it_refuses_children_below_the_deepest_level(self):
        report = self.run_import(csv_bytes("code,name,parent", "X,Too deep,S01-M001"))
        self.assert_rejected(report, (2, ErrorCode.WRONG_LEVEL))

    def test_it_refuses_duplicate_codes_in_the_file(self):
        report = self.run_import(
            csv_bytes("code,name,level,parent", "S03,Sector 3,Sector,", "S03,Otra vez,Sector,")
        )
        self.assert_rejected(report, (3, ErrorCode.DUPLICATE_CODE))
        self.assertIn("2", report.errors[0].message)

    def test_it_refuses_codes_that_exist_already(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "S01,Sector uno bis,Sector,"))
        self.assert_rejected(report, (2, ErrorCode.CODE_EXISTS))

    def test_codes_of_another_municipality_are_free(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "A1,Sector A1,Sector,"))
        self.assertTrue(report.ok, report.errors)

    def test_it_refuses_cycles(self):
        report = self.run_import(
            csv_bytes("code,name,parent", "A,Unidad A,B", "B,Unidad B,A", "C,Unidad C,C", "D,Bajo el ciclo,A")
        )
        self.assert_rejected(report, (2, ErrorCode.CYCLE), (3, ErrorCode.CYCLE), (4, ErrorCode.CYCLE))
        self.assertEqual(report.error_count, 3)

    def test_it_refuses_cycles_even_with_levels(self):
        report = self.run_import(csv_bytes("code,name,level,parent", "A,A,Manzana,B", "B,B,Manzana,A"))
        self.assert_rejected(report, (2, ErrorCode.CYCLE), (3, ErrorCode.CYCLE))

    def test_it_refuses_codes_that_are_too_long(self):
        report = self.run_import(csv_bytes("code,name,level,parent", f"{'X' * 33},Larga,Sector,"))
        self.assert_rejected(report, (2, ErrorCode.TOO_LONG))

    def test_it_refuses_malformed_geometry_and_coordinates(self):
        report = self.run_import(
            csv_bytes(
                "code;name;level;parent;lat;lon;geometry",
                'S03;Sector 3;Sector;;;;{"type":"Polygon","coordinates":[[[1,2]]]}',
                'S04;Sector 4;Sector;;;;{"type":"LineString","coordinates":[[1,2],[3,4]]}',
                "S05;Sector 5;Sector;;;;{not json",
                'S06;Sector 6;Sector;;;;{"type":"Polygon","coordinates":[[[500000,2000000],[500100,2000000],[500100,2000100],[500000,2000000]]]}',
                "S07;Sector 7;Sector;;norte;sur;",
                "S08;Sector 8;Sector;;95;-100;",
            )
        )
        self.assert_rejected(
            report,
            (2, ErrorCode.BAD_GEOMETRY),
            (3, ErrorCode.BAD_GEOMETRY),
            (4, ErrorCode.BAD_GEOMETRY),
            (5, ErrorCode.BAD_GEOMETRY),
            (6, ErrorCode.BAD_COORDINATES),
            (7, ErrorCode.BAD_COORDINATES),
        )

    def test_it_refuses_cvegeo_keys_of_another_municipality(self):
        report = self.run_import(csv_bytes("cvegeo,nombre", "1903900010010,AGEB de Monterrey"))
        self.assert_rejected(report, (2, ErrorCode.WRONG_PREFIX))

    def test_it_refuses_a_file_without_the_required_columns(self):
        report = self.run_import(csv_bytes("colonia,habitantes", "Centro,100"))
        self.assert_rejected(report, (0, ErrorCode.MISSING_COLUMN))
        self.assertEqual({e.field for e in report.errors}, {"code", "name"})

    def test_it_refuses_empty_files(self):
        for data in (b"", b"  \n\n", b"code,name,level,parent\n"):
            with self.subTest(data=data):
                self.assert_rejected(self.run_import(data), (0, ErrorCode.FILE_EMPTY))

    def test_it_refuses_binary_files(self):
        data = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256))  # an .xlsx is a zip
        self.assert_rejected(self.run_import(data), (0, ErrorCode.FILE_ENCODING))

    def test_it_refuses_a_csv_with_an_unbalanced_quote(self):
        report = self.run_import(csv_bytes("code,name", '"S03,"Sector 3'))
        # An unbalanced quote swallows the rest of the file into one cell: the name is missing.
        self.assert_rejected(report, (2, ErrorCode.REQUIRED))

    @override_settings(REDES_MAX_IMPORT_BYTES=64)
    def test_it_refuses_oversized_files(self):
        data = csv_bytes("code,name,level,parent", *(f"S{i:03},Sector {i},Sector," for i in range(10)))
        report = self.run_import(data)
        self.assert_rejected(report, (0, ErrorCode.FILE_TOO_LARGE))
        self.assertEqual(report.total_rows, 0)

    def test_it_refuses_an_unknown_format(self):
        self.assert_rejected(self.run_import(b"code,name\nS03,x\n", fmt="xlsx"), (0, ErrorCode.FILE_FORMAT))

    def test_one_bad_row_among_many_imports_nothing(self):
        lines = [f"S9{i:04},Sector {i},Sector," for i in range(2000)]
        lines.append("S9XXXX,Roto,Sector,S404")
        report = self.run_import(csv_bytes("code,name,level,parent", *lines))
        self.assert_rejected(report, (2002, ErrorCode.UNKNOWN_PARENT))
        self.assertEqual(report.error_count, 1)

    def test_it_counts_every_error_but_keeps_a_bounded_list(self):
        lines = [f"X{i},,Sector," for i in range(MAX_REPORTED_ERRORS + 50)]
        report = self.run_import(csv_bytes("code,name,level,parent", *lines))
        self.assertEqual(report.error_count, MAX_REPORTED_ERRORS + 50)
        self.assertEqual(len(report.errors), MAX_REPORTED_ERRORS)
        self.assert_rejected(report, (2, ErrorCode.REQUIRED))

    def test_rows_are_the_lines_of_the_file(self):
        report = self.run_import(
            csv_bytes(
                "code,name,level,parent",
                "",
                "S03,Sector 3,Sector,",
                '"S04","Sector\n4",Sector,',
                "S05,,Sector,",
            )
        )
        self.assert_rejected(report, (6, ErrorCode.REQUIRED))
