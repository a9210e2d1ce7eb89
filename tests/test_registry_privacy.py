"""Sensitive data stays out of every place that is not the case officer's audited read."""

from django.db import connection

from redes.audit.models import AuditEvent
from redes.registry import services
from redes.registry.models import Person

from .base import RedesTestCase

SECRET_NOTE = "diagnostico-secreto-xyz"


class SensitiveDataPlacesTests(RedesTestCase):
    def setUp(self):
        w = self.w
        services.publish_notice(w.esc, version="1", text="Aviso")
        self.house = services.create_household(w.b11, street="Morelos", ext_number="3")
        self.person = services.add_person(
            self.house, full_name="Lucía Ramos Gil", age=35, check_duplicates=False
        )
        services.record_consent(
            self.person, purposes=["aid", "contact"], sensitive=True, channel="in_person", actor=w.block1
        )
        services.set_sensitive(self.person, actor=w.caseworker, factors=["violence_risk"], notes=SECRET_NOTE)
        self.person.refresh_from_db()

    def test_only_ciphertext_in_the_database(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT sensitive_data FROM registry_person WHERE id = %s", [self.person.pk])
            (stored,) = cursor.fetchone()
        self.assertTrue(stored)
        self.assertNotIn(SECRET_NOTE, stored)
        self.assertNotIn("violence", stored)

    def test_audit_rows_name_no_sensitive_content(self):
        services.read_sensitive(self.person, actor=self.w.caseworker)
        for event in AuditEvent.objects.filter(action__startswith="registry."):
            blob = f"{event.summary} {event.changes}"
            self.assertNotIn(SECRET_NOTE, blob)
            self.assertNotIn("violence_risk", blob)

    def test_admin_pages_show_no_sensitive_data(self):
        client = self.client_for(self.w.root)
        for url in (
            f"/admin/registry/person/{self.person.pk}/change/",
            "/admin/registry/person/",
            f"/admin/registry/household/{self.house.pk}/change/",
        ):
            response = client.get(url)
            self.assertEqual(response.status_code, 200, url)
            body = response.content.decode()
            self.assertNotIn(SECRET_NOTE, body)
            self.assertNotIn(Person.objects.get(pk=self.person.pk).sensitive_data[:40], body)

    def test_exports_carry_sensitive_data_only_for_case_officers(self):
        for user in (self.w.coord, self.w.block1, self.w.operator, None):
            data = services.export_person(self.person, actor=user)
            self.assertNotIn(SECRET_NOTE, str(data))
            self.assertNotIn("violence_risk", str(data))
        self.assertEqual(
            services.export_person(self.person, actor=self.w.caseworker)["sensitive"]["notes"], SECRET_NOTE
        )

    def test_household_explanation_is_stored_folded(self):
        self.house.refresh_from_db()
        self.assertNotIn("violence_risk", str(self.house.priority_explanation))
        self.assertEqual(self.house.priority_explanation[0]["factor"], "protected")
        for user in (self.w.coord, self.w.block1, self.w.operator, self.w.caseworker, self.w.observer):
            lines = services.explain_priority(self.house, user)
            self.assertNotIn("violence_risk", [line["factor"] for line in lines], user)

    def test_superusers_are_not_case_officers(self):
        from django.core.exceptions import PermissionDenied

        with self.assertRaises(PermissionDenied):
            services.read_sensitive(self.person, actor=self.w.root)
        with self.assertRaises(PermissionDenied):
            services.read_sensitive(self.person, actor=None)
        self.assertNotIn(SECRET_NOTE, str(services.export_person(self.person, actor=self.w.root)))
        self.assertTrue(
            AuditEvent.objects.filter(
                action="registry.sensitive.read", outcome="denied", actor=self.w.root
            ).exists()
        )
