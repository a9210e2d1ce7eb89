"""Broadcasts: targets (subtree, role, group, segment), consent and opt-outs, set-based building, starting once."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings
from django.utils import timezone

from redes.audit.models import AuditEvent, Outcome
from redes.messaging import broadcasts
from redes.messaging.models import Broadcast, Contact, Group, Outbound
from redes.needs import services as needs_services
from redes.registry.models import RegistryPolicy

from .base import RedesTestCase
from .messaging_bcast_support import contact, home, whatsapp_account


def rows(broadcast):
    return {
        (o.contact.address, o.status, o.error_code)
        for o in Outbound.objects.filter(broadcast=broadcast).select_related("contact")
    }


@override_settings(LANGUAGE_CODE="en")
class SubtreeTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.ok = home(w.b11, "+528110000001")
        cls.wa = home(w.b11, "+528110000002", whatsapp=True)
        cls.no_consent = home(w.b11, "+528110000003", consent=False)
        cls.revoked = home(w.b12, "+528110000004", revoked=True)
        cls.other_purpose = home(w.b12, "+528110000005", purposes=("aid",))
        cls.gone_person = home(w.b12, "+528110000006", person_status="merged")
        cls.opted_in = home(w.b12, "+528110000007", consent=False)
        cls.opted_out = home(w.b12, "+528110000008")
        cls.blocked = home(w.b12, "+528110000009", status="blocked")
        cls.two = home(w.b11, "+528110000010", extra_phones=("+528110000011",))
        cls.s2 = home(w.b21, "+528110000020")
        cls.aca = home(w.ab, "+527440000001")
        contact(w.esc.pk, "+528110000007", opted_in_at=timezone.now())
        contact(w.esc.pk, "+528110000008", opted_out_at=timezone.now())

    def make(self, **kwargs):
        w = self.w
        args = {"actor": w.coord, "municipality": w.esc, "node": w.s1, "title": "Aviso", "body": "Mañana"}
        return broadcasts.create_broadcast(**{**args, **kwargs})

    def test_subtree_reaches_consenting_households_once(self):
        b = broadcasts.start_broadcast(self.make(), actor=self.w.coord)
        self.assertEqual(b.status, Broadcast.Status.SENDING)
        self.assertEqual(
            rows(b),
            {
                ("+528110000001", "queued", ""),
                ("+528110000002", "queued", ""),
                ("+528110000003", "skipped", "no_consent"),
                ("+528110000004", "skipped", "no_consent"),
                ("+528110000005", "skipped", "no_consent"),
                ("+528110000006", "skipped", "no_consent"),
                ("+528110000007", "queued", ""),
                ("+528110000008", "skipped", "opted_out"),
                ("+528110000010", "queued", ""),
            },
        )
        self.assertEqual(b.recipients, 4)
        b.refresh_from_db()
        self.assertEqual(b.recipients, 4)
        out = Outbound.objects.filter(broadcast=b).first()
        self.assertEqual(
            (out.kind, out.priority, out.template, out.body, out.variables),
            ("broadcast", 5, "broadcast", "", {}),
        )
        self.assertEqual(out.attempts, 0)
        self.assertIsNotNone(out.next_attempt_at)
        progress = broadcasts.progress(b)
        self.assertEqual(progress["excluded"], 5)
        self.assertEqual(progress["outbound"]["queued"], 4)

    def test_contacts_are_synced_with_links_and_channel(self):
        created = broadcasts.sync_household_contacts(self.w.esc, self.w.s1)
        self.assertEqual(created, 8)  # 10 phones of active households in S01, 2 already contacts
        again = broadcasts.sync_household_contacts(self.w.esc, self.w.s1)
        self.assertEqual(again, 0)
        c = Contact.objects.get(address="+528110000002")
        self.assertEqual(
            (c.household_id, c.node_id, c.preferred, c.whatsapp),
            (self.wa.pk, self.w.b11.pk, "whatsapp", True),
        )
        self.assertEqual(len(str(c.uuid)), 36)
        plain = Contact.objects.get(address="+528110000001")
        self.assertEqual((plain.preferred, plain.whatsapp), ("sms", False))
        self.assertFalse(Contact.objects.filter(address="+528110000009").exists())  # blocked household
        self.assertFalse(Contact.objects.filter(address="+528110000020").exists())  # other sector

    def test_each_contact_goes_through_its_channel(self):
        wa = whatsapp_account(self.w.esc.pk)
        b = broadcasts.start_broadcast(self.make(), actor=self.w.coord)
        accounts = dict(
            Outbound.objects.filter(broadcast=b).values_list("contact__address", "account__provider")
        )
        self.assertEqual(accounts["+528110000002"], "whatsapp")
        self.assertEqual(accounts["+528110000001"], "console")  # no SMS account: the console stands in
        self.assertTrue(Outbound.objects.filter(account=wa).exists())

    def test_the_whole_municipality_and_no_other(self):
        b = broadcasts.start_broadcast(self.make(node=self.w.esc_node), actor=self.w.coord)
        addresses = {a for a, _s, _e in rows(b)}
        self.assertIn("+528110000020", addresses)
        self.assertNotIn("+527440000001", addresses)

    def test_a_second_start_is_refused_and_writes_nothing(self):
        b = self.make()
        broadcasts.start_broadcast(b, actor=self.w.coord)
        before = Outbound.objects.count()
        fresh = Broadcast.objects.get(pk=b.pk)
        fresh.status = Broadcast.Status.DRAFT  # a stale copy, as a second click would hold
        with self.assertRaises(ValidationError) as ctx:
            broadcasts.start_broadcast(fresh, actor=self.w.coord)
        self.assertEqual(ctx.exception.code, "started")
        self.assertEqual(Outbound.objects.count(), before)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.broadcast.start", outcome=Outcome.REJECTED).exists()
        )
        # The constraint also holds: building twice adds nothing.
        self.assertEqual(broadcasts.build_outbox(b), 0)
        self.assertEqual(Outbound.objects.count(), before)

    def test_cancel_stops_queued_messages(self):
        b = broadcasts.start_broadcast(self.make(), actor=self.w.coord)
        broadcasts.cancel(b, actor=self.w.coord)
        self.assertEqual(b.status, Broadcast.Status.CANCELLED)
        self.assertFalse(Outbound.objects.filter(broadcast=b, status="queued").exists())
        with self.assertRaises(ValidationError):
            broadcasts.cancel(b, actor=self.w.coord)
        with self.assertRaises(ValidationError):
            broadcasts.start_broadcast(b, actor=self.w.coord)

    def test_done_when_the_outbox_is_drained(self):
        b = broadcasts.start_broadcast(self.make(), actor=self.w.coord)
        broadcasts.tick()
        b.refresh_from_db()
        self.assertEqual(b.status, Broadcast.Status.SENDING)
        Outbound.objects.filter(broadcast=b, status="queued").update(status="delivered")
        self.assertEqual(broadcasts.tick()["done"], 1)
        b.refresh_from_db()
        self.assertEqual(b.status, Broadcast.Status.DONE)
        self.assertIsNotNone(b.finished_at)

    def test_permission_and_validation(self):
        w = self.w
        with self.assertRaises(PermissionDenied):
            self.make(actor=w.block1, node=w.b11)
        with self.assertRaises(PermissionDenied):
            self.make(actor=w.sector1, node=w.s2)
        self.assertEqual(self.make(actor=w.sector1).node, w.s1)  # a sector liaison, for their sector
        bad = [
            {"title": ""},
            {"title": "x" * 121},
            {"body": "  "},
            {"target": "everyone"},
            {"target": "role", "roles": ["king"]},
            {"target": "role", "roles": []},
            {"target": "group"},
            {"target": "segment", "segment": {}},
            {"target": "segment", "segment": {"min_priority": 101}},
            {"target": "segment", "segment": {"categories": ["nope"]}},
            {"target": "segment", "segment": {"colour": "red"}},
            {"target": "segment", "segment": []},
            {"cascade": True, "target": "role", "roles": ["block_liaison"]},
            {"cascade": True, "node": w.b11},
            {"ack_minutes": 0},
            {"ack_minutes": "soon"},
            {"remind_minutes": -1},
            {"cascade": True, "ack_minutes": 30, "remind_minutes": 30},
            {"node": w.ab},
        ]
        for kwargs in bad:
            with self.subTest(kwargs=kwargs), self.assertRaises(ValidationError):
                self.make(**kwargs)
        self.assertEqual(Broadcast.objects.count(), 1)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.broadcast.create", outcome=Outcome.REJECTED).exists()
        )


@override_settings(LANGUAGE_CODE="en")
class SegmentRoleGroupTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.poor = home(w.b11, "+528110000101", priority=70)
        cls.mid = home(w.b11, "+528110000102", priority=45)
        cls.low = home(w.b12, "+528110000103", priority=10)
        cls.hungry = home(w.b12, "+528110000104", priority=5)
        cls.closed = home(w.b12, "+528110000105", priority=5)
        needs_services.ensure_defaults(w.esc)
        needs_services.register_need(
            actor=None,
            municipality=w.esc,
            category="alimentacion",
            description="Comida",
            node=w.b12,
            household=cls.hungry,
        )
        done = needs_services.register_need(
            actor=None,
            municipality=w.esc,
            category="alimentacion",
            description="Comida",
            node=w.b12,
            household=cls.closed,
        )
        type(done).objects.filter(pk=done.pk).update(status="closed")
        needs_services.register_need(
            actor=None,
            municipality=w.esc,
            category="salud",
            description="Medicina",
            node=w.b11,
            household=cls.poor,
        )

    def start(self, **kwargs):
        w = self.w
        args = {"actor": w.coord, "municipality": w.esc, "node": w.esc_node, "title": "T", "body": "B"}
        return broadcasts.start_broadcast(broadcasts.create_broadcast(**{**args, **kwargs}), actor=w.coord)

    def addresses(self, b):
        return {a for a, s, _e in rows(b) if s == "queued"}

    def test_min_priority(self):
        b = self.start(target="segment", segment={"min_priority": 40})
        self.assertEqual(self.addresses(b), {"+528110000101", "+528110000102"})

    def test_vulnerable_uses_the_policy_threshold(self):
        b = self.start(target="segment", segment={"vulnerable": True})
        self.assertEqual(self.addresses(b), {"+528110000101", "+528110000102"})  # default threshold 40
        RegistryPolicy.objects.create(municipality=self.w.esc, priority_threshold=60)
        b = self.start(target="segment", segment={"vulnerable": True})
        self.assertEqual(self.addresses(b), {"+528110000101"})

    def test_open_need_in_categories(self):
        b = self.start(target="segment", segment={"categories": ["alimentacion"]})
        self.assertEqual(self.addresses(b), {"+528110000104"})
        b = self.start(
            target="segment", segment={"categories": ["alimentacion", "salud"], "min_priority": 50}
        )
        self.assertEqual(self.addresses(b), {"+528110000101"})

    def test_roles_in_the_subtree_through_their_contact(self):
        w = self.w
        for user, phone in (
            (w.block1, "+528119990001"),
            (w.sector2, "+528119990002"),
            (w.coord, "+528119990003"),
        ):
            user.phone = phone
            user.save()
        b = self.start(target="role", roles=["block_liaison", "sector_liaison"], node=w.s1)
        # sector1 has no phone on the account: reached through the phone of the liaison post.
        self.assertEqual(self.addresses(b), {"+528119990001", "+528112345678"})
        b = self.start(target="role", roles=["block_liaison", "sector_liaison"])
        self.assertEqual(self.addresses(b), {"+528119990001", "+528119990002", "+528112345678"})
        Contact.objects.filter(address="+528119990002").update(opted_out_at=timezone.now())
        b = self.start(target="role", roles=["sector_liaison"])
        self.assertEqual(
            rows(b), {("+528119990002", "skipped", "opted_out"), ("+528112345678", "queued", "")}
        )
        self.assertEqual(b.recipients, 1)

    def test_group_members_and_moderators(self):
        w = self.w
        group = Group.objects.create(municipality=w.esc, name="Manzana 1", kind="block", node=w.b11)
        member = contact(w.esc.pk, "+528110000101", household=self.poor)  # consent through the household
        stranger = contact(w.esc.pk, "+528110000999", household=self.low)  # no consent in that household?
        free = contact(w.esc.pk, "+528110000998")  # no household: joined the chat group
        group.members.add(member, stranger, free)
        w.block1.phone = "+528119990001"
        w.block1.save()
        group.moderators.add(w.block1)
        b = self.start(target="group", group=group)
        self.assertEqual(
            rows(b),
            {
                ("+528110000101", "queued", ""),
                ("+528110000999", "queued", ""),  # the household of ``low`` consented
                ("+528110000998", "queued", ""),
                ("+528119990001", "queued", ""),
            },
        )
        self.assertEqual(b.recipients, 4)
