"""Bearer tokens: every refusal is a 401 that says why, and no endpoint answers without a usable token."""

import datetime as dt
import uuid

from django.test import Client
from django.utils import timezone

from redes.accounts.models import ApiToken
from redes.accounts.services import create_token, revoke_token
from redes.api import api
from redes.audit.models import AuditEvent
from redes.territories.models import Node

from .test_api_territory import ApiTestCase


class TokenTests(ApiTestCase):
    def call(self, authorization: str | None, path: str = "/api/v1/me"):
        headers = {"Accept-Language": "en"}
        if authorization is not None:
            headers["Authorization"] = authorization
        return Client().get(path, headers=headers)

    def assert_refused(self, response, reason: str):
        body = self.assert_error(response, 401)
        self.assertIn(reason, body["detail"])
        self.assertTrue(response["WWW-Authenticate"].startswith("Bearer"))
        self.assertNotIn("coord", response.content.decode())

    def test_a_valid_token_authenticates(self):
        _, raw = create_token(self.w.coord)
        response = self.call(f"Bearer {raw}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["username"], "coord")
        self.assertIsNotNone(ApiToken.objects.get(user=self.w.coord).last_used_at)

    def test_the_scheme_is_case_insensitive(self):
        _, raw = create_token(self.w.coord)
        self.assertEqual(self.call(f"bearer {raw}").status_code, 200)

    def test_it_refuses_a_missing_header(self):
        self.assert_refused(self.call(None), "Authentication required")
        self.assert_refused(self.call(""), "Authentication required")

    def test_it_refuses_another_scheme(self):
        _, raw = create_token(self.w.coord)
        self.assert_refused(self.call(f"Token {raw}"), "scheme")
        self.assert_refused(self.call("Basic Y29vcmQ6c2VjcmV0"), "scheme")
        self.assert_refused(self.call(raw), "scheme")

    def test_it_refuses_unknown_and_malformed_tokens(self):
        _, raw = create_token(self.w.coord)
        for token in (
            "",
            "nonsense",
            raw[:-1] + ("A" if raw[-1] != "A" else "B"),
            "rds_" + "x" * 500,
            "rds_ñ",
        ):
            with self.subTest(token=token):
                self.assert_refused(self.call(f"Bearer {token}"), "not valid")

    def test_it_refuses_an_expired_token(self):
        token, raw = create_token(self.w.coord, expires_in_days=1)
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        self.assert_refused(self.call(f"Bearer {raw}"), "expired")

    def test_it_refuses_a_revoked_token(self):
        token, raw = create_token(self.w.coord)
        self.assertEqual(self.call(f"Bearer {raw}").status_code, 200)
        revoke_token(token)
        self.assert_refused(self.call(f"Bearer {raw}"), "revoked")

    def test_it_refuses_the_token_of_a_disabled_account(self):
        _, raw = create_token(self.w.coord)
        self.w.coord.is_active = False
        self.w.coord.save(update_fields=["is_active"])
        self.assert_refused(self.call(f"Bearer {raw}"), "disabled")

    def test_a_session_login_is_not_enough(self):
        client = self.client_for(self.w.coord)
        self.assert_error(client.get("/api/v1/me"), 401)

    def test_refused_writes_change_nothing(self):
        before = Node.objects.count()
        response = Client().post(
            "/api/v1/nodes",
            data={"parent": str(self.w.s1.uuid), "code": "X", "name": "X"},
            content_type="application/json",
            headers={"Authorization": "Bearer rds_forged"},
        )
        self.assert_error(response, 401)
        self.assertEqual(Node.objects.count(), before)


class EveryEndpointNeedsATokenTests(ApiTestCase):
    def test_every_operation_answers_401_without_a_token(self):
        schema = api.get_openapi_schema()
        operations = 0
        for path, methods in schema["paths"].items():
            url = path.replace("{uuid}", str(self.w.s1.uuid))
            for method, operation in methods.items():
                if "security" not in operation:  # declared public in the document (no personal data)
                    continue
                with self.subTest(method=method, path=path):
                    response = getattr(Client(), method)(url, content_type="application/json")
                    self.assert_error(response, 401)
                    operations += 1
        self.assertGreaterEqual(operations, 24)


class ChannelTests(ApiTestCase):
    def test_writes_through_the_api_are_audited_as_api(self):
        response = self.api(self.w.coord, "patch", f"/nodes/{self.w.b12.uuid}", {"name": "Manzana Dos"})
        self.assertEqual(response.status_code, 200)
        event = AuditEvent.objects.get(action="territories.node.update")
        self.assertEqual((event.channel, event.actor, event.outcome), ("api", self.w.coord, "ok"))

    def test_refusals_are_audited_as_api_with_the_actor(self):
        self.api(self.w.sector2, "patch", f"/nodes/{self.w.b12.uuid}", {"name": "X"})
        self.api(self.w.sector1, "patch", f"/nodes/{self.w.b12.uuid}", {"name": "X"})
        self.api(self.w.coord, "patch", f"/nodes/{uuid.uuid4()}", {"name": "X"})
        events = AuditEvent.objects.filter(action="territories.node.update").order_by("id")
        self.assertEqual(
            [(e.actor_label, e.outcome, e.summary, e.channel) for e in events],
            [
                ("sector2", "denied", "not found", "api"),
                ("sector1", "denied", "forbidden", "api"),
                ("coord", "denied", "not found", "api"),
            ],
        )
