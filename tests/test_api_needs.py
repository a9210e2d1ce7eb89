"""The needs API, role by role: anonymous, other tenant, other territory, observer, volunteer, liaisons, operator,
case officer, coordinator. Denials leave everything as it was and are audited."""

import datetime as dt
import uuid

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.needs import services
from redes.needs.models import Need, NeedCategory, NeedEvent, Office, Referral, RoutingRule, WorkingGroup
from tests.base import RedesTestCase

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


#: Every operation of the needs API (the OpenAPI test of the whole API reads this too).
NEEDS_ENDPOINTS = {
    "/api/v1/needs/notifications": {"get"},
    "/api/v1/needs/notifications/read": {"post"},
    "/api/v1/needs/counts": {"get"},
    "/api/v1/needs/map": {"get"},
    "/api/v1/needs": {"get", "post"},
    "/api/v1/needs/{uuid}": {"get"},
    "/api/v1/needs/{uuid}/triage": {"post"},
    "/api/v1/needs/{uuid}/assign": {"post"},
    "/api/v1/needs/{uuid}/acknowledge": {"post"},
    "/api/v1/needs/{uuid}/start": {"post"},
    "/api/v1/needs/{uuid}/resolve": {"post"},
    "/api/v1/needs/{uuid}/close": {"post"},
    "/api/v1/needs/{uuid}/cancel": {"post"},
    "/api/v1/needs/{uuid}/duplicate": {"post"},
    "/api/v1/needs/{uuid}/reopen": {"post"},
    "/api/v1/needs/{uuid}/notes": {"post"},
    "/api/v1/needs/{uuid}/referrals": {"post"},
    "/api/v1/needs/referrals/{uuid}": {"patch"},
    "/api/v1/needs/municipalities/{municipality}/categories": {"get", "post"},
    "/api/v1/needs/municipalities/{municipality}/categories/{code}": {"put"},
    "/api/v1/needs/municipalities/{municipality}/offices": {"get", "post"},
    "/api/v1/needs/municipalities/{municipality}/offices/{uuid}": {"put"},
    "/api/v1/needs/municipalities/{municipality}/groups": {"get", "post"},
    "/api/v1/needs/municipalities/{municipality}/groups/{uuid}": {"put"},
    "/api/v1/needs/municipalities/{municipality}/routing-rules": {"get", "post"},
    "/api/v1/needs/municipalities/{municipality}/routing-rules/{uuid}": {"delete", "put"},
    "/api/v1/needs/municipalities/{municipality}/deadlines": {"get", "put"},
}


class NeedsApiTestCase(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        services.ensure_defaults(w.esc)
        services.ensure_defaults(w.aca)
        with clock.travel(T0):
            cls.food = services.register_need(
                actor=w.block1,
                municipality=w.esc,
                category="alimentacion",
                description="Sin despensa",
                urgency="high",
                channel="field",
                node=w.b11,
            )
            cls.b21 = services.register_need(
                actor=w.coord,
                municipality=w.esc,
                category="salud",
                description="Insulina",
                urgency="normal",
                channel="field",
                node=w.b21,
            )
            cls.violence = services.register_need(
                actor=w.operator,
                municipality=w.esc,
                category="violencia",
                description="Golpes",
                urgency="critical",
                channel="hotline",
                node=w.b11,
            )
            cls.aca = services.register_need(
                actor=w.other_coord,
                municipality=w.aca,
                category="otro",
                description="Acapulco",
                urgency="low",
                channel="field",
                node=w.ab,
            )
        cls.office = services.save_office(w.esc, actor=w.coord, name="DIF municipal", phone="81 8000 0000")

    def setUp(self):
        self.food.refresh_from_db()

    def state(self):
        return (
            list(
                Need.objects.order_by("pk").values_list(
                    "status", "assigned_user_id", "holder_node_id", "updated_at"
                )
            ),
            NeedEvent.objects.count(),
            Referral.objects.count(),
        )

    def assertDenied(self, user, method, path, data=None, status=403):
        before = self.state()
        audits = AuditEvent.objects.exclude(outcome="ok").count()
        response = self.api(user, method, path, data)
        self.assertEqual(response.status_code, status, response.content)
        self.assertIn("detail", response.json())
        self.assertEqual(self.state(), before)
        if user is not None and method != "get":
            self.assertEqual(AuditEvent.objects.exclude(outcome="ok").count(), audits + 1)
        return response


class ListAndDetailTests(NeedsApiTestCase):
    def uuids(self, user, query=""):
        response = self.api(user, "get", f"needs{query}")
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual(body["count"], len(body["items"]))
        return {item["uuid"] for item in body["items"]}, body

    def test_anonymous_gets_401(self):
        for path in ("needs", f"needs/{self.food.uuid}", "needs/counts?node=x", "needs/notifications"):
            with self.subTest(path=path):
                self.assertEqual(self.api(None, "get", path).status_code, 401)
        self.assertDenied(None, "post", f"needs/{self.food.uuid}/acknowledge", status=401)

    def test_queues_per_role(self):
        w = self.w
        food, b21, violence, aca = (str(n.uuid) for n in (self.food, self.b21, self.violence, self.aca))
        self.assertEqual(self.uuids(w.block1)[0], {food})
        self.assertEqual(self.uuids(w.sector1)[0], {food})
        self.assertEqual(self.uuids(w.sector2)[0], {b21})
        self.assertEqual(self.uuids(w.coord)[0], {food, b21})
        self.assertEqual(self.uuids(w.caseworker)[0], {food, b21, violence})
        self.assertEqual(self.uuids(w.other_coord)[0], {aca})
        operator, body = self.uuids(w.operator)
        self.assertEqual(operator, {food, b21, violence})
        [stub] = [i for i in body["items"] if i["uuid"] == violence]
        self.assertTrue(stub["stub"])
        self.assertIsNone(stub["category"])
        self.assertIsNone(stub["node"])
        self.assertEqual(self.uuids(w.coord, "?category=salud")[0], {b21})
        self.assertEqual(self.uuids(w.coord, f"?node={w.s1.uuid}")[0], {food})
        self.assertEqual(self.uuids(w.coord, "?municipality=19021&urgency=high")[0], {food})
        self.assertEqual(self.uuids(w.coord, "?status=closed")[0], set())
        self.assertEqual(self.api(w.coord, "get", "needs?status=lost").status_code, 400)
        self.assertEqual(self.api(w.coord, "get", f"needs?node={w.ab.uuid}").status_code, 404)
        self.assertEqual(self.api(w.coord, "get", "needs?limit=1").json()["count"], 2)
        self.assertEqual(len(self.api(w.coord, "get", "needs?limit=1").json()["items"]), 1)

    def test_observers_and_strangers_get_no_list(self):
        w = self.w
        for user in (w.observer, w.state_observer, w.nobody):
            with self.subTest(user=user.username):
                self.assertEqual(self.api(user, "get", "needs").status_code, 403)
        # A volunteer with nothing assigned has an empty queue.
        self.assertEqual(self.api(w.volunteer, "get", "needs").json(), {"items": [], "count": 0})

    def test_detail_per_role(self):
        w = self.w
        path = f"needs/{self.food.uuid}"
        body = self.api(w.block1, "get", path).json()
        self.assertEqual(
            (body["description"], body["category"], body["holder"]["code"]),
            ("Sin despensa", "alimentacion", "S01-M001"),
        )
        self.assertEqual([e["kind"] for e in body["events"]], ["created"])
        for user in (w.sector2, w.other_coord, w.observer, w.volunteer, w.nobody):
            with self.subTest(user=user.username):
                self.assertEqual(self.api(user, "get", path).status_code, 404)
        for bad in ("nope", str(uuid.uuid4()), "1"):
            self.assertEqual(self.api(w.coord, "get", f"needs/{bad}").status_code, 404)

    def test_sensitive_detail_only_for_case_officers(self):
        w = self.w
        path = f"needs/{self.violence.uuid}"
        reads = AuditEvent.objects.filter(action="needs.sensitive.read").count()
        body = self.api(w.caseworker, "get", path).json()
        self.assertEqual(
            (body["description"], body["stub"], body["category"]), ("Golpes", False, "violencia")
        )
        self.assertEqual(AuditEvent.objects.filter(action="needs.sensitive.read").count(), reads + 1)
        stub = self.api(w.operator, "get", path).json()
        self.assertTrue(stub["stub"])
        self.assertNotIn("Golpes", str(stub))
        self.assertIsNone(stub["description"])
        self.assertEqual(self.api(w.coord, "get", path).status_code, 404)
        self.assertEqual(self.api(w.block1, "get", path).status_code, 404)
        self.assertDenied(w.operator, "post", f"{path}/notes", {"text": "Lo vi"})


class CreateTests(NeedsApiTestCase):
    def payload(self, **extra):
        return {"municipality": "19021", "category": "salud", "description": "Medicinas", **extra}

    def test_a_liaison_and_the_messaging_channels_create_needs(self):
        w = self.w
        response = self.api(w.block1, "post", "needs", self.payload(node=str(w.b11.uuid), urgency="critical"))
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["channel"], body["node"]["code"], body["urgency"]), ("api", "S01-M001", "critical")
        )
        from redes.registry import services as registry

        household = registry.create_household(w.b12, actor=w.coord, street="Hidalgo", ext_number="3")
        response = self.api(
            w.operator,
            "post",
            "needs",
            self.payload(
                household=str(household.uuid), channel="whatsapp", contact_phone="+52 1 81 1234 5678"
            ),
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["node"]["code"], body["contact_phone"], body["household"]),
            ("S01-M002", "+528112345678", str(household.uuid)),
        )
        response = self.api(w.operator, "post", "needs", self.payload(lat=25.7, lon=-100.3))
        self.assertEqual(response.json()["node"]["code"], "19021")

    def test_bad_creations(self):
        w = self.w
        cases = [
            (w.block1, self.payload(category="unknown", node=str(w.b11.uuid)), 400),
            (w.block1, self.payload(node=str(w.b21.uuid)), 404),  # outside the territory
            (w.volunteer, self.payload(node=str(w.b11.uuid)), 403),  # seen, but may not report
            (w.block1, self.payload(node=str(uuid.uuid4())), 404),
            (w.block1, self.payload(node=str(w.ab.uuid)), 404),
            (w.block1, self.payload(municipality="12001"), 404),
            (w.block1, self.payload(household=str(uuid.uuid4())), 404),
            (w.block1, self.payload(description=""), 400),
            (w.block1, self.payload(urgency="someday"), 422),
            (w.block1, self.payload(contact_phone="123"), 400),
            (w.observer, self.payload(), 403),
            (w.volunteer, self.payload(), 403),
            (w.other_coord, self.payload(), 404),
        ]
        for user, payload, status in cases:
            with self.subTest(user=user.username, payload=payload):
                before = Need.objects.count()
                response = self.api(user, "post", "needs", payload)
                self.assertEqual(response.status_code, status, response.content)
                self.assertEqual(Need.objects.count(), before)
        self.assertGreaterEqual(
            AuditEvent.objects.filter(action="needs.need.create").exclude(outcome="ok").count(), 10
        )


class LifecycleApiTests(NeedsApiTestCase):
    def test_the_lifecycle_through_the_api(self):
        w = self.w
        path = f"needs/{self.food.uuid}"
        r = self.api(w.block1, "post", f"{path}/triage", {"urgency": "critical", "note": "Urge"})
        self.assertEqual(
            (r.status_code, r.json()["status"], r.json()["urgency"]), (200, "triaged", "critical")
        )
        r = self.api(w.sector1, "post", f"{path}/assign", {"user": str(w.volunteer.uuid)})
        self.assertEqual((r.status_code, r.json()["assigned_user"]["uuid"]), (200, str(w.volunteer.uuid)))
        # The volunteer now sees it, and works on it.
        self.assertEqual(self.api(w.volunteer, "get", "needs").json()["count"], 1)
        self.assertEqual(self.api(w.volunteer, "post", f"{path}/start").status_code, 200)
        self.assertEqual(
            self.api(w.volunteer, "post", f"{path}/notes", {"text": "En camino"}).status_code, 201
        )
        self.assertDenied(w.volunteer, "post", f"{path}/close", {"outcome": "solved"})
        r = self.api(w.volunteer, "post", f"{path}/resolve", {"outcome": "solved", "note": "Entregado"})
        self.assertEqual(r.json()["status"], "resolved")
        r = self.api(w.block1, "post", f"{path}/close", {"satisfaction": 4})
        self.assertEqual(
            (r.json()["status"], r.json()["satisfaction"], r.json()["outcome"]), ("closed", 4, "solved")
        )
        self.assertEqual(
            [e["kind"] for e in r.json()["events"]],
            ["created", "triaged", "assigned", "started", "note", "resolved", "closed"],
        )
        self.assertDenied(w.block1, "post", f"{path}/resolve", {"outcome": "solved"}, status=400)
        r = self.api(w.block1, "post", f"{path}/reopen", {"note": "Otra vez"})
        self.assertEqual(r.json()["status"], "triaged")

    def test_refusals(self):
        w = self.w
        path = f"needs/{self.food.uuid}"
        self.assertDenied(w.sector2, "post", f"{path}/acknowledge", status=404)
        self.assertDenied(w.other_coord, "post", f"{path}/acknowledge", status=404)
        self.assertDenied(w.observer, "post", f"{path}/acknowledge", status=404)
        self.assertDenied(w.volunteer, "post", f"{path}/acknowledge", status=404)
        self.assertDenied(w.coord, "post", "needs/not-a-uuid/acknowledge", status=404)
        self.assertDenied(w.coord, "post", f"{path}/assign", {"user": str(w.sector2.uuid)}, status=400)
        self.assertDenied(w.coord, "post", f"{path}/assign", {"user": str(uuid.uuid4())}, status=404)
        self.assertDenied(w.coord, "post", f"{path}/assign", {}, status=400)
        self.assertDenied(
            w.coord, "post", f"{path}/close", {"outcome": "solved", "satisfaction": 9}, status=400
        )
        self.assertDenied(w.coord, "post", f"{path}/duplicate", {"of": str(self.aca.uuid)}, status=404)
        self.assertDenied(w.coord, "post", f"{path}/duplicate", {"of": str(self.food.uuid)}, status=400)
        self.assertDenied(w.coord, "post", f"{path}/cancel", {"reason": ""}, status=400)
        self.assertEqual(self.api(w.coord, "post", f"{path}/cancel", {"reason": "Repetida"}).status_code, 200)
        self.assertDenied(w.coord, "post", f"{path}/resolve", {"outcome": "solved"}, status=400)
        self.assertDenied(w.coord, "post", f"{path}/start", status=400)

    def test_referrals(self):
        w = self.w
        path = f"needs/{self.food.uuid}"
        r = self.api(w.block1, "post", f"{path}/referrals", {"office": str(self.office.uuid), "note": "Cita"})
        self.assertEqual((r.status_code, r.json()["status"]), (201, "sent"))
        ref = r.json()["uuid"]
        r = self.api(w.sector1, "patch", f"needs/referrals/{ref}", {"status": "resolved", "note": "Atendida"})
        self.assertEqual((r.status_code, r.json()["outcome"]), (200, "Atendida"))
        self.assertDenied(w.sector2, "patch", f"needs/referrals/{ref}", {"status": "rejected"}, status=404)
        self.assertDenied(w.block1, "post", f"{path}/referrals", {"office": str(uuid.uuid4())}, status=404)
        detail = self.api(w.block1, "get", path).json()
        self.assertEqual([x["status"] for x in detail["referrals"]], ["resolved"])

    def test_notifications(self):
        w = self.w
        self.api(w.coord, "post", f"needs/{self.food.uuid}/assign", {"user": str(w.block1.uuid)})
        body = self.api(w.block1, "get", "needs/notifications?unread=true").json()
        self.assertEqual([(n["kind"], n["need"]) for n in body["items"]], [("assigned", str(self.food.uuid))])
        self.assertEqual(self.api(w.sector1, "get", "needs/notifications").json()["count"], 0)
        r = self.api(w.block1, "post", "needs/notifications/read", {"ids": [body["items"][0]["id"]]})
        self.assertEqual(r.json(), {"marked": 1})
        self.assertEqual(self.api(w.block1, "get", "needs/notifications?unread=true").json()["count"], 0)


class AggregateApiTests(NeedsApiTestCase):
    def test_counts_and_map(self):
        w = self.w
        body = self.api(w.coord, "get", f"needs/counts?node={w.esc_node.uuid}").json()
        self.assertEqual((body["open"], body["suppressed"]), (2, False))
        body = self.api(w.observer, "get", f"needs/counts?node={w.esc_node.uuid}").json()
        self.assertEqual((body["open"], body["suppressed"]), (None, True))
        self.assertEqual(
            self.api(w.caseworker, "get", f"needs/counts?node={w.esc_node.uuid}").json()["open"], 3
        )
        self.assertEqual(self.api(w.sector1, "get", f"needs/counts?node={w.s2.uuid}").status_code, 404)
        self.assertEqual(
            self.api(w.other_coord, "get", f"needs/counts?node={w.esc_node.uuid}").status_code, 404
        )
        geo = self.api(w.observer, "get", "needs/map?municipality=19021")
        self.assertEqual((geo.status_code, geo.json()["type"]), (200, "FeatureCollection"))
        self.assertNotIn("despensa", geo.content.decode())
        self.assertEqual(self.api(w.other_coord, "get", "needs/map?municipality=19021").status_code, 404)
        self.assertEqual(self.api(w.nobody, "get", "needs/map?municipality=19021").status_code, 404)


class SettingsApiTests(NeedsApiTestCase):
    base = "needs/municipalities/19021"

    def test_field_roles_read_settings(self):
        w = self.w
        for what in ("categories", "offices", "groups", "routing-rules", "deadlines"):
            for user in (w.block1, w.operator, w.caseworker, w.coord):
                with self.subTest(what=what, user=user.username):
                    self.assertEqual(self.api(user, "get", f"{self.base}/{what}").status_code, 200)
            for user, status in (
                (w.observer, 403),
                (w.volunteer, 403),
                (w.other_coord, 404),
                (w.nobody, 404),
            ):
                with self.subTest(what=what, user=user.username):
                    self.assertEqual(self.api(user, "get", f"{self.base}/{what}").status_code, status)
        codes = [c["code"] for c in self.api(w.block1, "get", f"{self.base}/categories").json()]
        self.assertIn("violencia", codes)

    def test_the_coordinator_writes_settings(self):
        w = self.w
        r = self.api(
            w.coord,
            "post",
            f"{self.base}/categories",
            {"code": "leche", "name": "Leche", "parent": "alimentacion"},
        )
        self.assertEqual((r.status_code, r.json()["parent"]), (201, "alimentacion"))
        r = self.api(
            w.coord,
            "put",
            f"{self.base}/categories/leche",
            {"code": "leche", "name": "Leche infantil", "active": False},
        )
        self.assertEqual((r.status_code, r.json()["active"]), (200, False))
        r = self.api(
            w.coord,
            "post",
            f"{self.base}/offices",
            {"name": "Línea Mujeres", "kind": "hotline", "categories": ["violencia"]},
        )
        self.assertEqual(r.status_code, 201, r.content)
        line = r.json()["uuid"]
        r = self.api(
            w.coord,
            "post",
            f"{self.base}/groups",
            {"name": "Despensas", "node": str(w.s1.uuid), "members": [str(w.volunteer.uuid)]},
        )
        self.assertEqual(r.status_code, 201, r.content)
        group = r.json()["uuid"]
        r = self.api(
            w.coord,
            "post",
            f"{self.base}/routing-rules",
            {"category": "alimentacion", "target": "group", "group": group},
        )
        self.assertEqual(r.status_code, 201, r.content)
        rule = r.json()["uuid"]
        r = self.api(
            w.coord,
            "put",
            f"{self.base}/deadlines",
            {"urgency": "high", "ack_minutes": 120, "resolve_minutes": 2880},
        )
        self.assertEqual((r.status_code, r.json()["ack_minutes"]), (200, 120))
        r = self.api(
            w.coord, "put", f"{self.base}/offices/{line}", {"name": "Línea Mujeres 24 h", "kind": "hotline"}
        )
        self.assertEqual(r.json()["name"], "Línea Mujeres 24 h")
        self.assertEqual(self.api(w.coord, "delete", f"{self.base}/routing-rules/{rule}").status_code, 204)
        self.assertFalse(RoutingRule.objects.exists())

    def test_others_may_not_write_settings(self):
        w = self.w
        payload = {"code": "x", "name": "X"}
        for user, status in (
            (w.block1, 403),
            (w.sector1, 403),
            (w.caseworker, 403),
            (w.observer, 403),
            (w.other_coord, 404),
        ):
            with self.subTest(user=user.username):
                self.assertDenied(user, "post", f"{self.base}/categories", payload, status=status)
        self.assertDenied(
            w.coord, "post", f"{self.base}/categories", {"code": "salud", "name": "Dup"}, status=400
        )
        self.assertDenied(
            w.coord,
            "post",
            f"{self.base}/routing-rules",
            {"category": "nope", "target": "liaison"},
            status=404,
        )
        self.assertDenied(
            w.coord,
            "put",
            f"{self.base}/deadlines",
            {"urgency": "high", "ack_minutes": 100, "resolve_minutes": 10},
            status=400,
        )
        self.assertFalse(NeedCategory.objects.filter(code="x").exists())
        self.assertEqual(Office.objects.count(), 1)
        self.assertFalse(WorkingGroup.objects.exists())


class OpenApiTests(NeedsApiTestCase):
    def test_the_operations_are_documented(self):
        schema = self.client_for(None).get("/api/v1/openapi.json").json()
        paths = {p: set(ops) for p, ops in schema["paths"].items() if p.startswith("/api/v1/needs")}
        self.assertEqual(paths, NEEDS_ENDPOINTS)
