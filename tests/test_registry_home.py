"""The home page shows registry aggregates (never names) and the entry points to the census."""

from django.utils import translation

from redes.registry import queries, services

from .base import RedesTestCase


class RegistryHomeTests(RedesTestCase):
    def setUp(self):
        w = self.w
        house = services.create_household(w.b11, street="Allende", ext_number="4")
        services.add_person(house, full_name="Tomasa Ibarra Luna", age=81, check_duplicates=False)
        services.record_visit(house, "contacted")
        other = services.create_household(w.b21, street="Allende", ext_number="8")
        services.add_person(other, full_name="Pablo Ibarra", age=30, check_duplicates=False)

    def page(self, user):
        with translation.override("en"):
            return self.client_for(user).get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    def test_counts_roll_up_from_blocks(self):
        total, per_child = queries.registry_counts(self.w.esc_node)
        self.assertEqual(
            total, {"households": 2, "persons": 2, "priority_households": 1, "visited_households": 1}
        )
        self.assertEqual(per_child[self.w.s1.pk]["households"], 1)
        total, _ = queries.registry_counts(self.w.state_nl)
        self.assertEqual(total["persons"], 2)

    def test_observers_see_counts_but_no_names(self):
        html = self.page(self.w.state_observer)
        self.assertIn("Priority households", html)
        self.assertNotIn("Ibarra", html)
        self.assertNotIn("Open the census", html)

    def test_field_roles_get_the_census_button_and_coordinators_the_requests_box(self):
        self.assertIn("Open the census", self.page(self.w.block1))
        self.assertNotIn("arco-summary", self.page(self.w.coord))  # nothing open: no box
        person = services.add_person(
            services.create_household(self.w.b12, street="Allende", ext_number="9"),
            full_name="Eva Soto",
            check_duplicates=False,
        )
        services.open_data_request(person, "access")
        self.assertIn("arco-summary", self.page(self.w.coord))
        self.assertNotIn("arco-summary", self.page(self.w.sector1))
