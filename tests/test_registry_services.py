"""The registry's services: households, persons, priority, consent, sensitive data, counts, ARCO, merge."""

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError

from redes.audit.models import AuditEvent
from redes.registry import crypto, services
from redes.registry.models import BlockCounts, DataRequest, Person, RecordStatus

from .base import RedesTestCase


def curp_for(first17: str) -> str:
    from redes.core.curp import curp_check_digit

    return first17 + curp_check_digit(first17)


class RegistryServiceTests(RedesTestCase):
    def setUp(self):
        w = self.w
        self.notice = services.publish_notice(w.esc, version="2026-1", text="Aviso de privacidad")
        self.house = services.create_household(
            w.b11,
            actor=w.block1,
            street="Calle Hidalgo",
            ext_number="12",
            postal_code="66050",
            phones=[{"number": "044 81 1234 5678", "whatsapp": True}],
        )

    def add(self, **data):
        data.setdefault("check_duplicates", False)
        return services.add_person(self.house, actor=self.w.block1, **data)

    def counts(self, node):
        return (
            BlockCounts.objects.filter(node=node)
            .values("households", "persons", "priority_households", "visited_households")
            .first()
        )

    def test_household_phone_is_normalised_and_counted(self):
        self.assertEqual(list(self.house.phones.values_list("number", flat=True)), ["+528112345678"])
        self.assertEqual(self.counts(self.w.b11)["households"], 1)

    def test_a_household_must_be_on_a_block(self):
        with self.assertRaises(ValidationError):
            services.create_household(self.w.s1, actor=self.w.coord, street="X")

    def test_bad_postal_code_says_why(self):
        with self.assertRaises(ValidationError) as ctx:
            services.create_household(self.w.b11, postal_code="6605")
        self.assertIn("“6605”", str(ctx.exception))

    def test_person_from_full_name_and_priority_explained(self):
        p = self.add(full_name="Rosa María de la Cruz Núñez", age=72, factors=["job_loss"])
        self.assertEqual((p.given_name, p.surname1, p.surname2), ("Rosa María", "de la Cruz", "Núñez"))
        self.assertEqual(p.surname2_key, "nunez")
        self.house.refresh_from_db()
        factors = {line["factor"]: line["points"] for line in self.house.priority_explanation}
        self.assertEqual(factors, {"older_adult": 25, "job_loss": 20, "lives_alone": 15})
        self.assertEqual(self.house.priority, 60)
        self.assertEqual(self.counts(self.w.b11)["persons"], 1)
        self.assertEqual(self.counts(self.w.b11)["priority_households"], 1)

    def test_weights_are_per_municipality_and_recomputed(self):
        self.add(full_name="Juan Pérez", age=70)
        changed = services.set_weights(self.w.esc, {"older_adult": 50}, actor=self.w.coord)
        self.assertEqual(changed, 1)
        self.house.refresh_from_db()
        self.assertEqual(self.house.priority, 65)
        with self.assertRaises(ValidationError):
            services.set_weights(self.w.esc, {"astrology": 3}, actor=self.w.coord)

    def test_bad_curp_and_phone_say_why(self):
        with self.assertRaises(ValidationError) as ctx:
            self.add(full_name="Juan Pérez", curp="PEXJ800101HNLRRN0", phone="12345")
        self.assertIn("curp", ctx.exception.message_dict)
        self.assertIn("phone", ctx.exception.message_dict)
        self.assertFalse(Person.objects.exists())

    def test_sensitive_data_needs_consent_is_encrypted_and_every_read_audited(self):
        p = self.add(full_name="Ana López", age=40)
        with self.assertRaises(ValidationError):
            services.set_sensitive(p, actor=self.w.caseworker, factors=["disability"])
        services.record_consent(
            p, actor=self.w.block1, purposes=["aid", "contact"], sensitive=True, channel="in_person"
        )
        services.set_sensitive(p, actor=self.w.caseworker, factors=["disability"], notes="silla de ruedas")
        p.refresh_from_db()
        self.assertNotIn("disability", p.sensitive_data)
        self.assertNotIn("silla", p.sensitive_data)
        self.assertEqual(crypto.decrypt(p.sensitive_data)["factors"], ["disability"])
        for user in (self.w.block1, self.w.coord, self.w.operator, self.w.observer):
            with self.assertRaises(PermissionDenied):
                services.read_sensitive(p, actor=user)
            with self.assertRaises(PermissionDenied):
                services.set_sensitive(p, actor=user, factors=[])
        before = AuditEvent.objects.filter(action="registry.sensitive.read", outcome="ok").count()
        self.assertEqual(services.read_sensitive(p, actor=self.w.caseworker)["notes"], "silla de ruedas")
        services.read_sensitive(p, actor=self.w.caseworker)
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.sensitive.read", outcome="ok").count(), before + 2
        )
        self.assertTrue(
            AuditEvent.objects.filter(action="registry.sensitive.read", outcome="denied").exists()
        )
        self.house.refresh_from_db()
        liaison_view = services.explain_priority(self.house, self.w.block1)
        self.assertNotIn("disability", [line["factor"] for line in liaison_view])
        self.assertIn("protected", [line["factor"] for line in liaison_view])
        # Stored folded for everyone: which sensitive factor applies is read only through read_sensitive.
        self.assertNotIn("disability", str(self.house.priority_explanation))
        officer_view = services.explain_priority(self.house, self.w.caseworker)
        self.assertEqual(officer_view, liaison_view)

    def test_revoking_sensitive_consent_erases_the_sensitive_data(self):
        p = self.add(full_name="Ana López", age=40)
        consent = services.record_consent(p, purposes=["aid", "contact"], sensitive=True, channel="paper")
        services.set_sensitive(p, actor=self.w.caseworker, factors=["violence_risk"])
        services.revoke_consent(consent, actor=self.w.coord, reason="lo pidió")
        p.refresh_from_db()
        self.assertEqual(p.sensitive_data, "")
        self.house.refresh_from_db()
        self.assertNotIn("violence_risk", [line["factor"] for line in self.house.priority_explanation])

    def test_necessary_purposes_are_required(self):
        p = self.add(full_name="Ana López")
        with self.assertRaises(ValidationError):
            services.record_consent(p, purposes=["messages"], channel="phone")

    def test_key_rotation_keeps_values_readable(self):
        p = self.add(full_name="Ana López")
        services.record_consent(p, purposes=["aid", "contact"], sensitive=True, channel="paper")
        services.set_sensitive(p, actor=self.w.caseworker, factors=["pregnancy"])
        old = Person.objects.get(pk=p.pk).sensitive_data
        new_key = crypto.generate_key()
        from django.conf import settings
        from django.test import override_settings

        with override_settings(REDES_FIELD_KEYS=[new_key, *settings.REDES_FIELD_KEYS]):
            self.assertEqual(services.rotate_keys(), 1)
            rotated = Person.objects.get(pk=p.pk).sensitive_data
            self.assertNotEqual(rotated, old)
        with override_settings(REDES_FIELD_KEYS=[new_key]):
            self.assertEqual(crypto.decrypt(rotated)["factors"], ["pregnancy"])
            with self.assertRaises(crypto.SensitiveDataUnreadable):
                crypto.decrypt(old)

    def test_visit_counts_once(self):
        services.record_visit(self.house, "contacted", actor=self.w.block1)
        services.record_visit(self.house, "not_home", actor=self.w.block1)
        self.assertEqual(self.counts(self.w.b11)["visited_households"], 1)

    def test_moving_a_household_moves_its_counts_and_members(self):
        p = self.add(full_name="Ana López")
        services.update_household(self.house, actor=self.w.coord, node=self.w.b12)
        p.refresh_from_db()
        self.assertEqual(p.node_id, self.w.b12.pk)
        self.assertEqual(self.counts(self.w.b11)["households"], 0)
        self.assertEqual(self.counts(self.w.b12)["persons"], 1)

    def test_recount_matches_incremental_counts(self):
        self.add(full_name="Ana López", age=80)
        self.add(full_name="Luis López", age=30)
        services.record_visit(self.house, "contacted")
        before = self.counts(self.w.b11)
        BlockCounts.objects.all().delete()
        services.recount(self.w.esc)
        self.assertEqual(self.counts(self.w.b11), before)

    def test_business_days_skip_weekends_and_holidays(self):
        # Friday 2026-11-13 + 20 business days: Monday 16 Nov 2026 is a holiday (third Monday of November).
        self.assertEqual(services.add_business_days(dt.date(2026, 11, 13), 1), dt.date(2026, 11, 17))
        self.assertEqual(services.add_business_days(dt.date(2026, 11, 13), 20), dt.date(2026, 12, 14))

    def test_arco_rectification_cancellation_and_anonymisation(self):
        p = self.add(full_name="Ana López", age=40)
        req = services.open_data_request(p, "rectification", changes={"surname2": "Díaz"}, actor=self.w.coord)
        self.assertEqual(req.status, DataRequest.Status.OPEN)
        services.answer_data_request(req, actor=self.w.coord, response="Corregido")
        p.refresh_from_db()
        self.assertEqual(p.surname2, "Díaz")
        cancel = services.open_data_request(p, "cancellation", actor=self.w.coord)
        services.answer_data_request(cancel, actor=self.w.coord, response="Bloqueado")
        p.refresh_from_db()
        self.assertEqual(p.status, RecordStatus.BLOCKED)
        self.assertEqual(self.counts(self.w.b11)["households"], 0)
        from django.utils import timezone

        self.assertEqual(services.anonymise_due(timezone.now() + dt.timedelta(days=400)), 1)
        p.refresh_from_db()
        self.assertEqual(
            (p.status, p.surname1, p.curp, p.birth_date), (RecordStatus.ANONYMISED, "", "", None)
        )

    def test_objection_drops_an_optional_purpose(self):
        p = self.add(full_name="Ana López")
        services.record_consent(p, purposes=["aid", "contact", "messages"], channel="paper")
        req = services.open_data_request(p, "objection", purpose="messages")
        services.answer_data_request(req, response="ok")
        self.assertEqual(services.active_consent(p).purposes, ["aid", "contact"])

    def test_export_hides_sensitive_from_coordinators(self):
        p = self.add(full_name="Ana López")
        services.record_consent(p, purposes=["aid", "contact"], sensitive=True, channel="paper")
        services.set_sensitive(p, actor=self.w.caseworker, factors=["disability"])
        p.refresh_from_db()
        data = services.export_person(p, actor=self.w.coord)
        self.assertNotIn("disability", str(data))
        self.assertEqual(data["household"]["phones"][0]["number"], "+528112345678")
        data = services.export_person(p, actor=self.w.caseworker)
        self.assertEqual(data["sensitive"]["factors"], ["disability"])

    def test_merge_keeps_history(self):
        a = self.add(full_name="Ana López Díaz", birth_date="1980-02-03")
        b = self.add(full_name="Ana Lopez", birth_date="1980-02-03", curp=curp_for("LODA800203MNLPZN0"))
        merge = services.merge_persons(a, b, actor=self.w.coord)
        a.refresh_from_db()
        b.refresh_from_db()
        self.assertEqual(a.curp, b.curp if b.curp else a.curp)
        self.assertEqual(b.status, RecordStatus.MERGED)
        self.assertEqual(b.merged_into_id, a.pk)
        self.assertEqual(merge.snapshot["full_name"], "Ana Lopez")
        self.assertEqual(self.counts(self.w.b11)["persons"], 1)


class RegistryQueryTests(RedesTestCase):
    def test_search_by_any_name_order_accents_and_scope(self):
        from redes.registry import queries

        w = self.w
        house = services.create_household(w.b11, street="Hidalgo", ext_number="1")
        other = services.create_household(w.b21, street="Juárez", ext_number="2")
        services.add_person(house, full_name="Rosa María Núñez de la Cruz", check_duplicates=False)
        services.add_person(other, full_name="Rosa Núñez Pérez", check_duplicates=False)

        def names(user, q):
            return sorted(p.full_name for p in queries.search_persons(user, q))

        self.assertEqual(names(w.coord, "nunez rosa"), ["Rosa María Núñez de la Cruz", "Rosa Núñez Pérez"])
        self.assertEqual(names(w.coord, "maria nuñ"), ["Rosa María Núñez de la Cruz"])
        self.assertEqual(names(w.coord, "de la cruz"), ["Rosa María Núñez de la Cruz"])
        self.assertEqual(names(w.sector1, "rosa"), ["Rosa María Núñez de la Cruz"])
        self.assertEqual(names(w.sector2, "rosa"), ["Rosa Núñez Pérez"])
        for user in (w.observer, w.state_observer, w.volunteer, w.other_coord, w.nobody):
            self.assertEqual(names(user, "rosa"), [])
        self.assertEqual([h.pk for h in queries.block_households(w.block1, w.b11)], [house.pk])
        self.assertEqual(list(queries.block_households(w.block1, w.b21)), [])


class DuplicateOnEntryTests(RedesTestCase):
    def test_entry_flags_a_likely_duplicate_across_the_municipality_but_not_family(self):
        w = self.w
        h1 = services.create_household(w.b11, street="Hidalgo", ext_number="1", postal_code="66050")
        h2 = services.create_household(w.b21, street="Juárez", ext_number="9", postal_code="66055")
        curp = curp_for("CUHM800203MNLRRR0")
        services.add_person(h1, full_name="María de la Cruz Hernández", birth_date="1980-02-03", curp=curp)
        sister = services.add_person(h1, full_name="Juana de la Cruz Hernández", birth_date="1983-07-11")
        self.assertEqual(sister.duplicates, [])
        again = services.add_person(h2, full_name="Maria Hernandez de la Cruz", birth_date="1980-02-03")
        self.assertEqual(len(again.duplicates), 1)
        pair = again.duplicates[0]
        self.assertGreater(pair.score, 0.5)
        self.assertTrue(pair.reasons)
        from redes.registry import queries

        self.assertEqual(queries.duplicate_queue(w.coord).count(), 1)
        self.assertEqual(queries.duplicate_queue(w.block1).count(), 0)
        services.decide_duplicate(pair, same=True, keep=pair.person_a, actor=w.coord)
        self.assertEqual(queries.duplicate_queue(w.coord).count(), 0)


class PersonEditTests(RedesTestCase):
    def test_editing_one_name_part_keeps_the_others(self):
        house = services.create_household(self.w.b11, street="Hidalgo")
        p = services.add_person(house, full_name="Rosa Hernández Luna", check_duplicates=False)
        p = services.update_person(p, surname2="Díaz")
        self.assertEqual(
            (p.full_name, p.given_name, p.surname1, p.surname2),
            ("Rosa Hernández Díaz", "Rosa", "Hernández", "Díaz"),
        )
        p = services.update_person(p, full_name="Rosa María Hernández Díaz")
        self.assertEqual((p.given_name, p.surname1, p.surname2), ("Rosa María", "Hernández", "Díaz"))
        self.assertEqual(p.full_name, "Rosa María Hernández Díaz")
