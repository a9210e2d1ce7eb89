"""Needs services: intake, routing, deadlines, triage, assignment, the lifecycle, referrals, notes, settings.

Every refusal leaves the need as it was (in the database and in memory) and writes one audit row.
"""

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.needs import queries, services
from redes.needs.models import (
    DeadlinePolicy,
    Need,
    NeedCategory,
    NeedEvent,
    Notification,
    Office,
    Referral,
    RoutingRule,
)
from redes.registry import services as registry
from tests.base import RedesTestCase

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def snapshot(need: Need) -> dict:
    need = Need.objects.get(pk=need.pk)
    return {f.attname: getattr(need, f.attname) for f in Need._meta.concrete_fields}


class NeedsTestCase(RedesTestCase):
    def setUp(self):
        services.ensure_defaults(self.w.esc)
        services.ensure_defaults(self.w.aca)

    def need(self, node=None, *, actor=None, category="alimentacion", urgency="normal", **extra):
        w = self.w
        extra.setdefault("channel", "field")
        with clock.travel(extra.pop("at", T0)):
            return services.register_need(
                actor=actor or w.coord,
                municipality=extra.pop("municipality", w.esc),
                category=category,
                description=extra.pop("description", "Sin despensa esta semana"),
                urgency=urgency,
                node=node or w.b11,
                **extra,
            )

    def assertRefused(self, action, exc_type, fn, need=None, **kwargs):
        before = snapshot(need) if need is not None else None
        events = NeedEvent.objects.count()
        audits = AuditEvent.objects.filter(action=action).exclude(outcome="ok").count()
        with self.assertRaises(exc_type):
            fn(**kwargs) if need is None else fn(need, **kwargs)
        self.assertEqual(NeedEvent.objects.count(), events)
        self.assertEqual(AuditEvent.objects.filter(action=action).exclude(outcome="ok").count(), audits + 1)
        if need is not None:
            self.assertEqual(snapshot(need), before)
            self.assertEqual({f: getattr(need, f) for f in before}, before)  # also in memory


class DefaultsTests(NeedsTestCase):
    def test_defaults_are_created_once(self):
        services.ensure_defaults(self.w.esc)
        cats = NeedCategory.objects.filter(municipality=self.w.esc)
        self.assertEqual(
            sorted(cats.values_list("code", flat=True)),
            sorted(
                [
                    "alimentacion",
                    "salud",
                    "emocional",
                    "seguridad",
                    "violencia",
                    "economia",
                    "informacion",
                    "otro",
                ]
            ),
        )
        self.assertEqual(list(cats.filter(sensitive=True).values_list("code", flat=True)), ["violencia"])
        self.assertEqual(DeadlinePolicy.objects.filter(municipality=self.w.esc, category=None).count(), 4)
        with translation.override("en"):
            self.assertEqual(str(cats.get(code="salud").label), "Medicines and health")


class IntakeTests(NeedsTestCase):
    def test_a_block_liaison_registers_a_need_on_their_block(self):
        w = self.w
        need = self.need(actor=w.block1, urgency="high")
        self.assertEqual(
            (need.status, need.node, need.holder_node, need.reported_by), ("new", w.b11, w.b11, w.block1)
        )
        self.assertEqual(need.ack_due, T0 + dt.timedelta(hours=4))
        self.assertEqual(need.resolve_due, T0 + dt.timedelta(days=3))
        self.assertEqual((need.due_at, need.escalate_at), (need.ack_due, need.ack_due))
        event = need.events.get()
        self.assertEqual((event.kind, event.to_status, event.actor), ("created", "new", w.block1))
        audit = AuditEvent.objects.get(action="needs.need.create")
        self.assertEqual(audit.object_id, str(need.uuid))
        self.assertNotIn("despensa", audit.summary + str(audit.changes))

    def test_intake_from_a_household_uses_its_block(self):
        w = self.w
        household = registry.create_household(w.b12, actor=w.coord, street="Juárez", ext_number="10")
        with clock.travel(T0):
            need = services.register_need(
                actor=w.operator,
                municipality=w.esc,
                category="salud",
                description="Insulina",
                urgency="critical",
                channel="hotline",
                household=household,
                contact_phone="81 1234 5678",
            )
        self.assertEqual((need.node, need.household, need.contact_phone), (w.b12, household, "+528112345678"))

    def test_public_form_without_a_place_goes_to_the_municipality(self):
        w = self.w
        with clock.travel(T0):
            need = services.register_need(
                actor=None,
                municipality=w.esc,
                category="seguridad",
                description="Luminaria fundida",
                urgency="low",
                channel="public",
                lat=25.70,
                lon=-100.10,
            )
        self.assertEqual((need.node, need.holder_node, need.reported_by), (w.esc_node, w.esc_node, None))
        self.assertIn(need, queries.queue(w.coord))

    def test_bad_intake_is_refused_and_audited(self):
        w = self.w
        base = {
            "actor": w.block1,
            "municipality": w.esc,
            "description": "x",
            "urgency": "normal",
            "channel": "field",
            "node": w.b11,
        }
        for category in (
            "no-such-category",
            NeedCategory.objects.get(municipality=w.aca, code="salud"),
            None,
        ):
            self.assertRefused(
                "needs.need.create", ValidationError, services.register_need, category=category, **base
            )
        bad = [
            {"category": "salud", "urgency": "someday"},
            {"category": "salud", "channel": "pigeon"},
            {"category": "salud", "description": "   "},
            {"category": "salud", "contact_phone": "12"},
            {"category": "salud", "lat": 200, "lon": 0},
            {"category": "salud", "node": w.ab},
        ]
        for change in bad:
            with self.subTest(change=change):
                self.assertRefused(
                    "needs.need.create", ValidationError, services.register_need, **{**base, **change}
                )
        # Outside the liaison's territory: not allowed.
        self.assertRefused(
            "needs.need.create",
            PermissionDenied,
            services.register_need,
            category="salud",
            **{**base, "node": w.b21},
        )
        self.assertFalse(Need.objects.exists())

    def test_deadlines_follow_the_policies(self):
        w = self.w
        services.save_deadline_policy(
            w.esc, actor=w.coord, category="salud", urgency="normal", ack_minutes=30, resolve_minutes=120
        )
        salud = self.need(category="salud")
        food = self.need()
        self.assertEqual(salud.ack_due - T0, dt.timedelta(minutes=30))
        self.assertEqual(food.ack_due - T0, dt.timedelta(days=1))
        services.save_deadline_policy(
            w.esc, actor=w.coord, urgency="normal", ack_minutes=60, resolve_minutes=600
        )
        self.assertEqual(self.need().ack_due - T0, dt.timedelta(hours=1))


class RoutingTests(NeedsTestCase):
    def test_rules_assign_at_intake(self):
        w = self.w
        office = services.save_office(w.esc, actor=w.coord, name="DIF municipal", phone="81 8000 0000")
        group = services.save_working_group(
            w.esc, actor=w.coord, name="Despensas", node=w.s1, members=[w.volunteer]
        )
        services.save_routing_rule(w.esc, actor=w.coord, category="salud", target="office", office=office)
        services.save_routing_rule(
            w.esc, actor=w.coord, category="alimentacion", target="group", group=group, node=w.s1
        )
        services.save_routing_rule(
            w.esc, actor=w.coord, category="economia", target="user", user=w.sector2, node=w.s2
        )
        salud = self.need(category="salud")
        food = self.need()
        food_elsewhere = self.need(w.b21)
        income_here = self.need(category="economia")
        self.assertEqual((salud.status, salud.assigned_office), ("assigned", office))
        self.assertEqual((food.status, food.assigned_group), ("assigned", group))
        self.assertEqual((food_elsewhere.status, food_elsewhere.assigned_group), ("new", None))
        self.assertEqual((income_here.status, income_here.assigned_user), ("new", None))
        self.assertTrue(Notification.objects.filter(user=w.volunteer, need=food, kind="assigned").exists())
        self.assertIn(food, queries.queue(w.volunteer))
        self.assertNotIn(food_elsewhere, queries.queue(w.volunteer))

    def test_bad_rules_are_refused(self):
        w = self.w
        self.assertRefused(
            "needs.routing.save",
            ValidationError,
            services.save_routing_rule,
            municipality=w.esc,
            actor=w.coord,
            category="violencia",
            target="user",
            user=w.sector1,
        )
        self.assertRefused(
            "needs.routing.save",
            ValidationError,
            services.save_routing_rule,
            municipality=w.esc,
            actor=w.coord,
            category="salud",
            target="user",
            user=w.sector2,
            node=w.s1,
        )
        self.assertRefused(
            "needs.routing.save",
            PermissionDenied,
            services.save_routing_rule,
            municipality=w.esc,
            actor=w.sector1,
            category="salud",
            target="liaison",
        )
        self.assertFalse(RoutingRule.objects.exists())


class LifecycleTests(NeedsTestCase):
    def test_the_whole_lifecycle(self):
        w = self.w
        need = self.need(actor=w.block1)
        with clock.travel(T0 + dt.timedelta(hours=1)):
            services.triage_need(need, actor=w.block1, urgency="high", note="Tres niños")
            self.assertEqual((need.status, need.urgency), ("triaged", "high"))
            self.assertEqual(need.ack_due, T0 + dt.timedelta(hours=4))
            services.assign_need(need, actor=w.block1, user=w.volunteer)
            self.assertEqual((need.status, need.assigned_user), ("assigned", w.volunteer))
            self.assertIsNotNone(need.acknowledged_at)  # assigning is acknowledging
            self.assertEqual(need.due_at, need.resolve_due)
            services.start_need(need, actor=w.volunteer)
            services.add_note(need, actor=w.volunteer, text="Llevé despensa")
            services.resolve_need(need, actor=w.volunteer, outcome="solved", note="Entregada")
            with self.assertRaises(PermissionDenied):
                services.close_need(need, actor=w.volunteer, satisfaction=5)
            services.close_need(need, actor=w.sector1, satisfaction=5)
        need.refresh_from_db()
        self.assertEqual((need.status, need.outcome, need.satisfaction), ("closed", "solved", 5))
        self.assertIsNone(need.escalate_at)
        kinds = list(need.events.values_list("kind", flat=True))
        self.assertEqual(kinds, ["created", "triaged", "assigned", "started", "note", "resolved", "closed"])
        notes = [e.note for e in queries.timeline(need, w.sector1)]
        self.assertIn("Llevé despensa", notes)
        self.assertTrue(Notification.objects.filter(user=w.volunteer, need=need, kind="assigned").exists())

    def test_impossible_transitions_are_refused(self):
        w = self.w
        need = self.need()
        services.cancel_need(need, actor=w.coord, reason="Registrada dos veces")
        for fn, kwargs, action in (
            (services.resolve_need, {"outcome": "solved"}, "needs.need.resolve"),
            (services.start_need, {}, "needs.need.start"),
            (services.acknowledge_need, {}, "needs.need.acknowledge"),
            (services.assign_need, {"user": w.block1}, "needs.need.assign"),
            (services.triage_need, {"urgency": "high"}, "needs.need.triage"),
            (services.cancel_need, {"reason": "otra vez"}, "needs.need.cancel"),
        ):
            with self.subTest(fn=fn.__name__):
                self.assertRefused(action, ValidationError, fn, need=need, actor=w.coord, **kwargs)
        services.reopen_need(need, actor=w.coord)
        self.assertEqual(need.status, "triaged")
        self.assertRefused(
            "needs.need.reopen", ValidationError, services.reopen_need, need=need, actor=w.coord
        )

    def test_bad_closing_input_is_refused(self):
        w = self.w
        need = self.need()
        self.assertRefused("needs.need.close", ValidationError, services.close_need, need=need, actor=w.coord)
        self.assertRefused(
            "needs.need.close",
            ValidationError,
            services.close_need,
            need=need,
            actor=w.coord,
            outcome="solved",
            satisfaction=6,
        )
        self.assertRefused(
            "needs.need.close",
            ValidationError,
            services.close_need,
            need=need,
            actor=w.coord,
            outcome="magic",
        )
        self.assertRefused(
            "needs.need.resolve", ValidationError, services.resolve_need, need=need, actor=w.coord, outcome=""
        )
        services.close_need(need, actor=w.coord, outcome="withdrawn")
        self.assertEqual((need.status, need.outcome, need.satisfaction), ("closed", "withdrawn", None))

    def test_duplicates(self):
        w = self.w
        first, second = self.need(), self.need()
        other_tenant = self.need(w.ab, actor=w.other_coord, municipality=w.aca)
        self.assertRefused(
            "needs.need.duplicate",
            ValidationError,
            services.mark_duplicate,
            need=second,
            actor=w.coord,
            of=second,
        )
        self.assertRefused(
            "needs.need.duplicate",
            ValidationError,
            services.mark_duplicate,
            need=second,
            actor=w.coord,
            of=other_tenant,
        )
        services.mark_duplicate(second, actor=w.coord, of=first)
        self.assertEqual((second.status, second.duplicate_of, second.escalate_at), ("duplicate", first, None))

    def test_assignment_must_stay_inside_the_territory(self):
        w = self.w
        need = self.need(w.b11)
        group_s2 = services.save_working_group(w.esc, actor=w.coord, name="Sector 2", node=w.s2)
        aca_office = services.save_office(w.aca, actor=w.other_coord, name="DIF Acapulco")
        for kwargs in (
            {"user": w.sector2},  # liaison of another sector
            {"user": w.other_coord},  # another tenant
            {"user": w.observer},
            {"user": w.nobody},
            {"group": group_s2},
            {"office": aca_office},
            {},
            {"user": w.block1, "office": aca_office},
        ):
            with self.subTest(kwargs=list(kwargs)):
                self.assertRefused(
                    "needs.need.assign",
                    ValidationError,
                    services.assign_need,
                    need=need,
                    actor=w.coord,
                    **kwargs,
                )
        services.assign_need(need, actor=w.coord, user=w.caseworker)
        self.assertEqual(need.assigned_user, w.caseworker)

    def test_who_may_act(self):
        w = self.w
        need = self.need(w.b11)
        for actor in (w.sector2, w.volunteer, w.observer, w.other_coord, w.nobody):
            with self.subTest(actor=actor.username):
                self.assertRefused(
                    "needs.need.triage",
                    PermissionDenied,
                    services.triage_need,
                    need=need,
                    actor=actor,
                    urgency="high",
                )
                self.assertRefused(
                    "needs.need.acknowledge",
                    PermissionDenied,
                    services.acknowledge_need,
                    need=need,
                    actor=actor,
                )
        services.assign_need(need, actor=w.sector1, user=w.volunteer)
        self.assertIsNotNone(need.acknowledged_at)
        services.start_need(need, actor=w.volunteer)
        self.assertRefused(
            "needs.need.assign",
            PermissionDenied,
            services.assign_need,
            need=need,
            actor=w.volunteer,
            user=w.block1,
        )

    def test_notifications_are_marked_read(self):
        w = self.w
        need = self.need()
        services.assign_need(need, actor=w.coord, user=w.block1)
        self.assertEqual(queries.unread_count(w.block1), 1)
        self.assertEqual(services.mark_notifications_read(w.block1, ids=["x", "99999"]), 0)
        self.assertEqual(services.mark_notifications_read(w.sector1), 0)
        self.assertEqual(services.mark_notifications_read(w.block1), 1)
        self.assertEqual(queries.unread_count(w.block1), 0)


class ReferralTests(NeedsTestCase):
    def test_refer_and_follow_up(self):
        w = self.w
        need = self.need()
        office = services.save_office(w.esc, actor=w.coord, name="Secretaría de Salud", kind="office")
        referral = services.refer_need(need, actor=w.block1, office=office, note="Cita el lunes")
        self.assertEqual(referral.status, "sent")
        services.update_referral(referral, actor=w.sector1, status="resolved", note="Atendida")
        referral.refresh_from_db()
        self.assertEqual((referral.status, referral.outcome), ("resolved", "Atendida"))
        self.assertEqual(
            list(need.events.values_list("kind", flat=True)), ["created", "referred", "referral_updated"]
        )
        aca_office = services.save_office(w.aca, actor=w.other_coord, name="DIF Acapulco")
        self.assertRefused(
            "needs.referral.create",
            ValidationError,
            services.refer_need,
            need=need,
            actor=w.coord,
            office=aca_office,
        )
        with self.assertRaises(ValidationError):
            services.update_referral(referral, actor=w.coord, status="lost")
        with self.assertRaises(PermissionDenied):
            services.update_referral(referral, actor=w.sector2, status="accepted")
        referral.refresh_from_db()
        self.assertEqual(referral.status, "resolved")
        self.assertEqual(Referral.objects.count(), 1)


class SensitiveTests(NeedsTestCase):
    def test_a_violence_report_is_encrypted_and_only_case_officers_read_it(self):
        w = self.w
        report = self.need(
            actor=w.operator, category="violencia", channel="hotline", description="Golpes frecuentes"
        )
        self.assertTrue(report.sensitive)
        self.assertEqual(report.description, "")
        self.assertNotIn("Golpes", report.sensitive_text)
        self.assertEqual(services.read_sensitive(report, actor=w.caseworker), "Golpes frecuentes")
        self.assertTrue(AuditEvent.objects.filter(action="needs.sensitive.read", outcome="ok").exists())
        for user in (w.coord, w.operator, w.root):
            with self.subTest(user=user.username), self.assertRaises(PermissionDenied):
                services.read_sensitive(report, actor=user)
        self.assertEqual(
            AuditEvent.objects.filter(action="needs.sensitive.read", outcome="denied").count(), 3
        )
        # Notes stay encrypted too.
        event = services.add_note(report, actor=w.caseworker, text="Refugio contactado")
        self.assertNotIn("Refugio", str(event.data))
        self.assertIn("Refugio contactado", [e.note for e in queries.timeline(report, w.caseworker)])
        # Handling it is for case officers.
        self.assertRefused(
            "needs.need.triage",
            PermissionDenied,
            services.triage_need,
            need=report,
            actor=w.coord,
            urgency="high",
        )
        self.assertRefused(
            "needs.need.assign",
            ValidationError,
            services.assign_need,
            need=report,
            actor=w.caseworker,
            user=w.block1,
        )
        services.assign_need(report, actor=w.caseworker, user=w.caseworker)

    def test_recategorising_as_violence_hides_the_description(self):
        w = self.w
        need = self.need(actor=w.block1, description="Violencia en casa")
        services.triage_need(need, actor=w.block1, category="violencia")
        need.refresh_from_db()
        self.assertEqual((need.sensitive, need.description, need.holder_node), (True, "", w.esc_node))
        self.assertEqual(services.read_sensitive(need, actor=w.caseworker), "Violencia en casa")
        self.assertTrue(Notification.objects.filter(user=w.caseworker, need=need, kind="sensitive").exists())
        self.assertTrue(queries.is_stub(need, w.block1))
        services.triage_need(need, actor=w.caseworker, category="emocional")
        need.refresh_from_db()
        self.assertEqual(
            (need.sensitive, need.description, need.holder_node), (False, "Violencia en casa", w.b11)
        )


class SettingsTests(NeedsTestCase):
    def test_categories(self):
        w = self.w
        food = NeedCategory.objects.get(municipality=w.esc, code="alimentacion")
        sub = services.save_category(
            w.esc, actor=w.coord, code="Leche infantil", name="Leche infantil", parent=food
        )
        self.assertEqual(sub.code, "leche-infantil")
        need = self.need(category="leche-infantil")
        self.assertIn(need, queries.queue(w.coord, category="alimentacion"))
        self.assertRefused(
            "needs.category.save",
            ValidationError,
            services.save_category,
            municipality=w.esc,
            actor=w.coord,
            code="salud",
            name="Otra",
        )
        self.assertRefused(
            "needs.category.save",
            ValidationError,
            services.save_category,
            municipality=w.esc,
            actor=w.coord,
            instance=food,
            code="alimentacion",
            parent=sub,
        )
        self.assertRefused(
            "needs.category.save",
            PermissionDenied,
            services.save_category,
            municipality=w.esc,
            actor=w.block1,
            code="x",
            name="X",
        )
        services.save_category(
            w.esc, actor=w.coord, instance=sub, code="leche-infantil", name="Leche", parent=food, active=False
        )
        self.assertRefused(
            "needs.need.create",
            ValidationError,
            services.register_need,
            actor=w.coord,
            municipality=w.esc,
            category="leche-infantil",
            description="x",
            urgency="normal",
            channel="field",
            node=w.b11,
        )

    def test_offices_groups_and_deadlines(self):
        w = self.w
        salud = NeedCategory.objects.get(municipality=w.esc, code="salud")
        line = services.save_office(
            w.esc,
            actor=w.coord,
            kind="hotline",
            name="Línea de la vida",
            phone="800 911 2000",
            hours="24 h",
            categories=[salud],
        )
        self.assertEqual(list(line.categories.all()), [salud])
        self.assertRefused(
            "needs.office.save",
            ValidationError,
            services.save_office,
            municipality=w.esc,
            actor=w.coord,
            name="",
        )
        self.assertRefused(
            "needs.office.save",
            ValidationError,
            services.save_office,
            municipality=w.esc,
            actor=w.coord,
            name="X",
            kind="bar",
        )
        self.assertRefused(
            "needs.group.save",
            ValidationError,
            services.save_working_group,
            municipality=w.esc,
            actor=w.coord,
            name="G",
            members=[w.other_coord],
        )
        self.assertRefused(
            "needs.group.save",
            ValidationError,
            services.save_working_group,
            municipality=w.esc,
            actor=w.coord,
            name="G",
            node=w.ab,
        )
        self.assertRefused(
            "needs.deadline.save",
            ValidationError,
            services.save_deadline_policy,
            municipality=w.esc,
            actor=w.coord,
            urgency="high",
            ack_minutes=100,
            resolve_minutes=50,
        )
        self.assertRefused(
            "needs.deadline.save",
            PermissionDenied,
            services.save_deadline_policy,
            municipality=w.esc,
            actor=w.other_coord,
            urgency="high",
            ack_minutes=10,
            resolve_minutes=50,
        )
        self.assertEqual(Office.objects.filter(municipality=w.esc).count(), 1)
