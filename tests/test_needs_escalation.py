"""Escalation up the liaison tree, timed with the controllable clock (no wall-clock assertions)."""

import datetime as dt
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from redes.core import clock
from redes.liaisons.services import assign_liaison
from redes.needs import escalation, queries, services
from redes.needs.models import Need, NeedEvent, Notification
from tests.base import RedesTestCase

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


class ClockTests(RedesTestCase):
    def test_travel_freezes_and_advance_moves(self):
        with clock.travel(T0):
            self.assertEqual(clock.now(), T0)
            clock.advance(dt.timedelta(hours=2))
            self.assertEqual(clock.now(), T0 + dt.timedelta(hours=2))
        self.assertLess(abs(clock.now() - timezone.now()), dt.timedelta(minutes=5))

    def test_travel_by_a_timedelta_is_relative(self):
        with clock.travel(dt.timedelta(days=3)) as at:
            self.assertEqual(clock.now(), at)
            self.assertGreater(at - timezone.now(), dt.timedelta(days=2))


class EscalationTests(RedesTestCase):
    def setUp(self):
        services.ensure_defaults(self.w.esc)

    def need(self, node, *, category="alimentacion", urgency="normal", actor=None, at=T0):
        with clock.travel(at):
            return services.register_need(
                actor=actor or self.w.coord,
                municipality=self.w.esc,
                category=category,
                description="Una familia sin despensa",
                urgency=urgency,
                channel="field",
                node=node,
            )

    def sweep(self, at, **kwargs):
        with clock.travel(at):
            return services.escalate_overdue(**kwargs)

    def notified(self, user, need):
        return Notification.objects.filter(user=user, need=need, kind=Notification.Kind.ESCALATED).count()

    def test_it_climbs_from_block_to_sector_to_coordinator(self):
        w = self.w
        need = self.need(w.b11, actor=w.block1)
        self.assertEqual((need.holder_node, need.escalation_level), (w.b11, 0))
        ack = need.ack_due
        self.assertEqual(ack, T0 + DAY)  # normal urgency: one day to acknowledge

        self.assertEqual(self.sweep(ack - MIN).escalated, 0)
        need.refresh_from_db()
        self.assertEqual(need.holder_node, w.b11)

        result = self.sweep(ack)
        self.assertEqual(result.escalated, 1)
        need.refresh_from_db()
        self.assertEqual((need.holder_node, need.escalation_level), (w.s1, 1))
        self.assertEqual(need.escalate_at, ack + DAY)
        self.assertIsNone(need.acknowledged_at)
        event = need.events.get(kind=NeedEvent.Kind.ESCALATED)
        self.assertEqual((event.node, event.at, event.data), (w.s1, ack, {"level": 1}))
        self.assertEqual(self.notified(w.sector1, need), 1)
        self.assertEqual(self.notified(w.coord, need), 0)

        self.assertEqual(self.sweep(ack + DAY - MIN).escalated, 0)
        result = self.sweep(ack + DAY)
        self.assertEqual((result.escalated, result.to_coordinators), (1, 1))
        need.refresh_from_db()
        self.assertEqual((need.holder_node, need.escalation_level), (w.esc_node, 2))
        self.assertEqual(self.notified(w.coord, need), 1)
        kinds = [(e.kind, e.node_id) for e in need.events.all()]
        self.assertEqual(
            kinds,
            [("created", w.b11.pk), ("escalated", w.s1.pk), ("escalated", w.esc_node.pk)],
        )

        # At the top it climbs no further: the deadline is cleared and it stays overdue for the coordinators.
        result = self.sweep(ack + 2 * DAY)
        self.assertEqual((result.escalated, result.at_top), (0, 1))
        need.refresh_from_db()
        self.assertEqual((need.holder_node, need.escalation_level, need.escalate_at), (w.esc_node, 2, None))
        with clock.travel(ack + 3 * DAY):
            self.assertIn(need, queries.queue(w.coord, overdue=True))
            self.assertIn(need, queries.queue(w.coord, mine=True))
            self.assertNotIn(need, queries.queue(w.block1, mine=True))
        self.assertEqual(self.sweep(ack + 10 * DAY).at_top, 0)

    def test_vacant_posts_are_skipped(self):
        w = self.w
        under_vacant_sector = self.need(w.b21)  # S02-M001 and S02 are both vacant
        vacant_block = self.need(w.b12)  # S01-M002 is vacant, S01 is held
        self.sweep(T0 + DAY)
        under_vacant_sector.refresh_from_db()
        vacant_block.refresh_from_db()
        self.assertEqual(under_vacant_sector.holder_node, w.esc_node)
        self.assertEqual(vacant_block.holder_node, w.s1)

    def test_a_post_held_without_an_account_is_skipped_and_a_new_post_counts(self):
        w = self.w
        need = self.need(w.b21)
        assign_liaison(w.s2, full_name="Sin cuenta", phone="8112345670", start_date=dt.date(2026, 1, 5))
        self.sweep(T0 + DAY)
        need.refresh_from_db()
        self.assertEqual(need.holder_node, w.esc_node)

        other = self.need(w.b21)
        w.s2.liaison_assignments.update(user=w.sector2)
        self.sweep(T0 + DAY)
        other.refresh_from_db()
        self.assertEqual(other.holder_node, w.s2)
        self.assertEqual(self.notified(w.sector2, other), 1)

    def test_an_acknowledged_need_escalates_only_after_the_resolve_deadline(self):
        w = self.w
        need = self.need(w.b11, urgency="high", actor=w.block1)  # high: 4 h to acknowledge, 3 days to resolve
        with clock.travel(T0 + dt.timedelta(hours=1)):
            services.acknowledge_need(need, actor=w.block1)
        self.assertEqual(need.escalate_at, need.resolve_due)
        self.assertEqual(self.sweep(T0 + dt.timedelta(hours=5)).escalated, 0)
        self.assertEqual(self.sweep(need.resolve_due - MIN).escalated, 0)
        self.assertEqual(self.sweep(need.resolve_due).escalated, 1)
        need.refresh_from_db()
        self.assertEqual((need.holder_node, need.acknowledged_at), (w.s1, None))
        # The sector liaison acknowledges: at least one acknowledgement window before the next climb.
        with clock.travel(need.resolve_due + dt.timedelta(hours=1)) as now:
            services.acknowledge_need(need, actor=w.sector1)
            self.assertEqual(need.escalate_at, now + dt.timedelta(hours=4))
            self.assertTrue(need.is_overdue)

    def test_resolved_closed_and_cancelled_needs_never_escalate(self):
        w = self.w
        resolved, closed, cancelled = (self.need(w.b11) for _ in range(3))
        with clock.travel(T0 + dt.timedelta(hours=1)):
            services.resolve_need(resolved, actor=w.block1, outcome="solved")
            services.close_need(closed, actor=w.coord, outcome="solved", satisfaction=5)
            services.cancel_need(cancelled, actor=w.coord, reason="Registrada por error")
        result = self.sweep(T0 + 30 * DAY)
        self.assertEqual((result.escalated, result.at_top), (0, 0))
        for need in (resolved, closed, cancelled):
            need.refresh_from_db()
            self.assertEqual((need.holder_node, need.escalation_level, need.escalate_at), (w.b11, 0, None))
        self.assertFalse(NeedEvent.objects.filter(kind=NeedEvent.Kind.ESCALATED).exists())

    def test_sensitive_needs_notify_case_officers_and_never_climb(self):
        w = self.w
        report = self.need(w.b11, category="violencia", urgency="critical", actor=w.operator)
        self.assertEqual(report.holder_node, w.esc_node)
        self.assertTrue(
            Notification.objects.filter(user=w.caseworker, need=report, kind="sensitive").exists()
        )
        result = self.sweep(T0 + dt.timedelta(hours=1))
        self.assertEqual((result.sensitive, result.escalated), (1, 0))
        report.refresh_from_db()
        self.assertEqual((report.holder_node, report.escalation_level), (w.esc_node, 1))
        self.assertEqual(
            Notification.objects.filter(user=w.caseworker, need=report, kind="sensitive").count(), 2
        )
        self.assertFalse(Notification.objects.filter(need=report).exclude(user=w.caseworker).exists())
        self.assertEqual(report.events.filter(kind="escalated").count(), 1)

    def test_one_municipality_only(self):
        w = self.w
        need = self.need(w.b11)
        self.assertEqual(self.sweep(T0 + DAY, municipality=w.aca).escalated, 0)
        self.assertEqual(self.sweep(T0 + DAY, municipality=w.esc).escalated, 1)
        need.refresh_from_db()
        self.assertEqual(need.holder_node, w.s1)

    def test_many_needs_to_one_holder_make_one_summary_notification(self):
        w = self.w
        needs = [self.need(w.b11) for _ in range(4)]
        with mock.patch.object(escalation, "NOTIFY_EACH", 3):
            result = self.sweep(T0 + DAY)
        self.assertEqual(result.escalated, 4)
        notes = Notification.objects.filter(user=w.sector1, kind="escalated")
        self.assertEqual(notes.count(), 1)
        self.assertEqual((notes[0].need, notes[0].data["count"]), (None, 4))
        self.assertEqual(Need.objects.filter(pk__in=[n.pk for n in needs], holder_node=w.s1).count(), 4)

    def test_reopening_starts_again_at_the_block(self):
        w = self.w
        need = self.need(w.b11)
        self.sweep(T0 + DAY)
        with clock.travel(T0 + 2 * DAY):
            services.close_need(need, actor=w.coord, outcome="solved")
        with clock.travel(T0 + 3 * DAY) as now:
            services.reopen_need(need, actor=w.coord, note="Volvió a faltar")
            self.assertEqual((need.holder_node, need.escalation_level, need.status), (w.b11, 0, "triaged"))
            self.assertEqual(need.escalate_at, now + DAY)


@override_settings(LANGUAGE_CODE="en")
class SweepCommandTests(RedesTestCase):
    def test_the_command_sweeps_at_the_given_instant(self):
        w = self.w
        services.ensure_defaults(w.esc)
        with clock.travel(T0):
            need = services.register_need(
                actor=w.block1,
                municipality=w.esc,
                category="salud",
                description="Medicamento",
                urgency="critical",
                channel="field",
                node=w.b11,
            )
        out = StringIO()
        call_command("needs", "sweep", "--at", "2026-03-02T08:59:00+00:00", stdout=out, stderr=StringIO())
        need.refresh_from_db()
        self.assertEqual(need.holder_node, w.b11)
        self.assertIn("0", out.getvalue())
        out = StringIO()
        call_command(
            "needs",
            "sweep",
            "--at",
            "2026-03-02T10:00:00+00:00",
            "--municipality",
            "19021",
            stdout=out,
            stderr=StringIO(),
        )
        need.refresh_from_db()
        self.assertEqual(need.holder_node, w.s1)
        self.assertIn("1 overdue need escalated", out.getvalue())

    def test_bad_arguments_are_one_clear_line(self):
        with self.assertRaisesMessage(CommandError, "not a date and time"):
            call_command("needs", "sweep", "--at", "mañana", stdout=StringIO(), stderr=StringIO())
        with self.assertRaisesMessage(CommandError, "99999"):
            call_command("needs", "sweep", "--municipality", "99999", stdout=StringIO(), stderr=StringIO())


class SweeperThreadTests(RedesTestCase):
    def test_the_sweeper_thread_calls_the_sweep_and_stops(self):
        import threading

        from redes.core import worker

        called = threading.Event()
        with mock.patch(
            "redes.needs.services.escalate_overdue",
            side_effect=lambda: called.set() or mock.Mock(escalated=0, sensitive=0),
        ):
            thread = worker.start_sweeper(interval=0.01)
            self.addCleanup(worker.stop_sweeper)
            self.assertTrue(thread.daemon)
            self.assertIs(worker.start_sweeper(interval=0.01), thread)  # once per process
            self.assertTrue(called.wait(30))  # a bound for a stuck thread, not a timing assertion
            worker.stop_sweeper()
        self.assertFalse(thread.is_alive())

    def test_no_sweeper_with_worker_off(self):
        from redes.core import worker

        with mock.patch.dict("os.environ", {"REDES_WORKER": "0"}):
            self.assertIsNone(worker.start_sweeper(interval=0.01))
