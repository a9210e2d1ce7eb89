"""Scoped reads of messaging, persona by persona (``messaging.queries``): who sees which broadcasts, groups,
contacts, outbox and inbox rows, accounts, templates and flows."""

from django.test import override_settings

from redes.messaging import accounts, broadcasts, queries
from redes.messaging.models import Group, Inbound

from .base import RedesTestCase
from .messaging_bcast_support import contact, home


@override_settings(LANGUAGE_CODE="en")
class AccessTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        home(w.b11, "+528110000001")
        home(w.b21, "+528110000002")
        cls.unknown = contact(w.esc.pk, "+528110000099")  # texted in, no household: no node
        cls.aca_contact = contact(w.aca.pk, "+527440000001", node=w.ab)
        console = accounts.console_account(w.esc)
        Inbound.objects.create(
            municipality=w.esc,
            account=console,
            provider_id="1",
            kind="text",
            sender="+528110000099",
            contact=cls.unknown,
            text="Hola",
        )
        Inbound.objects.create(
            municipality=w.esc, account=console, provider_id="2", kind="text", sender="basura", text="?"
        )
        cls.s1_broadcast = broadcasts.create_broadcast(
            actor=w.sector1, municipality=w.esc, node=w.s1, title="S1", body="B"
        )
        broadcasts.start_broadcast(cls.s1_broadcast, actor=w.sector1)
        cls.cascade = broadcasts.create_broadcast(
            actor=w.coord, municipality=w.esc, node=w.esc_node, title="C", body="B", cascade=True
        )
        broadcasts.start_broadcast(cls.cascade, actor=w.coord)
        cls.group = Group.objects.create(municipality=w.esc, name="M1", kind="block", node=w.b11)

    def titles(self, user):
        return set(queries.broadcasts_for(user).values_list("title", flat=True))

    def test_broadcasts(self):
        w = self.w
        self.assertEqual(self.titles(w.coord), {"S1", "C"})
        self.assertEqual(self.titles(w.sector1), {"S1", "C"})
        self.assertEqual(self.titles(w.sector2), set())
        self.assertEqual(self.titles(w.block1), set())  # the cascade has not reached the block
        for user in (w.observer, w.volunteer, w.other_coord, w.nobody):
            self.assertEqual(self.titles(user), set(), user.username)
        self.assertEqual(self.titles(w.root), {"S1", "C"})
        self.assertTrue(queries.may_list_broadcasts(w.block1))
        self.assertFalse(queries.may_list_broadcasts(w.observer))
        self.assertFalse(queries.may_list_broadcasts(w.volunteer))
        self.assertEqual([r.node for r in queries.waiting_acks(w.sector1)], [w.s1])
        self.assertEqual(list(queries.waiting_acks(w.block1)), [])

    def test_personal_data(self):
        w = self.w
        addresses = lambda user: set(queries.contacts_for(user).values_list("address", flat=True))  # noqa: E731
        liaisons = {"+528112345678", "+528112345679"}  # linked to their posts by the cascade
        self.assertEqual(addresses(w.coord), {"+528110000001", "+528110000099", *liaisons})
        self.assertEqual(addresses(w.sector1), {"+528110000001", *liaisons})
        self.assertEqual(addresses(w.block1), {"+528110000001", "+528112345679"})
        for user in (w.observer, w.state_observer, w.volunteer, w.nobody):
            self.assertEqual(addresses(user), set(), user.username)
        self.assertEqual(addresses(w.other_coord), {"+527440000001"})
        self.assertEqual(queries.inbox_for(w.coord).count(), 2)  # the unusable sender too
        self.assertEqual(queries.inbox_for(w.sector1).count(), 0)
        self.assertEqual(queries.inbox_for(w.other_coord).count(), 0)
        self.assertEqual(queries.outbox_for(w.block1).count(), 1)
        self.assertEqual(queries.outbox_for(w.sector2).count(), 0)
        self.assertEqual(queries.outbox_for(w.observer).count(), 0)
        self.assertEqual(list(queries.groups_for(w.block1)), [self.group])
        self.assertEqual(list(queries.groups_for(w.observer)), [])
        self.assertEqual(list(queries.groups_for(w.other_coord)), [])

    def test_setup_records(self):
        w = self.w
        self.assertEqual(queries.accounts_for(w.coord).count(), 1)
        for user in (w.sector1, w.block1, w.observer, w.other_coord, w.nobody):
            self.assertEqual(queries.accounts_for(user).count(), 0, user.username)
        self.assertEqual(queries.managed_municipality_ids(w.coord), [w.esc.pk])
        self.assertEqual(queries.managed_municipality_ids(w.sector1), [])
        self.assertIsNone(queries.managed_municipality_ids(w.root))
