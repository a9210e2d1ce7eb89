"""The territory API: municipalities, level schemas, nodes, coverage, GeoJSON and import.

Each endpoint gets its access matrix (anonymous, another municipality, another sector, an observer, the allowed
user); a refusal leaves the data as it was and shows nothing.
"""

import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from redes.audit.models import AuditEvent, Outcome
from redes.territories.models import Level, Municipality, Node

from .base import RedesTestCase

PERSONAL = ("Sergio Sector", "Blanca Manzana", "Alma Acapulco", "+528112345678", "8112345678")


class ApiTestCase(RedesTestCase):
    def assert_error(self, response, status: int):
        self.assertEqual(response.status_code, status, response.content[:500])
        body = response.json()
        self.assertTrue(body["detail"])
        self.assertIsInstance(body["errors"], list)
        return body

    def assert_nothing_personal(self, response):
        text = response.content.decode()
        for value in PERSONAL:
            self.assertNotIn(value, text)

    def denied_events(self, action: str) -> int:
        return AuditEvent.objects.filter(action=action).exclude(outcome=Outcome.OK).count()


class MunicipalityListTests(ApiTestCase):
    def codes(self, user):
        response = self.api(user, "get", "/municipalities")
        self.assertEqual(response.status_code, 200)
        return [m["code"] for m in response.json()["items"]]

    def test_it_lists_the_municipalities_each_user_reaches(self):
        self.assertEqual(self.codes(self.w.coord), ["19021"])
        self.assertEqual(self.codes(self.w.sector2), ["19021"])
        self.assertEqual(self.codes(self.w.other_coord), ["12001"])
        self.assertEqual(self.codes(self.w.observer), ["12001", "19021"])
        self.assertEqual(self.codes(self.w.state_observer), ["19021"])
        self.assertEqual(self.codes(self.w.nobody), [])

    def test_it_refuses_anonymous_callers(self):
        self.assert_error(self.api(None, "get", "/municipalities"), 401)

    def test_it_shows_the_level_schema(self):
        body = self.api(self.w.coord, "get", "/municipalities").json()["items"][0]
        self.assertEqual([lv["name"] for lv in body["levels"]], ["Sector", "Manzana"])
        self.assertEqual(body["node"], str(self.w.esc_node.uuid))


class MunicipalityDetailTests(ApiTestCase):
    def test_it_shows_a_municipality_with_its_levels_and_unit_counts(self):
        response = self.api(self.w.coord, "get", f"/municipalities/{self.w.esc.uuid}")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["name"], "General Escobedo")
        self.assertEqual(body["state_name"], "Nuevo León")
        self.assertEqual([(u["level"], u["units"]) for u in body["units"]], [("Sector", 2), ("Manzana", 3)])

    def test_it_counts_only_the_units_the_caller_reaches(self):
        body = self.api(self.w.sector2, "get", f"/municipalities/{self.w.esc.uuid}").json()
        self.assertEqual([u["units"] for u in body["units"]], [1, 1])

    def test_it_accepts_the_inegi_key(self):
        response = self.api(self.w.coord, "get", "/municipalities/19021")
        self.assertEqual(response.json()["uuid"], str(self.w.esc.uuid))

    def test_it_hides_other_municipalities_as_missing(self):
        self.assert_error(self.api(self.w.other_coord, "get", f"/municipalities/{self.w.esc.uuid}"), 404)
        self.assert_error(self.api(self.w.other_coord, "get", "/municipalities/19021"), 404)
        self.assert_error(self.api(self.w.nobody, "get", f"/municipalities/{self.w.esc.uuid}"), 404)

    def test_it_answers_404_for_forged_and_malformed_ids(self):
        self.assert_error(self.api(self.w.coord, "get", f"/municipalities/{uuid.uuid4()}"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/municipalities/not-a-uuid"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/municipalities/99999"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/municipalities/1"), 404)

    def test_observers_see_the_schema(self):
        self.assertEqual(
            self.api(self.w.observer, "get", f"/municipalities/{self.w.aca.uuid}").status_code, 200
        )

    def test_it_refuses_anonymous_callers(self):
        self.assert_error(self.api(None, "get", f"/municipalities/{self.w.esc.uuid}"), 401)


class MunicipalityCreateTests(ApiTestCase):
    payload = {
        "code": "19039",
        "name": "Monterrey",
        "levels": ["Sector", "Manzana"],
        "state_name": "Nuevo León",
    }

    def test_a_superuser_creates_a_municipality(self):
        response = self.api(self.w.root, "post", "/municipalities", self.payload)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["code"], "19039")
        muni = Municipality.objects.get(code="19039")
        self.assertEqual(muni.level_names(), ["Sector", "Manzana"])
        event = AuditEvent.objects.get(action="territories.municipality.create", object_id=str(muni.uuid))
        self.assertEqual(event.channel, "api")

    def test_it_refuses_everyone_else_and_records_the_refusal(self):
        before = Municipality.objects.count()
        for user in (self.w.coord, self.w.other_coord, self.w.observer, self.w.sector1):
            self.assert_error(self.api(user, "post", "/municipalities", self.payload), 403)
        self.assert_error(self.api(None, "post", "/municipalities", self.payload), 401)
        self.assertEqual(Municipality.objects.count(), before)
        self.assertEqual(self.denied_events("territories.municipality.create"), 4)

    def test_it_explains_bad_input(self):
        bad = [
            {**self.payload, "code": "123"},
            {**self.payload, "code": "19021"},  # exists
            {**self.payload, "levels": ["Sector"]},
            {**self.payload, "levels": ["A", "B", "C", "D", "E", "F"]},
            {**self.payload, "levels": ["Sector", "sector"]},
            {**self.payload, "name": "  "},
            {**self.payload, "geometry": {"type": "Polygon", "coordinates": "nope"}},
        ]
        before = Municipality.objects.count()
        for payload in bad:
            self.assert_error(self.api(self.w.root, "post", "/municipalities", payload), 400)
        self.assertEqual(Municipality.objects.count(), before)

    def test_it_answers_422_when_the_body_does_not_fit_the_schema(self):
        body = self.assert_error(self.api(self.w.root, "post", "/municipalities", {"code": "19039"}), 422)
        self.assertIn(["body", "payload", "name"], [e["loc"] for e in body["errors"]])
        self.assert_error(self.api(self.w.root, "post", "/municipalities", [1, 2]), 422)

    def test_it_answers_400_for_a_body_that_is_not_json(self):
        client = Client()
        response = client.post(
            "/api/v1/municipalities",
            data="{not json",
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token_for(self.w.root)}"},
        )
        self.assert_error(response, 400)


class LevelTests(ApiTestCase):
    def url(self, muni=None):
        return f"/municipalities/{(muni or self.w.esc).uuid}/levels"

    def test_it_shows_the_levels(self):
        response = self.api(self.w.sector1, "get", self.url())
        self.assertEqual(
            [(lv["position"], lv["name"], lv["depth"]) for lv in response.json()],
            [
                (1, "Sector", 3),
                (2, "Manzana", 4),
            ],
        )

    def test_the_coordinator_renames_levels(self):
        response = self.api(self.w.coord, "put", self.url(), {"levels": ["Sector", "Cuadra"]})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual([lv["name"] for lv in response.json()], ["Sector", "Cuadra"])
        self.assertEqual(
            list(Level.objects.filter(municipality=self.w.esc).values_list("name", flat=True)),
            [
                "Sector",
                "Cuadra",
            ],
        )

    def test_it_refuses_other_users_and_changes_nothing(self):
        payload = {"levels": ["Sector", "Cuadra"]}
        for user in (self.w.sector1, self.w.sector2, self.w.observer, self.w.operator):
            self.assert_error(self.api(user, "put", self.url(), payload), 403)
        self.assert_error(self.api(self.w.other_coord, "put", self.url(), payload), 404)
        self.assert_error(self.api(self.w.other_coord, "get", self.url()), 404)
        self.assert_error(self.api(None, "put", self.url(), payload), 401)
        self.assertEqual(self.w.esc.level_names(), ["Sector", "Manzana"])
        self.assertEqual(
            list(Level.objects.filter(municipality=self.w.esc).values_list("name", flat=True)),
            ["Sector", "Manzana"],
        )
        self.assertEqual(self.denied_events("territories.levels.update"), 5)

    def test_it_refuses_dropping_a_level_that_holds_units(self):
        body = self.assert_error(self.api(self.w.coord, "put", self.url(), {"levels": ["Sector"]}), 400)
        self.assertTrue(body["errors"])
        body = self.assert_error(
            self.api(self.w.coord, "put", self.url(), {"levels": ["Sector", "SECTOR"]}), 400
        )
        self.assertEqual(self.w.esc.levels.count(), 2)


class NodeListTests(ApiTestCase):
    def codes(self, user, query=""):
        response = self.api(user, "get", f"/nodes{query}")
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(body["count"], len(body["items"]))
        return [n["code"] for n in body["items"]]

    def test_it_lists_what_each_user_reaches(self):
        self.assertEqual(
            self.codes(self.w.coord), ["19021", "S01", "S02", "S01-M001", "S01-M002", "S02-M001"]
        )
        self.assertEqual(self.codes(self.w.sector2), ["S02", "S02-M001"])
        self.assertEqual(self.codes(self.w.block1), ["S01-M001"])
        self.assertEqual(self.codes(self.w.nobody), [])
        self.assertIn("12001", self.codes(self.w.observer))

    def test_it_refuses_anonymous_callers(self):
        self.assert_error(self.api(None, "get", "/nodes"), 401)

    def test_it_filters_by_municipality_subtree_parent_level_depth_and_text(self):
        coord = self.w.coord
        self.assertEqual(self.codes(self.w.observer, "?municipality=12001&depth=3"), ["A1"])
        self.assertEqual(self.codes(coord, f"?municipality={self.w.esc.uuid}&level=Sector"), ["S01", "S02"])
        self.assertEqual(
            self.codes(coord, "?municipality=19021&level=2"), ["S01-M001", "S01-M002", "S02-M001"]
        )
        self.assertEqual(
            self.codes(coord, "?municipality=19021&level=manzana"), ["S01-M001", "S01-M002", "S02-M001"]
        )
        self.assertEqual(self.codes(coord, f"?subtree={self.w.s1.uuid}"), ["S01", "S01-M001", "S01-M002"])
        self.assertEqual(
            self.codes(coord, f"?subtree={self.w.s1.uuid}&level=Manzana"), ["S01-M001", "S01-M002"]
        )
        self.assertEqual(self.codes(coord, f"?parent={self.w.s2.uuid}"), ["S02-M001"])
        self.assertEqual(self.codes(coord, "?depth=4&q=m001"), ["S01-M001", "S02-M001"])
        self.assertEqual(self.codes(coord, "?q=Sector 2"), ["S02"])

    def test_it_paginates_with_a_maximum(self):
        body = self.api(self.w.coord, "get", "/nodes?limit=2&offset=1").json()
        self.assertEqual(body["count"], 6)
        self.assertEqual([n["code"] for n in body["items"]], ["S01", "S02"])
        self.assert_error(self.api(self.w.coord, "get", "/nodes?limit=501"), 422)
        self.assert_error(self.api(self.w.coord, "get", "/nodes?offset=-1"), 422)

    def test_it_shows_levels_and_parents_without_personal_data(self):
        response = self.api(self.w.observer, "get", "/nodes?municipality=19021&level=Manzana")
        item = response.json()["items"][0]
        self.assertEqual(item["level"], "Manzana")
        self.assertEqual(item["parent"], str(self.w.s1.uuid))
        self.assertEqual(item["municipality"], str(self.w.esc.uuid))
        self.assert_nothing_personal(response)

    def test_it_hides_foreign_filters_as_missing(self):
        self.assert_error(self.api(self.w.other_coord, "get", "/nodes?municipality=19021"), 404)
        self.assert_error(self.api(self.w.sector2, "get", f"/nodes?subtree={self.w.s1.uuid}"), 404)
        self.assert_error(self.api(self.w.sector2, "get", f"/nodes?parent={self.w.s1.uuid}"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/nodes?subtree=garbage"), 404)

    def test_it_refuses_nul_characters_and_huge_offsets(self):
        for query in ("?q=a%00b", "?municipality=%00", "?offset=100000000000000000000", "?limit=0"):
            with self.subTest(query=query):
                self.assert_error(self.api(self.w.coord, "get", f"/nodes{query}"), 422)

    def test_it_explains_a_wrong_level(self):
        body = self.assert_error(self.api(self.w.coord, "get", "/nodes?municipality=19021&level=Zona"), 400)
        self.assertEqual(body["errors"][0]["loc"], ["query", "level"])
        self.assert_error(self.api(self.w.coord, "get", "/nodes?municipality=19021&level=7"), 400)
        self.assert_error(self.api(self.w.coord, "get", "/nodes?level=Sector"), 400)
        self.assert_error(self.api(self.w.coord, "get", "/nodes?depth=99"), 422)
        self.assert_error(self.api(self.w.coord, "get", "/nodes?depth=abc"), 422)


class NodeDetailTests(ApiTestCase):
    def test_it_shows_a_node_with_its_breadcrumb(self):
        response = self.api(self.w.sector1, "get", f"/nodes/{self.w.b11.uuid}")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["level"], "Manzana")
        self.assertEqual(body["children"], 0)
        self.assertEqual([a["code"] for a in body["ancestors"]], ["MX", "19", "19021", "S01"])
        self.assertEqual([a["reachable"] for a in body["ancestors"]], [False, False, False, True])
        self.assertIsNone(body["geometry"])

    def test_it_returns_the_geometry_on_request(self):
        url = f"/nodes/{self.w.s1.uuid}"
        self.assertIsNone(self.api(self.w.coord, "get", url).json()["geometry"])
        body = self.api(self.w.coord, "get", f"{url}?geometry=true").json()
        self.assertEqual(body["geometry"]["type"], "Polygon")
        self.assertTrue(body["has_geometry"])
        self.assertEqual(body["children"], 2)

    def test_access_matrix(self):
        url = f"/nodes/{self.w.s1.uuid}"
        self.assert_error(self.api(None, "get", url), 401)
        self.assert_error(self.api(self.w.other_coord, "get", url), 404)
        self.assert_error(self.api(self.w.sector2, "get", url), 404)
        self.assert_error(self.api(self.w.nobody, "get", url), 404)
        response = self.api(self.w.observer, "get", url)
        self.assertEqual(response.status_code, 200)
        self.assert_nothing_personal(response)
        self.assertEqual(self.api(self.w.volunteer, "get", url).status_code, 200)
        self.assertEqual(self.api(self.w.coord, "get", url).status_code, 200)

    def test_it_answers_404_for_forged_and_malformed_ids(self):
        for key in (uuid.uuid4(), "not-a-uuid", self.w.s1.pk, "' OR 1=1 --", "x" * 300):
            self.assert_error(self.api(self.w.coord, "get", f"/nodes/{key}"), 404)


class NodeCreateTests(ApiTestCase):
    def payload(self, **extra):
        return {"parent": str(self.w.s1.uuid), "code": "S01-M003", "name": "Manzana 3", **extra}

    def test_the_coordinator_creates_a_unit(self):
        response = self.api(self.w.coord, "post", "/nodes", self.payload(level="Manzana"))
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual((body["code"], body["level"], body["depth"]), ("S01-M003", "Manzana", 4))
        node = Node.objects.get(uuid=body["uuid"])
        self.assertEqual(node.parent, self.w.s1)
        self.assertEqual(node.a3, self.w.s1.pk)
        self.assertEqual(
            AuditEvent.objects.get(action="territories.node.create", object_id=body["uuid"]).channel, "api"
        )

    def test_access_matrix(self):
        before = Node.objects.count()
        self.assert_error(self.api(None, "post", "/nodes", self.payload()), 401)
        self.assert_error(self.api(self.w.other_coord, "post", "/nodes", self.payload()), 404)
        self.assert_error(self.api(self.w.sector2, "post", "/nodes", self.payload()), 404)
        self.assert_error(self.api(self.w.sector1, "post", "/nodes", self.payload()), 403)
        self.assert_error(self.api(self.w.observer, "post", "/nodes", self.payload()), 403)
        self.assert_error(self.api(self.w.block1, "post", "/nodes", self.payload()), 404)
        self.assertEqual(Node.objects.count(), before)
        self.assertFalse(Node.objects.filter(code="S01-M003").exists())
        self.assertEqual(self.denied_events("territories.node.create"), 5)

    def test_it_explains_bad_input(self):
        before = Node.objects.count()
        cases = [
            (self.payload(code="S01-M001"), 400),  # duplicate code
            (self.payload(level="Sector"), 400),  # wrong level
            (self.payload(level="Colonia"), 400),  # unknown level
            (self.payload(parent=str(self.w.b11.uuid)), 400),  # blocks are the deepest level
            (self.payload(geometry={"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), 400),
            (
                self.payload(
                    geometry={"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]}
                ),
                400,
            ),
            (self.payload(name="  "), 400),
            (self.payload(code="x" * 40), 422),
            (self.payload(code="S01-M\x00"), 422),
            (self.payload(geometry={"type": "Point", "coordinates": [0, 0], "x": "\x00"}), 422),
            ({"parent": str(self.w.s1.uuid), "code": "S01-M009"}, 422),
            (self.payload(parent="not-a-uuid"), 404),
            (self.payload(parent=str(uuid.uuid4())), 404),
            (self.payload(parent=str(self.w.aca_node.uuid)), 404),
            (self.payload(parent=str(self.w.state_nl.uuid)), 404),
        ]
        for payload, status in cases:
            with self.subTest(payload=payload):
                self.assert_error(self.api(self.w.coord, "post", "/nodes", payload), status)
        self.assertEqual(Node.objects.count(), before)

    def test_a_missing_parent_names_the_field(self):
        body = self.assert_error(
            self.api(self.w.coord, "post", "/nodes", self.payload(parent=str(uuid.uuid4()))), 404
        )
        self.assertEqual(body["errors"][0]["loc"], ["body", "parent"])

    def test_a_wrong_level_names_the_field(self):
        body = self.assert_error(self.api(self.w.coord, "post", "/nodes", self.payload(level="Sector")), 400)
        self.assertEqual(body["errors"][0]["loc"], ["body", "level"])

    def test_units_cannot_hang_from_a_state(self):
        payload = self.payload(parent=str(self.w.state_nl.uuid))
        self.assert_error(self.api(self.w.root, "post", "/nodes", payload), 400)


class NodeUpdateTests(ApiTestCase):
    def url(self, node=None):
        return f"/nodes/{(node or self.w.b12).uuid}"

    def test_the_coordinator_renames_and_recodes_a_unit(self):
        response = self.api(self.w.coord, "patch", self.url(), {"name": "Manzana Dos", "code": "S01-M020"})
        self.assertEqual(response.status_code, 200, response.content)
        self.w.b12.refresh_from_db()
        self.assertEqual((self.w.b12.name, self.w.b12.code), ("Manzana Dos", "S01-M020"))

    def test_it_sets_and_removes_geometry_only_when_asked(self):
        square = Node.objects.get(pk=self.w.s1.pk).geometry
        self.api(self.w.coord, "patch", self.url(), {"geometry": square})
        self.w.b12.refresh_from_db()
        self.assertIsNotNone(self.w.b12.centroid_lat)
        self.api(self.w.coord, "patch", self.url(), {"name": "Otra"})
        self.w.b12.refresh_from_db()
        self.assertIsNotNone(self.w.b12.geometry)
        self.api(self.w.coord, "patch", self.url(), {"geometry": None})
        self.w.b12.refresh_from_db()
        self.assertIsNone(self.w.b12.geometry)

    def test_access_matrix(self):
        payload = {"name": "Hackeada"}
        self.assert_error(self.api(None, "patch", self.url(), payload), 401)
        self.assert_error(self.api(self.w.other_coord, "patch", self.url(), payload), 404)
        self.assert_error(self.api(self.w.sector2, "patch", self.url(), payload), 404)
        self.assert_error(self.api(self.w.sector1, "patch", self.url(), payload), 403)
        self.assert_error(self.api(self.w.observer, "patch", self.url(), payload), 403)
        self.w.b12.refresh_from_db()
        self.assertEqual(self.w.b12.name, "Manzana 2")
        self.assertEqual(self.denied_events("territories.node.update"), 4)

    def test_it_explains_bad_input(self):
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"code": "S01-M001"}), 400)
        self.assert_error(
            self.api(self.w.coord, "patch", self.url(self.w.esc_node), {"name": "Escobedo"}), 400
        )
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"geometry": {"type": "Nope"}}), 400)
        self.assert_error(self.api(self.w.coord, "patch", "/nodes/zzz", {"name": "x"}), 404)
        self.w.b12.refresh_from_db()
        self.assertEqual(self.w.b12.code, "S01-M002")
        self.assertEqual(Node.objects.get(pk=self.w.esc_node.pk).name, "General Escobedo")


class NodeMoveTests(ApiTestCase):
    def move(self, user, node, parent):
        return self.api(user, "post", f"/nodes/{node.uuid}/move", {"parent": str(parent.uuid)})

    def test_the_coordinator_moves_a_unit(self):
        response = self.move(self.w.coord, self.w.b12, self.w.s2)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["parent"], str(self.w.s2.uuid))
        self.w.b12.refresh_from_db()
        self.assertEqual((self.w.b12.parent_id, self.w.b12.a3), (self.w.s2.pk, self.w.s2.pk))

    def test_access_matrix(self):
        self.assert_error(self.move(None, self.w.b12, self.w.s2), 401)
        self.assert_error(self.move(self.w.other_coord, self.w.b12, self.w.s2), 404)
        self.assert_error(self.move(self.w.sector2, self.w.b12, self.w.s2), 404)
        self.assert_error(self.move(self.w.sector1, self.w.b12, self.w.s2), 403)
        self.assert_error(self.move(self.w.observer, self.w.b12, self.w.s2), 403)
        self.w.b12.refresh_from_db()
        self.assertEqual(self.w.b12.parent_id, self.w.s1.pk)
        self.assertEqual(self.denied_events("territories.node.move"), 4)

    def test_it_explains_bad_moves(self):
        self.assert_error(self.move(self.w.coord, self.w.b12, self.w.b21), 400)  # wrong level
        self.assert_error(self.move(self.w.coord, self.w.s1, self.w.b11), 400)  # under its own descendant
        self.assert_error(self.move(self.w.coord, self.w.esc_node, self.w.s1), 400)  # not a unit
        self.assert_error(self.move(self.w.coord, self.w.b12, self.w.ag), 404)  # another municipality
        self.assert_error(
            self.api(self.w.coord, "post", f"/nodes/{self.w.b12.uuid}/move", {"parent": "nope"}), 404
        )
        self.assert_error(self.api(self.w.coord, "post", f"/nodes/{self.w.b12.uuid}/move", {}), 422)
        self.w.b12.refresh_from_db()
        self.w.s1.refresh_from_db()
        self.assertEqual((self.w.b12.parent_id, self.w.s1.parent_id), (self.w.s1.pk, self.w.esc_node.pk))


class NodeDeleteTests(ApiTestCase):
    def test_the_coordinator_removes_a_leaf(self):
        response = self.api(self.w.coord, "delete", f"/nodes/{self.w.b12.uuid}")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json(), {"removed": 1})
        self.assertFalse(Node.objects.filter(pk=self.w.b12.pk).exists())

    def test_a_branch_needs_cascade(self):
        before = Node.objects.count()
        self.assert_error(self.api(self.w.coord, "delete", f"/nodes/{self.w.s1.uuid}"), 400)
        self.assertEqual(Node.objects.count(), before)
        response = self.api(self.w.coord, "delete", f"/nodes/{self.w.s1.uuid}?cascade=true")
        self.assertEqual(response.json(), {"removed": 3})
        self.assertEqual(Node.objects.count(), before - 3)

    def test_access_matrix(self):
        before = Node.objects.count()
        url = f"/nodes/{self.w.b12.uuid}"
        self.assert_error(self.api(None, "delete", url), 401)
        self.assert_error(self.api(self.w.other_coord, "delete", url), 404)
        self.assert_error(self.api(self.w.sector2, "delete", url), 404)
        self.assert_error(self.api(self.w.sector1, "delete", url), 403)
        self.assert_error(self.api(self.w.observer, "delete", url), 403)
        self.assert_error(self.api(self.w.coord, "delete", f"/nodes/{self.w.esc_node.uuid}"), 400)
        self.assert_error(self.api(self.w.coord, "delete", f"/nodes/{uuid.uuid4()}"), 404)
        self.assertEqual(Node.objects.count(), before)
        self.assertEqual(self.denied_events("territories.node.remove"), 6)


class CoverageTests(ApiTestCase):
    def test_it_reports_coverage_per_child_and_vacant_posts(self):
        response = self.api(self.w.coord, "get", f"/nodes/{self.w.esc_node.uuid}/coverage")
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual((body["covered"], body["total"], body["ratio"], body["percent"]), (2, 5, 0.4, 40))
        children = {c["node"]["code"]: c for c in body["children"]}
        self.assertEqual((children["S01"]["covered"], children["S01"]["total"]), (1, 2))
        self.assertTrue(children["S01"]["has_liaison"])
        self.assertFalse(children["S02"]["has_liaison"])
        self.assertEqual(body["vacant_count"], 3)
        self.assertEqual([v["code"] for v in body["vacant"]], ["S02", "S01-M002", "S02-M001"])

    def test_it_limits_the_vacant_list(self):
        body = self.api(self.w.coord, "get", f"/nodes/{self.w.esc_node.uuid}/coverage?vacant_limit=1").json()
        self.assertEqual((body["vacant_count"], len(body["vacant"])), (3, 1))
        self.assert_error(
            self.api(self.w.coord, "get", f"/nodes/{self.w.esc_node.uuid}/coverage?vacant_limit=5000"), 422
        )

    def test_observers_see_the_numbers_but_no_people(self):
        response = self.api(self.w.observer, "get", f"/nodes/{self.w.esc_node.uuid}/coverage")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["covered"], 2)
        self.assert_nothing_personal(response)

    def test_access_matrix(self):
        url = f"/nodes/{self.w.s1.uuid}/coverage"
        self.assert_error(self.api(None, "get", url), 401)
        self.assert_error(self.api(self.w.other_coord, "get", url), 404)
        self.assert_error(self.api(self.w.sector2, "get", url), 404)
        self.assert_error(self.api(self.w.volunteer, "get", url), 403)
        response = self.api(self.w.sector1, "get", url)
        self.assertEqual((response.json()["covered"], response.json()["total"]), (1, 2))


class GeoJsonTests(ApiTestCase):
    def test_it_returns_the_children_polygons(self):
        response = self.api(self.w.coord, "get", f"/nodes/{self.w.esc_node.uuid}/geojson")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["type"], "FeatureCollection")
        self.assertEqual([f["properties"]["code"] for f in body["features"]], ["S01"])
        self.assertEqual(body["features"][0]["geometry"]["type"], "Polygon")
        self.assertEqual(body["features"][0]["properties"]["level"], "Sector")

    def test_access_matrix(self):
        url = f"/nodes/{self.w.s1.uuid}/geojson"
        self.assert_error(self.api(None, "get", url), 401)
        self.assert_error(self.api(self.w.other_coord, "get", url), 404)
        self.assert_error(self.api(self.w.sector2, "get", url), 404)
        response = self.api(self.w.observer, "get", f"/nodes/{self.w.esc_node.uuid}/geojson")
        self.assertEqual(response.status_code, 200)
        self.assert_nothing_personal(response)
        self.assertEqual(self.api(self.w.volunteer, "get", url).status_code, 200)


class ImportTests(ApiTestCase):
    GOOD = b"code,name,level,parent_code\nS03,Sector 3,Sector,\nS03-M001,Manzana 1,Manzana,S03\n"
    BAD = b"code,name,level,parent_code\nS03,Sector 3,Sector,\nS03-M001,Manzana 1,Manzana,S99\nS01,Dup,Sector,\n"

    def upload(self, user, content=GOOD, name="units.csv", muni=None, **fields):
        client = Client()
        headers = {"Authorization": f"Bearer {self.token_for(user)}"} if user else {}
        data = {"file": SimpleUploadedFile(name, content, content_type="text/csv"), **fields}
        return client.post(
            f"/api/v1/municipalities/{(muni or self.w.esc).uuid}/import", data=data, headers=headers
        )

    def test_the_coordinator_imports_a_csv(self):
        response = self.upload(self.w.coord)
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertTrue(body["ok"])
        self.assertEqual(body["created"], 2)
        node = Node.objects.get(municipality=self.w.esc, code="S03-M001")
        self.assertEqual(node.parent.code, "S03")

    def test_a_wrong_file_imports_nothing_and_lists_the_rows(self):
        before = Node.objects.count()
        response = self.upload(self.w.coord, self.BAD)
        body = self.assert_error(response, 400)
        self.assertFalse(body["ok"])
        self.assertEqual(body["created"], 0)
        self.assertEqual({e["code"] for e in body["errors"]}, {"unknown_parent", "code_exists"})
        self.assertTrue(all(e["loc"][0] == "file" and e["msg"] for e in body["errors"]))
        self.assertEqual(Node.objects.count(), before)

    def test_it_explains_bad_files(self):
        before = Node.objects.count()
        self.assert_error(self.upload(self.w.coord, b""), 400)
        self.assert_error(self.upload(self.w.coord, b"\x00\x01\x02\xff" * 10), 400)
        self.assert_error(self.upload(self.w.coord, b"{not json", name="units.geojson"), 400)
        self.assert_error(self.upload(self.w.coord, self.GOOD, name="units.xlsx"), 400)
        self.assert_error(self.upload(self.w.coord, self.GOOD, format="shapefile"), 400)
        self.assertEqual(Node.objects.count(), before)

    @override_settings(REDES_MAX_IMPORT_BYTES=20)
    def test_it_refuses_oversized_files(self):
        before = Node.objects.count()
        body = self.assert_error(self.upload(self.w.coord), 400)
        self.assertEqual(body["errors"][0]["loc"], ["body", "file"])
        self.assertEqual(Node.objects.count(), before)

    def test_it_requires_a_file(self):
        client = Client()
        headers = {"Authorization": f"Bearer {self.token_for(self.w.coord)}"}
        response = client.post(f"/api/v1/municipalities/{self.w.esc.uuid}/import", data={}, headers=headers)
        self.assert_error(response, 422)

    def test_access_matrix(self):
        before = Node.objects.count()
        self.assert_error(self.upload(None), 401)
        self.assert_error(self.upload(self.w.other_coord), 404)
        self.assert_error(self.upload(self.w.sector2), 403)
        self.assert_error(self.upload(self.w.sector1), 403)
        self.assert_error(self.upload(self.w.observer), 403)
        self.assertEqual(Node.objects.count(), before)
        self.assertEqual(self.denied_events("territories.territory.import"), 4)


class NodeListQueryTests(ApiTestCase):
    def test_the_number_of_queries_does_not_grow_with_the_page(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from redes.territories.services import create_node

        for i in range(20):
            create_node(self.w.esc, self.w.s2, f"S02-M1{i:02d}", f"Manzana {i}")
        token = self.token_for(self.w.coord)
        Client().get(
            "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )  # the token's first use writes
        counts = []
        for limit in (2, 25):
            with CaptureQueriesContext(connection) as queries:
                response = Client().get(
                    f"/api/v1/nodes?limit={limit}", headers={"Authorization": f"Bearer {token}"}
                )
            self.assertEqual(len(response.json()["items"]), limit)
            counts.append(len(queries))
        self.assertEqual(counts[0], counts[1])
