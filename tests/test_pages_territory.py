"""The territory browser: node page, map GeoJSON, search, and the coordinators' tree forms."""

import json

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from redes.audit.models import AuditEvent, Outcome
from redes.liaisons.services import assign_liaison
from redes.territories.models import Node
from redes.territories.services import create_node

from .base import RedesTestCase

PERSONAL = ("Sergio Sector", "Blanca Manzana", "+528112345678", "8112345678", "+528112345679", "1234 567")


def node_url(node, suffix=""):
    return f"/territory/{node.uuid}/{suffix}"


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class NodePageAccessTests(RedesTestCase):
    def test_anonymous_users_are_sent_to_sign_in(self):
        response = self.client_for(None).get(node_url(self.w.s1))
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/login/?next="))

    def test_it_hides_another_municipality(self):
        response = self.client_for(self.w.other_coord).get(node_url(self.w.s1))
        self.assertEqual(response.status_code, 404)
        self.assertNotIn(b"Sector 1", response.content)

    def test_it_hides_another_sector(self):
        self.assertEqual(self.client_for(self.w.sector2).get(node_url(self.w.s1)).status_code, 404)
        self.assertEqual(self.client_for(self.w.sector2).get(node_url(self.w.b11)).status_code, 404)

    def test_missing_and_malformed_ids_are_404(self):
        client = self.client_for(self.w.coord)
        self.assertEqual(client.get("/territory/00000000-0000-0000-0000-000000000000/").status_code, 404)
        self.assertEqual(client.get("/territory/not-a-uuid/").status_code, 404)

    def test_observers_see_aggregates_but_no_names_or_phones(self):
        for observer in (self.w.observer, self.w.state_observer):
            for node in (self.w.esc_node, self.w.s1, self.w.b11):
                response = self.client_for(observer).get(node_url(node))
                self.assertEqual(response.status_code, 200)
                html = response.content.decode()
                for secret in PERSONAL:
                    self.assertNotIn(secret, html, f"{observer} on {node.code}")
            self.assertContains(self.client_for(observer).get(node_url(self.w.esc_node)), "Liaison coverage")

    def test_observers_get_no_management_forms(self):
        html = self.client_for(self.w.observer).get(node_url(self.w.s1)).content.decode()
        self.assertNotIn(node_url(self.w.s1, "rename/"), html)
        self.assertNotIn(node_url(self.w.s1, "liaison/assign/"), html)

    def test_the_coordinator_sees_children_coverage_liaisons_and_forms(self):
        response = self.client_for(self.w.coord).get(node_url(self.w.esc_node))
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertIn("Sector 1", html)
        self.assertIn("Sector 2", html)
        self.assertIn("Sergio Sector", html)  # S01's liaison, in the list of children
        self.assertIn(node_url(self.w.esc_node, "add/"), html)
        # coverage of S01 is one of its two blocks; S02's only block is vacant
        rows = {r["node"].code: r for r in response.context["rows"]}
        self.assertEqual(rows["S01"]["coverage"].percent, 50)
        self.assertEqual(rows["S02"]["coverage"].percent, 0)
        self.assertIsNone(rows["S02"]["post"])

    def test_a_unit_page_shows_breadcrumbs_level_and_phone_to_field_roles(self):
        response = self.client_for(self.w.coord).get(node_url(self.w.s1))
        self.assertContains(response, "Sergio Sector")
        self.assertContains(response, "+528112345678")
        self.assertContains(response, node_url(self.w.esc_node))  # breadcrumb link
        self.assertEqual(response.context["level"], "Sector")

    def test_breadcrumbs_above_ones_reach_are_not_links(self):
        html = self.client_for(self.w.sector1).get(node_url(self.w.b11)).content.decode()
        self.assertIn(node_url(self.w.s1), html)
        self.assertNotIn(node_url(self.w.esc_node), html)
        self.assertIn("General Escobedo", html)

    def test_a_volunteer_sees_the_tree_without_coverage(self):
        response = self.client_for(self.w.volunteer).get(node_url(self.w.s1))
        self.assertEqual(response.status_code, 200)
        self.assertIsNone(response.context["coverage"])
        self.assertNotContains(response, "Liaison coverage")

    def test_the_nation_page_lists_states_for_observers(self):
        response = self.client_for(self.w.observer).get(node_url(self.w.nation))
        self.assertContains(response, "Nuevo León")
        self.assertContains(response, "Guerrero")

    def test_children_are_paginated_and_bad_pages_do_not_fail(self):
        client = self.client_for(self.w.coord)
        for page in ("2", "999", "abc", "-1"):
            self.assertEqual(client.get(node_url(self.w.esc_node), {"page": page}).status_code, 200)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class NodePageQueryCountTests(RedesTestCase):
    def count_queries(self, client, url):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        self.assertEqual(response.status_code, 200)
        return len(ctx.captured_queries), ctx.captured_queries

    def test_the_browser_does_not_run_a_query_per_child(self):
        client = self.client_for(self.w.coord)
        url = node_url(self.w.esc_node)
        client.get(url)
        before, _ = self.count_queries(client, url)
        for i in range(3, 11):
            sector = create_node(self.w.esc, self.w.esc_node, f"S{i:02}", f"Sector {i}")
            assign_liaison(sector, full_name=f"Enlace {i}", phone="8112345600")
            for j in range(1, 4):
                block = create_node(self.w.esc, sector, f"S{i:02}-M{j:03}", f"Manzana {j}")
                if j == 1:
                    assign_liaison(block, full_name=f"Enlace {i}-{j}")
        after, queries = self.count_queries(client, url)
        self.assertEqual(after, before, "the node page's query count grows with its children")
        self.assertLessEqual(after, 20)
        group_bys = [q["sql"] for q in queries if "GROUP BY" in q["sql"].upper()]
        self.assertLessEqual(len(group_bys), 2)  # coverage by child (and the pagination count, if any)

    def test_the_map_does_not_run_a_query_per_child(self):
        client = self.client_for(self.w.coord)
        url = node_url(self.w.esc_node, "map.geojson")
        before, _ = self.count_queries(client, url)
        square = self.w.s1.geometry
        for i in range(3, 9):
            create_node(self.w.esc, self.w.esc_node, f"S{i:02}", f"Sector {i}", geometry=square)
        after, _ = self.count_queries(client, url)
        self.assertEqual(after, before)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class MapTests(RedesTestCase):
    def geojson(self, user, node):
        response = self.client_for(user).get(node_url(node, "map.geojson"))
        return response, (json.loads(response.content) if response.status_code == 200 else None)

    def test_it_gives_the_children_polygons(self):
        response, data = self.geojson(self.w.coord, self.w.esc_node)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "application/geo+json")
        self.assertEqual(data["type"], "FeatureCollection")
        codes = [f["properties"]["code"] for f in data["features"]]
        self.assertEqual(codes, ["S01"])  # only S01 has a shape
        props = data["features"][0]["properties"]
        self.assertEqual(props["url"], node_url(self.w.s1))
        self.assertEqual(props["coverage"], 50)

    def test_a_node_without_shaped_children_shows_its_own_outline(self):
        _, data = self.geojson(self.w.coord, self.w.s1)
        self.assertEqual(len(data["features"]), 1)
        self.assertTrue(data["features"][0]["properties"]["self"])

    def test_it_never_carries_personal_data(self):
        for user in (self.w.coord, self.w.observer, self.w.root):
            response, _ = self.geojson(user, self.w.esc_node)
            for secret in PERSONAL:
                self.assertNotIn(secret, response.content.decode())

    def test_access_matrix(self):
        self.assertEqual(self.client_for(None).get(node_url(self.w.s1, "map.geojson")).status_code, 302)
        self.assertEqual(self.geojson(self.w.other_coord, self.w.esc_node)[0].status_code, 404)
        self.assertEqual(self.geojson(self.w.sector2, self.w.s1)[0].status_code, 404)
        self.assertEqual(self.geojson(self.w.observer, self.w.esc_node)[0].status_code, 200)
        _, data = self.geojson(self.w.volunteer, self.w.s1)
        self.assertNotIn("liaison", data["features"][0]["properties"])  # no aggregates for volunteers

    def test_the_page_points_the_map_at_the_endpoint_and_the_tile_url(self):
        with self.settings(REDES_TILE_URL="http://tiles.example/{z}/{x}/{y}.png"):
            html = self.client_for(self.w.coord).get(node_url(self.w.esc_node)).content.decode()
        self.assertIn(f'data-geojson="{node_url(self.w.esc_node, "map.geojson")}"', html)
        self.assertIn("http://tiles.example/{z}/{x}/{y}.png", html)
        self.assertIn("vendor/leaflet/leaflet.js", html)

    def test_a_node_with_no_shapes_has_no_map(self):
        html = self.client_for(self.w.coord).get(node_url(self.w.s2)).content.decode()
        self.assertNotIn("data-geojson", html)
        self.assertNotIn("leaflet.js", html)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class SearchTests(RedesTestCase):
    def search(self, user, q, within=None, **headers):
        params = {"q": q}
        if within is not None:
            params["within"] = str(within.uuid)
        return self.client_for(user).get("/territory/search/", params, headers=headers)

    def codes(self, response):
        return {n.code for n in response.context["results"]}

    def test_it_finds_by_name_and_code_within_what_one_sees(self):
        self.assertEqual(
            self.codes(self.search(self.w.coord, "manzana")), {"S01-M001", "S01-M002", "S02-M001"}
        )
        self.assertEqual(self.codes(self.search(self.w.coord, "s02")), {"S02", "S02-M001"})
        self.assertEqual(self.codes(self.search(self.w.sector1, "manzana")), {"S01-M001", "S01-M002"})
        self.assertEqual(self.codes(self.search(self.w.other_coord, "manzana")), {"A1-Z1-G1-M1"})
        self.assertEqual(self.codes(self.search(self.w.nobody, "manzana")), set())

    def test_it_searches_below_a_node(self):
        response = self.search(self.w.coord, "manzana", within=self.w.s2)
        self.assertEqual(self.codes(response), {"S02-M001"})

    def test_searching_below_a_node_one_cannot_see_is_404(self):
        self.assertEqual(self.search(self.w.other_coord, "manzana", within=self.w.s1).status_code, 404)
        self.assertEqual(self.search(self.w.sector2, "manzana", within=self.w.s1).status_code, 404)
        response = self.client_for(self.w.coord).get("/territory/search/", {"q": "x", "within": "garbage"})
        self.assertEqual(response.status_code, 404)

    def test_htmx_gets_only_the_results(self):
        response = self.search(self.w.coord, "manzana", HX_Request="true")
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "<html")
        self.assertContains(response, "S01-M002")

    def test_short_and_odd_queries_do_not_fail(self):
        for q in ("", "m", "%", "_", "' OR 1=1 --", "x" * 500):
            self.assertEqual(self.search(self.w.coord, q).status_code, 200)

    def test_anonymous_users_are_sent_to_sign_in(self):
        self.assertEqual(self.client_for(None).get("/territory/search/?q=man").status_code, 302)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class TreeFormTests(RedesTestCase):
    """Add, rename, move and remove: coordinators only, through the territory services (audited)."""

    def post(self, user, node, action, data):
        return self.client_for(user).post(node_url(node, f"{action}/"), data)

    def snapshot(self):
        return sorted(Node.objects.values_list("code", "name", "parent_id", "a3", "a4"))

    def assert_refused(self, user, status):
        before = self.snapshot()
        attempts = {
            "add": {"add-code": "S01-M999", "add-name": "Intrusa"},
            "rename": {"rename-name": "Renombrado", "rename-code": "S01"},
            "move": {"move-parent_code": "S02"},
            "remove": {"remove-confirm": "on", "remove-cascade": "on"},
        }
        for action, data in attempts.items():
            node = self.w.s1 if action != "move" else self.w.b11
            response = self.post(user, node, action, data)
            self.assertEqual(response.status_code, status, f"{user} {action}")
            self.assertEqual(self.client_for(user).get(node_url(node, f"{action}/")).status_code, status)
        self.assertEqual(self.snapshot(), before)

    def test_anonymous_users_are_sent_to_sign_in(self):
        before = self.snapshot()
        response = self.post(None, self.w.s1, "rename", {"rename-name": "X", "rename-code": "S01"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.snapshot(), before)

    def test_other_municipality_gets_404_and_nothing_changes(self):
        self.assert_refused(self.w.other_coord, 404)

    def test_other_sector_gets_404_and_nothing_changes(self):
        self.assert_refused(self.w.sector2, 404)

    def test_observers_and_liaisons_get_403_and_nothing_changes(self):
        for user in (self.w.observer, self.w.state_observer, self.w.sector1, self.w.volunteer):
            self.assert_refused(user, 403)

    def test_refused_writes_are_audited(self):
        self.post(self.w.observer, self.w.s1, "rename", {"rename-name": "X", "rename-code": "S01"})
        event = AuditEvent.objects.filter(outcome=Outcome.DENIED).latest("id")
        self.assertEqual(event.action, "territories.node.update")
        self.assertEqual(event.actor, self.w.observer)

    def test_a_coordinator_adds_a_child(self):
        response = self.post(
            self.w.coord, self.w.s2, "add", {"add-code": "S02-M002", "add-name": "Manzana 2"}
        )
        self.assertRedirects(response, node_url(self.w.s2), fetch_redirect_response=False)
        node = Node.objects.get(code="S02-M002")
        self.assertEqual(node.parent, self.w.s2)
        self.assertTrue(
            AuditEvent.objects.filter(action="territories.node.create", object_id=str(node.uuid)).exists()
        )

    def test_a_coordinator_adds_a_sector_under_the_municipality(self):
        self.post(self.w.coord, self.w.esc_node, "add", {"add-code": "S03", "add-name": "Sector 3"})
        self.assertEqual(Node.objects.get(code="S03").level_name, "Sector")

    def test_adding_below_the_deepest_level_is_a_form_error(self):
        response = self.post(self.w.coord, self.w.b11, "add", {"add-code": "X1", "add-name": "Nope"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "deepest level")
        self.assertFalse(Node.objects.filter(code="X1").exists())

    def test_a_duplicate_code_is_a_form_error(self):
        response = self.post(self.w.coord, self.w.s2, "add", {"add-code": "S01-M001", "add-name": "Dup"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "already used")

    def test_empty_and_oversized_input_are_form_errors(self):
        for data in ({}, {"add-code": "", "add-name": ""}, {"add-code": "x" * 40, "add-name": "y"}):
            response = self.post(self.w.coord, self.w.s2, "add", data)
            self.assertEqual(response.status_code, 200)
            self.assertTrue(response.context["form"].errors)

    def test_a_coordinator_renames_a_unit(self):
        response = self.post(
            self.w.coord, self.w.s2, "rename", {"rename-name": "Sector Norte", "rename-code": "S02N"}
        )
        self.assertEqual(response.status_code, 302)
        self.w.s2.refresh_from_db()
        self.assertEqual((self.w.s2.name, self.w.s2.code), ("Sector Norte", "S02N"))

    def test_renaming_to_a_used_code_is_a_form_error(self):
        response = self.post(
            self.w.coord, self.w.s2, "rename", {"rename-name": "Sector 2", "rename-code": "S01"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "already used")
        self.w.s2.refresh_from_db()
        self.assertEqual(self.w.s2.code, "S02")

    def test_the_municipality_itself_cannot_be_renamed_here(self):
        response = self.post(
            self.w.coord, self.w.esc_node, "rename", {"rename-name": "X", "rename-code": "19021"}
        )
        self.assertEqual(response.status_code, 200)
        self.w.esc_node.refresh_from_db()
        self.assertEqual(self.w.esc_node.name, "General Escobedo")

    def test_a_coordinator_moves_a_block_to_another_sector(self):
        response = self.post(self.w.coord, self.w.b12, "move", {"move-parent_code": "S02"})
        self.assertEqual(response.status_code, 302)
        self.w.b12.refresh_from_db()
        self.assertEqual(self.w.b12.parent, self.w.s2)
        self.assertEqual(self.w.b12.a3, self.w.s2.pk)

    def test_moving_to_an_unknown_foreign_or_wrong_level_parent_is_a_form_error(self):
        for code, message in (("NOPE", "No unit"), ("A1", "No unit"), ("S02-M001", "its parent must be")):
            response = self.post(self.w.coord, self.w.b12, "move", {"move-parent_code": code})
            self.assertEqual(response.status_code, 200, code)
            self.assertContains(response, message)
        self.w.b12.refresh_from_db()
        self.assertEqual(self.w.b12.parent, self.w.s1)

    def test_removing_needs_confirmation_and_the_cascade_box_for_branches(self):
        response = self.post(self.w.coord, self.w.s1, "remove", {})
        self.assertContains(response, "Tick the box")
        response = self.post(self.w.coord, self.w.s1, "remove", {"remove-confirm": "on"})
        self.assertContains(response, "units below it")
        self.assertTrue(Node.objects.filter(pk=self.w.s1.pk).exists())

    def test_a_coordinator_removes_a_branch(self):
        response = self.post(
            self.w.coord, self.w.s1, "remove", {"remove-confirm": "on", "remove-cascade": "on"}
        )
        self.assertRedirects(response, node_url(self.w.esc_node), fetch_redirect_response=False)
        self.assertFalse(Node.objects.filter(code__startswith="S01").exists())

    def test_the_municipality_node_cannot_be_removed(self):
        response = self.post(
            self.w.coord, self.w.esc_node, "remove", {"remove-confirm": "on", "remove-cascade": "on"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(Node.objects.filter(pk=self.w.esc_node.pk).exists())
