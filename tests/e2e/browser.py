"""Shared pieces of the browser tests: Debian's /usr/bin/chromium driven by Playwright's sync API.

Never downloads a browser. Skipped when /usr/bin/chromium is missing, unless REDES_REQUIRE_BROWSER=1 (CI),
in which case they fail. Every request that does not go to the live server is aborted, so base-map tiles
never leave the machine.
"""

from __future__ import annotations

import os
import unittest
from urllib.parse import urlparse

from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings

from redes.territories.services import update_node
from tests.base import PASSWORD, build_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def box(lon: float, lat: float, w: float, h: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + w, lat], [lon + w, lat + h], [lon, lat + h], [lon, lat]]],
    }


def _missing_browser_reason() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


# Relative tile URL: tiles are asked of the live server itself, which answers 404 (no internet needed).
@override_settings(REDES_TILE_URL="/no-tiles/{z}/{x}/{y}.png", LANGUAGE_CODE="en")
class BrowserTestCase(StaticLiveServerTestCase):
    host = "127.0.0.1"

    @classmethod
    def setUpClass(cls):
        reason = _missing_browser_reason()
        if reason:
            if os.environ.get("REDES_REQUIRE_BROWSER") == "1":
                raise RuntimeError(f"REDES_REQUIRE_BROWSER=1 but {reason}")
            raise unittest.SkipTest(reason)
        super().setUpClass()
        from playwright.sync_api import sync_playwright

        cls._playwright = sync_playwright().start()
        cls.browser = cls._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "browser", None) is not None:
            cls.browser.close()
            cls._playwright.stop()
        super().tearDownClass()

    def setUp(self):
        self.w = build_world()
        self.contexts = []

    def tearDown(self):
        for context in self.contexts:
            context.close()

    def new_page(self, viewport=DESKTOP, **options):
        options.setdefault("locale", "en-US")
        context = self.browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(15000)
        self.contexts.append(context)
        page = context.new_page()
        local = urlparse(self.live_server_url).hostname

        def only_local(route):
            if urlparse(route.request.url).hostname == local:
                route.continue_()
            else:
                route.abort()

        page.route("**/*", only_local)
        return page

    def sign_in(self, page, username: str, password: str = PASSWORD):
        page.goto(f"{self.live_server_url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#sign-in")

    def add_shapes(self):
        """Polygons for the sectors and blocks of Escobedo, so the maps have something to draw."""
        w = self.w
        update_node(w.s1, geometry=box(-100.34, 25.79, 0.02, 0.02))
        update_node(w.s2, geometry=box(-100.31, 25.79, 0.02, 0.02))
        update_node(w.b11, geometry=box(-100.339, 25.791, 0.008, 0.018))
        update_node(w.b12, geometry=box(-100.329, 25.791, 0.008, 0.018))
        update_node(w.b21, geometry=box(-100.309, 25.791, 0.018, 0.018))
