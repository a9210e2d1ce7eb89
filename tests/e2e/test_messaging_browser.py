"""The messaging issue's "done when", in a real headless Chromium: with the console channel, a neighbour reports a
need by "texting" the menu and gets its status back; a coordinator sends a cascade broadcast and watches the
acknowledgements of the sector and block liaisons (on 360 px phones) arrive in the live progress view.

The live server runs no dispatcher thread (``redes serve`` starts it; the test server does not), so the test
runs the dispatcher's pass (``dispatcher.run_once``) itself after each message, as the thread would; the pages
poll for the replies. Set REDES_SCREENSHOTS=/some/dir to also save ``messaging-console.png``,
``messaging-console-phone.png``, ``messaging-ack-phone.png`` and ``messaging-cascade.png`` (the README's screenshots live in docs/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from redes.messaging import defaults, dispatcher
from redes.messaging.models import Broadcast, CascadeNode, Inbound
from redes.needs.models import Need
from redes.registry import services as registry
from tests.e2e.browser import BrowserTestCase

PHONE = {"width": 360, "height": 740}
NUMBER = "+528112349876"

pytestmark = pytest.mark.browser


class MessagingDoneWhenTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        self.add_shapes()
        defaults.ensure_defaults(self.w.esc)
        from redes.needs.services import ensure_defaults as needs_defaults

        needs_defaults(self.w.esc)
        self.household = registry.create_household(
            self.w.b11, street="Calle Secreta", ext_number="9", phones=[{"number": "81 1234 9876"}]
        )
        self.folder = os.environ.get("REDES_SCREENSHOTS")

    def shot(self, page, name, full=True):
        if self.folder:
            Path(self.folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(self.folder) / name), full_page=full)

    def assert_no_sideways_scroll(self, page, width):
        self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), width, page.url)

    def text(self, page, message: str, *, quick: bool = False) -> None:
        """Send ``message`` from the console's phone, run the dispatcher's pass, wait for the answer."""
        answers = page.locator("#conversation .bubble.theirs").count()
        sent = page.locator("#conversation .bubble.mine").count()
        if quick:
            page.locator(f'.messaging-quick button[value="{message}"]').click()
        else:
            page.fill("#id_text", message)
            page.press("#id_text", "Enter")  # as on a phone's keyboard: sends the text, not a quick reply
        page.wait_for_function(
            "n => document.querySelectorAll('#conversation .bubble.mine').length > n", arg=sent
        )
        self.assertEqual(page.locator("#conversation .bubble.mine .text").last.inner_text(), message)
        dispatcher.run_once()
        page.wait_for_function(
            "n => document.querySelectorAll('#conversation .bubble.theirs').length > n", arg=answers
        )

    def last_answer(self, page) -> str:
        return page.locator("#conversation .bubble.theirs").last.inner_text()

    def test_a_need_by_message_and_a_cascade_acknowledged_per_sector_and_block(self):
        w, live = self.w, self.live_server_url

        # 1. The coordinator opens the console and "texts" the menu as the household of block S01-M001.
        coord = self.new_page()
        self.sign_in(coord, "coord")
        coord.wait_for_url(f"{live}/")
        coord.goto(f"{live}/messaging/")
        coord.get_by_role("link", name="Open the console").click()
        coord.wait_for_url("**/messaging/console/**")
        coord.fill("#id_number", "81 1234 9876")
        self.text(coord, "Hola")
        self.assertIn("Responda con un número", self.last_answer(coord))
        self.text(coord, "1", quick=True)  # report a need: the categories
        self.text(coord, "1", quick=True)  # the first category
        self.text(coord, "Sin despensa esta semana, somos cinco")
        self.text(coord, "1", quick=True)  # confirm
        need = Need.objects.get(household=self.household)
        reference = need.uuid.hex[:8].upper()
        self.assertIn(reference, self.last_answer(coord))
        self.shot(coord, "messaging-console.png")

        # ... then asks the status of their requests and gets it back.
        self.text(coord, "MENU", quick=True)
        self.text(coord, "2", quick=True)
        self.assertIn(reference, self.last_answer(coord))
        self.assertEqual(Inbound.objects.filter(sender=NUMBER, state=Inbound.State.DONE).count(), 7)
        coord.reload()  # the console's inbox lists them
        self.assertEqual(coord.locator("#console-inbox tbody tr").count(), 7)

        # The same console on a 360 px phone: no sideways scroll.
        small = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(small, "coord")
        small.wait_for_url(f"{live}/")
        small.goto(f"{live}/messaging/console/?number={NUMBER.replace('+', '%2B')}")
        small.locator("#conversation .bubble.theirs").first.wait_for()
        self.assert_no_sideways_scroll(small, PHONE["width"])
        self.shot(small, "messaging-console-phone.png")

        # 2. A cascade broadcast over the municipality.
        coord.goto(f"{live}/messaging/broadcasts/")
        coord.fill("#id_title", "Despensas")
        coord.fill("#id_body", "Entrega de despensas mañana a las 10")
        coord.select_option("#id_node", label="19021 · General Escobedo")
        coord.check("#id_cascade")
        coord.click("#save-broadcast")
        coord.get_by_role("button", name="Start the broadcast").click()
        coord.get_by_text("Broadcast started").wait_for()
        broadcast = Broadcast.objects.get(title="Despensas")
        self.assertEqual(broadcast.status, Broadcast.Status.SENDING)
        coord.locator('#sector-progress [data-node="S01"][data-state="waiting"]').wait_for()
        coord.locator("#map.map-ready").wait_for()
        dispatcher.run_once()  # the prompts go out

        # 3. The sector liaison, on a phone, acknowledges with the big button; the coordinator sees it live.
        sector = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(sector, "sector1")
        sector.wait_for_url(f"{live}/")
        sector.goto(f"{live}/messaging/")
        self.assert_no_sideways_scroll(sector, PHONE["width"])
        self.shot(sector, "messaging-ack-phone.png")
        sector.locator("#acks .ack-button").click()
        sector.get_by_text("Acknowledged").wait_for()
        self.assertEqual(
            CascadeNode.objects.get(broadcast=broadcast, node=w.s1).status, CascadeNode.Status.ACKED
        )
        coord.locator('#sector-progress [data-node="S01"][data-state="acked"]').wait_for()
        coord.locator('#block-progress [data-node="S01-M001"][data-state="waiting"]').wait_for()

        # 4. The block liaison acknowledges in turn; the block turns green in the coordinator's view.
        block = self.new_page(PHONE, is_mobile=True, has_touch=True)
        self.sign_in(block, "block1")
        block.wait_for_url(f"{live}/")
        block.goto(f"{live}/messaging/")
        block.locator('#acks [data-node="S01-M001"] .ack-button').click()
        block.get_by_text("Acknowledged").wait_for()
        coord.locator('#block-progress [data-node="S01-M001"][data-state="acked"]').wait_for()
        self.assertEqual(coord.locator("#total-acked").inner_text(), "2")
        coord.wait_for_function("document.querySelector('#map').dataset.acked === '2'")
        self.shot(coord, "messaging-cascade.png")
