"""Spanish first: pages, messages and service errors default to Mexican Spanish; English on request."""

from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from redes.accounts.roles import Role
from redes.core import i18ncheck
from redes.territories.services import create_node

from .base import RedesTestCase


class DefaultSpanishTests(RedesTestCase):
    def test_the_login_page_is_in_spanish_without_accept_language(self):
        response = Client().get("/login/")
        self.assertContains(response, 'lang="es-mx"')
        self.assertContains(response, "Iniciar sesión")
        self.assertContains(response, "Nombre de usuario")
        self.assertContains(response, "Contraseña")
        self.assertNotContains(response, "Sign in")

    def test_the_home_page_is_in_spanish_without_accept_language(self):
        response = self.client_for(self.w.coord).get("/")
        self.assertContains(response, "Cobertura de enlaces")
        self.assertContains(response, "Cerrar sesión")
        self.assertContains(response, "Puestos vacantes")
        self.assertNotContains(response, "Liaison coverage")
        self.assertNotContains(response, "Sign out")

    def test_a_wrong_password_is_reported_in_spanish(self):
        response = Client().post("/login/", {"username": "coord", "password": "mal"})
        html = response.content.decode()
        error = html[html.index('id="login-error"') :].split("</ul>")[0]
        self.assertIn("contraseña", error)  # Django's own es catalogue
        self.assertNotIn("Please enter", error)

    def test_a_node_page_and_its_map_labels_are_in_spanish(self):
        response = self.client_for(self.w.coord).get(reverse("territory", args=[self.w.esc_node.uuid]))
        self.assertContains(response, "2 de 5 unidades inferiores tienen enlace.")
        self.assertContains(response, 'data-label-vacant="Vacante"')
        self.assertContains(response, "80 % o más")
        self.assertNotContains(response, "%%")


class EnglishOnRequestTests(RedesTestCase):
    def test_accept_language_en_gives_english_pages(self):
        response = Client().get("/login/", headers={"Accept-Language": "en"})
        self.assertContains(response, 'lang="en"')
        self.assertContains(response, "Sign in")
        self.assertNotContains(response, "Iniciar sesión")
        home = self.client_for(self.w.coord).get("/", headers={"Accept-Language": "en"})
        self.assertContains(home, "Liaison coverage")

    def test_set_language_switches_the_session_to_english_and_back(self):
        client = self.client_for(self.w.coord)
        response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
        self.assertRedirects(response, "/", fetch_redirect_response=False)
        home = client.get("/")
        self.assertContains(home, 'lang="en"')
        self.assertContains(home, "Sign out")
        client.post("/i18n/setlang/", {"language": "es-mx", "next": "/"})
        self.assertContains(client.get("/"), "Cerrar sesión")

    def test_set_language_works_before_signing_in(self):
        client = Client()
        client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
        self.assertContains(client.get("/login/"), "Sign in")


class ServiceMessagesTests(RedesTestCase):
    def test_a_service_validation_error_is_in_spanish_under_es_mx(self):
        with translation.override("es-mx"), self.assertRaises(ValidationError) as caught:
            create_node(self.w.esc, self.w.esc_node, "", "Sector sin clave")
        self.assertEqual(caught.exception.messages, ["La clave es obligatoria."])

    def test_the_same_error_is_in_english_under_en(self):
        with translation.override("en"), self.assertRaises(ValidationError) as caught:
            create_node(self.w.esc, self.w.esc_node, "", "Sector sin clave")
        self.assertEqual(caught.exception.messages, ["The code is required."])

    def test_plural_forms_follow_the_count(self):
        with translation.override("es-mx"):
            one = translation.ngettext("Imported %(count)s unit.", "Imported %(count)s units.", 1)
            many = translation.ngettext("Imported %(count)s unit.", "Imported %(count)s units.", 3)
        self.assertEqual(one % {"count": 1}, "Se importó 1 unidad.")
        self.assertEqual(many % {"count": 3}, "Se importaron 3 unidades.")

    def test_role_names_are_translated(self):
        with translation.override("es-mx"):
            self.assertEqual(str(Role.COORDINATOR.label), "Coordinador(a) municipal")


class CatalogueTests(RedesTestCase):
    def test_the_committed_catalogue_has_no_untranslated_or_fuzzy_entry(self):
        self.assertEqual(i18ncheck.problems(i18ncheck.PO.read_text()), [])
        self.assertTrue(i18ncheck.MO.exists())
