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
