"""Sending through each adapter against its emulator on 127.0.0.1 (no network): payload shapes, the
classification of answers (sent, retry later, failed for good) and the emulators' own behaviour."""

from __future__ import annotations

import json

import httpx

from redes.messaging import accounts
from redes.messaging.channels import get_adapter
from redes.messaging.channels.base import OutgoingMessage
from redes.messaging.channels.whatsapp import outbound as wa_out
from redes.messaging.channels.whatsapp.emulator import WhatsAppEmulator
from redes.messaging.channels.whatsapp.inbound import sign
from redes.messaging.models import ChannelAccount, Inbound, Provider
from tests.base import RedesTestCase


def make_account(municipality, provider, name="main", config=None, secrets=None, **extra):
    account = ChannelAccount(
        municipality=municipality, provider=provider, name=name, config=config or {}, **extra
    )
    accounts.set_secrets(account, secrets or {})
    account.save()
    return account


class WhatsAppSendTests(RedesTestCase):
    def start(self, **kwargs):
        emulator = WhatsAppEmulator(access_token="tok", **kwargs)
        base = emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.WHATSAPP,
            config={"api_base": base, "api_version": "v21.0", "phone_number_id": "1055"},
            secrets={"access_token": "tok", "app_secret": "s3cret", "verify_token": "v"},
        )
        client = httpx.Client()
        self.addCleanup(client.close)
        return emulator, account, client

    def test_text_is_sent_with_the_cloud_api_shape(self):
        emulator, account, client = self.start()
        result = get_adapter("whatsapp").send(
            account, OutgoingMessage(to="+528112345678", text="Hola", reference="42"), client
        )
        self.assertTrue(result.ok, result)
        self.assertTrue(result.provider_id.startswith("wamid."))
        [sent] = emulator.sent
        self.assertEqual(sent["id"], result.provider_id)
        self.assertEqual(
            sent["payload"],
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "528112345678",
                "type": "text",
                "text": {"body": "Hola", "preview_url": False},
                "biz_opaque_callback_data": "42",
            },
        )

    def test_options_become_buttons_or_a_list_with_titles_cut(self):
        few = [{"id": "1", "title": "Reportar una necesidad urgente"}, {"id": "2", "title": "Estado"}]
        payload = wa_out.payload(OutgoingMessage(to="+528112345678", text="Menú", options=few))
        self.assertEqual(payload["type"], "interactive")
        self.assertEqual(payload["interactive"]["type"], "button")
        titles = [b["reply"]["title"] for b in payload["interactive"]["action"]["buttons"]]
        self.assertEqual(len(titles[0]), 20)
        many = [{"id": str(n), "title": f"Opción número {n} con un título largo"} for n in range(7)]
        payload = wa_out.payload(OutgoingMessage(to="+528112345678", text="Menú", options=many))
        self.assertEqual(payload["interactive"]["type"], "list")
        rows = payload["interactive"]["action"]["sections"][0]["rows"]
        self.assertEqual(len(rows), 7)
        self.assertTrue(all(len(r["title"]) <= 24 for r in rows))
        self.assertIn("description", rows[0])
        too_many = [{"id": str(n), "title": str(n)} for n in range(11)]
        payload = wa_out.payload(OutgoingMessage(to="+528112345678", text="Menú", options=too_many))
        self.assertEqual(payload["type"], "text")

    def test_template_outside_the_window(self):
        emulator, account, client = self.start()
        message = OutgoingMessage(
            to="+528112345678",
            text="",
            reference="7",
            template={"name": "aviso_general", "language": "es_MX", "params": ["Reparto", "mañana"]},
        )
        result = get_adapter("whatsapp").send(account, message, client)
        self.assertTrue(result.ok)
        template = emulator.sent[0]["payload"]["template"]
        self.assertEqual(
            template,
            {
                "name": "aviso_general",
                "language": {"code": "es_MX"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Reparto"},
                            {"type": "text", "text": "mañana"},
                        ],
                    }
                ],
            },
        )

    def test_rate_limit_is_130429_and_retried(self):
        emulator, account, client = self.start(rate=0.001, burst=2)
        adapter = get_adapter("whatsapp")
        results = [
            adapter.send(account, OutgoingMessage(to="+528112345678", text="x"), client) for _ in range(4)
        ]
        self.assertEqual([r.ok for r in results], [True, True, False, False])
        self.assertTrue(results[2].retry)
        self.assertEqual(results[2].error_code, "130429")
        self.assertEqual(emulator.rate_limited, 2)
        self.assertEqual(len(emulator.sent), 2)

    def test_server_errors_are_retried(self):
        emulator, account, client = self.start(error_rate=1.0)
        result = get_adapter("whatsapp").send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertFalse(result.ok)
        self.assertTrue(result.retry)
        self.assertEqual(emulator.server_errors, 1)
        self.assertEqual(emulator.sent, [])

    def test_permanent_errors_keep_the_graph_code(self):
        emulator, account, client = self.start(reject={"528112345678": 131026})
        result = get_adapter("whatsapp").send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertTrue(result.permanent)
        self.assertEqual(result.error_code, "131026")

    def test_wrong_token_is_permanent(self):
        emulator, account, client = self.start()
        accounts.set_secrets(account, {"access_token": "other"})
        result = get_adapter("whatsapp").send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertTrue(result.permanent)
        self.assertEqual(result.error_code, "190")

    def test_unreachable_provider_is_retried(self):
        emulator, account, client = self.start()
        emulator.stop()
        result = get_adapter("whatsapp").send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertTrue(result.retry)
        self.assertEqual(result.error_code, "connection")

    def test_status_callbacks_are_signed_and_carry_the_reference(self):
        received = []
        from redes.messaging.channels.emulating import Emulator, Response

        class Sink(Emulator):
            def handle(self, request):
                received.append((request.headers.get("X-Hub-Signature-256"), request.body))
                return Response(200, {})

        sink = Sink()
        sink_url = sink.start()
        self.addCleanup(sink.stop)
        emulator, account, client = self.start(webhook_url=sink_url + "/hook", app_secret="s3cret")
        result = get_adapter("whatsapp").send(
            account, OutgoingMessage(to="+528112345678", text="x", reference="99"), client
        )
        self.assertTrue(emulator.wait_callbacks())
        self.assertEqual(len(received), 3)
        statuses = []
        for signature, body in received:
            self.assertEqual(signature, sign(body, "s3cret"))
            status = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]
            self.assertEqual(status["id"], result.provider_id)
            self.assertEqual(status["biz_opaque_callback_data"], "99")
            statuses.append(status["status"])
        self.assertEqual(statuses, ["sent", "delivered", "read"])
        self.assertEqual(emulator.callbacks_posted, 3)


class ConsoleSendTests(RedesTestCase):
    def test_console_send_is_delivered_at_once_without_http(self):
        account = accounts.console_account(self.w.esc)
        result = get_adapter("console").send(
            account, OutgoingMessage(to="+528112345678", text="Hola", reference="5"), None
        )
        self.assertTrue(result.ok)
        row = Inbound.objects.get(account=account, kind=Inbound.Kind.STATUS)
        self.assertEqual(row.data["status"], "delivered")
        self.assertEqual(row.data["reference"], "5")
        self.assertEqual(row.data["message_id"], result.provider_id)
        self.assertEqual(row.state, Inbound.State.PENDING)


class TwilioGatewayTelegramSendTests(RedesTestCase):
    def http(self):
        client = httpx.Client()
        self.addCleanup(client.close)
        return client

    def test_twilio_sends_a_form_with_basic_auth_and_status_callback(self):
        from redes.messaging.channels.twilio.emulator import TwilioEmulator

        sid = "AC" + "2" * 32
        emulator = TwilioEmulator(
            rate=0.001, burst=1, account_sid=sid, auth_token="tt", reject={"+528100000001": 21211}
        )
        base = emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.TWILIO,
            config={"api_base": base, "account_sid": sid, "from_number": "+528100000000"},
            secrets={"auth_token": "tt"},
        )
        adapter, client = get_adapter("twilio"), self.http()
        ok = adapter.send(account, OutgoingMessage(to="+528112345678", text="Hola", reference="8"), client)
        self.assertTrue(ok.ok, ok)
        self.assertTrue(ok.provider_id.startswith("SM"))
        sent = emulator.sent[0]["payload"]
        self.assertEqual((sent["To"], sent["From"], sent["Body"]), ("+528112345678", "+528100000000", "Hola"))
        self.assertTrue(sent["StatusCallback"].endswith(f"/hooks/twilio/{account.uuid}/?ref=8"))
        limited = adapter.send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertEqual((limited.retry, limited.error_code), (True, "20429"))
        rejected = adapter.send(account, OutgoingMessage(to="+528100000001", text="x"), client)
        self.assertEqual((rejected.permanent, rejected.error_code), (True, "21211"))
        accounts.set_secrets(account, {"auth_token": "wrong"})
        self.assertEqual(
            adapter.send(account, OutgoingMessage(to="+528112345678", text="x"), client).error_code, "20003"
        )

    def test_gateway_send_and_errors(self):
        from redes.messaging.channels.gateway.emulator import GatewayEmulator

        emulator = GatewayEmulator(rate=0.001, burst=1, api_key="key")
        emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.GATEWAY,
            config={"send_url": emulator.send_url},
            secrets={"api_key": "key", "webhook_secret": "w"},
        )
        adapter, client = get_adapter("gateway"), self.http()
        ok = adapter.send(account, OutgoingMessage(to="+528112345678", text="Hola", reference="3"), client)
        self.assertTrue(ok.ok)
        self.assertEqual(
            emulator.sent[0]["payload"], {"to": "+528112345678", "text": "Hola", "reference": "3"}
        )
        limited = adapter.send(account, OutgoingMessage(to="+528112345678", text="x"), client)
        self.assertEqual((limited.retry, limited.retry_after), (True, 1.0))
        bad = adapter.send(account, OutgoingMessage(to="123", text="x"), client)
        self.assertEqual((bad.permanent, bad.error_code), (True, "invalid"))

    def test_telegram_send_with_inline_keyboard_429_and_blocked(self):
        from redes.messaging.channels.telegram.emulator import TelegramEmulator

        emulator = TelegramEmulator(rate=0.001, burst=1, bot_token="1:abc", blocked={"999"})
        base = emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.TELEGRAM,
            config={"api_base": base},
            secrets={"bot_token": "1:abc", "webhook_secret": "s"},
        )
        adapter, client = get_adapter("telegram"), self.http()
        options = [{"id": "1", "title": "Reportar"}, {"id": "2", "title": "Estado"}]
        ok = adapter.send(account, OutgoingMessage(to="telegram:555", text="Menú", options=options), client)
        self.assertTrue(ok.ok, ok)
        payload = emulator.sent[0]["payload"]
        self.assertEqual(payload["chat_id"], "555")
        self.assertEqual(
            payload["reply_markup"]["inline_keyboard"][1], [{"text": "Estado", "callback_data": "2"}]
        )
        limited = adapter.send(account, OutgoingMessage(to="telegram:555", text="x"), client)
        self.assertEqual((limited.retry, limited.retry_after), (True, 1.0))
        emulator.bucket.rate = 1000.0
        blocked = adapter.send(account, OutgoingMessage(to="telegram:999", text="x"), client)
        self.assertEqual((blocked.permanent, blocked.error_code), (True, "403"))


class EmulatorRoundTripTests(RedesTestCase):
    """The WhatsApp emulator's status callbacks reach our own webhook and are stored as status rows."""

    def test_callbacks_land_in_the_inbound_store(self):
        from django.test import Client

        received = []
        from redes.messaging.channels.emulating import Emulator, Response

        class Relay(Emulator):
            """Forwards callbacks to the Django test client (the test database is not visible to a server)."""

            def handle(self, request):
                received.append((dict(request.headers), request.body))
                return Response(200, {})

        relay = Relay()
        url = relay.start()
        self.addCleanup(relay.stop)
        emulator = WhatsAppEmulator(
            webhook_url=url, app_secret="s3cret", undeliverable={"528112345679": 131026}
        )
        base = emulator.start()
        self.addCleanup(emulator.stop)
        account = make_account(
            self.w.esc,
            Provider.WHATSAPP,
            config={"api_base": base, "phone_number_id": "1055"},
            secrets={"access_token": "tok", "app_secret": "s3cret", "verify_token": "v"},
        )
        client = httpx.Client()
        self.addCleanup(client.close)
        adapter = get_adapter("whatsapp")
        adapter.send(account, OutgoingMessage(to="+528112345678", text="a", reference="1"), client)
        adapter.send(account, OutgoingMessage(to="+528112345679", text="b", reference="2"), client)
        self.assertTrue(emulator.wait_callbacks())
        django_client = Client()
        for headers, body in received:
            response = django_client.post(
                f"/hooks/whatsapp/{account.uuid}/",
                data=body,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=headers["X-Hub-Signature-256"],
            )
            self.assertEqual(response.status_code, 200)
        statuses = sorted(
            (r.data["reference"], r.data["status"]) for r in Inbound.objects.filter(kind="status")
        )
        self.assertEqual(
            statuses, [("1", "delivered"), ("1", "read"), ("1", "sent"), ("2", "failed"), ("2", "sent")]
        )
        failed = Inbound.objects.get(kind="status", data__status="failed")
        self.assertEqual(failed.data["errors"][0]["code"], "131026")


class SaveAccountTests(RedesTestCase):
    def save(self, actor=None, **kw):
        base = {
            "provider": Provider.WHATSAPP,
            "name": "Línea municipal",
            "address": "+52 81 0000 0000",
            "config": {"phone_number_id": "106540352242922"},
            "secrets": {"access_token": "EAAG", "app_secret": "app", "verify_token": "vt"},
        }
        base.update(kw)
        return accounts.save_account(self.w.esc, actor=actor or self.w.coord, **base)

    def test_create_encrypts_and_audits_without_secret_values(self):
        from redes.audit.models import AuditEvent

        account = self.save()
        self.assertNotIn("EAAG", account.secrets)
        self.assertEqual(accounts.secrets_of(account)["access_token"], "EAAG")
        self.assertEqual(accounts.secrets_set(account), ["access_token", "app_secret", "verify_token"])
        self.assertEqual(account.rate_per_second, 80.0)
        event = AuditEvent.objects.get(action="messaging.account.create")
        self.assertEqual(event.changes["secrets_changed"], ["access_token", "app_secret", "verify_token"])
        self.assertNotIn("EAAG", str(event.changes))

    def test_update_keeps_secrets_left_empty(self):
        account = self.save()
        updated = accounts.save_account(
            self.w.esc,
            actor=self.w.coord,
            account=account,
            name="Otra",
            config={"phone_number_id": "106540352242922"},
            secrets={"access_token": "", "app_secret": "new"},
        )
        values = accounts.secrets_of(updated)
        self.assertEqual((values["access_token"], values["app_secret"]), ("EAAG", "new"))
        self.assertEqual(updated.name, "Otra")

    def test_validation(self):
        from django.core.exceptions import ValidationError

        with self.assertRaises(ValidationError) as caught:
            self.save(
                config={"phone_number_id": "abc", "api_base": "ftp://x", "bogus": "1"},
                secrets={"access_token": "x"},
            )
        fields = set(caught.exception.error_dict)
        self.assertTrue(
            {
                "config_phone_number_id",
                "config_api_base",
                "config_bogus",
                "secret_app_secret",
                "secret_verify_token",
            }
            <= fields
        )
        with self.assertRaises(ValidationError) as caught:
            accounts.save_account(
                self.w.esc,
                actor=self.w.coord,
                provider=Provider.TWILIO,
                name="sms",
                config={"account_sid": "x"},
                secrets={},
            )
        self.assertIn("config_account_sid", caught.exception.error_dict)
        with self.assertRaises(ValidationError):
            accounts.save_account(
                self.w.esc,
                actor=self.w.coord,
                provider=Provider.TELEGRAM,
                name="bot",
                secrets={"bot_token": "1:x", "webhook_secret": "no spaces!"},
            )
        self.save()
        with self.assertRaises(ValidationError) as caught:
            self.save()
        self.assertIn("name", caught.exception.error_dict)

    def test_permission_per_role(self):
        from django.core.exceptions import PermissionDenied

        from redes.audit.models import AuditEvent

        for persona in ("sector1", "block1", "operator", "observer", "other_coord", "nobody"):
            with self.subTest(persona), self.assertRaises(PermissionDenied):
                self.save(actor=getattr(self.w, persona))
        self.assertEqual(
            AuditEvent.objects.filter(action="messaging.account.create", outcome="denied").count(), 6
        )
        self.assertFalse(ChannelAccount.objects.filter(provider=Provider.WHATSAPP).exists())
        account = self.save(actor=self.w.root)
        with self.assertRaises(PermissionDenied):
            accounts.save_account(self.w.aca, actor=self.w.other_coord, account=account, name="x")
