"""The home page and the base layout: territory summaries, navigation per permission, language switch."""

from django.test import override_settings

from redes.accounts.roles import Role
from redes.accounts.services import grant_membership

from .base import RedesTestCase

PERSONAL = (
    "Sergio Sector",
    "Blanca Manzana",
    "Alma Acapulco",
    "+528112345678",
    "+52744",
    "744 123 4567",
    "1234 567",
)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class HomeTests(RedesTestCase):
    def home(self, user):
        return self.client_for(user).get("/")

    def test_anonymous_users_are_sent_to_sign_in(self):
        response = self.home(None)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response["Location"], "/login/?next=/")

    def test_a_coordinator_sees_counts_coverage_vacant_posts_and_activity(self):
        response = self.home(self.w.coord)
        self.assertEqual(response.status_code, 200)
        (summary,) = response.context["summaries"]
        self.assertEqual(summary["node"], self.w.esc_node)
        self.assertEqual(summary["counts"], [("Sector", 2), ("Manzana", 3)])
        self.assertEqual((summary["coverage"].covered, summary["coverage"].total), (2, 5))
        self.assertEqual([n.code for n in summary["vacant"]], ["S02", "S01-M002", "S02-M001"])
        self.assertContains(response, "40 %")
        self.assertContains(response, f"/territory/{self.w.esc_node.uuid}/vacant/")
        self.assertTrue(response.context["recent_events"])
        self.assertContains(response, "Recent activity")

    def test_observers_see_aggregates_only(self):
        for observer in (self.w.observer, self.w.state_observer):
            response = self.home(observer)
            self.assertEqual(response.status_code, 200)
            html = response.content.decode()
            for secret in PERSONAL:
                self.assertNotIn(secret, html)
            self.assertNotIn("recent_events", response.context)
            self.assertIn("Liaison coverage", html)
        (summary,) = self.home(self.w.observer).context["summaries"]
        self.assertEqual(summary["counts"], [("States", 2), ("Municipalities", 2), ("Territorial units", 9)])

    def test_a_block_liaison_sees_their_block(self):
        (summary,) = self.home(self.w.block1).context["summaries"]
        self.assertEqual(summary["node"], self.w.b11)
        self.assertEqual(summary["counts"], [])

    def test_several_territories_are_shown_each(self):
        grant_membership(self.w.sector2, self.w.ab, Role.BLOCK_LIAISON)
        response = self.home(self.w.sector2)
        self.assertEqual([s["node"] for s in response.context["summaries"]], [self.w.s2, self.w.ab])
        self.assertContains(response, "Your territories")

    def test_a_user_without_a_role_is_told_so(self):
        response = self.home(self.w.nobody)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.context["summaries"], [])
        self.assertContains(response, "do not hold a role")

    def test_a_volunteer_sees_no_coverage(self):
        (summary,) = self.home(self.w.volunteer).context["summaries"]
        self.assertFalse(summary["show_aggregates"])
        self.assertNotIn("coverage", summary)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class LayoutTests(RedesTestCase):
    def nav(self, user):
        return [str(item["label"]) for item in self.client_for(user).get("/").context["nav"]]

    def test_navigation_follows_permissions(self):
        registry = ["Imports", "Duplicates", "Data requests", "Priority weights", "Privacy notice"]
        self.assertEqual(
            self.nav(self.w.coord),
            [
                "Home",
                "Territory",
                "Vacant posts",
                "Census",
                "Needs",
                "Aid",
                "Messages",
                *registry,
                "Users",
                "Audit log",
            ],
        )
        field = ["Home", "Territory", "Vacant posts", "Census", "Needs", "Aid"]
        self.assertEqual(self.nav(self.w.sector1), [*field, "Messages"])
        self.assertEqual(self.nav(self.w.block1), [*field, "Messages"])
        self.assertEqual(self.nav(self.w.caseworker), field)
        self.assertEqual(self.nav(self.w.volunteer), ["Home", "Territory", "Needs", "Aid"])
        self.assertEqual(self.nav(self.w.observer), ["Home", "Territory", "Vacant posts", "Needs", "Aid"])
        self.assertEqual(self.nav(self.w.nobody), ["Home"])
        self.assertIn("Admin", self.nav(self.w.root))

    def test_the_header_names_the_user_and_their_territory_and_logs_out_by_post(self):
        html = self.client_for(self.w.sector1).get("/").content.decode()
        self.assertIn("Sergio Sector", html)
        self.assertIn("Sector 1", html)
        self.assertIn('<form method="post" action="/logout/">', html)

    def test_logout_is_a_post(self):
        client = self.client_for(self.w.coord)
        self.assertEqual(client.get("/logout/").status_code, 405)
        self.assertEqual(client.post("/logout/").status_code, 302)
        self.assertEqual(client.get("/").status_code, 302)

    def test_the_language_switch_changes_the_page_language(self):
        client = self.client_for(self.w.coord)
        response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
        self.assertEqual(response.status_code, 302)
        self.assertIn('lang="en"', client.get("/").content.decode())
        client.post("/i18n/setlang/", {"language": "es-mx", "next": "/"})
        self.assertIn('lang="es-mx"', client.get("/").content.decode())

    def test_static_files_are_served(self):
        client = self.client_for(None)
        for path in (
            "/static/redes/redes.css",
            "/static/redes/map.js",
            "/static/vendor/htmx/htmx.min.js",
            "/static/vendor/leaflet/leaflet.js",
            "/static/vendor/leaflet/leaflet.css",
        ):
            response = client.get(path)
            self.assertEqual(response.status_code, 200, path)


class DefaultLanguageTests(RedesTestCase):
    def test_pages_are_in_mexican_spanish_by_default(self):
        self.assertIn('lang="es-mx"', self.client_for(self.w.coord).get("/").content.decode())
        self.assertIn('lang="es-mx"', self.client_for(None).get("/login/").content.decode())

    def test_a_browser_asking_for_english_gets_english(self):
        response = self.client_for(None).get("/login/", headers={"Accept-Language": "en"})
        self.assertIn('lang="en"', response.content.decode())
