"""Building a broadcast's outbox set-based: the hash-joined (bulk) and per-household forms agree, a rebuild adds
nothing, and the outbox's foreign keys (not database constraints) still cascade and protect through the ORM."""

from django.db import connection
from django.db.models import ProtectedError
from django.test import override_settings
from django.utils import timezone

from redes.core import clock
from redes.messaging import broadcasts
from redes.messaging.models import Broadcast, ChannelAccount, Contact, Outbound

from .base import RedesTestCase
from .messaging_bcast_support import contact, home, whatsapp_account


def rows(broadcast):
    return {
        (o.contact.address, o.status, o.error_code, o.account_id)
        for o in Outbound.objects.filter(broadcast=broadcast).select_related("contact")
    }


@override_settings(LANGUAGE_CODE="en")
class BuildTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        whatsapp_account(w.esc.pk)
        home(w.b11, "+528110000001")
        home(w.b11, "+528110000002", whatsapp=True)
        home(w.b11, "+528110000003", consent=False)
        home(w.b12, "+528110000004", revoked=True)
        home(w.b12, "+528110000005", purposes=("aid",))
        home(w.b12, "+528110000006", person_status="merged")
        home(w.b12, "+528110000007", consent=False)
        home(w.b12, "+528110000008")
        home(w.b12, "+528110000009", status="blocked")
        home(w.b11, "+528110000010", extra_phones=("+528110000011",))
        # Both phones of this household: the first opted out, so the second (eligible) one is reached.
        home(w.b21, "+528110000020", extra_phones=("+528110000021",))
        home(w.ab, "+527440000001")
        contact(w.esc.pk, "+528110000007", opted_in_at=timezone.now())
        contact(w.esc.pk, "+528110000008", opted_out_at=timezone.now())
        contact(w.esc.pk, "+528110000020", opted_out_at=timezone.now())
        broadcasts.sync_household_contacts(w.esc, w.esc_node)

    def sending(self, node=None):
        w = self.w
        return Broadcast.objects.create(
            municipality=w.esc,
            node=node or w.esc_node,
            title="Aviso",
            body="Mañana",
            status=Broadcast.Status.SENDING,
            created_by=w.coord,
        )

    def per_household(self, broadcast, *, fresh=False):
        where, params = broadcasts._household_filter(broadcast)
        return broadcasts._insert_households(broadcast, where, params, clock.now(), bulk=False, fresh=fresh)

    def test_bulk_and_per_household_forms_write_the_same_rows(self):
        bulk, single = self.sending(), self.sending()
        self.assertEqual(broadcasts.build_outbox(bulk), 10)
        self.assertEqual(self.per_household(single), 10)
        self.assertEqual(
            {(a, s, e) for a, s, e, _acc in rows(bulk)},
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
                ("+528110000021", "queued", ""),
            },
        )
        self.assertEqual(rows(bulk), rows(single))
        wa = ChannelAccount.objects.get(municipality=self.w.esc, provider="whatsapp").pk
        self.assertEqual({acc for a, _s, _e, acc in rows(bulk) if a == "+528110000002"}, {wa})

    def test_a_rebuild_adds_nothing(self):
        b = self.sending()
        self.assertEqual(broadcasts.build_outbox(b), 10)
        self.assertEqual(broadcasts.build_outbox(b), 0)
        self.assertEqual(self.per_household(b), 0)
        self.assertEqual(Outbound.objects.filter(broadcast=b).count(), 10)

    def test_the_cascade_release_of_many_blocks_reads_consents_in_one_pass(self):
        b = self.sending(self.w.s1)
        where, params = broadcasts._household_filter(b)
        written = broadcasts._insert_households(b, where, params, clock.now(), bulk=True)
        single = self.sending(self.w.s1)
        self.assertEqual(written, self.per_household(single))
        self.assertEqual(rows(b), rows(single))
        self.assertNotIn("+528110000021", {a for a, *_ in rows(b)})  # sector 2 is not under sector 1

    def test_deletes_cascade_and_protect_through_the_orm(self):
        b = self.sending()
        broadcasts.build_outbox(b)
        reached = Outbound.objects.filter(broadcast=b, status="queued").select_related("contact").first()
        fallback = Outbound.objects.create(
            municipality=self.w.esc,
            contact=reached.contact,
            account=reached.account,
            kind=Outbound.Kind.BROADCAST,
            fallback_of=reached,
        )
        # An account with messages cannot go.
        with self.assertRaises(ProtectedError):
            reached.account.delete()
        # A contact takes its messages with it; a fallback's original going leaves it standing.
        other = Outbound.objects.filter(broadcast=b).exclude(contact=reached.contact).first()
        other.contact.delete()
        self.assertFalse(Outbound.objects.filter(pk=other.pk).exists())
        reached.delete()
        fallback.refresh_from_db()
        self.assertIsNone(fallback.fallback_of_id)
        # A broadcast takes its rows with it.
        left = Outbound.objects.filter(broadcast=b).count()
        self.assertEqual(left, 8)
        pk = b.pk
        b.delete()
        self.assertFalse(Outbound.objects.filter(broadcast_id=pk).exists())
        self.assertTrue(Outbound.objects.filter(pk=fallback.pk).exists())
        # No row points at a contact, account or broadcast that is gone.
        self.assertFalse(Outbound.objects.exclude(contact_id__in=Contact.objects.values("pk")).exists())
        self.assertFalse(
            Outbound.objects.exclude(account_id__in=ChannelAccount.objects.values("pk")).exists()
        )

    def test_outbox_foreign_keys_are_not_checked_row_by_row(self):
        """The constraints are gone from the database (the point of migration 0002), the ORM relations stay."""
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, Outbound._meta.db_table)
        foreign = [name for name, c in constraints.items() if c["foreign_key"]]
        self.assertEqual(foreign, [])
        self.assertEqual(Outbound._meta.get_field("contact").remote_field.model, Contact)
