"""The liaison API: a node's history, appointing, ending and listing posts.

Liaison rows carry names and phones: observers and volunteers are refused and never see them.
"""

import datetime as dt
import uuid

from django.test import Client

from redes.audit.models import AuditEvent
from redes.liaisons.models import LiaisonAssignment

from .test_api_territory import PERSONAL, ApiTestCase


class HistoryTests(ApiTestCase):
    def url(self, node):
        return f"/nodes/{node.uuid}/liaisons"

    def test_it_lists_the_history_of_a_post(self):
        self.api(
            self.w.coord,
            "post",
            self.url(self.w.s1),
            {"full_name": "Sonia Nueva", "start_date": "2026-02-01"},
        )
        response = self.api(self.w.coord, "get", self.url(self.w.s1))
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual([p["full_name"] for p in body], ["Sonia Nueva", "Sergio Sector"])
        self.assertEqual([p["active"] for p in body], [True, False])
        self.assertEqual(body[1]["end_date"], "2026-02-01")
        self.assertEqual(body[1]["phone"], "+528112345678")
        self.assertEqual(body[1]["user"], str(self.w.sector1.uuid))
        self.assertEqual(body[1]["node"]["code"], "S01")

    def test_access_matrix(self):
        url = self.url(self.w.s1)
        self.assert_error(self.api(None, "get", url), 401)
        self.assert_error(self.api(self.w.other_coord, "get", url), 404)
        self.assert_error(self.api(self.w.sector2, "get", url), 404)
        self.assert_error(self.api(self.w.block1, "get", url), 404)
        for user in (self.w.observer, self.w.state_observer, self.w.volunteer):
            response = self.api(user, "get", url)
            self.assert_error(response, 403)
            self.assert_nothing_personal(response)
        self.assertEqual(len(self.api(self.w.sector1, "get", url).json()), 1)
        self.assertEqual(len(self.api(self.w.operator, "get", url).json()), 1)
        self.assertEqual(len(self.api(self.w.coord, "get", url).json()), 1)

    def test_it_answers_404_for_forged_and_malformed_ids(self):
        for key in (uuid.uuid4(), "nope", self.w.s1.pk):
            self.assert_error(self.api(self.w.coord, "get", f"/nodes/{key}/liaisons"), 404)


class AssignTests(ApiTestCase):
    def url(self, node=None):
        return f"/nodes/{(node or self.w.b12).uuid}/liaisons"

    payload = {"full_name": "Patricia Pérez", "phone": "81 8765 4321", "start_date": "2026-02-01"}

    def test_a_sector_liaison_appoints_a_block_liaison(self):
        response = self.api(self.w.sector1, "post", self.url(), self.payload)
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["full_name"], body["phone"], body["active"]), ("Patricia Pérez", "+528187654321", True)
        )
        post = LiaisonAssignment.objects.get(uuid=body["uuid"])
        self.assertEqual(post.node, self.w.b12)
        self.assertEqual(post.created_by, self.w.sector1)
        self.assertEqual(
            AuditEvent.objects.get(action="liaisons.assignment.create", object_id=body["uuid"]).channel, "api"
        )

    def test_a_new_liaison_replaces_the_current_one(self):
        response = self.api(self.w.coord, "post", self.url(self.w.b11), {**self.payload, "reason": "Se mudó"})
        self.assertEqual(response.status_code, 201)
        self.w.b11_post.refresh_from_db()
        self.assertEqual(self.w.b11_post.end_date, dt.date(2026, 2, 1))

    def test_it_links_a_user_of_the_territory(self):
        response = self.api(
            self.w.coord, "post", self.url(), {**self.payload, "user": str(self.w.volunteer.uuid)}
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["user"], str(self.w.volunteer.uuid))

    def test_access_matrix(self):
        before = LiaisonAssignment.objects.count()
        self.assert_error(self.api(None, "post", self.url(), self.payload), 401)
        self.assert_error(self.api(self.w.other_coord, "post", self.url(), self.payload), 404)
        self.assert_error(self.api(self.w.sector2, "post", self.url(), self.payload), 404)
        self.assert_error(self.api(self.w.block1, "post", self.url(), self.payload), 404)
        self.assert_error(self.api(self.w.observer, "post", self.url(), self.payload), 403)
        self.assert_error(self.api(self.w.operator, "post", self.url(), self.payload), 403)
        # A sector liaison appoints below their sector, not their own successor.
        self.assert_error(self.api(self.w.sector1, "post", self.url(self.w.s1), self.payload), 403)
        self.assertEqual(LiaisonAssignment.objects.count(), before)
        self.assertEqual(LiaisonAssignment.objects.get(pk=self.w.s1_post.pk).end_date, None)
        self.assertEqual(self.denied_events("liaisons.assignment.create"), 6)

    def test_it_explains_bad_input(self):
        before = LiaisonAssignment.objects.count()
        cases = [
            ({**self.payload, "phone": "12345"}, 400),
            ({**self.payload, "phone": "+52 000 000 0000"}, 400),
            ({**self.payload, "full_name": "   "}, 400),
            ({**self.payload, "start_date": "2026-13-45"}, 422),
            ({"phone": "8112345678"}, 422),
            ({**self.payload, "user": "not-a-uuid"}, 404),
            ({**self.payload, "user": str(self.w.other_coord.uuid)}, 404),  # a user of another municipality
            ({**self.payload, "user": str(self.w.nobody.uuid)}, 404),  # nobody's territory
        ]
        for payload, status in cases:
            with self.subTest(payload=payload):
                self.assert_error(self.api(self.w.coord, "post", self.url(), payload), status)
        # Before the current holder started:
        self.assert_error(
            self.api(
                self.w.coord, "post", self.url(self.w.b11), {**self.payload, "start_date": "2025-01-01"}
            ),
            400,
        )
        self.assert_error(self.api(self.w.root, "post", self.url(self.w.state_nl), self.payload), 400)
        self.assertEqual(LiaisonAssignment.objects.count(), before)

    def test_rejected_input_is_audited_without_personal_data(self):
        self.api(self.w.coord, "post", self.url(), {**self.payload, "phone": "12345"})
        event = AuditEvent.objects.get(action="liaisons.assignment.create", outcome="rejected")
        self.assertNotIn("12345", event.summary + str(event.changes))
        self.assertNotIn("Patricia", event.summary + str(event.changes))


class EndTests(ApiTestCase):
    def url(self, post=None):
        return f"/liaisons/{(post or self.w.b11_post).uuid}/end"

    def test_a_sector_liaison_ends_a_block_post(self):
        response = self.api(
            self.w.sector1, "post", self.url(), {"end_date": "2026-03-01", "reason": "Renunció"}
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["end_date"], "2026-03-01")
        self.w.b11_post.refresh_from_db()
        self.assertEqual(
            (self.w.b11_post.end_date, self.w.b11_post.end_reason), (dt.date(2026, 3, 1), "Renunció")
        )

    def test_the_body_is_optional(self):
        headers = {"Authorization": f"Bearer {self.token_for(self.w.coord)}"}
        response = Client().generic("POST", f"/api/v1{self.url()}", b"", headers=headers)
        self.assertEqual(response.status_code, 200, response.content)
        self.assertFalse(response.json()["active"])

    def test_access_matrix(self):
        self.assert_error(self.api(None, "post", self.url(), {}), 401)
        self.assert_error(self.api(self.w.other_coord, "post", self.url(), {}), 404)
        self.assert_error(self.api(self.w.sector2, "post", self.url(), {}), 404)
        self.assert_error(
            self.api(self.w.observer, "post", self.url(), {}), 404
        )  # cannot see the post at all
        self.assert_error(self.api(self.w.volunteer, "post", self.url(), {}), 404)
        self.assert_error(self.api(self.w.block1, "post", self.url(), {}), 403)  # sees their own post
        self.assert_error(self.api(self.w.sector1, "post", self.url(self.w.s1_post), {}), 403)
        self.w.b11_post.refresh_from_db()
        self.w.s1_post.refresh_from_db()
        self.assertIsNone(self.w.b11_post.end_date)
        self.assertIsNone(self.w.s1_post.end_date)
        self.assertEqual(self.denied_events("liaisons.assignment.end"), 6)

    def test_it_explains_bad_input(self):
        self.assert_error(self.api(self.w.coord, "post", self.url(), {"end_date": "2025-01-01"}), 400)
        self.assert_error(self.api(self.w.coord, "post", self.url(), {"end_date": "ayer"}), 422)
        for key in (uuid.uuid4(), "nope", self.w.b11_post.pk):
            self.assert_error(self.api(self.w.coord, "post", f"/liaisons/{key}/end", {}), 404)
        self.w.b11_post.refresh_from_db()
        self.assertIsNone(self.w.b11_post.end_date)
        self.api(self.w.coord, "post", self.url(), {})
        self.assert_error(self.api(self.w.coord, "post", self.url(), {}), 400)  # already ended


class ListTests(ApiTestCase):
    def names(self, user, query=""):
        response = self.api(user, "get", f"/liaisons{query}")
        self.assertEqual(response.status_code, 200, response.content)
        return [p["full_name"] for p in response.json()["items"]]

    def test_it_lists_the_posts_each_user_reaches(self):
        self.assertEqual(self.names(self.w.coord), ["Sergio Sector", "Blanca Manzana"])
        self.assertEqual(self.names(self.w.sector1), ["Sergio Sector", "Blanca Manzana"])
        self.assertEqual(self.names(self.w.block1), ["Blanca Manzana"])
        self.assertEqual(self.names(self.w.sector2), [])
        self.assertEqual(self.names(self.w.other_coord), ["Alma Acapulco"])
        self.assertEqual(self.names(self.w.root, "?municipality=12001"), ["Alma Acapulco"])

    def test_it_filters_by_subtree_and_state(self):
        self.api(self.w.coord, "post", f"/liaisons/{self.w.b11_post.uuid}/end", {})
        self.assertEqual(self.names(self.w.coord, "?active=true"), ["Sergio Sector"])
        self.assertEqual(self.names(self.w.coord, "?active=false"), ["Blanca Manzana"])
        self.assertEqual(self.names(self.w.coord, f"?subtree={self.w.b11.uuid}"), ["Blanca Manzana"])
        self.assertEqual(self.names(self.w.coord, "?municipality=19021&active=true"), ["Sergio Sector"])

    def test_observers_and_volunteers_are_refused_and_see_no_one(self):
        for user in (self.w.observer, self.w.state_observer, self.w.volunteer, self.w.nobody):
            response = self.api(user, "get", "/liaisons")
            self.assert_error(response, 403)
            self.assert_nothing_personal(response)

    def test_access_matrix_for_filters(self):
        self.assert_error(self.api(None, "get", "/liaisons"), 401)
        self.assert_error(self.api(self.w.other_coord, "get", "/liaisons?municipality=19021"), 404)
        self.assert_error(self.api(self.w.sector2, "get", f"/liaisons?subtree={self.w.s1.uuid}"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/liaisons?subtree=nope"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/liaisons?active=maybe"), 422)

    def test_it_paginates(self):
        body = self.api(self.w.coord, "get", "/liaisons?limit=1&offset=1").json()
        self.assertEqual((body["count"], [p["full_name"] for p in body["items"]]), (2, ["Blanca Manzana"]))


class ObserverSeesNoPersonalDataTests(ApiTestCase):
    """Every read an observer may make, none with a name or a phone in it."""

    def test_no_answer_to_an_observer_carries_personal_data(self):
        w = self.w
        paths = [
            "/me",
            "/municipalities",
            f"/municipalities/{w.esc.uuid}",
            f"/municipalities/{w.esc.uuid}/levels",
            "/nodes",
            "/nodes?limit=500",
            f"/nodes/{w.s1.uuid}?geometry=true",
            f"/nodes/{w.b11.uuid}",
            f"/nodes/{w.esc_node.uuid}/coverage",
            f"/nodes/{w.s1.uuid}/coverage",
            f"/nodes/{w.aca_node.uuid}/coverage",
            f"/nodes/{w.esc_node.uuid}/geojson",
            f"/nodes/{w.s1.uuid}/liaisons",
            "/liaisons",
            "/liaisons?municipality=19021",
            "/memberships",
            "/users",
        ]
        for user in (w.observer, w.state_observer):
            for path in paths:
                with self.subTest(user=user.username, path=path):
                    response = self.api(user, "get", path)
                    self.assertIn(response.status_code, (200, 403, 404))
                    text = response.content.decode()
                    for value in (*PERSONAL, "Carmen Coordinadora", "sector1", "block1"):
                        self.assertNotIn(value, text)
