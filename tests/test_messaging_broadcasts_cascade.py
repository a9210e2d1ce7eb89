"""Cascade broadcasts: rows per node, vacant pass-through, acknowledgements releasing the level below, replies
"OK", reminders, overdue escalation with the movable clock, households at the last level, the done state."""

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.messaging import broadcasts
from redes.messaging.models import Broadcast, CascadeNode, Contact, Outbound

from .base import RedesTestCase
from .messaging_bcast_support import home

S = CascadeNode.Status


@override_settings(LANGUAGE_CODE="en")
class CascadeTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        w.coord.phone = "+528119990000"
        w.coord.save()
        home(w.b11, "+528110000001")
        home(w.b12, "+528110000002")
        home(w.b21, "+528110000003")
        home(w.b21, "+528110000004", consent=False)

    def setUp(self):
        self.start_at = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
        self.travel = clock.travel(self.start_at)
        self.travel.__enter__()
        self.addCleanup(self.travel.__exit__, None, None, None)

    def start(self, **kwargs):
        w = self.w
        args = {
            "actor": w.coord,
            "municipality": w.esc,
            "node": w.esc_node,
            "title": "Alerta",
            "body": "Lluvias fuertes",
            "cascade": True,
            "reach_households": True,
            "ack_minutes": 60,
            "remind_minutes": 30,
        }
        b = broadcasts.create_broadcast(**{**args, **kwargs})
        return broadcasts.start_broadcast(b, actor=w.coord)

    def status(self, b):
        return {r.node.code: r.status for r in CascadeNode.objects.filter(broadcast=b).select_related("node")}

    def row(self, b, node):
        return CascadeNode.objects.get(broadcast=b, node=node)

    def messages(self, b, kind):
        return sorted(
            Outbound.objects.filter(broadcast=b, kind=kind).values_list("contact__address", flat=True)
        )

    def test_rows_for_every_node_and_the_first_level_sent(self):
        w = self.w
        b = self.start()
        self.assertEqual(
            self.status(b),
            {
                "19021": S.ACKED,  # the root: the sender
                "S01": S.SENT,
                "S02": S.VACANT,  # no liaison: passed on at once
                "S01-M001": S.WAITING,
                "S01-M002": S.WAITING,
                "S02-M001": S.VACANT,
            },
        )
        s1 = self.row(b, w.s1)
        self.assertEqual((s1.user_id, s1.depth, s1.parent.node_id), (w.sector1.pk, 3, w.esc_node.pk))
        self.assertEqual(s1.sent_at, self.start_at)
        self.assertEqual(s1.due_at, self.start_at + dt.timedelta(minutes=60))
        # sector1 has no phone on the account: reached through the phone of the liaison post.
        self.assertEqual(s1.contact.address, "+528112345678")
        self.assertEqual(s1.contact.user_id, w.sector1.pk)
        prompt = Outbound.objects.get(broadcast=b, kind=Outbound.Kind.CASCADE)
        self.assertEqual(prompt.template, "cascade_prompt")
        self.assertEqual(prompt.variables, {"title": "Alerta", "body": "Lluvias fuertes", "node": "Sector 1"})
        self.assertEqual(self.row(b, w.b11).parent.node_id, w.s1.pk)
        # The vacant block of the vacant sector reached its households (consent rules apply).
        self.assertEqual(self.messages(b, Outbound.Kind.BROADCAST), ["+528110000003", "+528110000004"])
        self.assertEqual(
            Outbound.objects.get(contact__address="+528110000004").status, Outbound.Status.SKIPPED
        )
        self.assertEqual(b.recipients, 2)  # sector1 and one household

    def test_acknowledgement_releases_the_level_below(self):
        w = self.w
        b = self.start()
        clock.advance(dt.timedelta(minutes=5))
        with self.assertRaises(PermissionDenied):
            broadcasts.acknowledge(self.row(b, w.s1), actor=w.block1)
        with self.assertRaises(ValidationError):
            broadcasts.acknowledge(self.row(b, w.b11), actor=w.block1)  # not reached yet
        broadcasts.acknowledge(self.row(b, w.s1), actor=w.sector1)
        s1 = self.row(b, w.s1)
        self.assertEqual((s1.status, s1.ack_via, s1.acked_at), (S.ACKED, "web", clock.now()))
        self.assertEqual(self.status(b)["S01-M001"], S.SENT)
        self.assertEqual(self.status(b)["S01-M002"], S.VACANT)
        self.assertIn("+528110000002", self.messages(b, Outbound.Kind.BROADCAST))  # vacant block: households
        self.assertNotIn("+528110000001", self.messages(b, Outbound.Kind.BROADCAST))
        with self.assertRaises(ValidationError) as ctx:  # a double click
            broadcasts.acknowledge(self.row(b, w.s1), actor=w.sector1)
        self.assertEqual(ctx.exception.code, "acked")
        # The block liaison answers "OK" by message.
        contact = Contact.objects.get(address="+528112345679")
        self.assertEqual(self.row(b, w.b11).contact_id, contact.pk)
        row = broadcasts.acknowledge_contact(contact, "sms")
        self.assertEqual((row.node_id, row.status, row.ack_via), (w.b11.pk, S.ACKED, "sms"))
        self.assertIn("+528110000001", self.messages(b, Outbound.Kind.BROADCAST))
        self.assertIsNone(broadcasts.acknowledge_contact(contact, "sms"))  # nothing left waiting
        self.assertEqual(AuditEvent.objects.filter(action="messaging.cascade.ack", outcome="ok").count(), 2)
        # Done once every node is settled and the outbox drained.
        self.assertEqual(broadcasts.tick()["done"], 0)
        Outbound.objects.filter(broadcast=b, status=Outbound.Status.QUEUED).update(
            status=Outbound.Status.SENT
        )
        self.assertEqual(broadcasts.tick()["done"], 1)
        b.refresh_from_db()
        self.assertEqual((b.status, b.finished_at), (Broadcast.Status.DONE, clock.now()))
        progress = broadcasts.progress(b)
        self.assertEqual(progress["totals"][S.ACKED], 3)
        self.assertEqual(progress["totals"][S.VACANT], 3)
        self.assertEqual([d["depth"] for d in progress["depths"]], [2, 3, 4])
        names = {n["code"]: n["liaison"] for n in progress["nodes"]}
        self.assertEqual(names["S01"], "Sergio Sector")
        self.assertFalse(any(n["liaison"] for n in broadcasts.progress(b, personal=False)["nodes"]))

    def test_reminder_then_overdue_escalates_and_releases(self):
        w = self.w
        b = self.start()
        clock.advance(dt.timedelta(minutes=29))
        self.assertEqual(broadcasts.tick()["reminded"], 0)
        clock.advance(dt.timedelta(minutes=1))
        self.assertEqual(broadcasts.tick()["reminded"], 1)
        self.assertEqual(broadcasts.tick()["reminded"], 0)  # once
        s1 = self.row(b, w.s1)
        self.assertEqual((s1.reminders, s1.reminded_at), (1, clock.now()))
        reminder = Outbound.objects.get(broadcast=b, kind=Outbound.Kind.REMINDER)
        self.assertEqual((reminder.template, reminder.contact_id), ("cascade_reminder", s1.contact_id))
        clock.advance(dt.timedelta(minutes=29, seconds=59))
        self.assertEqual(broadcasts.tick()["overdue"], 0)
        clock.advance(dt.timedelta(seconds=1))
        result = broadcasts.tick()
        self.assertEqual(result["overdue"], 1)
        s1 = self.row(b, w.s1)
        self.assertEqual((s1.status, s1.escalated_at), (S.OVERDUE, clock.now()))
        # The parent is the root: the coordinators hear of it.
        escalation = Outbound.objects.get(template="cascade_escalated")
        self.assertEqual(escalation.contact.address, "+528119990000")
        self.assertEqual(escalation.variables["node"], "Sector 1")
        # The level below was released so the cascade does not stall.
        self.assertEqual(self.status(b)["S01-M001"], S.SENT)
        self.assertEqual(self.status(b)["S01-M002"], S.VACANT)
        # The block liaison does not answer either: escalated to the sector liaison.
        clock.advance(dt.timedelta(minutes=61))
        result = broadcasts.tick()
        self.assertEqual(result["overdue"], 1)
        self.assertEqual(result["reminded"], 0)  # overdue first: no reminder for a node already late
        to_sector = Outbound.objects.filter(template="cascade_escalated").exclude(pk=escalation.pk).get()
        self.assertEqual(to_sector.contact.address, "+528112345678")
        self.assertIn("+528110000001", self.messages(b, Outbound.Kind.BROADCAST))
        # A late acknowledgement is still recorded, without releasing anything twice.
        before = Outbound.objects.count()
        broadcasts.acknowledge(self.row(b, w.s1), actor=w.sector1)
        self.assertEqual(self.row(b, w.s1).status, S.ACKED)
        self.assertEqual(Outbound.objects.count(), before)
        Outbound.objects.filter(status=Outbound.Status.QUEUED).update(status=Outbound.Status.DELIVERED)
        self.assertEqual(broadcasts.tick()["done"], 1)

    def test_without_households_and_from_a_sector(self):
        w = self.w
        b = self.start(reach_households=False, node=w.s1, actor=w.sector1)
        self.assertEqual(self.status(b), {"S01": S.ACKED, "S01-M001": S.SENT, "S01-M002": S.VACANT})
        self.assertEqual(self.messages(b, Outbound.Kind.BROADCAST), [])
        self.assertEqual(self.messages(b, Outbound.Kind.CASCADE), ["+528112345679"])
        clock.advance(dt.timedelta(minutes=60))
        broadcasts.tick()
        # The parent is the broadcast's own root (a sector): its holder and the coordinators hear of it.
        escalated = set(
            Outbound.objects.filter(template="cascade_escalated").values_list("contact__address", flat=True)
        )
        self.assertEqual(escalated, {"+528112345678", "+528119990000"})

    def test_cancel_ends_the_cascade(self):
        b = self.start()
        broadcasts.cancel(b, actor=self.w.coord)
        self.assertIsNone(broadcasts.acknowledge_contact(Contact.objects.get(address="+528112345678"), "sms"))
        clock.advance(dt.timedelta(hours=3))
        self.assertEqual(broadcasts.tick(), {"reminded": 0, "overdue": 0, "escalations": 0, "done": 0})
