"""The needs pages: the queue per role, intake (field, hotline, public form), a need's page and its actions.

Role by role: who gets each page (200), who is refused (403: sees the territory but may not act; 404: outside
their territory or a sensitive need they may not read), who is sent to sign in. Writes go through the pages
and land through ``needs.services``; bad input shows an error and leaves the need unchanged.
"""

from __future__ import annotations

import datetime as dt

from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.needs import services
from redes.needs.models import DeadlinePolicy, Need, NeedCategory, Office, RoutingRule, WorkingGroup
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


@override_settings(LANGUAGE_CODE="en")
class QueuePageTests(NeedsWorld):
    def test_observers_get_the_map_and_counts_only(self):
        for user in (self.w.observer, self.w.state_observer):
            response = self.client_for(user).get("/needs/")
            self.assertEqual(response.status_code, 200)
            self.assertContains(response, 'id="needs-map"')
            self.assertNotContains(response, "/needs/" + str(self.n11.uuid))
            self.assertNotContains(response, "Despensa")
            self.assertEqual(self.client_for(user).get(detail(self.n11)).status_code, 404)

    def test_a_user_without_role_is_refused(self):
        self.assertEqual(self.client_for(self.w.nobody).get("/needs/").status_code, 403)

    def test_the_volunteer_sees_only_what_is_assigned_to_them(self):
        client = self.client_for(self.w.volunteer)
        response = client.get("/needs/")
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, detail(self.n11))
        self.assertEqual(client.get(detail(self.n11)).status_code, 404)
        services.assign_need(self.n11, actor=self.w.sector1, user=self.w.volunteer)
        response = client.get("/needs/")
        self.assertContains(response, detail(self.n11))
        self.assertEqual(client.get(detail(self.n11)).status_code, 200)

    def test_the_coordinator_has_an_overdue_section_and_deadlines_read_as_text(self):
        client = self.client_for(self.w.coord)
        response = client.get("/needs/")
        self.assertContains(response, "Nothing overdue.")
        self.assertContains(response, "due in")
        with clock.travel(dt.timedelta(days=2)):
            response = client.get("/needs/")
            self.assertNotContains(response, "Nothing overdue.")
            self.assertContains(response, "overdue by")

    def test_the_operator_sees_what_they_registered_and_a_new_call_button(self):
        need = services.register_need(
            actor=self.w.operator,
            municipality=self.w.esc,
            category="violencia",
            description=SECRET,
            node=self.w.b12,
            channel="hotline",
        )
        response = self.client_for(self.w.operator).get("/needs/")
        self.assertContains(response, 'id="new-call"')
        self.assertContains(response, "Registered by you")
        self.assertContains(response, detail(need))
        self.assertContains(response, "Referred to a case officer")
        self.assertNotContains(response, SECRET)

    def test_the_case_officer_has_a_sensitive_section(self):
        response = self.client_for(self.w.caseworker).get("/needs/")
        self.assertContains(response, "Sensitive cases")
        self.assertContains(response, detail(self.secret))

    def test_filters_narrow_the_queue_and_bad_values_are_ignored(self):
        client = self.client_for(self.w.coord)
        response = client.get("/needs/", {"category": "salud"})
        self.assertContains(response, detail(self.n21))
        self.assertNotContains(response, detail(self.n11))
        response = client.get("/needs/", {"node": str(self.w.s1.uuid)})
        self.assertContains(response, detail(self.n11))
        self.assertNotContains(response, detail(self.n21))
        response = client.get("/needs/", {"urgency": "normal", "status": "all"})
        self.assertContains(response, detail(self.n11))
        for bad in (
            {"category": "nope"},
            {"status": "eaten"},
            {"node": "not-a-uuid"},
            {"node": str(self.w.ab.uuid)},
            {"page": "abc"},
            {"page": "-3"},
            {"page": "99999999"},
        ):
            self.assertEqual(client.get("/needs/", bad).status_code, 200, bad)
        # A node of another tenant is ignored, never used.
        response = client.get("/needs/", {"node": str(self.w.ab.uuid)})
        self.assertNotContains(response, detail(self.naca))

    def test_the_filters_answer_htmx_with_the_rows_only(self):
        response = self.client_for(self.w.coord).get(
            "/needs/", {"category": "salud"}, headers={"HX-Request": "true"}
        )
        self.assertNotContains(response, "<html")
        self.assertContains(response, detail(self.n21))

    def test_the_queue_takes_a_fixed_number_of_queries(self):
        client = self.client_for(self.w.coord)
        group = services.save_working_group(self.w.esc, actor=self.w.coord, name="Despensas")

        def count():
            client.get("/needs/")
            with CaptureQueriesContext(connection) as ctx:
                self.assertEqual(client.get("/needs/").status_code, 200)
            return len(ctx.captured_queries)

        def add(n):
            for i in range(n):
                need = services.register_need(
                    actor=self.w.coord,
                    municipality=self.w.esc,
                    category=self.food if i % 2 else "salud",
                    description=f"Necesidad {i}",
                    node=self.w.b11 if i % 3 else self.w.b21,
                    urgency="high" if i % 2 else "normal",
                )
                if i % 4 == 0:
                    services.assign_need(need, actor=self.w.coord, user=self.w.caseworker)
                elif i % 4 == 1:
                    services.assign_need(need, actor=self.w.coord, office=self.office)
                elif i % 4 == 2:
                    services.assign_need(need, actor=self.w.coord, group=group)

        add(4)  # one of each kind of assignee, so that every related lookup already runs
        before = count()
        add(16)
        with clock.travel(dt.timedelta(days=3)):  # and some overdue, for the coordinator's section
            self.assertEqual(count(), before)
        self.assertEqual(count(), before)
        self.assertLessEqual(before, 25)


@override_settings(LANGUAGE_CODE="en")
class FieldIntakeTests(NeedsWorld):
    def post(self, user, data, household=None):
        url = "/needs/new/" + (f"?household={household.uuid}" if household else "")
        return self.client_for(user).post(url, data)

    def test_the_household_page_links_to_the_intake(self):
        response = self.client_for(self.w.block1).get(f"/registry/household/{self.h11.uuid}/")
        self.assertContains(response, f"/needs/new/?household={self.h11.uuid}")

    def test_a_block_liaison_registers_a_food_need_from_a_household(self):
        response = self.client_for(self.w.block1).get(f"/needs/new/?household={self.h11.uuid}")
        self.assertContains(response, "Food")
        self.assertContains(response, "Ana López García")
        before = Need.objects.count()
        response = self.post(
            self.w.block1,
            {
                "category": "alimentacion",
                "urgency": "high",
                "description": "Sin despensa esta semana",
                "person": str(self.ana.uuid),
            },
            self.h11,
        )
        need = Need.objects.latest("id")
        self.assertEqual(Need.objects.count(), before + 1)
        self.assertRedirects(response, detail(need))
        self.assertEqual((need.household, need.person, need.node), (self.h11, self.ana, self.w.b11))
        self.assertEqual((need.channel, need.urgency, need.reported_by), ("field", "high", self.w.block1))

    def test_without_a_household_the_liaison_picks_one_of_their_blocks(self):
        response = self.client_for(self.w.block1).get("/needs/new/")
        self.assertContains(response, str(self.w.b11.uuid))
        self.assertNotContains(response, str(self.w.b12.uuid))
        before = Need.objects.count()
        response = self.post(
            self.w.block1,
            {
                "category": "seguridad",
                "urgency": "normal",
                "description": "Luminaria fundida",
                "block": str(self.w.b12.uuid),
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Need.objects.count(), before)
        response = self.post(
            self.w.block1,
            {
                "category": "seguridad",
                "urgency": "normal",
                "description": "Luminaria fundida",
                "block": str(self.w.b11.uuid),
            },
        )
        self.assertEqual(Need.objects.latest("id").node, self.w.b11)

    def test_bad_input_is_a_form_error_and_writes_nothing(self):
        before = Need.objects.count()
        for data in (
            {"category": "nope", "urgency": "normal", "description": "x"},
            {"category": "alimentacion", "urgency": "whenever", "description": "x"},
            {"category": "alimentacion", "urgency": "normal", "description": ""},
            {"category": "alimentacion", "urgency": "normal", "description": "x", "person": "forged"},
        ):
            response = self.post(self.w.block1, data, self.h11)
            self.assertEqual(response.status_code, 200, data)
            self.assertContains(response, 'class="errorlist', msg_prefix=str(data))
        self.assertEqual(Need.objects.count(), before)

    def test_access_to_the_intake(self):
        url = f"/needs/new/?household={self.h11.uuid}"
        for user, status in (
            (self.w.block1, 200),
            (self.w.sector1, 200),
            (self.w.coord, 200),
            (self.w.sector2, 404),
            (self.w.other_coord, 404),
            (self.w.observer, 403),
            (self.w.volunteer, 403),
            (self.w.nobody, 403),
        ):
            self.assertEqual(self.client_for(user).get(url).status_code, status, user.username)
        self.assertEqual(self.client_for(self.w.block1).get("/needs/new/?household=forged").status_code, 404)
        before = Need.objects.count()
        response = self.client_for(self.w.sector2).post(
            url, {"category": "alimentacion", "urgency": "normal", "description": "x"}
        )
        self.assertEqual(response.status_code, 404)
        self.assertEqual(Need.objects.count(), before)

    def test_a_violence_report_from_the_field_leaves_the_liaison_a_stub(self):
        response = self.post(
            self.w.block1,
            {"category": "violencia", "urgency": "high", "description": SECRET},
            self.h11,
        )
        need = Need.objects.latest("id")
        self.assertTrue(need.sensitive)
        page = self.client_for(self.w.block1).get(response["Location"])
        self.assertContains(page, "Referred to a case officer")
        self.assertNotContains(page, SECRET)
        self.assertEqual(self.client_for(self.w.sector1).get(detail(need)).status_code, 404)
        self.assertContains(self.client_for(self.w.caseworker).get(detail(need)), SECRET)


@override_settings(LANGUAGE_CODE="en")
class SettingsPageTests(NeedsWorld):
    url = "/needs/settings/"

    def test_access(self):
        for user, status in (
            (self.w.coord, 200),
            (self.w.other_coord, 200),
            (self.w.sector1, 403),
            (self.w.block1, 403),
            (self.w.operator, 403),
            (self.w.caseworker, 403),
            (self.w.volunteer, 403),
            (self.w.observer, 403),
            (self.w.nobody, 403),
        ):
            self.assertEqual(self.client_for(user).get(self.url).status_code, status, user.username)
        # The other coordinator gets their own municipality, never Escobedo's.
        response = self.client_for(self.w.other_coord).get(self.url, {"m": self.w.esc.code})
        self.assertContains(response, "Acapulco")
        self.assertNotContains(response, "DIF Escobedo")

    def test_a_coordinator_sets_up_categories_offices_groups_rules_and_deadlines(self):
        client = self.client_for(self.w.coord)
        response = client.get(self.url)
        self.assertContains(response, "Food")
        self.assertContains(response, "DIF Escobedo")
        response = client.post(
            self.url,
            {
                "section": "category",
                "category-code": "agua",
                "category-name": "Agua potable",
                "category-parent": "alimentacion",
                "category-active": "on",
                "category-order": "3",
            },
        )
        self.assertEqual(response.status_code, 302)
        water = cat(self.w.esc, "agua")
        self.assertEqual((water.name, water.parent, water.active), ("Agua potable", self.food, True))
        response = client.post(
            self.url,
            {
                "section": "office",
                "office-name": "Línea Mujer",
                "office-kind": "hotline",
                "office-phone": "800 290 0024",
                "office-categories": ["violencia"],
                "office-active": "on",
            },
        )
        self.assertEqual(response.status_code, 302)
        line = Office.objects.get(name="Línea Mujer")
        self.assertEqual(list(line.categories.values_list("code", flat=True)), ["violencia"])
        response = client.post(
            self.url,
            {
                "section": "group",
                "group-name": "Despensas S1",
                "group-node": "S01",
                "group-theme": "alimentacion",
                "group-members": [str(self.w.volunteer.uuid)],
                "group-active": "on",
            },
        )
        self.assertEqual(response.status_code, 302)
        group = WorkingGroup.objects.get(name="Despensas S1")
        self.assertEqual((group.node, list(group.members.all())), (self.w.s1, [self.w.volunteer]))
        response = client.post(
            self.url,
            {
                "section": "rule",
                "rule-category": "agua",
                "rule-node": "S01",
                "rule-target": "group",
                "rule-group": str(group.uuid),
                "rule-order": "0",
            },
        )
        self.assertEqual(response.status_code, 302)
        rule = RoutingRule.objects.get(municipality=self.w.esc)
        self.assertEqual((rule.category, rule.node, rule.group), (water, self.w.s1, group))
        response = client.post(
            self.url,
            {
                "section": "deadline",
                "deadline-urgency": "critical",
                "deadline-ack_hours": "0.5",
                "deadline-resolve_hours": "12",
            },
        )
        self.assertEqual(response.status_code, 302)
        policy = DeadlinePolicy.objects.get(municipality=self.w.esc, category=None, urgency="critical")
        self.assertEqual((policy.ack_minutes, policy.resolve_minutes), (30, 720))
        # Edit an office, remove the rule.
        response = client.post(
            self.url,
            {
                "section": "office",
                "instance": str(line.uuid),
                f"office-{line.uuid}-name": "Línea Mujer 24 h",
                f"office-{line.uuid}-kind": "hotline",
            },
        )
        self.assertEqual(response.status_code, 302)
        line.refresh_from_db()
        self.assertEqual((line.name, line.active), ("Línea Mujer 24 h", False))
        client.post(self.url, {"section": "rule-delete", "instance": str(rule.uuid)})
        self.assertFalse(RoutingRule.objects.filter(pk=rule.pk).exists())

    def test_bad_input_is_a_form_error_and_changes_nothing(self):
        client = self.client_for(self.w.coord)
        before = (NeedCategory.objects.count(), WorkingGroup.objects.count(), DeadlinePolicy.objects.count())
        for data in (
            {"section": "category", "category-code": "alimentacion", "category-order": "0"},
            {"section": "category", "category-code": "x", "category-parent": "nope", "category-order": "0"},
            {"section": "group", "group-name": "G", "group-node": "A1"},
            {"section": "group", "group-name": "G", "group-members": [str(self.w.other_coord.uuid)]},
            {"section": "rule", "rule-category": "salud", "rule-target": "office"},
            {
                "section": "deadline",
                "deadline-urgency": "critical",
                "deadline-ack_hours": "5",
                "deadline-resolve_hours": "1",
            },
        ):
            response = client.post(self.url, data)
            self.assertEqual(response.status_code, 200, data)
            self.assertContains(response, 'class="errorlist', msg_prefix=str(data))
        after = (NeedCategory.objects.count(), WorkingGroup.objects.count(), DeadlinePolicy.objects.count())
        self.assertEqual(after, before)
        self.assertEqual(client.post(self.url, {"section": "bogus"}).status_code, 404)
        self.assertEqual(client.post(self.url, {"section": "office", "instance": "forged"}).status_code, 404)
        other = services.save_office(self.w.aca, actor=self.w.other_coord, name="DIF Acapulco")
        response = client.post(
            self.url, {"section": "office", "instance": str(other.uuid), f"office-{other.uuid}-name": "X"}
        )
        self.assertEqual(response.status_code, 404)
        other.refresh_from_db()
        self.assertEqual(other.name, "DIF Acapulco")

    def test_refused_writes_are_audited(self):
        before = AuditEvent.objects.count()
        response = self.client_for(self.w.sector1).post(
            self.url,
            {"section": "category", "category-code": "x", "category-name": "X", "category-order": "0"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(NeedCategory.objects.filter(code="x").exists())
        self.assertEqual(AuditEvent.objects.count(), before + 1)
