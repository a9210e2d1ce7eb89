"""A block liaison censuses their block on a phone-sized screen, in a real headless Chromium.

Same launch and live-server approach as ``test_browser.py`` (Debian's /usr/bin/chromium driven by Playwright;
skipped without it unless REDES_REQUIRE_BROWSER=1; every request that does not go to the live server is
aborted). Set REDES_SCREENSHOTS=/some/dir to also save ``census-phone.png`` of the household page.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from redes.registry import services
from redes.registry.models import Household, Person, Visit
from redes.territories.services import update_node
from tests.base import PASSWORD
from tests.e2e.browser import BrowserTestCase

PHONE = {"width": 360, "height": 740}
HERE = {"latitude": 25.7955, "longitude": -100.3351}

pytestmark = pytest.mark.browser


class CensusOnAPhoneTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        square = {
            "type": "Polygon",
            "coordinates": [
                [
                    [-100.339, 25.791],
                    [-100.331, 25.791],
                    [-100.331, 25.809],
                    [-100.339, 25.809],
                    [-100.339, 25.791],
                ]
            ],
        }
        update_node(self.w.b11, geometry=square)
        services.publish_notice(self.w.esc, version="2026-1", text="Aviso de privacidad.")

    def new_page(self):
        return super().new_page(
            PHONE, geolocation=HERE, permissions=["geolocation"], is_mobile=True, has_touch=True
        )

    def assert_no_sideways_scroll(self, page):
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        self.assertLessEqual(scroll_width, PHONE["width"], page.url)

    def test_a_block_liaison_censuses_their_block(self):
        w = self.w
        page = self.new_page()
        page.goto(f"{self.live_server_url}/login/")
        page.fill("#id_username", "block1")
        page.fill("#id_password", PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(f"{self.live_server_url}/")

        # The census entry takes a liaison with one block straight to it.
        page.goto(f"{self.live_server_url}/registry/")
        page.wait_for_url(f"**/registry/block/{w.b11.uuid}/")
        self.assertEqual(page.locator("h1").inner_text(), "Manzana 1")
        self.assertIn("No household registered on this block yet.", page.content())
        self.assert_no_sideways_scroll(page)

        # Add a household, placing it with "use my location".
        page.get_by_role("link", name="+ Add household").click()
        page.wait_for_url("**/add/")
        page.fill("#id_street", "Calle Hidalgo")
        page.fill("#id_ext_number", "12")
        page.fill("#id_postal_code", "66050")
        page.get_by_role("button", name="Use my location").click()
        page.wait_for_function("document.getElementById('id_lat').value !== ''")
        page.locator("#census-map.leaflet-container").wait_for()
        page.fill("#id_phone0", "81 1234 5678")
        page.check("#id_phone0_whatsapp")
        self.assert_no_sideways_scroll(page)
        folder = os.environ.get("REDES_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / "census-phone-form.png"), full_page=True)
        page.click("#save-household")
        page.wait_for_url("**/registry/household/*/")
        household = Household.objects.get(street="Calle Hidalgo")
        self.assertAlmostEqual(household.lat, HERE["latitude"], places=4)
        self.assertEqual(household.phones.get().number, "+528112345678")
        self.assertTrue(household.phones.get().whatsapp)
        self.assert_no_sideways_scroll(page)

        # Add a person who lives there.
        page.get_by_role("link", name="+ Add person").first.click()
        page.wait_for_url("**/person/add/")
        page.fill("#id_full_name", "Rosa María de la Cruz Núñez")
        page.fill("#id_age", "72")
        page.select_option("#id_relation", "head")
        page.check("input[name=factors][value=food_insecurity]")
        self.assert_no_sideways_scroll(page)
        page.click("#save-person")
        page.wait_for_url(f"**/registry/household/{household.uuid}/?added=*")
        person = Person.objects.get(household=household)
        self.assertEqual(person.surname1, "de la Cruz")
        self.assertTrue(page.locator(f"#person-{person.uuid}").is_visible())
        page.get_by_text("Why priority").click()
        self.assertTrue(page.get_by_text("Older adult (60 or over)").is_visible())

        # Consent: the necessary purposes come ticked; express consent for sensitive data is its own box.
        page.get_by_role("link", name="Record consent").click()
        page.wait_for_url(f"**/registry/person/{person.uuid}/consent/")
        self.assertTrue(page.locator("input[name=purposes][value=aid]").is_checked())
        self.assertFalse(page.locator("#id_sensitive").is_checked())
        self.assert_no_sideways_scroll(page)
        if folder:
            page.screenshot(path=str(Path(folder) / "census-phone-consent.png"), full_page=True)
        page.check("#id_sensitive")
        page.click("#save-consent")
        page.wait_for_url(f"**/registry/household/{household.uuid}/#person-{person.uuid}")
        self.assertTrue(page.get_by_text("Consent given").is_visible())
        self.assertTrue(person.consents.get().sensitive)

        # One tap marks the visit.
        page.get_by_role("button", name="Spoke with them").click()
        page.wait_for_url(f"**/registry/household/{household.uuid}/#visits")
        self.assertTrue(page.get_by_text("Visit recorded: Spoke with them.").is_visible())
        self.assertEqual(Visit.objects.get(household=household).outcome, "contacted")
        self.assert_no_sideways_scroll(page)
        if folder:
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(Path(folder) / "census-phone.png"), full_page=True)

        # Back on the block: the household is there, visited, and counted.
        page.get_by_role("link", name="← Manzana 1 · S01-M001").click()
        page.wait_for_url(f"**/registry/block/{w.b11.uuid}/")
        card = page.locator(".household-card", has_text="Calle Hidalgo 12")
        self.assertTrue(card.is_visible())
        self.assertIn("Visited", card.inner_text())
        if folder:
            page.screenshot(path=str(Path(folder) / "census-phone-block.png"), full_page=True)
        page.get_by_role("link", name="Not visited").click()
        page.get_by_text("Every household of this block has been visited.").wait_for()
        self.assert_no_sideways_scroll(page)

        # Finding a person: results appear as one types (accents and word order do not matter).
        page.get_by_role("link", name="Find a person").click()
        page.wait_for_url("**/registry/search/")
        page.locator("#person-q").press_sequentially("nunez ros", delay=30)
        result = page.locator("#person-results .census-card", has_text="Rosa María de la Cruz Núñez")
        result.wait_for()
        self.assertIn("/registry/search/", page.url)  # live results, no page load
        self.assert_no_sideways_scroll(page)
        result.click()
        page.wait_for_url(f"**/registry/household/{household.uuid}/#person-{person.uuid}")
