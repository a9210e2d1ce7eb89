"""Users and memberships for coordinators: list, create, detail, grant and end."""

from django.test import override_settings

from redes.accounts.models import Membership, User
from redes.accounts.roles import Role
from redes.accounts.services import grant_membership
from redes.audit.models import AuditEvent, Outcome

from .base import PASSWORD, RedesTestCase

NEW_PASSWORD = "otra-clave-larga-2026"


def memberships():
    return sorted(Membership.objects.values_list("user_id", "node_id", "role", "ended_at"))


def users():
    return sorted(User.objects.values_list("username", flat=True))


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class UserListTests(RedesTestCase):
    def test_access_matrix(self):
        self.assertEqual(self.client_for(None).get("/users/").status_code, 302)
        for user in (self.w.sector1, self.w.sector2, self.w.observer, self.w.operator, self.w.nobody):
            self.assertEqual(self.client_for(user).get("/users/").status_code, 403, user)
        self.assertEqual(self.client_for(self.w.coord).get("/users/").status_code, 200)

    def test_a_coordinator_lists_the_people_of_their_municipality_only(self):
        response = self.client_for(self.w.coord).get("/users/")
        names = {row["user"].username for row in response.context["rows"]}
        self.assertIn("block1", names)
        self.assertIn("coord", names)
        self.assertNotIn("other_coord", names)
        self.assertNotIn("observer", names)
        self.assertNotIn("nobody", names)
        self.assertContains(response, "Block liaison")

    def test_another_coordinator_sees_only_theirs(self):
        response = self.client_for(self.w.other_coord).get("/users/")
        self.assertEqual({row["user"].username for row in response.context["rows"]}, {"other_coord"})
        self.assertNotContains(response, "Blanca Manzana")

    def test_search_and_pagination_input(self):
        client = self.client_for(self.w.coord)
        response = client.get("/users/", {"q": "blanca"})
        self.assertEqual([row["user"].username for row in response.context["rows"]], ["block1"])
        for params in ({"page": "x"}, {"page": "999"}, {"q": "%' --"}):
            self.assertEqual(client.get("/users/", params).status_code, 200)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class UserCreateTests(RedesTestCase):
    def data(self, **changes):
        data = {
            "username": "nueva",
            "full_name": "Nueva Enlace",
            "phone": "8119998877",
            "email": "",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "municipality": str(self.w.esc.uuid),
            "node_code": "S02-M001",
            "role": Role.BLOCK_LIAISON.value,
        }
        data.update(changes)
        return data

    def test_denials_change_nothing(self):
        before = (users(), memberships())
        self.assertEqual(self.client_for(None).post("/users/new/", self.data()).status_code, 302)
        for user in (self.w.sector1, self.w.sector2, self.w.observer, self.w.volunteer):
            self.assertEqual(self.client_for(user).post("/users/new/", self.data()).status_code, 403)
            self.assertEqual(self.client_for(user).get("/users/new/").status_code, 403)
        self.assertEqual((users(), memberships()), before)
        self.assertTrue(
            AuditEvent.objects.filter(action="accounts.user.create", outcome=Outcome.DENIED).exists()
        )

    def test_another_coordinator_cannot_place_a_user_in_escobedo(self):
        before = (users(), memberships())
        response = self.client_for(self.w.other_coord).post("/users/new/", self.data())
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.context["form"].errors)
        response = self.client_for(self.w.other_coord).post(
            "/users/new/", self.data(municipality=str(self.w.aca.uuid))
        )
        self.assertContains(response, "No unit with the code")
        self.assertEqual((users(), memberships()), before)

    def test_a_coordinator_creates_a_user_with_a_role(self):
        response = self.client_for(self.w.coord).post("/users/new/", self.data())
        user = User.objects.get(username="nueva")
        self.assertRedirects(response, f"/users/{user.uuid}/", fetch_redirect_response=False)
        self.assertEqual(user.phone, "+528119998877")
        self.assertTrue(user.check_password(NEW_PASSWORD))
        membership = Membership.objects.get(user=user)
        self.assertEqual((membership.node, membership.role), (self.w.b21, Role.BLOCK_LIAISON))
        self.assertEqual(membership.created_by, self.w.coord)
        self.assertTrue(
            AuditEvent.objects.filter(action="accounts.membership.grant", actor=self.w.coord).exists()
        )

    def test_the_municipality_field_is_hidden_with_a_single_municipality(self):
        response = self.client_for(self.w.coord).get("/users/new/")
        self.assertContains(response, f'type="hidden" name="municipality" value="{self.w.esc.uuid}"')

    def test_codes_are_found_regardless_of_case_and_the_municipality_key_works(self):
        client = self.client_for(self.w.coord)
        client.post("/users/new/", self.data(node_code="s01-m002"))
        self.assertEqual(Membership.objects.get(user__username="nueva").node, self.w.b12)
        client.post(
            "/users/new/", self.data(username="op2", node_code="19021", role=Role.HOTLINE_OPERATOR.value)
        )
        self.assertEqual(Membership.objects.get(user__username="op2").node, self.w.esc_node)

    def test_bad_input_is_a_form_error_and_nothing_is_half_written(self):
        before = (users(), memberships())
        bad = [
            {"username": ""},
            {"username": "COORD"},  # taken, in another case
            {"username": "bad name!"},
            {"password2": "something-else-1"},
            {"password1": "123", "password2": "123"},  # too weak
            {"phone": "12"},
            {"email": "not-an-email"},
            {"node_code": "NOPE"},
            {"node_code": "A1"},  # another municipality's unit
            {"node_code": "19021", "role": Role.BLOCK_LIAISON.value},  # a unit role at the municipality
            {"role": Role.NATIONAL_OBSERVER.value},
            {"role": "king"},
            {"role": ""},
            {"municipality": "garbage"},
            {"municipality": str(self.w.aca.uuid)},
        ]
        client = self.client_for(self.w.coord)
        for changes in bad:
            response = client.post("/users/new/", self.data(**changes))
            self.assertEqual(response.status_code, 200, changes)
            self.assertTrue(response.context["form"].errors, changes)
            self.assertContains(response, "errorlist")
        self.assertEqual((users(), memberships()), before)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class UserDetailTests(RedesTestCase):
    def detail(self, viewer, target, data=None):
        client = self.client_for(viewer)
        path = f"/users/{target.uuid}/"
        return client.post(path, data) if data is not None else client.get(path)

    def test_access_matrix(self):
        self.assertEqual(self.detail(None, self.w.block1).status_code, 302)
        self.assertEqual(self.detail(self.w.other_coord, self.w.block1).status_code, 404)
        self.assertEqual(self.detail(self.w.coord, self.w.other_coord).status_code, 404)
        self.assertEqual(self.detail(self.w.coord, self.w.observer).status_code, 404)
        self.assertEqual(self.detail(self.w.coord, self.w.nobody).status_code, 404)
        self.assertEqual(self.client_for(self.w.coord).get("/users/not-a-uuid/").status_code, 404)
        for user in (self.w.sector1, self.w.sector2, self.w.observer):
            self.assertEqual(self.detail(user, self.w.block1).status_code, 403)
        response = self.detail(self.w.coord, self.w.block1)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Blanca Manzana")

    def test_a_user_with_roles_in_two_municipalities_shows_only_the_local_one(self):
        grant_membership(self.w.block1, self.w.aca_node, Role.VOLUNTEER)
        response = self.detail(self.w.other_coord, self.w.block1)
        self.assertEqual(response.status_code, 200)
        self.assertEqual([m.node for m in response.context["active"]], [self.w.aca_node])
        self.assertNotContains(response, "S01-M001")

    def test_a_coordinator_grants_a_role(self):
        data = {
            "grant-municipality": str(self.w.esc.uuid),
            "grant-node_code": "S01",
            "grant-role": "volunteer",
        }
        response = self.detail(self.w.coord, self.w.block1, data)
        self.assertEqual(response.status_code, 302)
        self.assertTrue(
            Membership.objects.active().filter(user=self.w.block1, node=self.w.s1, role="volunteer").exists()
        )

    def test_granting_denials_and_bad_input_change_nothing(self):
        before = memberships()
        good = {
            "grant-municipality": str(self.w.esc.uuid),
            "grant-node_code": "S01",
            "grant-role": "volunteer",
        }
        self.assertEqual(self.detail(self.w.other_coord, self.w.block1, good).status_code, 404)
        self.assertEqual(self.detail(self.w.sector1, self.w.block1, good).status_code, 403)
        self.assertEqual(self.detail(self.w.observer, self.w.block1, good).status_code, 403)
        for changes in ({"grant-node_code": "A1"}, {"grant-role": "coordinator"}, {"grant-node_code": ""}):
            response = self.detail(self.w.coord, self.w.block1, {**good, **changes})
            self.assertEqual(response.status_code, 200, changes)
            self.assertTrue(response.context["form"].errors)
        self.assertEqual(memberships(), before)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class MembershipEndTests(RedesTestCase):
    def end(self, viewer, membership):
        path = f"/users/{membership.user.uuid}/memberships/{membership.uuid}/end/"
        return self.client_for(viewer).post(path)

    def membership_of(self, user):
        return Membership.objects.active().get(user=user)

    def test_denials_change_nothing(self):
        before = memberships()
        target = self.membership_of(self.w.block1)
        self.assertEqual(self.end(None, target).status_code, 302)
        self.assertEqual(self.end(self.w.other_coord, target).status_code, 404)
        self.assertEqual(self.end(self.w.sector2, target).status_code, 403)
        self.assertEqual(self.end(self.w.sector1, target).status_code, 403)
        self.assertEqual(self.end(self.w.observer, target).status_code, 403)
        self.assertEqual(self.end(self.w.coord, self.membership_of(self.w.other_coord)).status_code, 404)
        wrong_user = f"/users/{self.w.sector1.uuid}/memberships/{target.uuid}/end/"
        self.assertEqual(self.client_for(self.w.coord).post(wrong_user).status_code, 404)
        self.assertEqual(
            self.client_for(self.w.coord)
            .get(f"/users/{target.user.uuid}/memberships/{target.uuid}/end/")
            .status_code,
            405,
        )
        self.assertEqual(memberships(), before)

    def test_a_coordinator_ends_a_role(self):
        target = self.membership_of(self.w.block1)
        response = self.end(self.w.coord, target)
        self.assertRedirects(response, f"/users/{self.w.block1.uuid}/", fetch_redirect_response=False)
        target.refresh_from_db()
        self.assertIsNotNone(target.ended_at)
        # the user stays visible to the coordinator, with the role among the ended ones
        page = self.client_for(self.w.coord).get(f"/users/{self.w.block1.uuid}/")
        self.assertEqual(page.context["ended"], [target])
        self.assertEqual(
            self.client_for(self.w.block1).get(f"/territory/{self.w.b11.uuid}/").status_code, 404
        )

    def test_a_coordinator_cannot_end_their_own_role(self):
        own = self.membership_of(self.w.coord)
        response = self.end(self.w.coord, own)
        self.assertEqual(response.status_code, 302)
        own.refresh_from_db()
        self.assertIsNone(own.ended_at)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class SignInAsNewUserTests(RedesTestCase):
    def test_the_created_user_can_sign_in_and_sees_their_unit(self):
        data = {
            "username": "manzana21",
            "full_name": "Mara Manzana",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "municipality": str(self.w.esc.uuid),
            "node_code": "S02-M001",
            "role": "block_liaison",
        }
        self.client_for(self.w.coord).post("/users/new/", data)
        from django.test import Client

        client = Client()
        self.assertEqual(
            client.post("/login/", {"username": "manzana21", "password": NEW_PASSWORD}).status_code, 302
        )
        self.assertEqual(client.get(f"/territory/{self.w.b21.uuid}/").status_code, 200)
        self.assertEqual(client.get(f"/territory/{self.w.b11.uuid}/").status_code, 404)
        self.assertNotEqual(PASSWORD, NEW_PASSWORD)
