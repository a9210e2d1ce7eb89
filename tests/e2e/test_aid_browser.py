"""The aid issue's "done when", in a real headless Chromium: a coordinator records a donation, creates and
allocates a campaign (in the background, with its progress) and opens the printable entitlements; a block liaison on a 360 px phone confirms a delivery
by code; the coordinator sees the progress; the public report shows the distribution by block.

Same launch and live-server approach as the other browser tests (``tests/e2e/browser.py``). Set
REDES_SCREENSHOTS=/some/dir to also save ``aid-campaign.png`` and ``aid-deliver-phone.png`` (the README's
screenshots live in docs/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import override_settings

from redes.aid import jobs
from redes.aid.models import AllocationJob, Campaign, Donation, Entitlement, StockBalance
from tests.e2e.browser import BrowserTestCase
from tests.test_pages_aid import PRIVATE, build_aid

PHONE = {"width": 360, "height": 740}
DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": []}}

pytestmark = pytest.mark.browser


class AidDoneWhenTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.add_shapes()
        self.a = build_aid(self.w, campaign=False)
        self.folder = os.environ.get("REDES_SCREENSHOTS")

    def shot(self, page, name):
        if self.folder:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(self.folder) / name), full_page=True)

    def assert_no_sideways_scroll(self, page, width):
        self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), width, page.url)

    def test_a_donation_becomes_a_campaign_delivered_from_a_phone(self):
        a, live = self.a, self.live_server_url

        # 1. The coordinator records a donation at the stand.
        coord = self.new_page()
        self.sign_in(coord, "coord")
        coord.wait_for_url(f"{live}/")
        coord.goto(f"{live}/aid/")
        coord.get_by_role("link", name="+ Record a donation").click()
        coord.wait_for_url("**/aid/donations/new/")
        coord.select_option("#id_donor", label="Abarrotes Lupita SA de CV")
        self.assertTrue(coord.locator("#new-donor-fields").is_hidden())
        coord.select_option("#id_site", label="Centro Comunitario S1")
        coord.select_option("#id_item0", label="Arroz")
        coord.fill("#id_quantity0", "10")
        coord.select_option("#id_item1", label="Frijol")
        coord.fill("#id_quantity1", "10")
        coord.select_option("#id_item2", label="Aceite")
        coord.fill("#id_quantity2", "5")
        rice_before = StockBalance.objects.get(site=a.stand, item=a.rice).quantity
        coord.click("#save-donation")
        coord.wait_for_url("**/aid/donations/**")
        coord.get_by_text("Donation recorded.").wait_for()
        self.assertEqual(StockBalance.objects.get(site=a.stand, item=a.rice).quantity, rice_before + 10)
        self.assertEqual(Donation.objects.filter(donor=a.donor).count(), 2)

        # 2. A campaign over the municipality, allocated with a progress indicator.
        coord.goto(f"{live}/aid/campaigns/")
        coord.fill("#id_name", "Despensas de enero")
        coord.select_option("#id_template", label="Despensa básica")
        coord.select_option("#id_node", label="19021 · General Escobedo")
        coord.fill("#id_seed", "2026")
        coord.click("#save-campaign")
        coord.get_by_role("button", name="Allocate the packages").wait_for()
        campaign = Campaign.objects.get(name="Despensas de enero")
        self.assertEqual(campaign.status, "draft")
        # The allocation runs in the background: queued (no worker here), the page polls its progress; the
        # worker's run (here, in the test) ends it and the page reloads with the result.
        with override_settings(TASKS=DUMMY_TASKS):
            coord.click("#allocate")
            coord.locator("#allocation-progress").wait_for()
            self.assertIn("Allocating", coord.locator("#campaign-status").inner_text())
            campaign.refresh_from_db()
            self.assertEqual(campaign.status, "allocating")
            jobs.run_allocation(AllocationJob.objects.get(campaign=campaign).pk)
        coord.locator("#block-coverage").wait_for()
        self.assertIn("Allocated", coord.locator("#campaign-status").inner_text())
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, "allocated")
        chosen = Entitlement.objects.filter(campaign=campaign, status="selected")
        self.assertGreater(chosen.count(), 0)
        coord.locator("#map.map-ready").wait_for()  # the coverage map of the three blocks
        self.assertEqual(coord.locator("#map").get_attribute("data-features"), "3")
        self.assertTrue(coord.get_by_text("Households and why").is_visible())

        # 3. The printable entitlements: one card per chosen household, with its QR.
        coord.click("#print-link")
        coord.wait_for_url("**/print/")
        self.assertEqual(coord.locator(".aid-card").count(), chosen.count())
        self.assertEqual(coord.locator(".aid-card svg").count(), chosen.count())
        for text in PRIVATE:
            self.assertNotIn(text, coord.content())
        coord.go_back()
        coord.click("#start")
        coord.get_by_text("Campaign started").wait_for()

        # 4. A block liaison on a 360 px phone confirms a delivery by code at the stand.
        entitlement = chosen.filter(node=self.w.b11).order_by("rank", "pk").first()
        self.assertIsNotNone(entitlement)
        phone = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(phone, "block1")
        phone.wait_for_url(f"{live}/")
        phone.goto(f"{live}/aid/")
        phone.get_by_role("link", name="Confirm a delivery").click()
        phone.wait_for_url("**/aid/deliver/")
        self.assert_no_sideways_scroll(phone, PHONE["width"])
        pending = phone.locator(f'.aid-pending-list [data-code="{entitlement.code}"]')
        self.assertTrue(pending.is_visible())
        phone.fill("#id_code", entitlement.code[:4].lower() + " " + entitlement.code[4:])
        phone.locator("#code-check .aid-check.ok").wait_for()  # checked as typed: block, campaign, site
        self.assertIn("S01-M001", phone.locator("#code-check").inner_text())
        self.assertEqual(phone.input_value("#id_site"), str(a.stand.pk))
        self.shot(phone, "aid-deliver-phone.png")
        phone.click("#confirm-delivery")
        phone.get_by_text("Delivered:").wait_for()
        entitlement.refresh_from_db()
        self.assertEqual(entitlement.status, "delivered")
        self.assertEqual(entitlement.delivered_by, self.w.block1)
        self.assertEqual(phone.locator(f'[data-code="{entitlement.code}"]').count(), 0)
        self.assert_no_sideways_scroll(phone, PHONE["width"])

        # A second confirmation of the same code is refused with a clear message.
        phone.fill("#id_code", entitlement.code)
        phone.locator(
            "#code-check .aid-check.problem"
        ).wait_for()  # already delivered, said before confirming
        phone.select_option("#id_site", label="Centro Comunitario S1")
        phone.click("#confirm-delivery")
        phone.get_by_text("This package was already delivered").wait_for()

        # 5. The coordinator sees the progress.
        coord.reload()
        self.assertEqual(coord.locator("#total-delivered").inner_text(), "1")
        self.assertIn("%", coord.locator("#progress-figure").inner_text())
        coord.set_viewport_size({"width": 1366, "height": 900})
        self.shot(coord, "aid-campaign.png")

        # 6. The public report shows the distribution by block, without personal data.
        public = self.new_page()
        public.goto(f"{live}/aid/public/campaign/{campaign.uuid}/")
        table = public.locator("#public-blocks")
        for block in ("S01-M001", "S01-M002", "S02-M001"):
            self.assertIn(block, table.inner_text())
        self.assertTrue(public.locator("#block-chart").is_visible())
        content = public.content()
        for text in PRIVATE:
            self.assertNotIn(text, content)
        self.assertNotIn(entitlement.code, content)

    def test_the_public_map_draws_the_public_sites(self):
        page = self.new_page(PHONE, is_mobile=True)
        page.goto(f"{self.live_server_url}/aid/public/map/?m=19021")
        page.locator("#aid-map.map-ready").wait_for()
        self.assertEqual(page.locator("#aid-map").get_attribute("data-features"), "2")
        self.assertEqual(page.locator("#aid-map .leaflet-interactive").count(), 2)
        self.assert_no_sideways_scroll(page, PHONE["width"])

    def test_the_coordinators_pages_fit_a_phone(self):
        from redes.aid import services

        w, a = self.w, self.a
        campaign = services.create_campaign(
            actor=w.coord, name="Despensas", template=a.template, node=w.esc_node, seed=1
        )
        services.allocate_campaign(campaign, actor=w.coord)
        page = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        for path in (
            "/aid/",
            "/aid/donors/",
            f"/aid/donors/{a.donor.uuid}/",
            f"/aid/donors/{a.donor.uuid}/impact/",
            "/aid/donations/",
            "/aid/donations/new/",
            "/aid/sites/",
            f"/aid/sites/{a.stand.uuid}/",
            "/aid/stock/",
            "/aid/packages/",
            "/aid/campaigns/",
            f"/aid/campaigns/{campaign.uuid}/",
            f"/aid/campaigns/{campaign.uuid}/print/",
            f"/aid/public/campaign/{campaign.uuid}/",
        ):
            with self.subTest(path=path):
                response = page.goto(f"{self.live_server_url}{path}")
                self.assertEqual(response.status, 200)
                self.assert_no_sideways_scroll(page, PHONE["width"])
                if self.folder:
                    name = "aid-phone" + path.strip("/").replace("/", "-")[3:40] + ".png"
                    self.shot(page, name)

    def test_a_coordinator_places_a_new_site_on_the_map(self):
        from redes.aid.models import Site

        page = self.new_page()
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        page.goto(f"{self.live_server_url}/aid/sites/")
        page.select_option("#id_kind", "collection")
        page.fill("#id_name", "Acopio Plaza")
        page.select_option("#id_node", label="S02 · Sector 2")
        point_map = page.locator("#new-site .aid-point-map.map-ready")
        point_map.wait_for()
        point_map.click(position={"x": 120, "y": 100})
        page.wait_for_function("document.getElementById('id_lat').value !== ''")
        lat, lon = float(page.input_value("#id_lat")), float(page.input_value("#id_lon"))
        page.click("#save-site")
        page.wait_for_url("**/aid/sites/*/")
        site = Site.objects.get(name="Acopio Plaza")
        self.assertAlmostEqual(site.lat, lat, places=5)
        self.assertAlmostEqual(site.lon, lon, places=5)
        page.locator(".aid-point-map.map-ready .leaflet-marker-icon").first.wait_for()
