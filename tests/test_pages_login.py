"""Sign-in, the wrong-password message and the lock-out page."""

from django.test import Client, override_settings

from .base import PASSWORD, RedesTestCase


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class LoginPageTests(RedesTestCase):
    def test_the_page_renders_with_labelled_fields(self):
        response = Client().get("/login/")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'for="id_username"')
        self.assertContains(response, 'for="id_password"')
        self.assertContains(response, "redes.css")

    def test_a_wrong_password_shows_a_message(self):
        response = Client().post("/login/", {"username": "coord", "password": "wrong"})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'id="login-error"')
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_a_good_sign_in_goes_to_next_or_home(self):
        client = Client()
        response = client.post("/login/", {"username": "coord", "password": PASSWORD, "next": "/users/"})
        self.assertRedirects(response, "/users/", fetch_redirect_response=False)
        response = Client().post("/login/", {"username": "coord", "password": PASSWORD})
        self.assertRedirects(response, "/", fetch_redirect_response=False)

    def test_next_cannot_leave_the_site(self):
        response = Client().post(
            "/login/", {"username": "coord", "password": PASSWORD, "next": "https://evil.example/"}
        )
        self.assertRedirects(response, "/", fetch_redirect_response=False)

    def test_signed_in_users_skip_the_page(self):
        self.assertEqual(self.client_for(self.w.coord).get("/login/").status_code, 302)

    @override_settings(AXES_FAILURE_LIMIT=5)
    def test_five_failures_lock_the_account_with_a_page_that_says_so(self):
        client = Client()
        for _ in range(4):
            self.assertEqual(
                client.post("/login/", {"username": "coord", "password": "bad"}).status_code, 200
            )
        response = client.post("/login/", {"username": "coord", "password": "bad"})
        self.assertEqual(response.status_code, 429)
        self.assertTemplateUsed(response, "registration/locked_out.html")
        self.assertContains(response, "Too many failed sign-in attempts", status_code=429)
        response = client.post("/login/", {"username": "coord", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)
        self.assertNotIn("_auth_user_id", client.session)
