"""The accounts API: the caller, memberships and users."""

import uuid

from redes.accounts.models import Membership, User
from redes.audit.models import AuditEvent

from .test_api_territory import ApiTestCase


class MeTests(ApiTestCase):
    def test_it_shows_the_caller_with_permissions_per_node(self):
        response = self.api(self.w.coord, "get", "/me")
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(
            (body["username"], body["full_name"], body["is_superuser"]),
            ("coord", "Carmen Coordinadora", False),
        )
        [membership] = body["memberships"]
        self.assertEqual(membership["role"], "coordinator")
        self.assertEqual(membership["node"]["code"], "19021")
        self.assertEqual(membership["municipality"], str(self.w.esc.uuid))
        self.assertIn("manage_users", membership["permissions"])
        self.assertNotIn("view_sensitive", membership["permissions"])

    def test_an_observer_holds_aggregates_only(self):
        [membership] = self.api(self.w.observer, "get", "/me").json()["memberships"]
        self.assertEqual(membership["permissions"], ["view_aggregates", "view_territory"])
        self.assertIsNone(membership["municipality"])

    def test_a_user_without_memberships_sees_themselves(self):
        body = self.api(self.w.nobody, "get", "/me").json()
        self.assertEqual((body["username"], body["memberships"]), ("nobody", []))

    def test_it_refuses_anonymous_callers(self):
        self.assert_error(self.api(None, "get", "/me"), 401)


class MembershipListTests(ApiTestCase):
    def usernames(self, user, query=""):
        response = self.api(user, "get", f"/memberships{query}")
        self.assertEqual(response.status_code, 200, response.content)
        return sorted(m["user"]["username"] for m in response.json()["items"])

    def test_a_coordinator_lists_the_memberships_of_their_municipality(self):
        expected = ["block1", "caseworker", "coord", "operator", "sector1", "sector2", "volunteer"]
        self.assertEqual(self.usernames(self.w.coord), expected)
        self.assertEqual(self.usernames(self.w.coord, "?municipality=19021"), expected)
        self.assertEqual(
            self.usernames(self.w.coord, f"?subtree={self.w.s1.uuid}"), ["block1", "sector1", "volunteer"]
        )
        self.assertEqual(self.usernames(self.w.other_coord), ["other_coord"])

    def test_ended_memberships_are_listed_on_request(self):
        membership = Membership.objects.get(user=self.w.sector2)
        self.api(self.w.coord, "post", f"/memberships/{membership.uuid}/end")
        self.assertNotIn("sector2", self.usernames(self.w.coord))
        self.assertIn("sector2", self.usernames(self.w.coord, "?active=false"))

    def test_access_matrix(self):
        self.assert_error(self.api(None, "get", "/memberships"), 401)
        for user in (self.w.observer, self.w.sector1, self.w.sector2, self.w.operator, self.w.nobody):
            response = self.api(user, "get", "/memberships")
            self.assert_error(response, 403)
            self.assertNotIn("Carmen", response.content.decode())
        self.assert_error(self.api(self.w.other_coord, "get", "/memberships?municipality=19021"), 404)
        self.assert_error(self.api(self.w.other_coord, "get", f"/memberships?subtree={self.w.s1.uuid}"), 404)


class GrantTests(ApiTestCase):
    def payload(self, user=None, node=None, role="block_liaison"):
        return {
            "user": str((user or self.w.sector2).uuid),
            "node": str((node or self.w.b12).uuid),
            "role": role,
        }

    def test_a_coordinator_grants_a_role(self):
        response = self.api(self.w.coord, "post", "/memberships", self.payload())
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["role"], body["node"]["code"], body["user"]["username"]),
            ("block_liaison", "S01-M002", "sector2"),
        )
        membership = Membership.objects.get(uuid=body["uuid"])
        self.assertEqual(membership.created_by, self.w.coord)
        self.assertEqual(
            AuditEvent.objects.get(action="accounts.membership.grant", object_id=body["uuid"]).channel, "api"
        )

    def test_access_matrix(self):
        before = Membership.objects.count()
        self.assert_error(self.api(None, "post", "/memberships", self.payload()), 401)
        self.assert_error(self.api(self.w.other_coord, "post", "/memberships", self.payload()), 404)
        self.assert_error(self.api(self.w.sector2, "post", "/memberships", self.payload()), 404)
        self.assert_error(self.api(self.w.sector1, "post", "/memberships", self.payload()), 403)
        self.assert_error(self.api(self.w.observer, "post", "/memberships", self.payload()), 403)
        self.assert_error(self.api(self.w.block1, "post", "/memberships", self.payload(node=self.w.b11)), 403)
        self.assertEqual(Membership.objects.count(), before)
        self.assertEqual(self.denied_events("accounts.membership.grant"), 5)

    def test_it_explains_bad_input(self):
        before = Membership.objects.count()
        cases = [
            (self.payload(role="emperor"), 422),  # unknown role
            (self.payload(role="coordinator"), 400),  # a coordinator sits at a municipality
            (self.payload(role="national_observer", node=self.w.esc_node), 400),
            ({**self.payload(), "user": "nope"}, 404),
            ({**self.payload(), "user": str(uuid.uuid4())}, 404),
            (self.payload(user=self.w.other_coord), 404),  # a user of another municipality
            (self.payload(user=self.w.nobody), 404),  # a user outside the territory
            ({**self.payload(), "node": "nope"}, 404),
            ({"user": str(self.w.sector2.uuid)}, 422),
        ]
        for payload, status in cases:
            with self.subTest(payload=payload):
                body = self.assert_error(self.api(self.w.coord, "post", "/memberships", payload), status)
                if status in (404, 422):
                    self.assertTrue(body["errors"])
        self.assertEqual(Membership.objects.count(), before)


class EndMembershipTests(ApiTestCase):
    def url(self, user=None):
        return f"/memberships/{Membership.objects.get(user=user or self.w.block1).uuid}/end"

    def test_a_coordinator_ends_a_membership(self):
        response = self.api(self.w.coord, "post", self.url())
        self.assertEqual(response.status_code, 200, response.content)
        self.assertFalse(response.json()["active"])
        self.assertIsNotNone(Membership.objects.get(user=self.w.block1).ended_at)
        # Without it, block1 reaches nothing any more.
        self.assertEqual(self.api(self.w.block1, "get", "/nodes").json()["count"], 0)

    def test_access_matrix(self):
        url = self.url()
        self.assert_error(self.api(None, "post", url), 401)
        self.assert_error(self.api(self.w.other_coord, "post", url), 404)
        self.assert_error(self.api(self.w.sector2, "post", url), 404)
        self.assert_error(self.api(self.w.observer, "post", url), 404)
        self.assert_error(self.api(self.w.sector1, "post", url), 403)
        self.assert_error(self.api(self.w.block1, "post", url), 403)
        self.assertIsNone(Membership.objects.get(user=self.w.block1).ended_at)
        self.assertEqual(self.denied_events("accounts.membership.end"), 5)

    def test_it_answers_404_for_forged_and_malformed_ids(self):
        for key in (uuid.uuid4(), "nope", Membership.objects.get(user=self.w.block1).pk):
            self.assert_error(self.api(self.w.coord, "post", f"/memberships/{key}/end"), 404)


class UserListTests(ApiTestCase):
    def test_a_coordinator_lists_the_people_of_their_territory(self):
        response = self.api(self.w.coord, "get", "/users")
        self.assertEqual(response.status_code, 200)
        users = {u["username"]: u for u in response.json()["items"]}
        self.assertEqual(
            sorted(users), ["block1", "caseworker", "coord", "operator", "sector1", "sector2", "volunteer"]
        )
        self.assertEqual([m["role"] for m in users["sector1"]["memberships"]], ["sector_liaison"])

    def test_it_shows_only_the_memberships_the_caller_manages(self):
        from redes.accounts.services import grant_membership

        grant_membership(self.w.sector1, self.w.ab, "volunteer")  # also a volunteer in Acapulco
        users = {u["username"]: u for u in self.api(self.w.coord, "get", "/users").json()["items"]}
        self.assertEqual([m["node"]["code"] for m in users["sector1"]["memberships"]], ["S01"])
        users = {u["username"]: u for u in self.api(self.w.other_coord, "get", "/users").json()["items"]}
        self.assertEqual([m["node"]["code"] for m in users["sector1"]["memberships"]], ["A1-Z1-G1-M1"])

    def test_it_searches(self):
        body = self.api(self.w.coord, "get", "/users?q=sergio").json()
        self.assertEqual([u["username"] for u in body["items"]], ["sector1"])
        self.assertEqual(self.api(self.w.coord, "get", "/users?municipality=19021").json()["count"], 7)

    def test_access_matrix(self):
        self.assert_error(self.api(None, "get", "/users"), 401)
        for user in (self.w.observer, self.w.sector1, self.w.operator, self.w.caseworker, self.w.nobody):
            response = self.api(user, "get", "/users")
            self.assert_error(response, 403)
            self.assertNotIn("Sergio", response.content.decode())
        users = [u["username"] for u in self.api(self.w.other_coord, "get", "/users").json()["items"]]
        self.assertEqual(users, ["other_coord"])
        self.assert_error(self.api(self.w.other_coord, "get", "/users?municipality=19021"), 404)


class UserCreateTests(ApiTestCase):
    def payload(self, **extra):
        return {
            "username": "nueva",
            "full_name": "Nadia Nueva",
            "email": "nadia@example.org",
            "phone": "81 1111 2222",
            "password": "una-clave-muy-larga-9",
            "node": str(self.w.b12.uuid),
            "role": "block_liaison",
            **extra,
        }

    def test_a_coordinator_creates_a_user_with_a_role(self):
        response = self.api(self.w.coord, "post", "/users", self.payload())
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual((body["username"], body["phone"]), ("nueva", "+528111112222"))
        self.assertEqual([m["node"]["code"] for m in body["memberships"]], ["S01-M002"])
        user = User.objects.get(username="nueva")
        self.assertTrue(user.check_password("una-clave-muy-larga-9"))
        self.assertTrue(Membership.objects.filter(user=user, node=self.w.b12, role="block_liaison").exists())
        self.assertNotIn("password", response.content.decode())

    def test_access_matrix(self):
        before = (User.objects.count(), Membership.objects.count())
        self.assert_error(self.api(None, "post", "/users", self.payload()), 401)
        self.assert_error(self.api(self.w.other_coord, "post", "/users", self.payload()), 404)
        self.assert_error(self.api(self.w.sector2, "post", "/users", self.payload()), 404)
        self.assert_error(self.api(self.w.sector1, "post", "/users", self.payload()), 403)
        self.assert_error(self.api(self.w.observer, "post", "/users", self.payload()), 403)
        self.assertEqual((User.objects.count(), Membership.objects.count()), before)
        self.assertFalse(User.objects.filter(username="nueva").exists())
        self.assertEqual(self.denied_events("accounts.user.create"), 4)

    def test_it_creates_nothing_when_anything_is_wrong(self):
        before = (User.objects.count(), Membership.objects.count())
        cases = [
            (self.payload(username="coord"), 400),  # taken
            (self.payload(username="COORD"), 400),  # taken, whatever the case
            (
                self.payload(role="coordinator"),
                400,
            ),  # the user would be created, the role refused: all rolled back
            (self.payload(role="emperor"), 422),
            (self.payload(password="123"), 400),
            (self.payload(phone="123"), 400),
            (self.payload(email="not-an-email"), 400),
            (self.payload(username=""), 400),
            (self.payload(node="nope"), 404),
            ({"username": "nueva"}, 422),
        ]
        for payload, status in cases:
            with self.subTest(payload=payload):
                self.assert_error(self.api(self.w.coord, "post", "/users", payload), status)
        self.assertEqual((User.objects.count(), Membership.objects.count()), before)
        self.assertFalse(User.objects.filter(username="nueva").exists())

    def test_field_errors_name_the_field(self):
        body = self.assert_error(
            self.api(self.w.coord, "post", "/users", self.payload(email="not-an-email")), 400
        )
        self.assertEqual(body["errors"][0]["loc"], ["body", "email"])

    def test_a_user_without_password_cannot_log_in(self):
        response = self.api(self.w.coord, "post", "/users", self.payload(password=None))
        self.assertEqual(response.status_code, 201, response.content)
        self.assertFalse(User.objects.get(username="nueva").has_usable_password())
