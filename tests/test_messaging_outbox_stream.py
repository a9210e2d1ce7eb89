"""The outbox's sending stream (the dispatcher's sending thread: the next batch claimed while the current one is
sent), call starts written by the pool thread, and delivery statuses applied in batches by the intake."""

from __future__ import annotations

import datetime as dt
import threading
import unittest
from unittest import mock

from django.db import OperationalError, connection, connections
from django.test import TransactionTestCase

from redes.core import clock
from redes.messaging import intake, outbox
from redes.messaging.channels.base import InboundEvent, SendResult
from redes.messaging.ingest import record_events
from redes.messaging.models import Contact, Inbound, Medium, Outbound, Provider
from tests.base import build_world
from tests.test_messaging_outbox import FakeAdapter, OutboxCase, make_account, patch_gateway

S = Outbound.Status


@unittest.skipUnless(
    connection.vendor == "postgresql", "the feeder thread's own connection needs a real server"
)
class StreamTests(TransactionTestCase):
    """A real stream: its feeder thread claims with a connection of its own, so the rows are committed (the
    SQLite test database is in memory, shared by table locks)."""

    def setUp(self):
        self.w = build_world()
        self.adapter = FakeAdapter()
        patch_gateway(self, self.adapter)
        self.account = make_account(
            self.w.esc, Provider.GATEWAY, name="sms", rate_per_second=100000, burst=5000
        )
        contacts = Contact.objects.bulk_create(
            Contact(municipality=self.w.esc, address=f"+5281100{i:05d}") for i in range(25)
        )
        now = clock.now()
        self.rows = Outbound.objects.bulk_create(
            Outbound(
                municipality=self.w.esc, contact=c, account=self.account, body=f"m{i}", next_attempt_at=now
            )
            for i, c in enumerate(contacts)
        )
        self.addCleanup(connections.close_all)

    def test_it_refills_itself_until_nothing_is_due_and_sends_each_row_once(self):
        with mock.patch.object(outbox, "_fetch", wraps=outbox._fetch) as fetch:
            stats = outbox.send_stream(limit=4, worker="s1", threads=3)
        self.assertEqual(stats["claimed"], 25)
        self.assertEqual(stats["sent"], 25)
        self.assertGreaterEqual(fetch.call_count, 7)  # batches of at most 4, and one that found nothing
        self.assertEqual(len(self.adapter.calls), 25)
        self.assertEqual(max(self.adapter.calls.values()), 1)
        self.assertEqual(Outbound.objects.filter(status=S.SENT, attempts=1).count(), 25)

    def test_stopping_gives_back_what_was_claimed_and_not_called(self):
        stop = threading.Event()
        adapter = self.adapter

        class Stopping(FakeAdapter):
            def send(self, account, message, client):
                stop.set()
                return adapter.send(account, message, client)

        patch_gateway(self, Stopping())
        stats = outbox.send_stream(limit=10, worker="s1", threads=1, stop=stop)
        called = len(adapter.calls)
        self.assertGreaterEqual(called, 1)
        self.assertLess(called, 25)
        self.assertEqual(Outbound.objects.filter(status=S.SENT).count(), called)
        self.assertEqual(stats["released"], stats["claimed"] - called)
        self.assertEqual(Outbound.objects.filter(status=S.QUEUED, worker="").count(), 25 - called)
        self.assertFalse(Outbound.objects.filter(status=S.SENDING).exists())

    def test_a_retry_coming_due_in_a_moment_is_sent_by_the_same_stream(self):
        Outbound.objects.exclude(pk=self.rows[0].pk).delete()
        adapter = FakeAdapter([SendResult(False, retry=True, error_code="500")])
        patch_gateway(self, adapter)
        stats = outbox.send_stream(limit=10, worker="s1", threads=1)
        self.assertEqual((stats["retried"], stats["sent"], stats["claimed"]), (1, 1, 2))
        self.assertEqual(adapter.calls[str(self.rows[0].pk)], 2)
        self.assertEqual(Outbound.objects.get().status, S.SENT)

    def test_the_claim_is_what_the_rates_send_in_a_round(self):
        sender = outbox._Sender("s1", 1, mock.MagicMock(), None)
        sender.feed_limit = 10_000
        self.account.rate_per_second = 3
        self.account.save()
        from redes.messaging.models import ChannelAccount

        ChannelAccount.objects.exclude(pk=self.account.pk).update(active=False)
        self.assertEqual(sender.batch_size(), int(3 * outbox.ROUND_SECONDS))
        sender.feed_limit = 5
        self.assertEqual(sender.batch_size(), 5)


class StartTests(OutboxCase):
    def test_a_start_that_cannot_be_written_makes_no_call_and_gives_the_row_back(self):
        account = make_account(self.w.esc, Provider.GATEWAY, name="sms", rate_per_second=1000, burst=1000)
        adapter = FakeAdapter()
        patch_gateway(self, adapter)
        row = outbox.enqueue(self.contact, "Hola", account=account)
        with mock.patch.object(outbox, "_start", side_effect=OperationalError("locked")):
            stats = outbox.send_due(threads=1, worker="w1")
        self.assertEqual(stats["released"], 1)
        self.assertEqual(len(adapter.calls), 0)
        row = Outbound.objects.get(pk=row.pk)
        self.assertEqual((row.status, row.attempts, row.worker), (S.QUEUED, 0, ""))

    def test_a_retried_row_comes_back_within_half_a_second(self):
        account = make_account(self.w.esc, Provider.GATEWAY, name="sms", rate_per_second=1000, burst=1000)
        patch_gateway(self, FakeAdapter([SendResult(False, retry=True, error_code="500")]))
        row = outbox.enqueue(self.contact, "Hola", account=account)
        with clock.travel(self.now):
            self.assertEqual(outbox.send_due(threads=1)["retried"], 1)
        row = Outbound.objects.get(pk=row.pk)
        self.assertGreater(row.next_attempt_at, self.now)
        self.assertLessEqual(row.next_attempt_at, self.now + dt.timedelta(seconds=0.5))


class BatchedStatusTests(OutboxCase):
    def setUp(self):
        super().setUp()
        self.wa = make_account(self.w.esc, Provider.WHATSAPP, name="wa")
        self.sms = make_account(self.w.esc, Provider.GATEWAY, name="sms")
        self.sent = []
        for n in range(5):
            row = outbox.enqueue(self.contact, f"Hola {n}", account=self.wa)
            Outbound.objects.filter(pk=row.pk).update(
                status=S.SENT, attempts=1, sent_at=self.now, provider_id=f"wamid.{n}" if n != 4 else ""
            )
            self.sent.append(row)

    def status(self, row, status, *, reference=True, message_id=None, account=None, again="", **data):
        """A stored status callback (ingest keys it ``<message id>:<status>``)."""
        message_id = message_id or f"wamid.{self.sent.index(row)}"
        payload = {"status": status, "reference": str(row.pk) if reference else "", "errors": [], **data}
        event = InboundEvent(provider_id=f"{message_id}{again}", kind="status", data=payload)
        record_events(account or self.wa, [event])
        return Inbound.objects.filter(kind=Inbound.Kind.STATUS).order_by("-id").first()

    def test_a_batch_moves_rows_forward_like_one_by_one(self):
        a, b, c, d, e = self.sent
        read = self.status(a, "read")
        self.status(a, "delivered")  # late: never moves it back
        self.status(a, "sent")
        self.status(b, "delivered")
        self.status(c, "failed", errors=[{"code": 131047, "title": "Re-engagement"}])
        self.status(
            c, "failed", again="2", errors=[{"code": 131047, "title": "Re-engagement"}]
        )  # one fallback
        self.status(d, "delivered", reference=False)  # found by the provider's id
        self.status(e, "delivered", message_id="wamid.NEW")  # learns the provider's id
        self.status(b, "read", account=self.sms)  # another account's: ignored
        with mock.patch.object(outbox, "apply_status", wraps=outbox.apply_status) as one_by_one:
            self.assertEqual(intake.process_pending(), 9)
        # Only the failures (fallbacks) and the status naming no row of its account took the one-row path.
        self.assertEqual(one_by_one.call_count, 3)
        self.assertFalse(Inbound.objects.exclude(state=Inbound.State.DONE).exists())
        got = {r.pk: r for r in Outbound.objects.filter(pk__in=[r.pk for r in self.sent])}
        self.assertEqual(got[a.pk].status, S.READ)
        self.assertEqual(got[a.pk].read_at, read.received_at)
        self.assertIsNone(got[a.pk].delivered_at)  # as one by one: the late delivered changed nothing
        self.assertEqual(got[b.pk].status, S.DELIVERED)
        self.assertEqual((got[c.pk].status, got[c.pk].error_code), (S.FAILED, "131047"))
        self.assertEqual(Outbound.objects.filter(fallback_of=c).count(), 1)
        self.assertEqual(Outbound.objects.get(fallback_of=c).account.medium, Medium.SMS)
        self.assertEqual(got[d.pk].status, S.DELIVERED)
        self.assertEqual((got[e.pk].status, got[e.pk].provider_id), (S.DELIVERED, "wamid.NEW"))

    def test_statuses_never_move_a_failed_or_skipped_row(self):
        a, b = self.sent[:2]
        Outbound.objects.filter(pk=a.pk).update(status=S.FAILED)
        Outbound.objects.filter(pk=b.pk).update(status=S.SKIPPED)
        self.status(a, "read")
        self.status(b, "delivered")
        self.assertEqual(outbox.apply_statuses(list(Inbound.objects.all())), 0)
        self.assertEqual(Outbound.objects.get(pk=a.pk).status, S.FAILED)
        self.assertEqual(Outbound.objects.get(pk=b.pk).status, S.SKIPPED)

    def test_if_the_batch_fails_each_status_is_applied_on_its_own(self):
        a = self.sent[0]
        self.status(a, "delivered")
        with mock.patch.object(outbox, "apply_statuses", side_effect=RuntimeError("boom")):
            self.assertEqual(intake.process_pending(), 1)
        self.assertEqual(Inbound.objects.get().state, Inbound.State.DONE)
        self.assertEqual(Outbound.objects.get(pk=a.pk).status, S.DELIVERED)
