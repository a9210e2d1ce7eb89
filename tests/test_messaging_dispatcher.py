"""The dispatcher: one round runs every step (a failing step does not stop the others); the daemon thread
starts once, survives failing rounds, and stops; switched off by REDES_MESSAGING=0 or REDES_WORKER=0."""

from __future__ import annotations

import datetime as dt
import os
import threading
import unittest
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import TransactionTestCase, override_settings
from django.utils import translation

from redes.core import clock
from redes.messaging import dispatcher, outbox
from redes.messaging.models import Contact, Outbound
from tests.base import RedesTestCase, build_world


class RunOnceTests(RedesTestCase):
    def test_a_round_sends_the_outbox(self):
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340009")
        row = outbox.enqueue(contact, "Hola")
        stats = dispatcher.run_once(threads=1)
        self.assertNotIn("errors", stats, stats)
        self.assertEqual(stats["outbox"]["sent"], 1)
        self.assertEqual(Outbound.objects.get(pk=row.pk).status, Outbound.Status.SENT)
        dispatcher.run_once(threads=1)  # the console's status callback is processed by intake
        self.assertEqual(Outbound.objects.get(pk=row.pk).status, Outbound.Status.DELIVERED)

    def test_a_failing_step_does_not_stop_the_others(self):
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340009")
        outbox.enqueue(contact, "Hola")
        with mock.patch("redes.messaging.notify.pump", side_effect=RuntimeError("boom")):
            stats = dispatcher.run_once(threads=1)
        self.assertEqual(stats["errors"], ["notify"])
        self.assertIn("boom", stats["notify"]["error"])
        self.assertEqual(stats["outbox"]["sent"], 1)

    def test_command_once_and_status(self):
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340009")
        outbox.enqueue(contact, "Hola")
        out = StringIO()
        call_command("messaging", "run", "--once", "--threads", "1", stdout=out)
        self.assertIn("sent=1", out.getvalue())
        out = StringIO()
        call_command("messaging", "status", stdout=out)
        self.assertIn("console", out.getvalue())

    def test_prune_blanks_old_raw_payloads_only(self):
        from redes.messaging import accounts, ingest
        from redes.messaging.models import WebhookLog

        account = accounts.console_account(self.w.esc)
        old = ingest.open_log(account, b'{"text": "viejo"}', headers={"X-Test": "1"})
        new = ingest.open_log(account, b'{"text": "nuevo"}')
        WebhookLog.objects.filter(pk=old.pk).update(received_at=clock.now() - dt.timedelta(days=31))
        out = StringIO()
        with translation.override("en"):
            call_command("messaging", "prune", "--days", "30", stdout=out)
        self.assertIn("Raw payloads blanked: 1.", out.getvalue())
        old.refresh_from_db()
        new.refresh_from_db()
        self.assertEqual((old.body, old.headers), ("", {}))
        self.assertEqual(new.body, '{"text": "nuevo"}')
        with self.assertRaises(CommandError):
            call_command("messaging", "prune", "--days", "0", stdout=StringIO())


class ThreadTests(RedesTestCase):
    def test_the_thread_starts_once_survives_failures_and_stops(self):
        rounds = threading.Event()
        calls = []

        def failing_round(*args, **kwargs):
            calls.append(1)
            if len(calls) >= 6:
                rounds.set()
            raise RuntimeError("a broken round")

        self.addCleanup(dispatcher.stop_dispatcher)
        with (
            mock.patch.object(dispatcher, "intake_round", failing_round),
            mock.patch.object(dispatcher, "send_round", failing_round),
            mock.patch.dict(os.environ, {"REDES_WORKER": "1"}),
            override_settings(REDES_MESSAGING=True),
            self.assertLogs("redes.messaging", "ERROR"),
        ):
            thread = dispatcher.start_dispatcher(every=0.001)
            self.assertIs(dispatcher.start_dispatcher(every=0.001), thread)
            self.assertTrue(rounds.wait(30))
            self.assertTrue(thread.is_alive())  # failing rounds (both loops) are logged, the loops go on
            dispatcher.stop_dispatcher()
        self.assertFalse(thread.is_alive())
        self.assertFalse(dispatcher.running())

    def test_switched_off(self):
        with override_settings(REDES_MESSAGING=False):
            self.assertIsNone(dispatcher.start_dispatcher())
        with mock.patch.dict(os.environ, {"REDES_WORKER": "0"}):
            self.assertIsNone(dispatcher.start_dispatcher())


@unittest.skipUnless(connection.vendor == "postgresql", "threads with connections of their own need a server")
class RunForeverTests(TransactionTestCase):
    def test_it_sends_through_the_stream_then_stops(self):
        w = build_world()
        contacts = Contact.objects.bulk_create(
            Contact(municipality=w.esc, address=f"+5281100{i:05d}") for i in range(12)
        )
        rows = [outbox.enqueue(c, "Hola") for c in contacts]
        stop = threading.Event()
        rounds = []

        def on_round(stats):
            rounds.append(stats)
            if Outbound.objects.filter(status__in=["sent", "delivered"]).count() == len(rows):
                stop.set()

        with mock.patch.object(outbox, "send_stream", wraps=outbox.send_stream) as stream:
            worker = threading.Thread(
                target=dispatcher.run_forever,
                args=(stop,),
                kwargs={"every": 0.01, "limit": 5, "on_round": on_round},
            )
            worker.start()
            worker.join(60)
            stop.set()
            worker.join(10)
        connections.close_all()
        self.assertFalse(worker.is_alive())
        self.assertTrue(stream.called)
        self.assertEqual(Outbound.objects.filter(status__in=["sent", "delivered"], attempts=1).count(), 12)
