"""The needs pages: the queue per role, intake (field, hotline, public form), a need's page and its actions.

Role by role: who gets each page (200), who is refused (403: sees the territory but may not act; 404: outside
their territory or a sensitive need they may not read), who is sent to sign in. Writes go through the pages
and land through ``needs.services``; bad input shows an error and leaves the need unchanged.
"""

from __future__ import annotations

from django.core.cache import cache
from django.test import override_settings

from redes.core import clock
from redes.needs import services
from redes.needs.models import NeedCategory, Office
from redes.registry import services as registry_services

from .base import RedesTestCase

SECRET = "Su pareja la golpea cuando bebe"


def cat(municipality, code):
    return NeedCategory.objects.get(municipality=municipality, code=code)


class NeedsWorld(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        services.ensure_defaults(w.esc)
        services.ensure_defaults(w.aca)
        cls.food = cat(w.esc, "alimentacion")
        cls.violence = cat(w.esc, "violencia")
        cls.h11 = registry_services.create_household(
            w.b11,
            actor=w.block1,
            street="Calle Hidalgo",
            ext_number="12",
            phones=[{"number": "81 1234 5678", "whatsapp": True}],
        )
        cls.ana = registry_services.add_person(
            cls.h11, actor=w.block1, full_name="Ana López García", age=72, check_duplicates=False
        )
        cls.h21 = registry_services.create_household(w.b21, actor=w.sector2, street="Calle Juárez")
        cls.n11 = services.register_need(
            actor=w.block1,
            municipality=w.esc,
            category=cls.food,
            description="Despensa para adulta mayor",
            household=cls.h11,
        )
        cls.n21 = services.register_need(
            actor=w.coord,
            municipality=w.esc,
            category="salud",
            description="Medicamento para la presión",
            household=cls.h21,
        )
        cls.secret = services.register_need(
            actor=w.block1,
            municipality=w.esc,
            category=cls.violence,
            description=SECRET,
            household=cls.h11,
        )
        cls.office = Office.objects.create(municipality=w.esc, name="DIF Escobedo", phone="8180000000")
        cls.naca = services.register_need(
            actor=w.other_coord, municipality=w.aca, category="alimentacion", description="Agua", node=w.ab
        )

    def setUp(self):
        cache.clear()
        clock.reset()

    def tearDown(self):
        clock.reset()


def detail(need):
    return f"/needs/{need.uuid}/"


def action(need, name):
    return f"/needs/{need.uuid}/do/{name}/"


@override_settings(LANGUAGE_CODE="en")
class QueueTests(NeedsWorld):
    def test_anonymous_is_sent_to_sign_in(self):
        for url in (
            "/needs/",
            "/needs/new/",
            "/needs/hotline/",
            detail(self.n11),
            "/needs/map/",
            "/needs/settings/",
            "/needs/notifications/",
        ):
            response = self.client_for(None).get(url)
            self.assertEqual(response.status_code, 302, url)
            self.assertIn("/login/", response["Location"])

    def test_each_role_sees_its_queue(self):
        w = self.w
        cases = {
            w.block1: ([self.n11], [self.n21, self.naca]),
            w.sector1: ([self.n11], [self.n21, self.naca]),
            w.sector2: ([self.n21], [self.n11, self.naca]),
            w.coord: ([self.n11, self.n21], [self.naca]),
            w.caseworker: ([self.n11, self.n21, self.secret], [self.naca]),
            w.other_coord: ([self.naca], [self.n11, self.n21]),
        }
        for user, (shown, hidden) in cases.items():
            response = self.client_for(user).get("/needs/")
            self.assertEqual(response.status_code, 200, user.username)
            for need in shown:
                self.assertContains(response, detail(need), msg_prefix=user.username)
            for need in hidden:
                self.assertNotContains(response, detail(need), msg_prefix=user.username)

    def test_the_violence_report_is_a_stub_for_the_liaison_who_registered_it(self):
        response = self.client_for(self.w.block1).get(detail(self.secret))
        self.assertContains(response, "Referred to a case officer")
        self.assertNotContains(response, SECRET)
        self.assertNotContains(response, "violence")
        self.assertNotContains(response, "Ana López")
        for user in (self.w.sector1, self.w.coord, self.w.volunteer, self.w.observer, self.w.other_coord):
            self.assertEqual(self.client_for(user).get(detail(self.secret)).status_code, 404, user.username)

    def test_the_case_officer_reads_the_violence_report(self):
        response = self.client_for(self.w.caseworker).get(detail(self.secret))
        self.assertContains(response, SECRET)
