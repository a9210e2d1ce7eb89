"""Intake of needs by phone (the hotline operator's form) and by the public form (no login), the map of open
needs and the in-app notifications."""

from __future__ import annotations

import datetime as dt
import json

from django.test import override_settings

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.needs import services
from redes.needs.escalation import escalate_overdue
from redes.needs.models import Need, Notification
from redes.registry import services as registry_services
from redes.registry.models import Household, Phone

from .test_pages_needs import SECRET, NeedsWorld, detail

HOTLINE = "/needs/hotline/"
REPORT = "/needs/report/?m=19021"


@override_settings(LANGUAGE_CODE="en")
class HotlineTests(NeedsWorld):
    def test_access(self):
        for user, status in (
            (self.w.operator, 200),
            (self.w.coord, 200),
            (self.w.caseworker, 200),
            (self.w.other_coord, 200),
            (self.w.block1, 403),
            (self.w.sector1, 403),
            (self.w.volunteer, 403),
            (self.w.observer, 403),
            (self.w.nobody, 403),
        ):
            self.assertEqual(self.client_for(user).get(HOTLINE).status_code, status, user.username)
        self.assertEqual(self.client_for(None).get(HOTLINE).status_code, 302)
        audits = AuditEvent.objects.count()
        response = self.client_for(self.w.block1).post(
            HOTLINE, {"category": "alimentacion", "urgency": "normal", "description": "x"}
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(AuditEvent.objects.count(), audits + 1)

    def test_the_caller_is_looked_up_by_phone(self):
        client = self.client_for(self.w.operator)
        response = client.get(HOTLINE, {"phone": "044 81 1234 5678"})
        self.assertContains(response, "Calle Hidalgo 12")
        self.assertContains(response, f'value="{self.h11.uuid}"')
        response = client.get(HOTLINE, {"phone": "81 9999 0000"})
        self.assertContains(response, "No household in the census has this phone.")
        response = client.get(HOTLINE, {"phone": "123"})
        self.assertContains(response, "has 10 digits")
        # Another tenant's operator does not find Escobedo's household.
        response = self.client_for(self.w.other_coord).get(HOTLINE, {"phone": "8112345678"})
        self.assertNotContains(response, "Calle Hidalgo")

    def test_the_operator_registers_a_need_for_a_known_household(self):
        response = self.client_for(self.w.operator).post(
            HOTLINE + "?phone=8112345678",
            {
                "caller_phone": "8112345678",
                "household": str(self.h11.uuid),
                "category": "salud",
                "urgency": "high",
                "description": "Necesita insulina",
            },
        )
        need = Need.objects.latest("id")
        self.assertRedirects(response, detail(need))
        self.assertEqual((need.household, need.node, need.channel), (self.h11, self.w.b11, "hotline"))
        self.assertEqual((need.contact_phone, need.reported_by), ("+528112345678", self.w.operator))

    def test_a_new_household_on_the_fly(self):
        households = Household.objects.count()
        response = self.client_for(self.w.operator).post(
            HOTLINE,
            {
                "caller_phone": "81 5555 1234",
                "new_household": "on",
                "block": str(self.w.b12.uuid),
                "street": "Calle Allende",
                "ext_number": "5",
                "category": "alimentacion",
                "urgency": "normal",
                "description": "Despensa",
            },
        )
        need = Need.objects.latest("id")
        self.assertRedirects(response, detail(need))
        self.assertEqual(Household.objects.count(), households + 1)
        self.assertEqual((need.household.street, need.node), ("Calle Allende", self.w.b12))
        self.assertTrue(Phone.objects.filter(household=need.household, number="+528155551234").exists())

    def test_bad_input_writes_nothing(self):
        other = registry_services.create_household(self.w.ab, actor=self.w.other_coord, street="Costera")
        counts = (Need.objects.count(), Household.objects.count())
        base = {"category": "alimentacion", "urgency": "normal", "description": "x"}
        for extra in (
            {"new_household": "on", "street": "Sin bloque"},
            {"new_household": "on", "block": str(self.w.b12.uuid)},
            {"new_household": "on", "block": str(self.w.ab.uuid), "street": "Costera"},
            {"household": str(other.uuid)},
            {"household": "forged"},
            {"caller_phone": "12"},
            {"category": "nope"},
            # The need fails after the household would be created: neither is kept.
            {"new_household": "on", "block": str(self.w.b12.uuid), "street": "Calle", "description": ""},
        ):
            response = self.client_for(self.w.operator).post(HOTLINE, {**base, **extra})
            self.assertEqual(response.status_code, 200, extra)
            self.assertContains(response, 'class="errorlist', msg_prefix=str(extra))
        self.assertEqual((Need.objects.count(), Household.objects.count()), counts)
        self.assertGreaterEqual(
            AuditEvent.objects.filter(action="needs.need.create", outcome="rejected").count(), 8
        )

    def test_a_violence_report_goes_to_the_case_officer_and_the_operator_keeps_referred(self):
        notified = Notification.objects.filter(user=self.w.caseworker).count()
        response = self.client_for(self.w.operator).post(
            HOTLINE,
            {
                "caller_phone": "8112345678",
                "household": str(self.h11.uuid),
                "category": "violencia",
                "urgency": "critical",
                "description": SECRET,
            },
            follow=True,
        )
        self.assertContains(response, "Registered and referred to a case officer")
        self.assertNotContains(response, SECRET)
        need = Need.objects.latest("id")
        self.assertTrue(need.sensitive)
        self.assertEqual(need.description, "")
        self.assertGreater(Notification.objects.filter(user=self.w.caseworker).count(), notified)
        self.assertContains(self.client_for(self.w.operator).get(detail(need)), "Referred to a case officer")
        self.assertNotContains(self.client_for(self.w.operator).get(detail(need)), SECRET)
        self.assertEqual(self.client_for(self.w.block1).get(detail(need)).status_code, 404)
        self.assertContains(self.client_for(self.w.caseworker).get(detail(need)), SECRET)


@override_settings(LANGUAGE_CODE="en", REDES_NEEDS_REPORT_LIMIT=3)
class PublicReportTests(NeedsWorld):
    data = {
        "category": "seguridad",
        "urgency": "normal",
        "description": "Luminarias apagadas en la esquina",
        "address": "Hidalgo y Morelos",
        "phone": "81 7777 1234",
        "accept": "on",
    }

    def test_no_login_and_a_municipality_picker(self):
        response = self.client_for(None).get("/needs/report/")
        self.assertContains(response, "General Escobedo")
        self.assertContains(response, "Acapulco")
        self.assertContains(self.client_for(None).get("/needs/report/?m=nope"), "Your municipality")
        response = self.client_for(None).get(REPORT)
        self.assertContains(response, "Public safety")
        self.assertContains(response, "Privacy notice")

    def test_the_privacy_notice_of_the_municipality_is_shown(self):
        registry_services.publish_notice(
            self.w.esc, version="2026-1", text="Aviso integral de privacidad de Escobedo."
        )
        self.assertContains(self.client_for(None).get(REPORT), "Aviso integral de privacidad de Escobedo.")

    def test_a_report_gives_back_only_a_reference(self):
        client = self.client_for(None)
        response = client.post(REPORT, self.data)
        need = Need.objects.latest("id")
        ref = need.uuid.hex[:8].upper()
        self.assertRedirects(response, "/needs/report/thanks/", fetch_redirect_response=False)
        self.assertEqual(
            (need.channel, need.reported_by, need.contact_phone), ("public", None, "+528177771234")
        )
        self.assertEqual(need.node, self.w.esc_node)
        thanks = client.get(response["Location"])
        self.assertContains(thanks, ref)
        for private in ("Luminarias", "Hidalgo y Morelos", "7777", "1234"):
            self.assertNotContains(thanks, private)
        # Shown once: a reload (or someone else) gets no reference.
        self.assertNotContains(client.get("/needs/report/thanks/"), ref)

    def test_a_block_code_places_the_report(self):
        self.client_for(None).post(REPORT, {**self.data, "block": "s01-m002", "address": ""})
        self.assertEqual(Need.objects.latest("id").node, self.w.b12)

    def test_bad_input_is_a_form_error(self):
        before = Need.objects.count()
        for extra in (
            {"category": "nope"},
            {"description": ""},
            {"accept": ""},
            {"block": "A1-Z1", "address": ""},
            {"block": "", "address": ""},
            {"phone": "12"},
            {"lat": "25.7", "lon": "", "address": ""},
            {"lat": "200", "lon": "10"},
        ):
            response = self.client_for(None).post(REPORT, {**self.data, **extra})
            self.assertEqual(response.status_code, 200, extra)
            self.assertContains(response, 'class="errorlist', msg_prefix=str(extra))
        self.assertEqual(Need.objects.count(), before)

    def test_bots_filling_the_hidden_field_store_nothing(self):
        before = Need.objects.count()
        response = self.client_for(None).post(REPORT, {**self.data, "website": "http://spam.example"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Need.objects.count(), before)

    def test_reports_are_rate_limited_per_address(self):
        client = self.client_for(None)
        before = Need.objects.count()
        for _ in range(3):
            self.assertEqual(client.post(REPORT, self.data).status_code, 302)
        response = client.post(REPORT, self.data)
        self.assertEqual(response.status_code, 429)
        self.assertContains(response, "Too many reports", status_code=429)
        self.assertEqual(Need.objects.count(), before + 3)
        # Another address is not affected.
        response = self.client_for(None).post(REPORT, self.data, REMOTE_ADDR="10.0.0.9")
        self.assertEqual(response.status_code, 302)

    def test_a_public_violence_report_reaches_the_case_officer_only(self):
        self.client_for(None).post(REPORT, {**self.data, "category": "violencia", "description": SECRET})
        need = Need.objects.latest("id")
        self.assertTrue(need.sensitive)
        self.assertEqual(self.client_for(self.w.coord).get(detail(need)).status_code, 404)
        self.assertContains(self.client_for(self.w.caseworker).get(detail(need)), SECRET)


@override_settings(LANGUAGE_CODE="en")
class MapTests(NeedsWorld):
    def test_access(self):
        for user, status in (
            (self.w.coord, 200),
            (self.w.sector1, 200),
            (self.w.block1, 200),
            (self.w.observer, 200),
            (self.w.state_observer, 200),
            (self.w.other_coord, 200),
            (self.w.volunteer, 403),
            (self.w.nobody, 403),
        ):
            self.assertEqual(self.client_for(user).get("/needs/map/").status_code, status, user.username)
            self.assertEqual(
                self.client_for(user).get("/needs/map/data.geojson").status_code, status, user.username
            )

    def data(self, user, **params):
        response = self.client_for(user).get("/needs/map/data.geojson", params)
        self.assertEqual(response.status_code, 200)
        return json.loads(response.content)

    def test_counts_per_block_without_personal_data(self):
        from redes.territories.services import update_node
        from tests.e2e.browser import box

        update_node(self.w.b11, geometry=box(-100.339, 25.791, 0.008, 0.018))
        update_node(self.w.b21, geometry=box(-100.309, 25.791, 0.018, 0.018))
        data = self.data(self.w.coord)
        by_code = {f["properties"]["code"]: f["properties"] for f in data["features"]}
        self.assertEqual(by_code["S01-M001"]["open"], 1)  # the violence report is not counted on the map
        text = json.dumps(data)
        for private in ("Despensa", "Hidalgo", "Ana", "Blanca"):
            self.assertNotIn(private, text)
        # Observers: counts per sector, and a sector with fewer than 5 open needs is left out.
        self.assertEqual(self.data(self.w.observer, m="19021")["features"], [])
        page = self.client_for(self.w.observer).get("/needs/map/", {"m": "19021"})
        self.assertContains(page, "fewer than 5")
        for i in range(4):
            services.register_need(
                actor=self.w.coord,
                municipality=self.w.esc,
                category="salud",
                description=f"N{i}",
                node=self.w.b12,
            )
        data = self.data(self.w.observer, m="19021")
        self.assertEqual(
            [(f["properties"]["code"], f["properties"]["open"]) for f in data["features"]], [("S01", 5)]
        )
        self.assertEqual(self.data(self.w.state_observer, m="19021")["features"], data["features"])
        # A sector liaison gets their own sector.
        data = self.data(self.w.sector1)
        self.assertEqual([f["properties"]["code"] for f in data["features"]], ["S01-M001"])


@override_settings(LANGUAGE_CODE="en")
class NotificationTests(NeedsWorld):
    def test_escalations_notify_and_are_marked_read(self):
        with clock.travel(self.n11.ack_due):
            clock.advance(dt.timedelta(minutes=1))
            escalate_overdue()
        client = self.client_for(self.w.sector1)
        page = client.get("/needs/")
        self.assertContains(page, 'id="unread-count"')
        self.assertContains(page, "Escalated to you")
        page = client.get("/needs/notifications/")
        self.assertContains(page, "A need was escalated to you")
        note = Notification.objects.filter(user=self.w.sector1).first()
        other = Notification.objects.create(user=self.w.coord, kind="assigned")
        client.post("/needs/notifications/read/", {"id": [str(note.pk), str(other.pk), "x"]})
        note.refresh_from_db()
        other.refresh_from_db()
        self.assertIsNotNone(note.read_at)
        self.assertIsNone(other.read_at)
        client.post("/needs/notifications/read/")
        self.assertFalse(Notification.objects.filter(user=self.w.sector1, read_at__isnull=True).exists())
        self.assertNotContains(client.get("/needs/"), 'id="unread-count"')
        page = client.get(detail(self.n11))
        self.assertContains(page, "Escalated to Sector 1 (liaison: Sergio Sector)")

    def test_a_summary_notification_links_to_the_queue(self):
        Notification.objects.create(user=self.w.coord, kind="escalated", data={"count": 37})
        page = self.client_for(self.w.coord).get("/needs/notifications/")
        self.assertContains(page, "37 needs")

    def test_anonymous_users_have_no_notifications_page(self):
        self.assertEqual(self.client_for(None).get("/needs/notifications/").status_code, 302)
        self.assertEqual(self.client_for(self.w.observer).get("/needs/notifications/").status_code, 200)
