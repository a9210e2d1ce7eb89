"""The registry pages for coordinators and case officers: sensitive data, duplicates, data requests, weights,
privacy notices and imports — who reaches each page, and each flow end to end."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import tempfile
import unittest
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q
from django.test import override_settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from redes.audit.models import AuditEvent, Outcome
from redes.registry import services
from redes.registry.models import (
    DataRequest,
    DuplicateCandidate,
    Household,
    ImportJob,
    Person,
    PrivacyNotice,
    RecordStatus,
)

from .base import RedesTestCase

SECRET_NOTE = "usa silla de ruedas ZQX-7731"
ROLES = (
    "coord",
    "sector1",
    "block1",
    "operator",
    "caseworker",
    "volunteer",
    "observer",
    "state_observer",
    "other_coord",
    "nobody",
)
HAS_IMPORTER = importlib.util.find_spec("redes.registry.importing") is not None
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}


def curp_for(first17: str) -> str:
    from redes.core.curp import curp_check_digit

    return first17 + curp_check_digit(first17)


class RegistryPagesBase(RedesTestCase):
    def setUp(self):
        w = self.w
        self.notice = services.publish_notice(w.esc, version="2026-1", text="Aviso de privacidad")
        self.house = services.create_household(
            w.b11, actor=w.block1, street="Calle Hidalgo", ext_number="12", postal_code="66050"
        )
        self.ana = services.add_person(
            self.house, actor=w.block1, full_name="Ana López García", age=40, check_duplicates=False
        )
        services.record_consent(
            self.ana, actor=w.block1, purposes=["aid", "contact"], sensitive=True, channel="in_person"
        )
        services.set_sensitive(self.ana, actor=w.caseworker, factors=["disability"], notes=SECRET_NOTE)
        self.ana.refresh_from_db()

    def sensitive_url(self, person=None):
        return reverse("registry-person-sensitive", args=[(person or self.ana).uuid])

    def audit_count(self, action, outcome=Outcome.OK):
        return AuditEvent.objects.filter(action=action, outcome=outcome).count()


@override_settings(LANGUAGE_CODE="en")  # assertions read English text
class AccessMatrixTests(RegistryPagesBase):
    def setUp(self):
        super().setUp()
        w = self.w
        self.request = services.open_data_request(self.ana, "access", actor=w.coord)
        other = services.create_household(w.b12, street="Calle Juárez", ext_number="3")
        self.twin = services.add_person(other, full_name="Ana Lopez Garcia", age=40, check_duplicates=False)
        a, b = sorted((self.ana.pk, self.twin.pk))
        self.pair = DuplicateCandidate.objects.create(
            municipality=w.esc,
            node=w.b11,
            person_a_id=a,
            person_b_id=b,
            score=0.97,
            reasons=["surnames_exact"],
        )

    def expect(self, url, expected: dict[str, int], *, default: int, root: int = 200):
        for name in ROLES:
            user = getattr(self.w, name)
            status = self.client_for(user).get(url).status_code
            self.assertEqual(status, expected.get(name, default), f"{name} GET {url}")
        response = self.client_for(None).get(url)
        self.assertEqual(response.status_code, 302, f"anonymous GET {url}")
        self.assertIn("/login/", response["Location"])
        self.assertEqual(self.client_for(self.w.root).get(url).status_code, root, f"root GET {url}")

    def test_coordinator_pages(self):
        for name in (
            "registry-duplicates",
            "registry-requests",
            "registry-weights",
            "registry-notices",
            "registry-imports",
            "registry-request-new",
        ):
            self.expect(reverse(name), {"coord": 200, "other_coord": 200}, default=403)

    def test_records_of_one_municipality_are_missing_for_the_other(self):
        for url in (
            reverse("registry-person-record", args=[self.ana.uuid]),
            reverse("registry-request", args=[self.request.uuid]),
            f"{reverse('registry-request-new')}?person={self.ana.uuid}",
        ):
            self.expect(url, {"coord": 200, "other_coord": 404}, default=403)
        self.expect(
            reverse("registry-request-export", args=[self.request.uuid]),
            {"coord": 200, "other_coord": 404},
            default=403,
        )

    def test_the_sensitive_page(self):
        expected = {
            "caseworker": 200,
            # they see the person (VIEW_PERSONAL over block S01-M001) but are not case officers
            "coord": 403,
            "sector1": 403,
            "block1": 403,
            "operator": 403,
        }
        # Superusers administer the installation; sensitive data is for case officers only.
        self.expect(self.sensitive_url(), expected, default=404, root=403)

    def test_a_person_on_another_block_is_missing_for_the_block_liaison(self):
        url = self.sensitive_url(self.twin)  # block S01-M002: not block1's
        self.assertEqual(self.client_for(self.w.block1).get(url).status_code, 404)
        self.assertEqual(self.client_for(self.w.sector1).get(url).status_code, 403)

    def test_the_summary_fragment_is_safe_to_include_for_everyone(self):
        url = reverse("registry-requests-summary")
        self.expect(url, {"coord": 200, "other_coord": 200}, default=204)
        self.assertContains(self.client_for(self.w.coord).get(url), "1 data request due")
        self.assertNotContains(self.client_for(self.w.other_coord).get(url), "data request")

    def test_refused_writes_change_nothing_and_are_audited(self):
        decide = reverse("registry-duplicate-decide", args=[self.pair.uuid])
        for name in ("sector1", "block1", "operator", "caseworker", "observer", "nobody"):
            client = self.client_for(getattr(self.w, name))
            self.assertEqual(client.post(decide, {"decision": "keep_a"}).status_code, 403, name)
            self.assertEqual(
                client.post(reverse("registry-weights"), {"threshold": 10}).status_code, 403, name
            )
        self.assertEqual(
            self.client_for(self.w.other_coord).post(decide, {"decision": "keep_a"}).status_code, 404
        )
        self.pair.refresh_from_db()
        self.assertEqual(self.pair.status, DuplicateCandidate.Status.PENDING)
        self.assertGreaterEqual(self.audit_count("registry.duplicate.decide", Outcome.DENIED), 6)
        self.assertGreaterEqual(self.audit_count("registry.policy.update", Outcome.DENIED), 6)


@override_settings(LANGUAGE_CODE="en")
class SensitivePageTests(RegistryPagesBase):
    def test_each_read_by_the_case_officer_is_audited_once_and_not_cached(self):
        client = self.client_for(self.w.caseworker)
        before = self.audit_count("registry.sensitive.read")
        response = client.get(self.sensitive_url())
        self.assertContains(response, SECRET_NOTE)
        self.assertContains(response, "Disability")
        self.assertIn("no-store", response["Cache-Control"])
        self.assertEqual(self.audit_count("registry.sensitive.read"), before + 1)
        client.get(self.sensitive_url())
        self.assertEqual(self.audit_count("registry.sensitive.read"), before + 2)
        event = AuditEvent.objects.filter(action="registry.sensitive.read").latest("id")
        self.assertEqual((event.actor_label, event.object_id), ("caseworker", str(self.ana.uuid)))
        self.assertNotIn("ZQX", json.dumps([event.summary, event.changes]))

    def test_refused_reads_are_audited_and_show_nothing(self):
        for name in ("coord", "sector1", "block1", "operator"):
            before = self.audit_count("registry.sensitive.read", Outcome.DENIED)
            response = self.client_for(getattr(self.w, name)).get(self.sensitive_url())
            self.assertEqual(response.status_code, 403)
            self.assertNotIn(SECRET_NOTE, response.content.decode())
            self.assertEqual(self.audit_count("registry.sensitive.read", Outcome.DENIED), before + 1, name)
        before = self.audit_count("registry.sensitive.update", Outcome.DENIED)
        response = self.client_for(self.w.coord).post(self.sensitive_url(), {"factors": [], "notes": ""})
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.audit_count("registry.sensitive.update", Outcome.DENIED), before + 1)
        self.ana.refresh_from_db()
        self.assertEqual(services.read_sensitive(self.ana, actor=self.w.caseworker)["notes"], SECRET_NOTE)

    def test_the_case_officer_records_and_erases(self):
        client = self.client_for(self.w.caseworker)
        response = client.post(
            self.sensitive_url(),
            {"factors": ["violence_risk", "pregnancy"], "notes": "nueva nota"},
            follow=True,
        )
        self.assertContains(response, "The sensitive data was saved.")
        self.assertContains(response, "Risk of domestic or gender violence")
        self.ana.refresh_from_db()
        self.assertNotIn("nueva", self.ana.sensitive_data)
        data = services.read_sensitive(self.ana, actor=self.w.caseworker)
        self.assertEqual(
            (sorted(data["factors"]), data["notes"]), (["pregnancy", "violence_risk"], "nueva nota")
        )
        self.house.refresh_from_db()
        # the household's score counts them (30 + 15), marked sensitive in the stored explanation
        lines = self.house.priority_explanation
        self.assertEqual(sum(line["points"] for line in lines if line.get("sensitive")), 45)
        client.post(self.sensitive_url(), {"notes": ""})
        self.ana.refresh_from_db()
        self.assertEqual(self.ana.sensitive_data, "")

    def test_without_express_consent_the_form_says_so(self):
        w = self.w
        luis = services.add_person(self.house, actor=w.block1, full_name="Luis López", check_duplicates=False)
        services.record_consent(luis, actor=w.block1, purposes=["aid", "contact"], channel="paper")
        client = self.client_for(w.caseworker)
        response = client.get(self.sensitive_url(luis))
        self.assertContains(response, "express consent: record it first")
        try:
            consent_url = reverse("census-person-consent", args=[luis.uuid])
        except NoReverseMatch:
            try:
                consent_url = reverse("census-consent", args=[luis.uuid])
            except NoReverseMatch:
                consent_url = None
        if consent_url:
            self.assertContains(response, f'href="{consent_url}"')
        response = client.post(self.sensitive_url(luis), {"factors": ["disability"], "notes": ""})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "express consent")
        luis.refresh_from_db()
        self.assertEqual(luis.sensitive_data, "")

    def test_a_bad_factor_is_a_form_error(self):
        response = self.client_for(self.w.caseworker).post(self.sensitive_url(), {"factors": ["astrology"]})
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "errorlist")

    def test_the_decrypted_strings_appear_on_no_other_page(self):
        w = self.w
        request = services.open_data_request(self.ana, "access", actor=w.coord)
        urls = [
            reverse("home"),
            reverse("registry-duplicates"),
            reverse("registry-requests"),
            reverse("registry-requests-summary"),
            reverse("registry-request", args=[request.uuid]),
            reverse("registry-request-export", args=[request.uuid]),
            reverse("registry-person-record", args=[self.ana.uuid]),
            reverse("registry-weights"),
            reverse("registry-notices"),
            reverse("registry-imports"),
            f"{reverse('registry-request-new')}?q=ana",
        ]
        for name, args in (("census-household", [self.house.uuid]), ("census-block", [w.b11.uuid])):
            with contextlib.suppress(NoReverseMatch):
                urls.append(reverse(name, args=args))
        # (a superuser counts as a case officer in the services: their export carries the data, audited)
        for user in (w.coord, w.caseworker, w.block1, w.sector1, w.operator, w.other_coord, w.observer):
            client = self.client_for(user)
            for url in urls:
                body = client.get(url).content.decode()
                self.assertNotIn("ZQX-7731", body, f"{user.username} {url}")
                self.assertNotIn("silla de ruedas", body, f"{user.username} {url}")


@override_settings(LANGUAGE_CODE="en")
class DuplicateFlowTests(RegistryPagesBase):
    def setUp(self):
        super().setUp()
        w = self.w
        curp = self.curp = curp_for("LOGA850302MNLPRN0")
        services.update_person(self.ana, actor=w.coord, birth_date="1985-03-02", curp=curp)
        other = services.create_household(w.b12, street="Calle Juárez", ext_number="3", postal_code="66052")
        self.twin = services.add_person(
            other,
            actor=w.coord,
            full_name="Ana Lopez Garcia",
            birth_date="1985-03-02",
            curp=curp,
            check_duplicates=False,
        )
        # The pair as the detector stores it (the detector itself is tested with the matching code).
        a, b = sorted((self.ana.pk, self.twin.pk))
        self.pair = DuplicateCandidate.objects.create(
            municipality=w.esc,
            node=w.b12,
            person_a_id=a,
            person_b_id=b,
            score=0.999,
            reasons=["curp_exact", "given_exact", "surnames_exact", "birth_date_exact", "some_new_code"],
        )

    def test_the_queue_compares_the_pair_and_merges_keeping_history(self):
        client = self.client_for(self.w.coord)
        response = client.get(reverse("registry-duplicates"))
        self.assertContains(response, "Ana López García")
        self.assertContains(response, "Ana Lopez Garcia")
        self.assertContains(response, "Same CURP")  # a reason code, translated
        self.assertContains(response, "some_new_code")  # an unknown code is shown as it is
        self.assertContains(response, "Calle Juárez 3")
        self.assertNotContains(response, "ZQX-7731")
        keep = "keep_a" if self.pair.person_a_id == self.ana.pk else "keep_b"
        response = client.post(
            reverse("registry-duplicate-decide", args=[self.pair.uuid]), {"decision": keep}
        )
        self.assertRedirects(response, reverse("registry-duplicates"))
        self.twin.refresh_from_db()
        self.assertEqual((self.twin.status, self.twin.merged_into_id), (RecordStatus.MERGED, self.ana.pk))
        self.pair.refresh_from_db()
        self.assertEqual(self.pair.status, DuplicateCandidate.Status.MERGED)

        merged_page = client.get(reverse("registry-person-record", args=[self.twin.uuid]))
        self.assertContains(merged_page, "Merged into")
        self.assertContains(merged_page, reverse("registry-person-record", args=[self.ana.uuid]))
        kept_page = client.get(reverse("registry-person-record", args=[self.ana.uuid]))
        self.assertContains(kept_page, "Merge history")
        self.assertContains(kept_page, "Ana Lopez Garcia")
        self.assertEqual(client.get(reverse("registry-duplicates")).context["page"].paginator.count, 0)

        again = client.post(
            reverse("registry-duplicate-decide", args=[self.pair.uuid]), {"decision": keep}, follow=True
        )
        self.assertContains(again, "already reviewed")

    def test_different_persons_and_a_bad_choice(self):
        client = self.client_for(self.w.coord)
        response = client.post(
            reverse("registry-duplicate-decide", args=[self.pair.uuid]), {"decision": "x"}, follow=True
        )
        self.assertContains(response, "Choose one of the buttons")
        client.post(reverse("registry-duplicate-decide", args=[self.pair.uuid]), {"decision": "distinct"})
        self.pair.refresh_from_db()
        self.assertEqual(self.pair.status, DuplicateCandidate.Status.DISTINCT)
        self.assertEqual(Person.objects.filter(status=RecordStatus.ACTIVE).count(), 2)

    def test_a_pair_found_by_the_detector_on_entry_reaches_the_queue_with_readable_reasons(self):
        from redes.web.views.registry_common import REASON_LABELS

        w = self.w
        house = services.create_household(w.b21, street="Calle Allende", ext_number="7")
        third = services.add_person(house, actor=w.coord, full_name="Ana López García", curp=self.curp)
        found = DuplicateCandidate.objects.filter(Q(person_a=third) | Q(person_b=third))
        self.assertTrue(found.exists())
        response = self.client_for(w.coord).get(reverse("registry-duplicates"))
        for candidate in found:
            self.assertTrue(candidate.reasons)
            for code in candidate.reasons:
                self.assertIn(code, REASON_LABELS)
                self.assertContains(response, str(REASON_LABELS[code]))

    def test_every_reason_code_of_the_matcher_has_a_label(self):
        from redes.web.views.registry_common import REASON_LABELS, known_reason_codes

        self.assertEqual(sorted(set(known_reason_codes()) - set(REASON_LABELS)), [])


@override_settings(LANGUAGE_CODE="en")
class DataRequestFlowTests(RegistryPagesBase):
    def test_register_an_access_request_see_its_deadline_and_export_without_sensitive_data(self):
        client = self.client_for(self.w.coord)
        found = client.get(reverse("registry-request-new"), {"q": "lopez ana"})
        self.assertContains(found, f"?person={self.ana.uuid}")
        response = client.post(
            reverse("registry-request-new"),
            {"person": str(self.ana.uuid), "kind": "access", "details": "Quiere una copia"},
        )
        request = DataRequest.objects.get()
        self.assertRedirects(response, reverse("registry-request", args=[request.uuid]))
        today = timezone.localdate()
        self.assertEqual(request.due_on, services.add_business_days(today, 20))
        days = (request.due_on - today).days

        listing = client.get(reverse("registry-requests"))
        self.assertContains(listing, f"{days} days left")
        detail = client.get(reverse("registry-request", args=[request.uuid]))
        self.assertContains(detail, request.due_on.isoformat())
        self.assertContains(detail, "Export this person")

        export = client.get(reverse("registry-request-export", args=[request.uuid]))
        self.assertEqual(export.status_code, 200)
        self.assertIn("attachment", export["Content-Disposition"])
        self.assertIn("no-store", export["Cache-Control"])
        data = json.loads(export.content)
        self.assertEqual(data["full_name"], "Ana López García")
        text = export.content.decode()
        for secret in ("ZQX-7731", "disability", "Disability", "silla"):
            self.assertNotIn(secret, text)
        self.assertIsInstance(data["sensitive"], str)  # "held; delivered only by a case officer"
        self.assertEqual(self.audit_count("registry.sensitive.read"), 0)
        self.assertEqual(self.audit_count("registry.person.export"), 1)

        answered = client.post(
            reverse("registry-request", args=[request.uuid]), {"response": "Entregado"}, follow=True
        )
        self.assertContains(answered, "The request was answered.")
        request.refresh_from_db()
        self.assertEqual(request.status, DataRequest.Status.ANSWERED)
        self.assertEqual(client.get(reverse("registry-requests")).context["page"].paginator.count, 0)

    def test_overdue_requests_are_highlighted(self):
        long_ago = timezone.now() - timezone.timedelta(days=60)
        services.open_data_request(self.ana, "access", actor=self.w.coord, when=long_ago)
        response = self.client_for(self.w.coord).get(reverse("registry-requests"))
        self.assertContains(response, "days overdue")
        self.assertContains(response, 'class="row overdue"')
        summary = self.client_for(self.w.coord).get(reverse("registry-requests-summary"))
        self.assertContains(summary, "1 is past its deadline.")

    def test_rectification_and_rejection(self):
        client = self.client_for(self.w.coord)
        url = f"{reverse('registry-request-new')}?person={self.ana.uuid}"
        empty = client.post(url, {"kind": "rectification"})
        self.assertContains(empty, "at least one correction")
        bad = client.post(url, {"kind": "rectification", "fix_curp": "XXXX"})
        self.assertEqual(bad.status_code, 200)
        self.assertContains(bad, "errorlist")
        self.assertFalse(DataRequest.objects.exists())
        client.post(url, {"kind": "rectification", "fix_surname2": "Díaz"})
        request = DataRequest.objects.get()
        self.assertEqual(request.changes, {"surname2": "Díaz"})
        detail = reverse("registry-request", args=[request.uuid])
        self.assertEqual(client.get(reverse("registry-request-export", args=[request.uuid])).status_code, 404)
        refused = client.post(detail, {"reject": "on", "response": ""})
        self.assertContains(refused, "Say why the request is rejected.")
        client.post(detail, {"response": "Corregido"})
        self.ana.refresh_from_db()
        self.assertEqual(self.ana.surname2, "Díaz")

    def test_objection_needs_a_purpose(self):
        client = self.client_for(self.w.coord)
        url = f"{reverse('registry-request-new')}?person={self.ana.uuid}"
        self.assertContains(client.post(url, {"kind": "objection"}), "Say which purpose")
        client.post(url, {"kind": "objection", "purpose": "contact"})
        self.assertEqual(DataRequest.objects.get().purpose, "contact")


@override_settings(LANGUAGE_CODE="en")
class WeightsAndNoticeTests(RegistryPagesBase):
    def data(self, **changes):
        from redes.registry import vulnerability

        data = {f"w_{code}": f.weight for code, f in vulnerability.FACTORS.items()}
        data["threshold"] = 40
        data.update(changes)
        return data

    def test_changing_a_weight_recomputes_priority(self):
        w = self.w
        services.add_person(
            self.house, actor=w.block1, full_name="Don Pepe López", age=75, check_duplicates=False
        )
        self.house.refresh_from_db()
        before = self.house.priority
        client = self.client_for(w.coord)
        page = client.get(reverse("registry-weights"))
        self.assertContains(page, "capped at 100")
        # a preview counts the households that would change band and saves nothing
        preview = client.post(
            reverse("registry-weights"), self.data(w_older_adult=50, threshold=80, preview="1")
        )
        # 25 + 20 (protected) = 45 ≥ 40 now; 50 + 20 = 70 < 80 then
        self.assertEqual(
            preview.context["preview"], {"entering": 0, "leaving": 1, "changed": 1, "unseen": []}
        )
        self.assertContains(preview, "1 would stop being priority.")
        sensitive = client.post(reverse("registry-weights"), self.data(w_disability=5, preview="1"))
        self.assertEqual(sensitive.context["preview"]["unseen"], ["Disability"])
        self.assertEqual(services.policy_for(w.esc).weights, {})
        self.house.refresh_from_db()
        self.assertEqual(self.house.priority, before)
        self.assertContains(page, "Older adult (60 or over)")
        response = client.post(
            reverse("registry-weights"), self.data(w_older_adult=50, threshold=60), follow=True
        )
        self.assertContains(response, "The weights were saved. 1 households changed score")
        self.house.refresh_from_db()
        self.assertEqual(self.house.priority, before + 25)
        policy = services.policy_for(w.esc)
        self.assertEqual((policy.weights["older_adult"], policy.priority_threshold), (50, 60))

    def test_bad_weights_are_form_errors(self):
        client = self.client_for(self.w.coord)
        response = client.post(reverse("registry-weights"), self.data(w_job_loss=101, threshold="x"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "errorlist")
        self.assertEqual(services.policy_for(self.w.esc).weights, {})

    def test_publish_a_notice_version(self):
        client = self.client_for(self.w.coord)
        page = client.get(reverse("registry-notices"))
        self.assertContains(page, "Version 2026-1")
        data = {
            "version": "2026-2",
            "text": "Nuevo aviso",
            "p_aid": "necessary",
            "p_contact": "necessary",
            "p_messages": "optional",
            "p_statistics": "",
            "other_code": "surveys",
            "other_label": "Encuestas de satisfacción",
            "other_kind": "optional",
        }
        response = client.post(reverse("registry-notices"), data, follow=True)
        self.assertContains(response, "Version 2026-2 of the privacy notice was published.")
        notice = PrivacyNotice.objects.get(version="2026-2")
        self.assertEqual(
            notice.purposes,
            [
                {"code": "aid", "necessary": True},
                {"code": "contact", "necessary": True},
                {"code": "messages", "necessary": False},
                {"code": "surveys", "label": "Encuestas de satisfacción", "necessary": False},
            ],
        )
        self.assertEqual(services.current_notice(self.w.esc), notice)
        again = client.post(reverse("registry-notices"), data)
        self.assertContains(again, "already exists")
        self.assertEqual(PrivacyNotice.objects.filter(municipality=self.w.esc).count(), 2)

    def test_another_coordinator_works_on_their_own_municipality(self):
        client = self.client_for(self.w.other_coord)
        self.assertContains(
            client.get(reverse("registry-notices")), "No privacy notice has been published yet"
        )
        self.assertEqual(
            client.get(reverse("registry-weights"), {"m": str(self.w.esc.uuid)}).status_code, 404
        )


CSV = (
    "id_hogar,calle,numero,cp,manzana,nombre,nacimiento,telefono,curp\n"
    "H1,Calle Hidalgo,20,66050,S01-M001,María Pérez Soto,1950-04-02,8112345600,\n"
    "H1,Calle Hidalgo,20,66050,S01-M001,José Pérez Soto,1948-01-10,,\n"
    "H2,Calle Morelos,5,66050,S01-M002,Rosa Núñez,1990-13-40,,\n"
    "H3,Calle Allende,7,66050,S02-M001,Pedro Gómez,1985-06-01,12345,\n"
)


@unittest.skipUnless(HAS_IMPORTER, "redes.registry.importing is not there yet")
@override_settings(LANGUAGE_CODE="en")
class ImportFlowTests(RegistryPagesBase):
    def setUp(self):
        super().setUp()
        tmp = Path(tempfile.mkdtemp(prefix="redes-import-pages-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        # tests/conftest.py asks for inline tasks after the settings are loaded: say it again here
        override = self.settings(REDES_IMPORT_DIR=tmp, TASKS=IMMEDIATE_TASKS)
        override.enable()
        self.addCleanup(override.disable)

    def upload(self, client, content=CSV, name="padron.csv", **extra):
        data = {
            "municipality": str(self.w.esc.uuid),
            "node_code": "",
            "file": SimpleUploadedFile(name, content.encode("utf-8"), content_type="text/csv"),
            **extra,
        }
        return client.post(reverse("registry-imports"), data)

    def test_upload_map_preview_start_and_report(self):
        from redes.registry import importing

        client = self.client_for(self.w.coord)
        response = self.upload(client)
        job = ImportJob.objects.get()
        self.assertRedirects(response, reverse("registry-import", args=[job.uuid]))
        mapping_page = client.get(reverse("registry-import", args=[job.uuid]))
        form = mapping_page.context["form"]
        codes = [code for code, _label, _required in importing.FIELDS]
        post = {"mode": ImportJob.Mode.VALID_ROWS}
        for code in codes:
            post[f"f_{code}"] = form[f"f_{code}"].value() or ""
        self.assertContains(mapping_page, "calle")
        response = client.post(reverse("registry-import", args=[job.uuid]), post)
        self.assertRedirects(response, reverse("registry-import-preview", args=[job.uuid]))
        preview = client.get(reverse("registry-import-preview", args=[job.uuid]))
        self.assertEqual(preview.status_code, 200)
        self.assertContains(preview, "Start the import")
        self.assertTrue(preview.context["rows"])
        self.assertTrue(any(not row["ok"] for row in preview.context["rows"]))

        response = client.post(reverse("registry-import-start", args=[job.uuid]))
        self.assertRedirects(response, reverse("registry-import", args=[job.uuid]))
        job.refresh_from_db()
        self.assertEqual(job.status, ImportJob.Status.DONE)  # tasks run inline in tests
        self.assertEqual(job.processed_rows, job.total_rows)
        self.assertGreaterEqual(job.invalid_rows, 1)
        self.assertGreaterEqual(job.persons_created, 2)
        self.assertTrue(Household.objects.filter(street="Calle Hidalgo", ext_number="20").exists())

        fragment = client.get(
            reverse("registry-import-progress", args=[job.uuid]), headers={"HX-Request": "true"}
        )
        self.assertContains(fragment, 'value="100"')
        self.assertNotContains(fragment, "hx-trigger")  # finished: no more polling
        self.assertContains(fragment, "Download every error (CSV)")
        errors = client.get(reverse("registry-import-errors", args=[job.uuid]))
        self.assertEqual(errors.status_code, 200)
        self.assertIn("attachment", errors["Content-Disposition"])
        self.assertIn(b"4", b"".join(errors.streaming_content))  # a row number

        # the others cannot reach the job
        for name in ("other_coord",):
            self.assertEqual(
                self.client_for(getattr(self.w, name))
                .get(reverse("registry-import-progress", args=[job.uuid]))
                .status_code,
                404,
            )
        for name in ("block1", "caseworker", "observer"):
            self.assertEqual(
                self.client_for(getattr(self.w, name))
                .get(reverse("registry-import", args=[job.uuid]))
                .status_code,
                403,
            )

    def test_all_or_nothing_imports_nothing_when_a_row_is_invalid(self):
        from redes.registry import importing

        client = self.client_for(self.w.coord)
        self.upload(client)
        job = ImportJob.objects.get()
        form = client.get(reverse("registry-import", args=[job.uuid])).context["form"]
        post = {"mode": ImportJob.Mode.ALL_OR_NOTHING}
        for code, _label, _required in importing.FIELDS:
            post[f"f_{code}"] = form[f"f_{code}"].value() or ""
        client.post(reverse("registry-import", args=[job.uuid]), post)
        households = Household.objects.count()
        client.post(reverse("registry-import-start", args=[job.uuid]))
        job.refresh_from_db()
        self.assertEqual(job.status, ImportJob.Status.REJECTED)
        self.assertEqual(Household.objects.count(), households)
        page = client.get(reverse("registry-import", args=[job.uuid]))
        self.assertContains(page, "Nothing was imported")

    def test_a_unit_outside_the_territory_or_a_bad_file_is_a_form_error(self):
        client = self.client_for(self.w.coord)
        response = self.upload(client, node_code="A1")
        self.assertContains(response, "No unit with the code")
        response = self.upload(client, content="\x00\x01garbage", name="x.bin")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "errorlist")
        self.assertFalse(ImportJob.objects.exists())
