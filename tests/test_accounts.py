from django.core.exceptions import ValidationError
from django.test import Client, override_settings

from redes.accounts.models import ApiToken, Membership
from redes.accounts.roles import Role
from redes.accounts.services import create_token, create_user, grant_membership, revoke_token, user_for_token

from .base import PASSWORD, RedesTestCase


class AccountTests(RedesTestCase):
    def test_roles_must_fit_the_kind_of_node(self):
        with self.assertRaises(ValidationError):
            grant_membership(self.w.nobody, self.w.b11, Role.COORDINATOR)
        with self.assertRaises(ValidationError):
            grant_membership(self.w.nobody, self.w.esc_node, Role.NATIONAL_OBSERVER)
        with self.assertRaises(ValidationError):
            grant_membership(self.w.nobody, self.w.esc_node, "king")
        self.assertFalse(Membership.objects.filter(user=self.w.nobody).exists())

    def test_usernames_are_unique_regardless_of_case(self):
        with self.assertRaises(ValidationError):
            create_user("COORD", password=None)

    def test_weak_passwords_are_refused(self):
        with self.assertRaises(ValidationError):
            create_user("nuevo", password="12345678")

    def test_tokens_are_stored_hashed_and_can_expire_or_be_revoked(self):
        token, raw = create_token(self.w.coord, name="cli")
        self.assertNotIn(raw, token.key_hash)
        self.assertEqual(user_for_token(raw), self.w.coord)
        revoke_token(token)
        self.assertIsNone(user_for_token(raw))
        expired, raw2 = create_token(self.w.coord, expires_in_days=1)
        ApiToken.objects.filter(pk=expired.pk).update(expires_at="2000-01-01T00:00:00Z")
        self.assertIsNone(user_for_token(raw2))
        self.assertIsNone(user_for_token("rds_bogus"))
        self.assertIsNone(user_for_token(""))

    def test_production_hasher_is_argon2(self):
        from redes import settings

        self.assertEqual(settings.PASSWORD_HASHERS[0], "django.contrib.auth.hashers.Argon2PasswordHasher")


@override_settings(AXES_FAILURE_LIMIT=3)
class LoginThrottleTests(RedesTestCase):
    def test_failed_logins_are_throttled(self):
        client = Client()
        for _ in range(3):
            client.post("/login/", {"username": "coord", "password": "wrong"})
        response = client.post("/login/", {"username": "coord", "password": PASSWORD})
        self.assertEqual(response.status_code, 429)
        self.assertNotIn("_auth_user_id", client.session)

    def test_a_good_login_works(self):
        client = Client()
        response = client.post("/login/", {"username": "coord", "password": PASSWORD})
        self.assertEqual(response.status_code, 302)
        self.assertIn("_auth_user_id", client.session)


class ApiFallbackTests(RedesTestCase):
    def test_unknown_api_paths_answer_json_404(self):
        response = self.client_for(None).get("/api/v1/no-such-thing")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertIn("detail", response.json())

    def test_user_creation_is_audited_for_the_municipality(self):
        from redes.audit.models import AuditEvent

        create_user("nueva", password=None, municipality=self.w.esc, actor=self.w.coord)
        event = AuditEvent.objects.get(action="accounts.user.create", actor=self.w.coord)
        self.assertEqual(event.municipality_id, self.w.esc.pk)
