"""The outbox: sending through the console and the WhatsApp emulator (127.0.0.1), retries with backoff on
5xx/130429, permanent failures and their SMS fallback, the 24-hour window, opt-outs, status callbacks that only
move forward, and the reconciliation of rows left in doubt by a worker that died mid-send."""

from __future__ import annotations

import datetime as dt
import threading
import unittest
from collections import Counter
from unittest import mock

from django.db import connection, connections
from django.test import TransactionTestCase

from redes.core import clock
from redes.messaging import accounts, outbox
from redes.messaging.channels import get_adapter
from redes.messaging.channels.base import ChannelAdapter, InboundEvent, SendResult
from redes.messaging.channels.whatsapp.emulator import WhatsAppEmulator
from redes.messaging.ingest import record_events
from redes.messaging.models import (
    Broadcast,
    ChannelAccount,
    Contact,
    Inbound,
    Medium,
    MessageTemplate,
    Outbound,
    Provider,
)
from tests.base import RedesTestCase, build_world

S = Outbound.Status
PHONE = "+528112340001"
WA_TO = "528112340001"


def make_account(municipality, provider, name="main", config=None, secrets=None, **extra):
    account = ChannelAccount(
        municipality=municipality, provider=provider, name=name, config=config or {}, **extra
    )
    accounts.set_secrets(account, secrets or {})
    account.save()
    return account


class FakeAdapter(ChannelAdapter):
    """Scripted results (default: accepted), thread-safe counts of calls per reference."""

    provider = "gateway"
    reports_status = True

    def __init__(self, script=None):
        self.script = list(script or [])
        self.calls = Counter()
        self.lock = threading.Lock()

    def send(self, account, message, client):
        with self.lock:
            self.calls[message.reference] += 1
            result = self.script.pop(0) if self.script else None
        return result or SendResult(
            True, provider_id=f"gw-{message.reference}-{self.calls[message.reference]}"
        )


def patch_gateway(test, adapter):
    real = get_adapter
    patcher = mock.patch(
        "redes.messaging.outbox.get_adapter", lambda p: adapter if p == Provider.GATEWAY else real(p)
    )
    patcher.start()
    test.addCleanup(patcher.stop)


class OutboxCase(RedesTestCase):
    def setUp(self):
        self.now = clock.now() + dt.timedelta(seconds=5)  # after every row the test enqueues
        self.contact = Contact.objects.create(
            municipality=self.w.esc,
            address=PHONE,
            whatsapp=True,
            preferred=Medium.WHATSAPP,
            last_inbound_at=self.now - dt.timedelta(hours=1),
        )

    def whatsapp(self, **kwargs):
        emulator = WhatsAppEmulator(access_token="tok", **kwargs)
        base = emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.WHATSAPP,
            config={"api_base": base, "api_version": "v21.0", "phone_number_id": "1055"},
            secrets={"access_token": "tok", "app_secret": "s3cret", "verify_token": "v"},
            rate_per_second=1000,
            burst=1000,
        )
        return emulator, account

    def sms(self):
        return make_account(self.w.esc, Provider.GATEWAY, name="sms", rate_per_second=1000, burst=1000)

    def send(self, **kwargs):
        kwargs.setdefault("threads", 1)
        return outbox.send_due(**kwargs)

    def reload(self, row):
        return Outbound.objects.get(pk=row.pk)


class SendingTests(OutboxCase):
    def test_console_reply_is_sent_then_delivered_by_its_status(self):
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340002")
        row = outbox.enqueue(contact, "Hola")
        self.assertEqual(row.account.provider, Provider.CONSOLE)
        stats = self.send()
        self.assertEqual((stats["claimed"], stats["sent"]), (1, 1))
        row = self.reload(row)
        self.assertEqual(row.status, S.SENT)
        self.assertEqual(row.attempts, 1)
        status = Inbound.objects.get(kind=Inbound.Kind.STATUS, data__reference=str(row.pk))
        self.assertTrue(outbox.apply_status(status))
        self.assertEqual(self.reload(row).status, S.DELIVERED)
        self.assertEqual(self.send()["claimed"], 0)  # nothing sent twice

    def test_whatsapp_text_within_the_window(self):
        emulator, account = self.whatsapp()
        row = outbox.enqueue(self.contact, "Hola vecina", account=account)
        self.send()
        row = self.reload(row)
        self.assertEqual(row.status, S.SENT)
        self.assertEqual([s["biz_opaque_callback_data"] for s in emulator.sent], [str(row.pk)])
        self.assertEqual(emulator.sent[0]["text"], "Hola vecina")
        self.assertEqual(row.provider_id, emulator.sent[0]["id"])

    def test_template_key_is_rendered_from_the_municipality_texts(self):
        emulator, account = self.whatsapp()
        outbox.enqueue(
            self.contact,
            account=account,
            kind=Outbound.Kind.NOTIFICATION,
            template="need_notification",
            variables={"kind": "Escalada", "reference": "AB12CD34", "category": "Agua", "node": "Manzana 1"},
        )
        self.send()
        self.assertIn("AB12CD34", emulator.sent[0]["text"])
        self.assertIn("Manzana 1", emulator.sent[0]["text"])


class RetryTests(OutboxCase):
    def test_server_errors_are_retried_with_backoff_then_sent_once(self):
        emulator, account = self.whatsapp(error_rate=1.0)
        row = outbox.enqueue(self.contact, "Hola", account=account)
        with clock.travel(self.now):
            stats = self.send()
        self.assertEqual(stats["retried"], 1)
        row = self.reload(row)
        self.assertEqual((row.status, row.attempts, row.error_code), (S.QUEUED, 1, "131000"))
        self.assertGreater(row.next_attempt_at, self.now)
        self.assertLessEqual(row.next_attempt_at, self.now + dt.timedelta(seconds=outbox.BACKOFF_BASE))
        emulator.error_rate = 0.0
        with clock.travel(self.now):
            self.assertEqual(self.send()["claimed"], 0)  # not due yet
        with clock.travel(self.now + dt.timedelta(minutes=5)):
            self.send()
        row = self.reload(row)
        self.assertEqual((row.status, row.attempts), (S.SENT, 2))
        self.assertEqual(len(emulator.sent), 1)

    def test_rate_limit_hit_is_retried_not_failed(self):
        emulator, account = self.whatsapp(rate=0.001, burst=1)
        first = outbox.enqueue(self.contact, "uno", account=account)
        second = outbox.enqueue(self.contact, "dos", account=account)
        self.send()
        self.assertEqual(self.reload(first).status, S.SENT)
        second = self.reload(second)
        self.assertEqual((second.status, second.error_code), (S.QUEUED, "130429"))
        self.assertEqual(emulator.rate_limited, 1)

    def test_backoff_grows_and_honours_retry_after(self):
        class Fixed:
            def random(self):
                return 1.0

        self.assertEqual([outbox.backoff(n, rng=Fixed()) for n in (1, 2, 3)], [0.5, 1.0, 2.0])
        self.assertEqual(outbox.backoff(30, rng=Fixed()), outbox.BACKOFF_CAP)
        self.assertEqual(outbox.backoff(1, 30, rng=Fixed()), 30)
        self.assertGreaterEqual(min(outbox.backoff(3) for _ in range(50)), 1.0)

    def test_retry_after_from_the_adapter_is_honoured(self):
        account = self.sms()
        patch_gateway(self, FakeAdapter([SendResult(False, retry=True, retry_after=120, error_code="429")]))
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340003")
        row = outbox.enqueue(contact, "Hola", account=account)
        with clock.travel(self.now):
            self.send()
        self.assertGreaterEqual(self.reload(row).next_attempt_at, self.now + dt.timedelta(seconds=120))

    def test_giving_up_after_max_attempts_falls_back_to_sms(self):
        emulator, account = self.whatsapp(error_rate=1.0)
        self.sms()
        row = outbox.enqueue(self.contact, "Hola", account=account)
        Outbound.objects.filter(pk=row.pk).update(attempts=outbox.MAX_ATTEMPTS - 1)
        self.send()
        row = self.reload(row)
        self.assertEqual((row.status, row.attempts), (S.FAILED, outbox.MAX_ATTEMPTS))
        fallback = Outbound.objects.get(fallback_of=row)
        self.assertEqual((fallback.account.provider, fallback.body), (Provider.GATEWAY, "Hola"))


class FailureTests(OutboxCase):
    def test_permanent_failure_falls_back_to_sms_once(self):
        emulator, account = self.whatsapp(reject={WA_TO: 131026})
        sms = self.sms()
        patch_gateway(self, FakeAdapter())
        row = outbox.enqueue(self.contact, "Aviso", account=account)
        self.send()
        row = self.reload(row)
        self.assertEqual((row.status, row.error_code), (S.FAILED, "131026"))
        fallback = Outbound.objects.get(fallback_of=row)
        self.assertEqual((fallback.account_id, fallback.body, fallback.kind), (sms.pk, "Aviso", row.kind))
        self.send()
        self.assertEqual(self.reload(fallback).status, S.SENT)
        self.assertEqual(Outbound.objects.count(), 2)

    def test_no_fallback_for_a_telegram_contact_or_an_sms_message(self):
        patch_gateway(self, FakeAdapter([SendResult(False, error_code="400", error="bad")]))
        row = outbox.enqueue(self.contact, "x", account=self.sms())
        self.send()
        self.assertEqual(self.reload(row).status, S.FAILED)
        self.assertFalse(Outbound.objects.filter(fallback_of=row).exists())


class WindowTests(OutboxCase):
    def broadcast(self, template=None):
        return Broadcast.objects.create(
            municipality=self.w.esc,
            node=self.w.esc_node,
            title="Entrega",
            body="Mañana a las 9 en la plaza",
            template=template,
            status=Broadcast.Status.SENDING,
        )

    def test_outside_24_hours_the_approved_template_is_used(self):
        emulator, account = self.whatsapp()
        Contact.objects.filter(pk=self.contact.pk).update(last_inbound_at=self.now - dt.timedelta(hours=25))
        template = MessageTemplate.objects.create(
            municipality=self.w.esc,
            key="aviso-entrega",
            name="Aviso",
            body="{title}: {body}",
            whatsapp_name="aviso_entrega",
            whatsapp_status=MessageTemplate.WhatsAppStatus.APPROVED,
        )
        bcast = self.broadcast(template)
        row = Outbound.objects.create(
            municipality=self.w.esc,
            contact=self.contact,
            account=account,
            broadcast=bcast,
            kind=Outbound.Kind.BROADCAST,
            priority=5,
            next_attempt_at=clock.now(),
        )
        self.send()
        self.assertEqual(self.reload(row).status, S.SENT)
        sent = emulator.sent[0]
        self.assertEqual((sent["type"], sent["template"]), ("template", "aviso_entrega"))
        params = [p["text"] for p in sent["payload"]["template"]["components"][0]["parameters"]]
        self.assertEqual(params, ["Entrega", "Mañana a las 9 en la plaza"])

    def test_within_24_hours_the_broadcast_goes_as_free_text(self):
        emulator, account = self.whatsapp()
        bcast = self.broadcast()
        Outbound.objects.create(
            municipality=self.w.esc,
            contact=self.contact,
            account=account,
            broadcast=bcast,
            kind=Outbound.Kind.BROADCAST,
            next_attempt_at=clock.now(),
        )
        self.send()
        self.assertEqual(emulator.sent[0]["type"], "text")
        self.assertIn("Mañana a las 9", emulator.sent[0]["text"])

    def test_outside_24_hours_without_template_falls_back_to_sms(self):
        emulator, account = self.whatsapp()
        Contact.objects.filter(pk=self.contact.pk).update(last_inbound_at=None)
        bcast = self.broadcast()
        row = Outbound.objects.create(
            municipality=self.w.esc,
            contact=self.contact,
            account=account,
            broadcast=bcast,
            kind=Outbound.Kind.BROADCAST,
            next_attempt_at=clock.now(),
        )
        stats = self.send()
        self.assertEqual(stats["fallback"], 1)
        self.assertEqual(emulator.sent, [])
        row = self.reload(row)
        self.assertEqual((row.status, row.error_code), (S.FAILED, "window"))
        fallback = Outbound.objects.get(fallback_of=row)
        self.assertIn("Mañana a las 9", fallback.body)
        self.assertIsNone(fallback.broadcast_id)
        self.assertEqual(fallback.account.medium, Medium.CONSOLE)  # no SMS account: the console stands in


class ConsentTests(OutboxCase):
    def test_opted_out_contacts_get_replies_only(self):
        emulator, account = self.whatsapp()
        Contact.objects.filter(pk=self.contact.pk).update(opted_out_at=self.now)
        self.contact.refresh_from_db()
        notice = outbox.enqueue(self.contact, "Aviso", account=account, kind=Outbound.Kind.NOTIFICATION)
        reply = outbox.enqueue(self.contact, "Listo, ya no recibirá avisos.", account=account)
        stats = self.send()
        self.assertEqual(stats["skipped"], 1)
        self.assertEqual(self.reload(notice).status, S.SKIPPED)
        self.assertEqual(self.reload(reply).status, S.SENT)
        self.assertEqual([s["text"] for s in emulator.sent], ["Listo, ya no recibirá avisos."])


class StatusTests(OutboxCase):
    def status(self, account, row, status, provider_id="wamid.X", **data):
        events = [
            InboundEvent(
                provider_id=provider_id,
                kind="status",
                data={"status": status, "reference": str(row.pk), "errors": [], **data},
            )
        ]
        record_events(account, events)
        return Inbound.objects.filter(kind=Inbound.Kind.STATUS).order_by("-id").first()

    def test_statuses_only_move_forward(self):
        emulator, account = self.whatsapp()
        row = outbox.enqueue(self.contact, "Hola", account=account)
        self.send()
        self.assertTrue(outbox.apply_status(self.status(account, row, "read")))
        self.assertEqual(self.reload(row).status, S.READ)
        self.assertFalse(outbox.apply_status(self.status(account, row, "delivered", "wamid.Y")))
        self.assertFalse(outbox.apply_status(self.status(account, row, "sent", "wamid.Z")))
        self.assertFalse(outbox.apply_status(self.status(account, row, "failed", "wamid.W")))
        row = self.reload(row)
        self.assertEqual(row.status, S.READ)
        self.assertIsNotNone(row.read_at)
        self.assertFalse(Outbound.objects.filter(fallback_of=row).exists())

    def test_failed_after_sent_falls_back(self):
        emulator, account = self.whatsapp()
        row = outbox.enqueue(self.contact, "Hola", account=account)
        self.send()
        inbound = self.status(account, row, "failed", errors=[{"code": "131047", "title": "Re-engagement"}])
        self.assertTrue(outbox.apply_status(inbound))
        row = self.reload(row)
        self.assertEqual((row.status, row.error_code), (S.FAILED, "131047"))
        self.assertEqual(Outbound.objects.get(fallback_of=row).body, "Hola")
        self.assertFalse(outbox.apply_status(inbound))  # the same failure twice: one fallback
        self.assertEqual(Outbound.objects.filter(fallback_of=row).count(), 1)

    def test_a_status_from_another_account_or_unknown_reference_changes_nothing(self):
        emulator, account = self.whatsapp()
        row = outbox.enqueue(self.contact, "Hola", account=account)
        other = make_account(self.w.esc, Provider.WHATSAPP, name="otro")
        self.assertFalse(outbox.apply_status(self.status(other, row, "delivered")))
        Outbound.objects.filter(pk=row.pk).update(provider_id="wamid.KNOWN")
        ghost = Inbound.objects.create(
            municipality=self.w.esc,
            account=account,
            provider_id="wamid.KNOWN:delivered",
            kind=Inbound.Kind.STATUS,
            data={"status": "delivered", "reference": "", "message_id": "wamid.KNOWN"},
        )
        self.assertTrue(outbox.apply_status(ghost))  # found by the provider's id
        self.assertEqual(self.reload(row).status, S.DELIVERED)


class DoubtTests(OutboxCase):
    """A worker died after calling the provider (the row is 'sending', lease expired, call started)."""

    def crashed_row(self, account, *, started=True):
        row = outbox.enqueue(self.contact, "Hola", account=account)
        Outbound.objects.filter(pk=row.pk).update(
            status=S.SENDING,
            worker="dead-1",
            attempts=1 if started else 0,
            next_attempt_at=self.now - dt.timedelta(seconds=70) if started else None,
            lease_until=self.now - dt.timedelta(seconds=10),
        )
        return row

    def test_a_status_callback_settles_it_and_it_is_never_resent(self):
        emulator, account = self.whatsapp()
        row = self.crashed_row(account)
        StatusTests.status(self, account, row, "sent", "wamid.DONE")  # arrived, not yet processed
        with clock.travel(self.now):
            stats = self.send()
        self.assertEqual(stats["settled"], 1)
        with clock.travel(self.now + dt.timedelta(seconds=outbox.DOUBT_SECONDS + 60)):
            self.send()
        row = self.reload(row)
        self.assertEqual((row.status, row.provider_id), (S.SENT, "wamid.DONE"))
        self.assertEqual(emulator.sent, [])

    def test_without_a_callback_it_waits_then_is_resent_once(self):
        emulator, account = self.whatsapp()
        row = self.crashed_row(account)
        with clock.travel(self.now):
            self.assertEqual(self.send()["doubt"], 1)
        self.assertEqual((self.reload(row).status, emulator.sent), (S.SENDING, []))
        with clock.travel(self.now + dt.timedelta(seconds=outbox.DOUBT_SECONDS - 30)):
            self.send()
        self.assertEqual(emulator.sent, [])
        with clock.travel(self.now + dt.timedelta(seconds=outbox.DOUBT_SECONDS + 1)):
            stats = self.send()
            self.assertEqual(stats["resent"], 1)
            self.send()
        row = self.reload(row)
        self.assertEqual((row.status, row.attempts), (S.SENT, 2))
        self.assertEqual(len(emulator.sent), 1)

    def test_a_claimed_row_never_called_goes_back_at_once(self):
        emulator, account = self.whatsapp()
        row = self.crashed_row(account, started=False)
        with clock.travel(self.now):
            stats = self.send()
        self.assertEqual(stats["released"], 1)
        self.assertEqual(self.reload(row).status, S.SENT)
        self.assertEqual(len(emulator.sent), 1)

    def test_a_worker_that_lost_its_lease_does_not_call(self):
        emulator, account = self.whatsapp()
        row = outbox.enqueue(self.contact, "Hola", account=account)
        ids = outbox.claim(limit=10, worker="slow", now=self.now)
        self.assertEqual(ids, [row.pk])
        Outbound.objects.filter(pk=row.pk).update(lease_until=self.now - dt.timedelta(seconds=1))
        row = self.reload(row)
        with clock.travel(self.now):
            self.assertFalse(outbox._start(row, "slow"))
            self.assertFalse(outbox._start(row, "another"))

    def test_a_timeout_leaves_the_row_in_doubt(self):
        patch_gateway(self, FakeAdapter([SendResult(False, retry=True, error_code="timeout", error="slow")]))
        contact = Contact.objects.create(municipality=self.w.esc, address="+528112340004")
        row = outbox.enqueue(contact, "Hola", account=self.sms())
        with clock.travel(self.now):
            self.assertEqual(self.send()["doubt"], 1)
        row = self.reload(row)
        self.assertEqual((row.status, row.error_code), (S.SENDING, "timeout"))


@unittest.skipUnless(connection.vendor == "postgresql", "claim races need PostgreSQL's row locks")
class ClaimRaceTests(TransactionTestCase):
    """Several workers (threads, each with its own connection and thread pool) drain one outbox."""

    def test_no_row_is_sent_twice(self):
        w = build_world()
        adapter = FakeAdapter()
        patch_gateway(self, adapter)
        account = make_account(w.esc, Provider.GATEWAY, name="sms", rate_per_second=100000, burst=5000)
        contacts = Contact.objects.bulk_create(
            Contact(municipality=w.esc, address=f"+5281100{i:05d}") for i in range(60)
        )
        now = clock.now()
        Outbound.objects.bulk_create(
            Outbound(
                municipality=w.esc,
                contact=c,
                account=account,
                body=f"m{i}-{j}",
                next_attempt_at=now,
                priority=j,
            )
            for j in range(5)
            for i, c in enumerate(contacts)
        )
        errors = []

        def worker(name):
            try:
                while outbox.send_due(limit=7, worker=name, threads=3)["claimed"]:
                    pass
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connections.close_all()

        pool = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(adapter.calls), 300)
        self.assertEqual(max(adapter.calls.values()), 1)
        self.assertEqual(Outbound.objects.filter(status=S.SENT).count(), 300)
        self.assertEqual(set(Outbound.objects.values_list("attempts", flat=True)), {1})
