"""A need's page and its actions, role by role: who may act (and who gets 403/404), each action through the
page, impossible states and forged input as form errors with the need unchanged, refusals audited."""

from __future__ import annotations

from django.test import override_settings

from redes.audit.models import AuditEvent
from redes.needs import services
from redes.needs.models import Need, NeedEvent, Referral

from .test_pages_needs import SECRET, NeedsWorld, action, detail


def snapshot(need):
    need = Need.objects.get(pk=need.pk)
    return (
        need.status,
        need.acknowledged_at,
        need.assigned_user_id,
        need.assigned_office_id,
        need.outcome,
        need.category_id,
        need.escalate_at,
        need.events.count(),
    )


@override_settings(LANGUAGE_CODE="en")
class DetailPageTests(NeedsWorld):
    def test_access_to_a_need(self):
        for user, status in (
            (self.w.block1, 200),
            (self.w.sector1, 200),
            (self.w.coord, 200),
            (self.w.operator, 200),
            (self.w.caseworker, 200),
            (self.w.sector2, 404),
            (self.w.volunteer, 404),
            (self.w.observer, 404),
            (self.w.state_observer, 404),
            (self.w.other_coord, 404),
            (self.w.nobody, 404),
        ):
            self.assertEqual(self.client_for(user).get(detail(self.n11)).status_code, status, user.username)
        client = self.client_for(self.w.coord)
        self.assertEqual(client.get("/needs/00000000-0000-0000-0000-000000000000/").status_code, 404)
        self.assertEqual(client.get("/needs/not-a-uuid/").status_code, 404)

    def test_the_page_shows_the_need_and_its_timeline(self):
        response = self.client_for(self.w.sector1).get(detail(self.n11))
        self.assertContains(response, "Despensa para adulta mayor")
        self.assertContains(response, "Calle Hidalgo")
        self.assertContains(response, "Registered (Liaison (web app))")
        self.assertContains(response, 'id="do-acknowledge"')

    def test_the_actions_shown_follow_the_state(self):
        client = self.client_for(self.w.coord)
        response = client.get(detail(self.n11))
        for name in ("assign", "refer", "resolve", "close", "cancel", "duplicate", "note", "triage"):
            self.assertContains(response, f'id="action-{name}"', msg_prefix=name)
        self.assertNotContains(response, 'id="do-reopen"')
        services.cancel_need(self.n11, actor=self.w.coord, reason="Se mudó")
        response = client.get(detail(self.n11))
        for name in ("assign", "refer", "resolve", "close", "cancel", "duplicate"):
            self.assertNotContains(response, f'id="action-{name}"', msg_prefix=name)
        self.assertContains(response, 'id="do-reopen"')


@override_settings(LANGUAGE_CODE="en")
class ActionTests(NeedsWorld):
    def post(self, user, need, name, data=None):
        return self.client_for(user).post(action(need, name), data or {})

    def test_acknowledge_and_start(self):
        response = self.post(self.w.block1, self.n11, "acknowledge")
        self.assertRedirects(response, detail(self.n11))
        self.n11.refresh_from_db()
        self.assertIsNotNone(self.n11.acknowledged_at)
        response = self.post(self.w.block1, self.n11, "start")
        self.n11.refresh_from_db()
        self.assertEqual(self.n11.status, "in_progress")
        page = self.client_for(self.w.block1).get(detail(self.n11))
        self.assertContains(page, "Acknowledged")
        self.assertContains(page, "Work started")
        # Acknowledging twice is an error on the page, nothing changes.
        before = snapshot(self.n11)
        response = self.post(self.w.block1, self.n11, "acknowledge")
        self.assertContains(response, "already acknowledged")
        self.assertEqual(snapshot(self.n11), before)

    def test_assign_within_the_territory_only(self):
        response = self.post(
            self.w.sector1, self.n11, "assign", {"assign-assignee": f"user:{self.w.volunteer.uuid}"}
        )
        self.assertRedirects(response, detail(self.n11))
        self.n11.refresh_from_db()
        self.assertEqual((self.n11.status, self.n11.assigned_user), ("assigned", self.w.volunteer))
        self.assertContains(self.client_for(self.w.sector1).get(detail(self.n11)), "Assigned to Volunteer")
        before = snapshot(self.n11)
        audits = AuditEvent.objects.filter(action="needs.need.assign", outcome="rejected").count()
        for value in (
            f"user:{self.w.sector2.uuid}",
            f"user:{self.w.other_coord.uuid}",
            "user:forged",
            "office:x",
            "",
        ):
            response = self.post(self.w.sector1, self.n11, "assign", {"assign-assignee": value})
            self.assertEqual(response.status_code, 200, value)
            self.assertContains(response, 'class="errorlist', msg_prefix=value)
        self.assertEqual(snapshot(self.n11), before)
        refused = AuditEvent.objects.filter(action="needs.need.assign", outcome="rejected")
        self.assertEqual(refused.count(), audits + 5)
        self.assertNotIn("other_coord", str(list(refused.values_list("changes", flat=True))))

    def test_assign_to_an_office_refer_and_follow_up(self):
        response = self.post(
            self.w.coord, self.n11, "refer", {"refer-office": str(self.office.uuid), "refer-note": "Urgente"}
        )
        self.assertRedirects(response, detail(self.n11))
        referral = Referral.objects.get(need=self.n11)
        page = self.client_for(self.w.coord).get(detail(self.n11))
        self.assertContains(page, "Referred to DIF Escobedo")
        response = self.client_for(self.w.coord).post(
            f"/needs/{self.n11.uuid}/referral/{referral.uuid}/", {"status": "accepted"}
        )
        self.assertRedirects(response, detail(self.n11))
        referral.refresh_from_db()
        self.assertEqual(referral.status, "accepted")
        # Forged referral, forged status, a block liaison updating: refused, unchanged.
        self.assertEqual(
            self.client_for(self.w.coord)
            .post(f"/needs/{self.n11.uuid}/referral/{self.n21.uuid}/", {"status": "resolved"})
            .status_code,
            404,
        )
        self.client_for(self.w.coord).post(
            f"/needs/{self.n11.uuid}/referral/{referral.uuid}/", {"status": "eaten"}
        )
        referral.refresh_from_db()
        self.assertEqual(referral.status, "accepted")

    def test_resolve_then_close_with_satisfaction(self):
        response = self.post(
            self.w.block1, self.n11, "resolve", {"resolve-outcome": "solved", "resolve-note": "Entregada"}
        )
        self.assertRedirects(response, detail(self.n11))
        response = self.post(self.w.coord, self.n11, "close", {"close-satisfaction": "4"})
        self.assertRedirects(response, detail(self.n11))
        self.n11.refresh_from_db()
        self.assertEqual((self.n11.status, self.n11.outcome, self.n11.satisfaction), ("closed", "solved", 4))
        self.assertContains(self.client_for(self.w.coord).get(detail(self.n11)), "satisfaction 4/5")

    def test_close_asks_for_the_outcome_and_a_sane_satisfaction(self):
        before = snapshot(self.n11)
        for data in ({}, {"close-outcome": "solved", "close-satisfaction": "9"}, {"close-outcome": "bogus"}):
            response = self.post(self.w.coord, self.n11, "close", data)
            self.assertEqual(response.status_code, 200, data)
            self.assertContains(response, 'class="errorlist', msg_prefix=str(data))
        self.assertEqual(snapshot(self.n11), before)

    def test_impossible_states_are_refused_and_audited(self):
        services.cancel_need(self.n11, actor=self.w.coord, reason="Se mudó")
        before = snapshot(self.n11)
        audits = AuditEvent.objects.count()
        for name, data in (
            ("resolve", {"resolve-outcome": "solved"}),
            ("assign", {"assign-assignee": f"user:{self.w.volunteer.uuid}"}),
            ("cancel", {"cancel-reason": "otra vez"}),
        ):
            response = self.post(self.w.coord, self.n11, name, data)
            self.assertEqual(response.status_code, 200, name)
            self.assertContains(response, "cannot become", msg_prefix=name)
        self.assertEqual(snapshot(self.n11), before)
        self.assertGreaterEqual(AuditEvent.objects.count(), audits + 3)
        response = self.post(self.w.coord, self.n11, "reopen")
        self.assertRedirects(response, detail(self.n11))
        self.n11.refresh_from_db()
        self.assertEqual(self.n11.status, "triaged")

    def test_cancel_needs_a_reason(self):
        before = snapshot(self.n11)
        response = self.post(self.w.sector1, self.n11, "cancel", {"cancel-reason": ""})
        self.assertContains(response, 'class="errorlist')
        self.assertEqual(snapshot(self.n11), before)
        self.post(self.w.sector1, self.n11, "cancel", {"cancel-reason": "Ya la apoyó su familia"})
        self.n11.refresh_from_db()
        self.assertEqual(self.n11.status, "cancelled")

    def test_mark_duplicate_by_reference(self):
        other = services.register_need(
            actor=self.w.block1,
            municipality=self.w.esc,
            category=self.food,
            description="Despensa",
            household=self.h11,
        )
        ref = self.n11.uuid.hex[:8].upper()
        before = snapshot(other)
        for bad in (
            "",
            "zz",
            self.n21.uuid.hex[:4],
            other.uuid.hex[:8],
            self.naca.uuid.hex[:8],
            self.secret.uuid.hex[:8],
        ):
            response = self.post(self.w.block1, other, "duplicate", {"duplicate-of": bad})
            self.assertEqual(response.status_code, 200, bad)
            self.assertContains(response, 'class="errorlist', msg_prefix=bad)
        self.assertEqual(snapshot(other), before)
        response = self.post(self.w.block1, other, "duplicate", {"duplicate-of": ref})
        self.assertRedirects(response, detail(other))
        other.refresh_from_db()
        self.assertEqual((other.status, other.duplicate_of), ("duplicate", self.n11))

    def test_notes_and_triage(self):
        self.post(self.w.block1, self.n11, "note", {"note-text": "Vive sola, tocar fuerte"})
        self.assertContains(self.client_for(self.w.sector1).get(detail(self.n11)), "Vive sola, tocar fuerte")
        response = self.post(
            self.w.sector1, self.n11, "triage", {"triage-category": "salud", "triage-urgency": "critical"}
        )
        self.assertRedirects(response, detail(self.n11))
        self.n11.refresh_from_db()
        self.assertEqual(
            (self.n11.category.code, self.n11.urgency, self.n11.status), ("salud", "critical", "triaged")
        )
        before = snapshot(self.n11)
        response = self.post(
            self.w.sector1, self.n11, "triage", {"triage-category": "nope", "triage-urgency": "low"}
        )
        self.assertContains(response, 'class="errorlist')
        self.assertEqual(snapshot(self.n11), before)

    def test_recategorising_as_violence_hides_it_from_the_liaisons(self):
        self.post(
            self.w.sector1, self.n11, "triage", {"triage-category": "violencia", "triage-urgency": "high"}
        )
        self.assertEqual(self.client_for(self.w.sector1).get(detail(self.n11)).status_code, 404)
        stub = self.client_for(self.w.block1).get(detail(self.n11))
        self.assertContains(stub, "Referred to a case officer")
        self.assertNotContains(stub, "Despensa para adulta mayor")
        self.assertContains(
            self.client_for(self.w.caseworker).get(detail(self.n11)), "Despensa para adulta mayor"
        )

    def test_who_may_act(self):
        before = snapshot(self.n11)
        audits = AuditEvent.objects.count()
        for user, status in (
            (self.w.sector2, 404),
            (self.w.other_coord, 404),
            (self.w.observer, 404),
            (self.w.volunteer, 404),
            (self.w.nobody, 404),
        ):
            response = self.post(user, self.n11, "cancel", {"cancel-reason": "x"})
            self.assertEqual(response.status_code, status, user.username)
        self.assertEqual(
            self.client_for(None).post(action(self.n11, "cancel"), {"cancel-reason": "x"}).status_code, 302
        )
        self.assertEqual(self.post(self.w.coord, self.n11, "explode").status_code, 404)
        self.assertEqual(self.client_for(self.w.coord).get(action(self.n11, "acknowledge")).status_code, 405)
        # The liaison who registered a violence report keeps a stub: no action on it.
        self.assertEqual(self.post(self.w.block1, self.secret, "note", {"note-text": "x"}).status_code, 404)
        self.assertEqual(snapshot(self.n11), before)
        # An assigned volunteer works on the need but may not cancel it (403, audited).
        services.assign_need(self.n11, actor=self.w.coord, user=self.w.volunteer)
        before = snapshot(self.n11)
        audits = AuditEvent.objects.count()
        self.assertEqual(
            self.post(self.w.volunteer, self.n11, "cancel", {"cancel-reason": "x"}).status_code, 403
        )
        self.assertEqual(snapshot(self.n11), before)
        self.assertEqual(AuditEvent.objects.count(), audits + 1)
        self.assertRedirects(self.post(self.w.volunteer, self.n11, "start"), detail(self.n11))
        self.assertRedirects(
            self.post(self.w.volunteer, self.n11, "resolve", {"resolve-outcome": "solved"}), detail(self.n11)
        )

    def test_the_case_officer_acts_on_a_violence_report(self):
        response = self.post(self.w.caseworker, self.secret, "note", {"note-text": "Contactada, a salvo"})
        self.assertRedirects(response, detail(self.secret))
        event = NeedEvent.objects.filter(need=self.secret, kind="note").get()
        self.assertNotIn("Contactada", str(event.data))  # stored encrypted
        self.assertContains(
            self.client_for(self.w.caseworker).get(detail(self.secret)), "Contactada, a salvo"
        )
        self.assertIn(SECRET, self.client_for(self.w.caseworker).get(detail(self.secret)).content.decode())
