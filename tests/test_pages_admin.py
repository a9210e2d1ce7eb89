"""The admin site: superusers only; the audit log and the tree are read-only there."""

from django.test import override_settings
from django.urls import reverse

from redes.accounts.models import ApiToken, Membership
from redes.audit.models import AuditEvent
from redes.liaisons.models import LiaisonAssignment
from redes.territories.models import Municipality, Node

from .base import RedesTestCase

MODELS = (Node, Municipality, Membership, ApiToken, LiaisonAssignment, AuditEvent)


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class AdminTests(RedesTestCase):
    def test_non_superusers_are_sent_away(self):
        for user in (None, self.w.coord, self.w.observer):
            response = self.client_for(user).get("/admin/")
            self.assertEqual(response.status_code, 302)
            self.assertIn("/admin/login/", response["Location"])

    def test_superusers_open_every_list_and_record(self):
        client = self.client_for(self.w.root)
        self.assertEqual(client.get("/admin/").status_code, 200)
        for model in (*MODELS, type(self.w.coord)):
            meta = model._meta
            changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
            self.assertEqual(client.get(changelist).status_code, 200, changelist)
            obj = model.objects.first()
            if obj is not None:
                change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
                self.assertEqual(client.get(change).status_code, 200, change)

    def test_the_audit_log_cannot_be_added_to_changed_or_deleted(self):
        client = self.client_for(self.w.root)
        event = AuditEvent.objects.first()
        before = AuditEvent.objects.count()
        self.assertEqual(client.get(reverse("admin:audit_auditevent_add")).status_code, 403)
        self.assertEqual(
            client.get(reverse("admin:audit_auditevent_delete", args=[event.pk])).status_code, 403
        )
        response = client.post(
            reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "forged"}
        )
        self.assertEqual(response.status_code, 403)
        event.refresh_from_db()
        self.assertNotEqual(event.action, "forged")
        self.assertEqual(AuditEvent.objects.count(), before)

    def test_the_tree_cannot_be_edited_in_the_admin(self):
        client = self.client_for(self.w.root)
        response = client.post(reverse("admin:territories_node_change", args=[self.w.s1.pk]), {"name": "X"})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(client.get(reverse("admin:territories_node_add")).status_code, 403)
        self.w.s1.refresh_from_db()
        self.assertEqual(self.w.s1.name, "Sector 1")

    def test_ending_memberships_from_the_admin_goes_through_the_service(self):
        client = self.client_for(self.w.root)
        membership = Membership.objects.get(user=self.w.block1)
        response = client.post(
            reverse("admin:accounts_membership_changelist"),
            {"action": "end_selected", "_selected_action": [membership.pk]},
        )
        self.assertEqual(response.status_code, 302)
        membership.refresh_from_db()
        self.assertIsNotNone(membership.ended_at)
        self.assertTrue(AuditEvent.objects.filter(action="accounts.membership.end", channel="admin").exists())

    def test_user_edits_in_the_admin_are_audited(self):
        client = self.client_for(self.w.root)
        user = self.w.nobody
        data = {
            "username": "nobody",
            "full_name": "Nadie Nuevo",
            "phone": "",
            "email": "",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        }
        response = client.post(reverse("admin:accounts_user_change", args=[user.pk]), data)
        self.assertEqual(
            response.status_code, 302, getattr(response, "context", None) and response.context.get("errors")
        )
        user.refresh_from_db()
        self.assertEqual(user.full_name, "Nadie Nuevo")
        self.assertTrue(
            AuditEvent.objects.filter(action="accounts.user.admin_change", channel="admin").exists()
        )
