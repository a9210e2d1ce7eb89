"""The audit log page: coordinators see the events of their municipalities only, filtered and paginated."""

from django.test import override_settings

from redes.audit.models import AuditEvent
from redes.audit.services import record
from redes.territories.services import update_node

from .base import RedesTestCase


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class AuditPageTests(RedesTestCase):
    def page(self, viewer, **params):
        return self.client_for(viewer).get("/audit/", params)

    def events(self, response):
        return list(response.context["page"].object_list)

    def test_access_matrix(self):
        self.assertEqual(self.page(None).status_code, 302)
        for user in (self.w.sector1, self.w.sector2, self.w.observer, self.w.state_observer, self.w.nobody):
            self.assertEqual(self.page(user).status_code, 403, user)
        self.assertEqual(self.page(self.w.coord).status_code, 200)
        self.assertEqual(self.page(self.w.root).status_code, 200)

    def test_coordinators_see_their_municipality_only(self):
        mine = {e.municipality_id for e in self.events(self.page(self.w.coord))}
        theirs = {e.municipality_id for e in self.events(self.page(self.w.other_coord))}
        self.assertEqual(mine, {self.w.esc.pk})
        self.assertEqual(theirs, {self.w.aca.pk})
        html = self.page(self.w.coord).content.decode()
        self.assertNotIn(str(self.w.a1_post.uuid), html)

    def test_filters(self):
        update_node(self.w.s2, name="Sector Dos", actor=self.w.coord)
        response = self.page(self.w.coord, action="node.update")
        self.assertEqual([e.action for e in self.events(response)], ["territories.node.update"])
        self.assertEqual(len(self.events(self.page(self.w.coord, user="coord"))), 1)
        self.assertEqual(len(self.events(self.page(self.w.coord, user="nobody"))), 0)
        self.assertEqual(len(self.events(self.page(self.w.coord, since="2100-01-01"))), 0)
        self.assertTrue(self.events(self.page(self.w.coord, until="2100-01-01")))
        self.assertEqual(len(self.events(self.page(self.w.coord, channel="api"))), 0)
        self.assertEqual(len(self.events(self.page(self.w.coord, outcome="denied"))), 0)

    def test_bad_filters_are_form_errors_not_failures(self):
        for params in (
            {"since": "yesterday"},
            {"until": "2026-13-45"},
            {"since": "2026-05-01", "until": "2026-04-01"},
            {"outcome": "exploded"},
            {"page": "x"},
            {"page": "-3"},
            {"action": "x" * 500},
        ):
            response = self.page(self.w.coord, **params)
            self.assertEqual(response.status_code, 200, params)

    def test_it_paginates(self):
        for i in range(60):
            record("test.thing.happen", actor=self.w.coord, municipality=self.w.esc, summary=f"n{i}")
        first = self.page(self.w.coord)
        self.assertEqual(len(self.events(first)), 50)
        self.assertContains(first, "page=2")
        second = self.page(self.w.coord, page=2)
        self.assertTrue(self.events(second))
        self.assertEqual(AuditEvent.objects.filter(action="test.thing.happen").count(), 60)

    def test_it_writes_nothing(self):
        before = AuditEvent.objects.count()
        self.page(self.w.coord)
        self.assertEqual(AuditEvent.objects.count(), before)
