"""End-to-end tests in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright's sync API).

Never downloads a browser. Skipped when /usr/bin/chromium is missing, unless REDES_REQUIRE_BROWSER=1 (CI),
in which case they fail. Every request that does not go to the live server is aborted, so base-map tiles
never leave the machine: the map must draw its polygons without them.

Set REDES_SCREENSHOTS=/some/dir to also save screenshots of the home page and the territory browser at phone
and desktop sizes (``test_screenshots``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import assign_liaison
from redes.territories.services import create_node, update_node
from tests.e2e.browser import DESKTOP, PHONE, BrowserTestCase, box

pytestmark = pytest.mark.browser


class SignInTests(BrowserTestCase):
    def test_a_wrong_password_is_refused_then_the_right_one_signs_in_on_a_phone(self):
        page = self.new_page(PHONE)
        self.sign_in(page, "coord", "not-the-password")
        error = page.locator("#login-error")
        error.wait_for()
        self.assertTrue(error.is_visible())
        self.assertIn("/login/", page.url)
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        self.assertEqual(page.locator("h1").inner_text(), "Your territory")
        self.assertTrue(page.get_by_role("link", name="General Escobedo").first.is_visible())
        # nothing wider than the phone: no sideways scrolling
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        self.assertLessEqual(scroll_width, PHONE["width"])


class TerritoryBrowserTests(BrowserTestCase):
    def test_navigating_down_the_tree_with_the_map(self):
        self.add_shapes()
        page = self.new_page(DESKTOP)
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        page.locator("main h2 a", has_text="General Escobedo").click()
        page.wait_for_url(f"**/territory/{self.w.esc_node.uuid}/")
        self.assertEqual(page.locator("h1").inner_text(), "General Escobedo")
        polygons = page.locator("#map path.leaflet-interactive")
        polygons.nth(1).wait_for()
        self.assertEqual(polygons.count(), 2)  # the two sectors
        self.assertEqual(page.locator("#map").get_attribute("data-features"), "2")

        page.locator("ul.children a", has_text="Sector 1").click()
        page.wait_for_url(f"**/territory/{self.w.s1.uuid}/")
        self.assertIn("General Escobedo", page.locator("nav .breadcrumbs").inner_text())
        page.locator("#map path.leaflet-interactive").nth(1).wait_for()
        self.assertEqual(page.locator("#map path.leaflet-interactive").count(), 2)  # its two blocks
        self.assertIn("Sergio Sector", page.locator("#liaison").inner_text())

        page.locator("ul.children a", has_text="Manzana 2").click()
        page.wait_for_url(f"**/territory/{self.w.b12.uuid}/")
        self.assertIn("Vacant", page.locator("#liaison").inner_text())

    def test_the_map_draws_even_though_tiles_fail(self):
        self.add_shapes()
        page = self.new_page(PHONE)
        failed = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        with page.expect_response(lambda r: "/no-tiles/" in r.url) as tile:
            page.goto(f"{self.live_server_url}/territory/{self.w.esc_node.uuid}/")
        self.assertEqual(tile.value.status, 404)
        page.locator("#map path.leaflet-interactive").nth(1).wait_for()
        self.assertEqual(page.locator("#map path.leaflet-interactive").count(), 2)
        # nothing but the (missing) tiles failed: no request tried to leave the machine
        self.assertEqual([url for url in failed if "/no-tiles/" not in url], [])

    def test_searching_shows_results_as_one_types(self):
        page = self.new_page(PHONE)
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        page.goto(f"{self.live_server_url}/territory/{self.w.esc_node.uuid}/")
        page.fill("#q", "S02")
        results = page.locator("#search-results a")
        results.first.wait_for()
        self.assertEqual(sorted(results.all_inner_texts()), ["Manzana 1", "Sector 2"])
        self.assertIn(f"/territory/{self.w.esc_node.uuid}/", page.url)  # no page load: htmx


class LiaisonAssignmentTests(BrowserTestCase):
    def test_a_sector_liaison_assigns_a_block_liaison_on_a_phone(self):
        page = self.new_page(PHONE)
        self.sign_in(page, "sector1")
        page.wait_for_url(f"{self.live_server_url}/")
        page.goto(f"{self.live_server_url}/territory/{self.w.b12.uuid}/")
        panel = page.locator("#liaison")
        self.assertIn("Vacant", panel.inner_text())
        page.fill("#id_assign-full_name", "Rosa Nueva")
        page.fill("#id_assign-phone", "81 1111 2222")
        page.fill("#id_assign-start_date", "2026-02-01")
        page.locator("#liaison button", has_text="Assign").click()
        page.locator("#liaison table.history").wait_for()
        history = page.locator("#liaison table.history").inner_text()
        self.assertIn("Rosa Nueva", history)
        self.assertIn("+52 81 1111 2222", history)
        self.assertIn("The liaison was assigned.", page.locator("#liaison").inner_text())
        post = LiaisonAssignment.objects.get(node=self.w.b12)
        self.assertEqual((post.full_name, post.start_date), ("Rosa Nueva", dt.date(2026, 2, 1)))

    def test_a_mistake_comes_back_as_a_form_error_and_then_the_post_ends(self):
        page = self.new_page(PHONE)
        self.sign_in(page, "coord")
        page.wait_for_url(f"{self.live_server_url}/")
        page.goto(f"{self.live_server_url}/territory/{self.w.b11.uuid}/")
        page.locator("#liaison summary", has_text="Appoint a new liaison").click()
        page.fill("#id_assign-full_name", "Número Malo")
        page.fill("#id_assign-phone", "123")
        page.locator("#liaison button", has_text="Assign").click()
        page.locator("#liaison .errorlist").wait_for()
        self.assertEqual(LiaisonAssignment.objects.filter(node=self.w.b11).count(), 1)

        page.locator("#liaison summary", has_text="End the current post").click()
        page.fill("#id_end-reason", "Se mudó")
        page.locator("#liaison button", has_text="End post").click()
        page.locator("#liaison .message").wait_for()
        self.assertIn("Se mudó", page.locator("#liaison table.history").inner_text())
        self.assertIsNotNone(LiaisonAssignment.objects.get(node=self.w.b11).end_date)


class ScreenshotTests(BrowserTestCase):
    """Screenshots for people to look at (not assertions): set REDES_SCREENSHOTS to a folder to take them."""

    def build_town(self):
        """Twelve sectors in a street grid, each with nine blocks, with a mix of filled and vacant posts."""
        w = self.w
        lon0, lat0, size = -100.345, 25.775, 0.012
        update_node(w.s1, geometry=box(lon0, lat0, size, size))
        update_node(w.s2, geometry=box(lon0 + size * 1.1, lat0, size, size))
        names = [
            "Alianza",
            "Los Altos",
            "Las Torres",
            "Fomerrey",
            "Santa Lucía",
            "Centro",
            "Jardines",
            "Praderas",
            "Pedregal",
            "Andrés Caballero",
        ]
        k = 0
        for row in range(3):
            for col in range(4):
                if row == 0 and col < 2:
                    continue
                k += 1
                sector = create_node(
                    w.esc,
                    w.esc_node,
                    f"S{k + 2:02}",
                    f"Sector {k + 2} {names[k - 1]}",
                    geometry=box(lon0 + col * size * 1.1, lat0 + row * size * 1.1, size, size),
                )
                assign_liaison(
                    sector, full_name=f"Enlace {k + 2}", phone="8112345600", start_date=dt.date(2026, 1, 5)
                )
                for b in range(9):
                    bx, by = b % 3, b // 3
                    block = create_node(
                        w.esc,
                        sector,
                        f"S{k + 2:02}-M{b + 1:03}",
                        f"Manzana {b + 1}",
                        geometry=box(
                            lon0 + col * size * 1.1 + bx * size / 3 + 0.0004,
                            lat0 + row * size * 1.1 + by * size / 3 + 0.0004,
                            size / 3 - 0.0008,
                            size / 3 - 0.0008,
                        ),
                    )
                    if (b * 7 + k * 3) % 10 < 4 + (k % 6):
                        assign_liaison(block, full_name=f"Vecina {k}-{b}", start_date=dt.date(2026, 2, 1))

    def test_screenshots(self):
        folder = os.environ.get("REDES_SCREENSHOTS")
        if not folder:
            self.skipTest("set REDES_SCREENSHOTS to a folder to take screenshots")
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        self.build_town()
        pages = {
            "home": "/",
            "territory": f"/territory/{self.w.esc_node.uuid}/",
            "sector": f"/territory/{self.w.esc_node.children.get(code='S03').uuid}/",
        }
        for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page = self.new_page(viewport)
            self.sign_in(page, "coord")
            page.wait_for_url(f"{self.live_server_url}/")
            for name, path in pages.items():
                page.goto(f"{self.live_server_url}{path}")
                if name != "home":
                    page.locator("#map.map-ready").wait_for()
                    page.wait_for_timeout(400)  # let Leaflet finish fitting the bounds
                page.screenshot(path=str(out / f"{name}-{size}.png"), full_page=True)
                page.screenshot(path=str(out / f"{name}-{size}-top.png"))
