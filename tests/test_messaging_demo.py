"""The demo's messaging: the console, texts and menus, groups, the neighbour's conversation (a need reported by
message and its status asked), the cascade mid-way (acknowledged, waiting, overdue and escalated, reminders) and
the finished broadcast with its delivery counts."""

from django.utils import translation

from redes.demo.generator import build_demo
from redes.messaging.models import Broadcast, CascadeNode, Group, Inbound, Outbound
from redes.needs.models import Need
from tests.base import RedesTestCase


class MessagingDemoTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.result = build_demo(seed=1)
        cls.esc = cls.result.escobedo
        cls.stats = cls.result.messaging

    def test_groups_texts_and_menus(self):
        s = self.stats
        self.assertEqual(s.accounts, 1)
        self.assertGreaterEqual(s.templates, 10)
        self.assertEqual(s.flows, 2)
        for kind in ("sector", "block"):
            self.assertGreater(s.groups[kind], 0, kind)
        self.assertEqual(sum(s.groups.values()), Group.objects.filter(municipality=self.esc).count())
        sector_group = Group.objects.filter(municipality=self.esc, kind="sector").first()
        self.assertTrue(sector_group.rules and sector_group.invite_link)
        self.assertTrue(sector_group.moderators.exists())

    def test_the_neighbour_reported_a_need_by_message_and_got_its_status(self):
        c = self.stats.conversation
        self.assertTrue(c)
        found = [
            n
            for n in Need.objects.filter(municipality=self.esc, node__code=c["block"])
            if n.uuid.hex[:8].upper() == c["reference"]
        ]
        self.assertEqual(len(found), 1)
        replies = list(
            Outbound.objects.filter(contact__address=c["number"])
            .order_by("pk")
            .values_list("body", flat=True)
        )
        self.assertIn(c["reference"], replies[-1])  # the status, with the folio
        self.assertTrue(any(c["reference"] in r for r in replies[:-1]))  # the folio when registered
        self.assertFalse(Inbound.objects.filter(sender=c["number"]).exclude(state="done").exists())

    def test_the_cascade_is_mid_way(self):
        c = self.stats.cascade
        broadcast = Broadcast.objects.get(uuid=c["uuid"])
        self.assertEqual(broadcast.status, Broadcast.Status.SENDING)
        self.assertGreater(c["acked"], 0)
        self.assertGreater(c["waiting"], 0)
        self.assertGreaterEqual(c["overdue"], 1)
        self.assertGreater(c["reminders"], 0)
        overdue = CascadeNode.objects.filter(broadcast=broadcast, status="overdue")
        self.assertTrue(all(row.escalated_at for row in overdue))
        self.assertEqual(
            c["acked"],
            CascadeNode.objects.filter(broadcast=broadcast, status="acked")
            .exclude(node=broadcast.node)
            .count(),
        )

    def test_the_finished_broadcast_and_the_lines(self):
        b = self.stats.broadcast
        self.assertGreater(b["count"], 0)
        self.assertGreater(b["delivered"], 0)
        self.assertEqual(b["delivered"] + b["skipped"], b["count"])
        broadcast = Broadcast.objects.get(title=b["title"])
        self.assertEqual(broadcast.status, Broadcast.Status.DONE)
        with translation.override("en"):
            lines = self.stats.lines()
        self.assertEqual(len(lines), 4)
        self.assertIn("Cascade", lines[2])
