"""A need's path through the network, in a real headless Chromium on a 360 px phone (the issue's "done when").

A block liaison opens a household and registers a food need in a few taps; nobody acknowledges it, the clock
moves past its deadline and the sweep escalates it to the sector liaison, who sees it in their queue with the
escalation in its timeline; after another window it reaches the coordinator. A hotline operator registers a
violence report: the case officer sees it, the block liaison does not.

Same launch as the other browser tests (``tests/e2e/browser.py``). Set REDES_SCREENSHOTS=/some/dir to also save
``needs-queue-phone.png`` (the sector liaison's queue) and ``needs-timeline.png`` (the need's timeline).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from redes.core import clock
from redes.needs import services
from redes.needs.escalation import escalate_overdue
from redes.needs.models import Need
from redes.registry import services as registry_services
from tests.e2e.browser import BrowserTestCase

PHONE = {"width": 360, "height": 740}
SECRET = "La pareja la amenaza; pide que no la llamen de noche"

pytestmark = pytest.mark.browser


class NeedsOnAPhoneTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.add_shapes()
        services.ensure_defaults(self.w.esc)
        self.household = registry_services.create_household(
            self.w.b11,
            actor=self.w.block1,
            street="Calle Hidalgo",
            ext_number="12",
            phones=[{"number": "81 1234 5678", "whatsapp": True}],
        )
        registry_services.add_person(
            self.household, actor=self.w.block1, full_name="Rosa María Núñez", age=78, check_duplicates=False
        )
        self.shots = os.environ.get("REDES_SCREENSHOTS")
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)

    def tearDown(self):
        clock.reset()
        super().tearDown()

    def phone(self, username):
        page = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(page, username)
        page.wait_for_url(f"{self.live_server_url}/")
        return page

    def assert_no_sideways_scroll(self, page):
        self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), PHONE["width"], page.url)

    def shot(self, page, name):
        if self.shots:
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(Path(self.shots) / name), full_page=True)

    def test_a_food_need_climbs_the_network_and_a_violence_report_reaches_only_the_case_officer(self):
        w = self.w
        url = self.live_server_url

        # A block liaison opens a household and registers a food need in a few taps.
        liaison = self.phone("block1")
        liaison.goto(f"{url}/registry/household/{self.household.uuid}/")
        liaison.get_by_role("link", name="Register a need").click()
        liaison.wait_for_url(f"**/needs/new/?household={self.household.uuid}")
        self.assert_no_sideways_scroll(liaison)
        liaison.locator("label.choice", has_text="Food").click()
        liaison.locator("label.choice", has_text="High").click()
        liaison.fill("#id_description", "Sin despensa desde hace una semana")
        liaison.select_option("#id_person", label="Rosa María Núñez")
        liaison.click("#register-need")
        liaison.wait_for_url(f"{url}/needs/*/")
        need = Need.objects.get(description="Sin despensa desde hace una semana")
        self.assertEqual(
            (need.category.code, need.urgency, need.household), ("alimentacion", "high", self.household)
        )
        self.assertIn("Need registered", liaison.content())
        self.assertIn("due in 4 h", liaison.locator(".need-badges").inner_text())
        self.assert_no_sideways_scroll(liaison)

        # Nobody acknowledges it: past its deadline, the sweep moves it to the sector liaison.
        with clock.travel(need.ack_due + dt.timedelta(minutes=5)):
            result = escalate_overdue()
            self.assertEqual(result.escalated, 1)
            need.refresh_from_db()
            self.assertEqual(need.holder_node, w.s1)

            sector = self.phone("sector1")
            sector.goto(f"{url}/needs/")
            escalated = sector.locator(".section-escalated .need-card", has_text="Food")
            self.assertTrue(escalated.is_visible())
            self.assertIn("escalated 1×", escalated.inner_text())
            self.assertTrue(sector.locator("#unread-count").is_visible())
            self.assert_no_sideways_scroll(sector)
            self.shot(sector, "needs-queue-phone.png")
            escalated.click()
            sector.wait_for_url(f"{url}/needs/{need.uuid}/")
            timeline = sector.locator("#timeline").inner_text()
            self.assertIn("Escalated to Sector 1 (liaison: Sergio Sector)", timeline)
            self.assert_no_sideways_scroll(sector)

            # Another window without an acknowledgement: it reaches the coordinator.
            clock.advance(dt.timedelta(minutes=need.ack_minutes or 240) + dt.timedelta(minutes=5))
            self.assertEqual(escalate_overdue().escalated, 1)
            need.refresh_from_db()
            self.assertEqual(need.holder_node, w.esc_node)
            coordinator = self.phone("coord")
            coordinator.goto(f"{url}/needs/")
            self.assertTrue(
                coordinator.locator(".section-escalated .need-card", has_text="Food").is_visible()
            )
            coordinator.goto(f"{url}/needs/{need.uuid}/")
            timeline = coordinator.locator("#timeline").inner_text()
            self.assertIn("Escalated to Sector 1 (liaison: Sergio Sector)", timeline)
            self.assertIn("Escalated to the municipal coordination (General Escobedo)", timeline)
            self.assertIn("overdue by", coordinator.locator(".need-badges").inner_text())
            self.assert_no_sideways_scroll(coordinator)
            self.shot(coordinator, "needs-timeline.png")

            # The coordinator acknowledges it: the deadline becomes the resolution deadline.
            coordinator.click("#do-acknowledge")
            coordinator.wait_for_url(f"{url}/needs/{need.uuid}/")
            need.refresh_from_db()
            self.assertIsNotNone(need.acknowledged_at)

        # A hotline operator takes a call: the caller is found by phone, the report is about violence.
        operator = self.phone("operator")
        operator.goto(f"{url}/needs/")
        operator.click("#new-call")
        operator.wait_for_url("**/needs/hotline/")
        operator.fill("#lookup-phone", "81 1234 5678")
        operator.get_by_role("button", name="Look up").click()
        operator.wait_for_url("**/needs/hotline/?*phone=*")
        operator.locator("label.choice", has_text="Calle Hidalgo 12").click()
        operator.locator("label.choice", has_text="Domestic or gender violence").click()
        operator.locator("label.choice", has_text="Critical").click()
        operator.fill("#id_description", SECRET)
        self.assert_no_sideways_scroll(operator)
        operator.click("#register-call")
        operator.wait_for_url("**/needs/hotline/?m=*")
        self.assertIn("Registered and referred to a case officer", operator.content())
        report = Need.objects.get(sensitive=True)
        self.assertEqual(
            (report.household, report.channel, report.description), (self.household, "hotline", "")
        )
        operator.goto(f"{url}/needs/{report.uuid}/")
        self.assertIn("Referred to a case officer", operator.content())
        self.assertNotIn(SECRET, operator.content())

        # The case officer sees it (and reads it); the block liaison does not.
        officer = self.phone("caseworker")
        officer.goto(f"{url}/needs/")
        card = officer.locator(".section-sensitive .need-card", has_text="Domestic or gender violence")
        self.assertTrue(card.is_visible())
        card.click()
        officer.wait_for_url(f"{url}/needs/{report.uuid}/")
        self.assertIn(SECRET, officer.content())
        self.assert_no_sideways_scroll(officer)

        response = liaison.goto(f"{url}/needs/{report.uuid}/")
        self.assertEqual(response.status, 404)
        liaison.goto(f"{url}/needs/")
        self.assertNotIn(str(report.uuid), liaison.content())
        self.assertNotIn(SECRET, liaison.content())

    def test_every_needs_page_fits_a_phone(self):
        w = self.w
        url = self.live_server_url
        need = services.register_need(
            actor=w.block1,
            municipality=w.esc,
            category="alimentacion",
            description="Despensa",
            household=self.household,
        )
        services.save_office(w.esc, actor=w.coord, name="Instituto Municipal de las Mujeres", kind="hotline")
        # Long names must not push the header off a phone's screen.
        w.block1.full_name = "Marcela Guadalupe Rendón Albarrán de la Fuente"
        w.block1.save(update_fields=["full_name"])
        w.b11.name = "Manzana 001 (Prolongación Barbados y Ampliación Baja California)"
        w.b11.save(update_fields=["name"])
        pages = {
            "block1": ["/needs/new/", f"/needs/new/?household={self.household.uuid}", "/needs/map/"],
            "operator": ["/needs/hotline/?phone=8112345678"],
            "coord": ["/needs/", f"/needs/{need.uuid}/", "/needs/settings/", "/needs/notifications/"],
            "observer": ["/needs/"],
        }
        for username, paths in pages.items():
            page = self.phone(username)
            for path in paths:
                response = page.goto(f"{url}{path}")
                self.assertEqual(response.status, 200, path)
                for details in page.locator("details.tool").all():
                    details.evaluate("el => el.open = true")
                self.assert_no_sideways_scroll(page)
                name = path.strip("/").split("?")[0].replace("/", "-") or "home"
                self.shot(page, f"needs-check-{username}-{name}.png")
        public = self.new_page(PHONE, is_mobile=True, has_touch=True)
        public.goto(f"{url}/needs/report/?m={w.esc.code}")
        public.locator("#report-map.leaflet-container").wait_for()
        self.assert_no_sideways_scroll(public)
        self.shot(public, "needs-check-public-report.png")
