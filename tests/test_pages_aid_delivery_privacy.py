"""The delivery screen, role by role: volunteers deliver by code and never see a household's address or its
members' names (they have no VIEW_PERSONAL) — on the list, a block's list, a picked or checked code, after a
confirmation and after a refusal; liaisons and coordinators see the address (to deliver at home), never names."""

from __future__ import annotations

from django.test import override_settings
from django.urls import reverse

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.aid.models import Entitlement

from .base import RedesTestCase
from .test_pages_aid import build_aid

ADDRESS = "Calle Secreta"
NAMES = ("Rosa Privada", "Pedro Privado", "Número")


@override_settings(LANGUAGE_CODE="en")
class DeliveryScreenPrivacyTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)

    def pending(self, block):
        return Entitlement.objects.filter(campaign=self.a.campaign, node=block, status="selected").order_by(
            "id"
        )

    def screens(self, user, block, *, confirm=True):
        """Every delivery screen the user can reach for ``block``: (label, response); with ``confirm``, a
        confirmation (and a second, refused one) too."""
        client = self.client_for(user)
        first = self.pending(block).first()
        deliver = reverse("aid-deliver")
        check = reverse("aid-deliver-check")
        yield "list", client.get(deliver)
        yield "block", client.get(deliver, {"block": block.code})
        yield "picked", client.get(deliver, {"code": first.code})
        yield "check", client.get(check, {"code": first.code}, headers={"HX-Request": "true"})
        yield "home", client.get(reverse("aid-home"))
        yield "refused", client.post(deliver, {"code": "ZZZZ-ZZZZ", "mode": "home"})
        if not confirm:
            return
        second = self.pending(block)[1]
        yield "confirmed", client.post(deliver, {"code": second.code, "mode": "home"}, follow=True)
        yield "twice", client.post(deliver, {"code": second.code, "mode": "home"})
        yield "check-delivered", client.get(check, {"code": second.code}, headers={"HX-Request": "true"})

    def test_volunteers_never_see_addresses_or_names(self):
        w = self.w
        self.assertFalse(scoping.can(w.volunteer, Perm.VIEW_PERSONAL))
        self.assertGreaterEqual(self.pending(w.b11).count(), 2)
        delivered = Entitlement.objects.filter(campaign=self.a.campaign, status="delivered").count()
        seen = 0
        for label, response in self.screens(w.volunteer, w.b11):
            with self.subTest(screen=label):
                self.assertIn(response.status_code, (200, 400))
                content = response.content.decode()
                self.assertNotIn(ADDRESS, content)
                for name in NAMES:
                    self.assertNotIn(name, content)
                seen += content.count("S01-M001")
        self.assertGreater(seen, 0)  # the screens did show the volunteer's work
        # The confirmation went through (once): the screens were the real ones.
        self.assertEqual(
            Entitlement.objects.filter(campaign=self.a.campaign, status="delivered").count(), delivered + 1
        )

    def test_liaisons_and_coordinators_see_the_address_but_never_names(self):
        w = self.w
        self.assertGreaterEqual(self.pending(w.b11).count(), 2)
        for user in (w.block1, w.sector1, w.coord):
            addresses = 0
            for label, response in self.screens(user, w.b11, confirm=user == w.block1):
                with self.subTest(user=user.username, screen=label):
                    content = response.content.decode()
                    for name in NAMES:
                        self.assertNotIn(name, content)
                    addresses += content.count(ADDRESS)
            with self.subTest(user=user.username):
                self.assertGreater(addresses, 0)

    def test_the_api_gives_volunteers_no_address_either(self):
        w = self.w
        code = self.pending(w.b11).first().code
        volunteer = self.api(w.volunteer, "get", f"aid/entitlements/{code}")
        self.assertEqual(volunteer.status_code, 200)
        self.assertEqual(volunteer.json()["address"], "")
        self.assertNotIn(ADDRESS, volunteer.content.decode())
        liaison = self.api(w.block1, "get", f"aid/entitlements/{code}").json()
        self.assertIn(ADDRESS, liaison["address"])
