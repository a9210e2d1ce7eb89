"""Liaison posts on the node page: the panel, assigning, ending, the history; and the vacant posts page."""

import datetime as dt

from django.test import override_settings
from django.utils import timezone

from redes.audit.models import AuditEvent, Outcome
from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import assign_liaison

from .base import RedesTestCase


def url(node, suffix=""):
    return f"/territory/{node.uuid}/{suffix}"


def posts():
    return sorted(
        LiaisonAssignment.objects.values_list(
            "node_id", "full_name", "phone", "start_date", "end_date", "end_reason"
        )
    )


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class AssignTests(RedesTestCase):
    def assign(self, actor, node, htmx=False, **data):
        payload = {
            "assign-full_name": "Rosa Nueva",
            "assign-phone": "81 1111 2222",
            "assign-start_date": timezone.localdate().isoformat(),
        }
        payload.update({f"assign-{k}": v for k, v in data.items()})
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client_for(actor).post(url(node, "liaison/assign/"), payload, headers=headers)

    def test_anonymous_users_are_sent_to_sign_in(self):
        before = posts()
        self.assertEqual(self.assign(None, self.w.b12).status_code, 302)
        self.assertEqual(posts(), before)

    def test_denials_change_nothing(self):
        before = posts()
        cases = [
            (self.w.other_coord, self.w.b12, 404),  # another municipality
            (self.w.sector2, self.w.b12, 404),  # another sector
            (self.w.nobody, self.w.b12, 404),
            (self.w.observer, self.w.b12, 403),  # sees it, may not write
            (self.w.state_observer, self.w.s2, 403),
            (self.w.block1, self.w.b11, 403),  # not strictly below their own node
            (self.w.sector1, self.w.s1, 403),  # a sector liaison cannot appoint their own successor
            (self.w.operator, self.w.b12, 403),
            (self.w.volunteer, self.w.b12, 403),
        ]
        for user, node, status in cases:
            self.assertEqual(self.assign(user, node).status_code, status, f"{user} on {node.code}")
            self.assertEqual(self.assign(user, node, htmx=True).status_code, status)
        self.assertEqual(posts(), before)
        self.assertTrue(
            AuditEvent.objects.filter(
                action="liaisons.assignment.create", outcome=Outcome.DENIED, actor=self.w.observer
            ).exists()
        )

    def test_a_sector_liaison_assigns_a_block_liaison(self):
        response = self.assign(self.w.sector1, self.w.b12)
        self.assertRedirects(response, url(self.w.b12) + "#liaison", fetch_redirect_response=False)
        post = LiaisonAssignment.objects.get(node=self.w.b12)
        self.assertEqual((post.full_name, post.phone), ("Rosa Nueva", "+528111112222"))
        self.assertEqual(post.created_by, self.w.sector1)
        event = AuditEvent.objects.get(action="liaisons.assignment.create", object_id=str(post.uuid))
        self.assertEqual(event.channel, "web")
        page = self.client_for(self.w.sector1).get(url(self.w.b12))
        self.assertContains(page, "Rosa Nueva")

    def test_htmx_gets_the_refreshed_panel_with_the_history(self):
        response = self.assign(self.w.coord, self.w.b11, htmx=True, full_name="Beto Relevo")
        self.assertEqual(response.status_code, 200)
        html = response.content.decode()
        self.assertNotIn("<html", html)
        self.assertIn('id="liaison"', html)
        self.assertIn("Beto Relevo", html)
        self.assertIn("Blanca Manzana", html)  # the previous holder, now in the history
        self.w.b11_post.refresh_from_db()
        self.assertEqual(self.w.b11_post.end_date, timezone.localdate())

    def test_a_linked_user_must_hold_a_role_at_the_unit(self):
        response = self.assign(self.w.coord, self.w.b11, user=str(self.w.block1.uuid))
        self.assertEqual(response.status_code, 302)
        self.assertEqual(LiaisonAssignment.objects.get(node=self.w.b11, end_date=None).user, self.w.block1)
        before = posts()
        for stranger in (self.w.other_coord, self.w.sector2):
            response = self.assign(self.w.coord, self.w.b12, user=str(stranger.uuid))
            self.assertEqual(response.status_code, 200)
            self.assertTrue(response.context["assign_form"].errors["user"])
        self.assertEqual(posts(), before)

    def test_bad_input_is_a_form_error_and_changes_nothing(self):
        before = posts()
        bad = [
            {"full_name": ""},
            {"full_name": "   "},
            {"phone": "123"},
            {"phone": "not a phone"},
            {"start_date": "31/31/2026"},
            {"start_date": ""},
            {"start_date": "2025-12-01"},  # before the current holder started (B11 held since 2026-01-05)
            {"user": "not-a-uuid"},
            {"full_name": "x" * 300},
        ]
        for data in bad:
            for htmx in (False, True):
                response = self.assign(self.w.coord, self.w.b11, htmx=htmx, **data)
                self.assertEqual(response.status_code, 200, data)
                self.assertTrue(response.context["assign_form"].errors, data)
                self.assertContains(response, "errorlist")
        self.assertEqual(posts(), before)

    def test_the_municipality_post_is_not_the_coordinators_to_fill(self):
        self.assertEqual(self.assign(self.w.coord, self.w.esc_node).status_code, 403)
        self.assertEqual(self.assign(self.w.root, self.w.esc_node).status_code, 302)

    def test_liaison_posts_do_not_exist_above_municipalities(self):
        response = self.assign(self.w.root, self.w.state_nl)
        self.assertEqual(response.status_code, 200)
        self.assertFalse(LiaisonAssignment.objects.filter(node=self.w.state_nl).exists())

    def test_get_is_not_allowed_on_the_form_endpoints(self):
        client = self.client_for(self.w.coord)
        self.assertEqual(client.get(url(self.w.b12, "liaison/assign/")).status_code, 405)
        self.assertEqual(client.get(url(self.w.b12, "liaison/end/")).status_code, 405)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class EndTests(RedesTestCase):
    def end(self, user, node, htmx=False, reason="Se mudó"):
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client_for(user).post(url(node, "liaison/end/"), {"end-reason": reason}, headers=headers)

    def test_denials_change_nothing(self):
        before = posts()
        cases = [
            (None, self.w.b11, 302),
            (self.w.other_coord, self.w.b11, 404),
            (self.w.sector2, self.w.b11, 404),
            (self.w.observer, self.w.b11, 403),
            (self.w.block1, self.w.b11, 403),
            (self.w.sector1, self.w.s1, 403),
        ]
        for user, node, status in cases:
            self.assertEqual(self.end(user, node).status_code, status, f"{user} on {node.code}")
        self.assertEqual(posts(), before)

    def test_a_sector_liaison_ends_a_block_post(self):
        response = self.end(self.w.sector1, self.w.b11, htmx=True)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Vacant")
        self.w.b11_post.refresh_from_db()
        self.assertEqual(self.w.b11_post.end_reason, "Se mudó")
        self.assertIsNotNone(self.w.b11_post.end_date)
        self.assertTrue(AuditEvent.objects.filter(action="liaisons.assignment.end").exists())

    def test_ending_a_vacant_post_or_without_reason_is_a_form_error(self):
        before = posts()
        for node, reason in ((self.w.b12, "x"), (self.w.b11, ""), (self.w.b11, "y" * 300)):
            for htmx in (False, True):
                response = self.end(self.w.coord, node, htmx=htmx, reason=reason)
                self.assertEqual(response.status_code, 200)
                self.assertTrue(response.context["end_form"].errors)
        self.assertEqual(posts(), before)

    def test_a_post_that_has_not_started_cannot_end_today(self):
        future = timezone.localdate() + dt.timedelta(days=30)
        assign_liaison(self.w.b12, full_name="Futura", start_date=future)
        response = self.end(self.w.coord, self.w.b12)
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "before it started")


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class PanelTests(RedesTestCase):
    def test_the_panel_as_a_page_and_as_a_fragment(self):
        client = self.client_for(self.w.coord)
        page = client.get(url(self.w.b11, "liaison/"))
        self.assertContains(page, "<html")
        self.assertContains(page, "Blanca Manzana")
        fragment = client.get(url(self.w.b11, "liaison/"), headers={"HX-Request": "true"})
        self.assertNotContains(fragment, "<html")
        self.assertContains(fragment, "Blanca Manzana")

    def test_the_history_lists_past_holders(self):
        assign_liaison(
            self.w.b11, full_name="Segunda Persona", start_date=dt.date(2026, 3, 1), reason="Renuncia"
        )
        html = self.client_for(self.w.sector1).get(url(self.w.b11)).content.decode()
        self.assertIn("Segunda Persona", html)
        self.assertIn("Blanca Manzana", html)
        self.assertIn("Renuncia", html)

    def test_observers_see_that_a_post_is_held_but_not_by_whom(self):
        response = self.client_for(self.w.observer).get(url(self.w.b11, "liaison/"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Liaison assigned")
        for secret in ("Blanca Manzana", "+528112345679", "8112345679", "1234 5679"):
            self.assertNotContains(response, secret)

    def test_access_matrix(self):
        self.assertEqual(self.client_for(None).get(url(self.w.b11, "liaison/")).status_code, 302)
        self.assertEqual(
            self.client_for(self.w.other_coord).get(url(self.w.b11, "liaison/")).status_code, 404
        )
        self.assertEqual(self.client_for(self.w.sector2).get(url(self.w.b11, "liaison/")).status_code, 404)
        self.assertEqual(self.client_for(self.w.block1).get(url(self.w.b11, "liaison/")).status_code, 200)

    def test_only_those_who_may_assign_get_the_forms(self):
        html = self.client_for(self.w.block1).get(url(self.w.b11)).content.decode()
        self.assertIn("Blanca Manzana", html)
        self.assertNotIn("liaison/assign/", html)
        html = self.client_for(self.w.sector1).get(url(self.w.b11)).content.decode()
        self.assertIn("liaison/assign/", html)
        self.assertIn('hx-post="' + url(self.w.b11, "liaison/assign/"), html)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class VacantPageTests(RedesTestCase):
    def test_it_lists_the_vacant_posts_below_a_node(self):
        response = self.client_for(self.w.coord).get(url(self.w.esc_node, "vacant/"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual({n.code for n in response.context["rows"]}, {"S02", "S01-M002", "S02-M001"})
        self.assertContains(response, "Manzana")

    def test_assign_links_only_where_one_may_assign(self):
        rows = self.client_for(self.w.sector1).get(url(self.w.s1, "vacant/")).context["rows"]
        self.assertEqual([(n.code, n.assignable) for n in rows], [("S01-M002", True)])
        rows = self.client_for(self.w.observer).get(url(self.w.esc_node, "vacant/")).context["rows"]
        self.assertFalse(any(n.assignable for n in rows))

    def test_observers_see_units_but_no_people(self):
        response = self.client_for(self.w.observer).get(url(self.w.nation, "vacant/"))
        self.assertEqual(response.status_code, 200)
        self.assertIn("S02", {n.code for n in response.context["rows"]})
        for secret in ("Sergio Sector", "Blanca Manzana", "Alma Acapulco", "+52"):
            self.assertNotContains(response, secret)

    def test_access_matrix(self):
        get = lambda user, node: self.client_for(user).get(url(node, "vacant/")).status_code  # noqa: E731
        self.assertEqual(get(None, self.w.esc_node), 302)
        self.assertEqual(get(self.w.other_coord, self.w.esc_node), 404)
        self.assertEqual(get(self.w.sector2, self.w.s1), 404)
        self.assertEqual(get(self.w.volunteer, self.w.s1), 403)  # sees the tree, not the figures
        self.assertEqual(get(self.w.state_observer, self.w.esc_node), 200)
        self.assertEqual(get(self.w.sector1, self.w.s1), 200)

    def test_pagination_input_does_not_fail(self):
        client = self.client_for(self.w.coord)
        for page in ("0", "2", "x", "99999"):
            self.assertEqual(client.get(url(self.w.esc_node, "vacant/"), {"page": page}).status_code, 200)
