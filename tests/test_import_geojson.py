import json
from pathlib import Path

from redes.audit.models import AuditEvent, Outcome
from redes.territories.importers import ErrorCode, export_territory, import_territory
from redes.territories.models import Node
from redes.territories.services import create_municipality

from .base import RedesTestCase

DATA = Path(__file__).parent / "data"


def square(x: float, y: float, size: float = 0.005) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]],
    }


def feature(geometry=None, **props) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features, **extra) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features), **extra}).encode()


class GeoJsonImportTestCase(RedesTestCase):
    def setUp(self):
        # An INEGI-shaped municipality: AGEB above manzana.
        self.muni = create_municipality("19046", "San Nicolás de los Garza", ["AGEB", "Manzana"])
        self.before = self.units()
        self.imports_done = self.imports()

    def imports(self) -> int:
        return AuditEvent.objects.filter(action="territories.territory.import", outcome=Outcome.OK).count()

    def units(self):
        return set(
            Node.objects.filter(municipality__in=[self.muni, self.w.esc], kind="unit").values_list(
                "pk", flat=True
            )
        )

    def run_import(self, data: bytes, muni=None):
        return import_territory(muni or self.muni, data, "geojson")

    def assert_rejected(self, report, *expected):
        self.assertFalse(report.ok)
        found = {(e.row, e.code) for e in report.errors}
        for item in expected:
            self.assertIn(item, found, report.errors)
        self.assertEqual(self.units(), self.before)
        json.dumps(report.as_dict())
        self.assertEqual(self.imports(), self.imports_done)


class GeoJsonHappyPathTests(GeoJsonImportTestCase):
    def test_it_imports_an_inegi_file_and_infers_parents_from_cvegeo(self):
        report = self.run_import((DATA / "escobedo_inegi.geojson").read_bytes(), muni=self.w.esc)
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(report.created, 3)
        ageb = Node.objects.get(municipality=self.w.esc, code="1902100010010")
        self.assertEqual((ageb.name, ageb.depth, ageb.parent_id), ("AGEB 001-0", 3, self.w.esc_node.pk))
        self.assertIsNotNone(ageb.centroid_lat)
        blocks = Node.objects.filter(parent=ageb).order_by("code")
        # The third feature has no CVEGEO: its key is built from CVE_* numbers, zero-padded.
        self.assertEqual([b.code for b in blocks], ["1902100010010001", "1902100010010002"])
        # INEGI blocks have no NOMGEO: they are named after their level and key.
        self.assertEqual([b.name for b in blocks], ["Manzana 001", "Manzana 002"])
        self.assertAlmostEqual(blocks[0].centroid_lat, 25.7925)
        self.assertEqual(blocks[0].ancestor_ids, [*ageb.ancestor_ids, blocks[0].pk])

    def test_prefix_inference_skips_missing_levels_of_the_key(self):
        # No locality (9 characters) in the file: AGEBs hang from the municipality, blocks from their AGEB.
        report = self.run_import(
            collection(
                feature(square(-100.3, 25.7), CVEGEO="1904600010021001"),
                feature(square(-100.3, 25.7, 0.01), CVEGEO="1904600010021", NOMGEO="AGEB 002-1"),
                feature(square(-100.2, 25.7), CVEGEO="190460001003A001"),
                feature(square(-100.2, 25.7, 0.01), CVEGEO="190460001003A"),
            )
        )
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(
            Node.objects.get(municipality=self.muni, code="190460001003A001").parent.code, "190460001003A"
        )
        self.assertEqual(Node.objects.get(municipality=self.muni, code="190460001003A").name, "AGEB 003A")

    def test_prefix_inference_finds_existing_units(self):
        self.assertTrue(self.run_import(collection(feature(CVEGEO="1904600010021", NOMGEO="AGEB"))).ok)
        report = self.run_import(collection(feature(CVEGEO="1904600010021007")))
        self.assertTrue(report.ok, report.errors)
        self.assertEqual(Node.objects.get(municipality=self.muni, code="1904600010021007").depth, 4)

    def test_it_reads_generic_properties(self):
        report = self.run_import(
            collection(
                feature(square(-100.3, 25.7), codigo="A", nombre="Área A", nivel="ageb"),
                feature(
                    None,
                    code="A-1",
                    name="Manzana 1",
                    level="Manzana",
                    parent_code="A",
                    lat=25.71,
                    lon=-100.29,
                ),
            )
        )
        self.assertTrue(report.ok, report.errors)
        block = Node.objects.get(municipality=self.muni, code="A-1")
        self.assertEqual((block.parent.code, block.centroid_lat, block.geometry), ("A", 25.71, None))

    def test_it_accepts_multipolygons_and_wgs84_crs(self):
        multi = {"type": "MultiPolygon", "coordinates": [square(-100.3, 25.7)["coordinates"]]}
        report = self.run_import(
            collection(
                feature(multi, code="A", name="A"),
                crs={"type": "name", "properties": {"name": "EPSG:4326"}},
            )
        )
        self.assertTrue(report.ok, report.errors)

    def test_export_round_trips_through_import(self):
        text = export_territory(self.w.esc, "geojson")
        copy = create_municipality("19039", "Monterrey", ["Sector", "Manzana"])
        report = import_territory(copy, text.encode(), "geojson")
        self.assertTrue(report.ok, report.errors)
        s1 = Node.objects.get(municipality=copy, code="S01")
        self.assertEqual(s1.geometry, self.w.s1.geometry)
        self.assertEqual(sorted(s1.children.values_list("code", flat=True)), ["S01-M001", "S01-M002"])


class GeoJsonBadInputTests(GeoJsonImportTestCase):
    def test_it_refuses_invalid_json(self):
        report = self.run_import(b'{"type": "FeatureCollection", "features": [')
        self.assert_rejected(report, (0, ErrorCode.FILE_FORMAT))

    def test_it_refuses_json_that_is_not_a_feature_collection(self):
        for doc in ([], {"type": "Feature", "properties": {}}, {"type": "FeatureCollection"}, "hola"):
            with self.subTest(doc=doc):
                self.assert_rejected(self.run_import(json.dumps(doc).encode()), (0, ErrorCode.FILE_FORMAT))

    def test_it_refuses_an_empty_collection(self):
        self.assert_rejected(self.run_import(collection()), (0, ErrorCode.FILE_EMPTY))

    def test_it_refuses_projected_coordinates(self):
        report = self.run_import(
            collection(
                feature(CVEGEO="1904600010021", NOMGEO="A"),
                crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::6372"}},
            )
        )
        self.assert_rejected(report, (0, ErrorCode.FILE_FORMAT))

    def test_it_refuses_deeply_nested_json(self):
        self.assert_rejected(self.run_import(b"[" * 100000 + b"]" * 100000), (0, ErrorCode.FILE_FORMAT))

    def test_it_refuses_items_that_are_not_features(self):
        report = self.run_import(collection(feature(code="A", name="A"), {"type": "Point"}, 7))
        self.assert_rejected(report, (2, ErrorCode.FILE_FORMAT), (3, ErrorCode.FILE_FORMAT))

    def test_it_refuses_malformed_geometry(self):
        report = self.run_import(
            collection(
                feature({"type": "Polygon", "coordinates": [[[1, 2]]]}, code="A", name="A"),
                feature({"type": "Polygon", "coordinates": "nope"}, code="B", name="B"),
                feature(
                    {"type": "Polygon", "coordinates": [[[5e5, 2e6], [5e5, 2.1e6], [6e5, 2e6], [5e5, 2e6]]]},
                    code="C",
                    name="C",
                ),
                feature({"type": "GeometryCollection", "geometries": []}, code="D", name="D"),
                feature("POLYGON", code="E", name="E"),
            )
        )
        self.assert_rejected(report, *((row, ErrorCode.BAD_GEOMETRY) for row in range(1, 6)))

    def test_it_refuses_keys_of_another_municipality(self):
        report = self.run_import(
            collection(
                feature(CVEGEO="1902100010010", NOMGEO="AGEB de Escobedo"),
                feature(CVE_ENT="19", CVE_MUN="039", CVE_LOC="0001", CVE_AGEB="0010", NOMGEO="x"),
            )
        )
        self.assert_rejected(report, (1, ErrorCode.WRONG_PREFIX), (2, ErrorCode.WRONG_PREFIX))

    def test_it_refuses_rows_without_code_or_name(self):
        report = self.run_import(
            collection(feature(name="Sin clave"), feature(code="B"), feature(code="C", name="C"))
        )
        self.assert_rejected(report, (1, ErrorCode.REQUIRED), (2, ErrorCode.REQUIRED))

    def test_it_refuses_duplicates_cycles_and_wrong_levels(self):
        report = self.run_import(
            collection(
                feature(code="A", name="A", level="AGEB"),
                feature(code="A", name="A otra vez", level="AGEB"),
                feature(code="X", name="X", parent="Y"),
                feature(code="Y", name="Y", parent="X"),
                feature(code="M", name="M", level="Manzana"),
                feature(code="Z", name="Z", level="Colonia"),
                feature(code="W", name="W", parent="NO-EXISTE"),
            )
        )
        self.assert_rejected(
            report,
            (2, ErrorCode.DUPLICATE_CODE),
            (3, ErrorCode.CYCLE),
            (4, ErrorCode.CYCLE),
            (5, ErrorCode.WRONG_LEVEL),
            (6, ErrorCode.UNKNOWN_LEVEL),
            (7, ErrorCode.UNKNOWN_PARENT),
        )

    def test_it_refuses_codes_that_exist_already(self):
        self.assertTrue(self.run_import(collection(feature(CVEGEO="1904600010021", NOMGEO="AGEB"))).ok)
        self.before, self.imports_done = self.units(), self.imports()
        report = self.run_import(collection(feature(CVEGEO="1904600010021", NOMGEO="AGEB")))
        self.assert_rejected(report, (1, ErrorCode.CODE_EXISTS))

    def test_it_refuses_a_file_that_is_not_utf8_json(self):
        self.assert_rejected(self.run_import("\ufeff\x00{}".encode("utf-16")), (0, ErrorCode.FILE_FORMAT))
