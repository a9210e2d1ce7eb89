"""Provider webhooks: real payload shapes with valid and invalid signatures, store-first, duplicates, bad input."""

from __future__ import annotations

import json
import uuid

from django.test import Client
from django.urls import reverse

from redes.messaging import accounts, ingest
from redes.messaging.models import ChannelAccount, Inbound, Provider, WebhookLog
from tests import messaging_payloads as p
from tests.base import RedesTestCase

APP_SECRET = "meta-app-secret"
AUTH_TOKEN = "twilio-auth-token"
GW_SECRET = "gateway-secret"
TG_SECRET = "telegram-secret_1"


def account(municipality, provider, secrets, name="main", **extra):
    acc = ChannelAccount(municipality=municipality, provider=provider, name=name, **extra)
    accounts.set_secrets(acc, secrets)
    acc.save()
    return acc


class HookCase(RedesTestCase):
    def setUp(self):
        self.client = Client()
        self.wa = account(
            self.w.esc,
            Provider.WHATSAPP,
            {"access_token": "t", "app_secret": APP_SECRET, "verify_token": "vt"},
        )
        self.tw = account(
            self.w.esc, Provider.TWILIO, {"auth_token": AUTH_TOKEN}, config={"account_sid": p.TWILIO_SID}
        )
        self.gw = account(self.w.esc, Provider.GATEWAY, {"api_key": "k", "webhook_secret": GW_SECRET})
        self.tg = account(self.w.esc, Provider.TELEGRAM, {"bot_token": "1:x", "webhook_secret": TG_SECRET})

    def url(self, acc):
        return reverse(f"messaging-hook-{acc.provider}", args=[acc.uuid])

    def post_wa(self, payload, *, secret=APP_SECRET, body=None, acc=None):
        body = p.dumps(payload) if body is None else body
        headers = p.wa_headers(body, secret) if secret else {}
        return self.client.post(
            self.url(acc or self.wa), data=body, content_type="application/json", **headers
        )

    def last_log(self):
        return WebhookLog.objects.order_by("-id").first()


class WhatsAppHookTests(HookCase):
    def test_handshake_echoes_the_challenge_only_with_our_token(self):
        url = self.url(self.wa)
        ok = self.client.get(
            url, {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "1158201444"}
        )
        self.assertEqual(ok.status_code, 200)
        self.assertEqual(ok.content, b"1158201444")
        bad = self.client.get(url, {"hub.mode": "subscribe", "hub.verify_token": "no", "hub.challenge": "1"})
        self.assertEqual(bad.status_code, 403)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.FORGED)
        self.assertEqual(self.client.get(url).status_code, 405)

    def test_text_is_stored_with_the_sender_normalised(self):
        response = self.post_wa(p.wa_text("Necesito despensa"))
        self.assertEqual(response.status_code, 200)
        row = Inbound.objects.get()
        self.assertEqual(row.kind, Inbound.Kind.TEXT)
        self.assertEqual(row.sender, "+528112345678")  # 521… → +52…
        self.assertEqual(row.text, "Necesito despensa")
        self.assertEqual(row.state, Inbound.State.PENDING)
        self.assertEqual(row.data["profile_name"], "Sheena Nelson")
        log = self.last_log()
        self.assertEqual((log.outcome, log.events), (WebhookLog.Outcome.STORED, 1))
        self.assertEqual(row.log_id, log.pk)
        self.assertIn("Necesito despensa", log.body)

    def test_interactive_replies_location_and_quick_reply_buttons(self):
        for payload in (p.wa_button_reply(), p.wa_list_reply(), p.wa_template_button(), p.wa_location()):
            self.assertEqual(self.post_wa(payload).status_code, 200)
        rows = {r.provider_id: r for r in Inbound.objects.all()}
        self.assertEqual(rows["wamid.BUTTON1"].kind, Inbound.Kind.INTERACTIVE)
        self.assertEqual(rows["wamid.BUTTON1"].data["id"], "1")
        self.assertEqual(rows["wamid.LIST1"].data["id"], "2")
        self.assertEqual(rows["wamid.LIST1"].text, "Mis solicitudes")
        self.assertEqual(rows["wamid.QUICK1"].data["id"], "ENTERADO")
        location = rows["wamid.LOC1"]
        self.assertEqual(location.kind, Inbound.Kind.LOCATION)
        self.assertEqual((location.data["lat"], location.data["lon"]), (25.7951, -100.3256))
        self.assertEqual(location.data["address"], "Av. Raúl Caballero, Escobedo")

    def test_unknown_types_are_kept_as_media(self):
        for payload in (p.wa_sticker(), p.wa_audio(), p.wa_reaction(), p.wa_unsupported()):
            self.assertEqual(self.post_wa(payload).status_code, 200)
        kinds = dict(Inbound.objects.values_list("provider_id", "kind"))
        self.assertEqual(set(kinds.values()), {Inbound.Kind.MEDIA})
        types = {r.provider_id: r.data["type"] for r in Inbound.objects.all()}
        self.assertEqual(
            types,
            {
                "wamid.STICKER1": "sticker",
                "wamid.AUDIO1": "audio",
                "wamid.REACT1": "reaction",
                "wamid.UNSUP1": "unsupported",
            },
        )

    def test_statuses_carry_our_reference_one_row_per_status(self):
        for status in ("sent", "delivered", "read"):
            self.post_wa(p.wa_status(status=status))
        self.post_wa(
            p.wa_status(
                wamid="wamid.OUT2",
                status="failed",
                errors=[{"code": 131047, "title": "Re-engagement message"}],
            )
        )
        rows = Inbound.objects.filter(kind=Inbound.Kind.STATUS).order_by("id")
        self.assertEqual([r.data["status"] for r in rows], ["sent", "delivered", "read", "failed"])
        self.assertEqual({r.data["reference"] for r in rows[:3]}, {"17"})
        self.assertEqual(rows[0].data["message_id"], "wamid.OUT1")
        self.assertEqual(rows[3].data["errors"], [{"code": "131047", "title": "Re-engagement message"}])

    def test_forged_and_missing_signatures_are_refused_and_kept(self):
        response = self.post_wa(p.wa_text(), secret="not-the-secret")
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.FORGED)
        self.assertIn("Hola", self.last_log().body)
        self.assertEqual(self.post_wa(p.wa_text(), secret=None).status_code, 403)
        self.assertEqual(self.last_log().error, "Missing X-Hub-Signature-256.")
        # A valid signature of another body does not pass either.
        body = p.dumps(p.wa_text("otro"))
        headers = p.wa_headers(p.dumps(p.wa_text()), APP_SECRET)
        forged = self.client.post(self.url(self.wa), data=body, content_type="application/json", **headers)
        self.assertEqual(forged.status_code, 403)
        self.assertFalse(Inbound.objects.exists())
        self.assertEqual(WebhookLog.objects.filter(outcome=WebhookLog.Outcome.FORGED).count(), 3)

    def test_malformed_and_truncated_json_is_kept_and_answered_200(self):
        whole = p.dumps(p.wa_text())
        for body in (
            whole[: len(whole) // 2],
            b"[]",
            b'{"entry": 5}',
            p.dumps({"entry": [{"changes": [{"value": {"messages": [{"type": "text"}]}}]}]}),
        ):
            response = self.post_wa(None, body=body)
            self.assertEqual(response.status_code, 200)
            log = self.last_log()
            self.assertEqual(log.outcome, WebhookLog.Outcome.MALFORMED)
            self.assertTrue(log.error)
            self.assertEqual(log.body, body.decode())
        self.assertFalse(Inbound.objects.exists())

    def test_the_same_message_twice_is_stored_once(self):
        self.post_wa(p.wa_text())
        response = self.post_wa(p.wa_text())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Inbound.objects.count(), 1)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.DUPLICATE)
        self.assertEqual(WebhookLog.objects.count(), 2)

    def test_huge_text_is_cut_but_the_raw_body_kept(self):
        text = "a" * 100_000
        self.assertEqual(self.post_wa(p.wa_text(text)).status_code, 200)
        row = Inbound.objects.get()
        self.assertEqual(len(row.text), 4096)
        self.assertTrue(row.data["truncated"])
        self.assertIn(text, self.last_log().body)

    def test_bodies_over_one_megabyte_are_413(self):
        response = self.post_wa(p.wa_text("a" * 1_100_000))
        self.assertEqual(response.status_code, 413)
        log = self.last_log()
        self.assertTrue(log.truncated)
        self.assertLess(len(log.body), 1_000_000)
        self.assertFalse(Inbound.objects.exists())

    def test_flood_from_one_number_is_all_stored(self):
        for n in range(30):
            self.post_wa(p.wa_text(f"mensaje {n}", wamid=f"wamid.FLOOD{n}"))
        self.assertEqual(Inbound.objects.filter(sender="+528112345678").count(), 30)

    def test_unusable_sender_is_kept_and_ignored(self):
        self.post_wa(p.wa_text(wa_id="12"))
        row = Inbound.objects.get()
        self.assertEqual(row.state, Inbound.State.IGNORED)
        self.assertEqual(row.sender, "12")
        self.assertTrue(row.error)

    def test_unknown_or_inactive_account_is_404(self):
        url = reverse("messaging-hook-whatsapp", args=[uuid.uuid4()])
        body = p.dumps(p.wa_text())
        self.assertEqual(self.client.post(url, data=body, content_type="application/json").status_code, 404)
        # An account of another provider at that URL is unknown too.
        url = reverse("messaging-hook-whatsapp", args=[self.tw.uuid])
        self.assertEqual(self.client.post(url, data=body, content_type="application/json").status_code, 404)
        ChannelAccount.objects.filter(pk=self.wa.pk).update(active=False)
        ingest.forget_accounts()  # a raw update bypasses save(), which forgets the webhooks' cached accounts
        self.assertEqual(self.post_wa(p.wa_text()).status_code, 404)
        self.assertFalse(WebhookLog.objects.exists())

    def test_no_session_or_csrf_needed(self):
        client = Client(enforce_csrf_checks=True)
        body = p.dumps(p.wa_text())
        response = client.post(
            self.url(self.wa), data=body, content_type="application/json", **p.wa_headers(body, APP_SECRET)
        )
        self.assertEqual(response.status_code, 200)


class TwilioHookTests(HookCase):
    def post_tw(self, params, *, token=AUTH_TOKEN, query=""):
        url = self.url(self.tw) + query
        headers = p.twilio_headers("http://testserver" + url, params, token) if token else {}
        return self.client.post(
            url, data=p.form(params), content_type="application/x-www-form-urlencoded", **headers
        )

    def test_sms_is_stored_and_answered_with_empty_twiml(self):
        response = self.post_tw(p.twilio_sms("1"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/xml")
        self.assertIn(b"<Response/>", response.content)
        row = Inbound.objects.get()
        self.assertEqual((row.kind, row.text, row.sender), (Inbound.Kind.TEXT, "1", "+528112345678"))

    def test_mms_without_text_is_media(self):
        self.post_tw(p.twilio_sms("", num_media="1", MediaContentType0="image/jpeg", MediaUrl0="https://x/y"))
        row = Inbound.objects.get()
        self.assertEqual((row.kind, row.data["type"]), (Inbound.Kind.MEDIA, "image/jpeg"))

    def test_status_callbacks_with_our_reference(self):
        self.post_tw(p.twilio_status(status="sent"), query="?ref=55")
        self.post_tw(p.twilio_status(status="undelivered", error_code=30003), query="?ref=55")
        self.post_tw(p.twilio_status(status="queued"), query="?ref=55")
        rows = Inbound.objects.order_by("id")
        self.assertEqual([r.data["status"] for r in rows], ["sent", "failed"])
        self.assertEqual({r.data["reference"] for r in rows}, {"55"})
        self.assertEqual(rows[1].data["errors"][0]["code"], "30003")
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.IGNORED)

    def test_signature_covers_url_and_params(self):
        self.assertEqual(self.post_tw(p.twilio_sms(), token="wrong").status_code, 403)
        self.assertEqual(self.post_tw(p.twilio_sms(), token=None).status_code, 403)
        params = p.twilio_sms()
        headers = p.twilio_headers("http://testserver" + self.url(self.tw), params, AUTH_TOKEN)
        params["Body"] = "cambiado"
        response = self.client.post(
            self.url(self.tw),
            data=p.form(params),
            content_type="application/x-www-form-urlencoded",
            **headers,
        )
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Inbound.objects.exists())
        self.assertEqual(WebhookLog.objects.filter(outcome=WebhookLog.Outcome.FORGED).count(), 3)

    def test_retry_is_a_duplicate(self):
        self.post_tw(p.twilio_sms())
        self.post_tw(p.twilio_sms())
        self.assertEqual(Inbound.objects.count(), 1)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.DUPLICATE)

    def test_without_message_sid_is_malformed(self):
        params = p.twilio_sms()
        for key in ("MessageSid", "SmsSid", "SmsMessageSid"):
            del params[key]
        self.assertEqual(self.post_tw(params).status_code, 200)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.MALFORMED)


class GatewayHookTests(HookCase):
    def post_gw(self, payload, secret=GW_SECRET, body=None):
        body = p.dumps(payload) if body is None else body
        headers = p.gw_headers(body, secret) if secret else {}
        return self.client.post(self.url(self.gw), data=body, content_type="application/json", **headers)

    def test_messages_and_statuses(self):
        payload = {
            "messages": [
                {"id": "g1", "from": "8112345678", "text": "Hola", "timestamp": 1767225600},
                {"id": "g2", "from": "+52 81 1234 5678", "text": "", "lat": 25.79, "lon": -100.32},
            ],
            "statuses": [{"id": "o1", "status": "delivered", "reference": "9"}],
        }
        self.assertEqual(self.post_gw(payload).status_code, 200)
        rows = {r.provider_id: r for r in Inbound.objects.all()}
        self.assertEqual(rows["g1"].sender, "+528112345678")
        self.assertEqual(rows["g2"].kind, Inbound.Kind.LOCATION)
        self.assertEqual(rows["o1:delivered"].data["reference"], "9")
        self.assertEqual(self.last_log().events, 3)

    def test_bad_input(self):
        self.assertEqual(
            self.post_gw(p.gw_messages({"id": "g1", "from": "8112345678"}), secret="x").status_code, 403
        )
        self.assertEqual(
            self.post_gw(p.gw_messages({"id": "g1", "from": "8112345678"}), secret=None).status_code, 403
        )
        self.assertEqual(self.post_gw(None, body=b'{"messages": [{"id": "g1"').status_code, 200)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.MALFORMED)
        self.assertEqual(self.post_gw({"statuses": [{"id": "o", "status": "lost"}]}).status_code, 200)
        self.assertIn("Unknown status", self.last_log().error)
        self.assertFalse(Inbound.objects.exists())


class TelegramHookTests(HookCase):
    def post_tg(self, update, secret=TG_SECRET, body=None):
        body = p.dumps(update) if body is None else body
        headers = p.tg_headers(secret) if secret else {}
        return self.client.post(self.url(self.tg), data=body, content_type="application/json", **headers)

    def test_text_location_sticker_and_callback(self):
        for update in (p.tg_text("Hola"), p.tg_location(), p.tg_sticker(), p.tg_callback(data="2")):
            self.assertEqual(self.post_tg(update).status_code, 200)
        rows = {r.provider_id: r for r in Inbound.objects.all()}
        self.assertEqual(rows["10000"].sender, "telegram:1111111")
        self.assertEqual(rows["10000"].text, "Hola")
        self.assertEqual(rows["10001"].kind, Inbound.Kind.LOCATION)
        self.assertEqual((rows["10002"].kind, rows["10002"].data["type"]), (Inbound.Kind.MEDIA, "sticker"))
        self.assertEqual((rows["10003"].kind, rows["10003"].data["id"]), (Inbound.Kind.INTERACTIVE, "2"))

    def test_secret_token_and_bad_input(self):
        self.assertEqual(self.post_tg(p.tg_text(), secret="wrong").status_code, 403)
        self.assertEqual(self.post_tg(p.tg_text(), secret=None).status_code, 403)
        self.assertEqual(self.post_tg(None, body=b'{"update_id": 1, "message": {').status_code, 200)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.MALFORMED)
        edited = {"update_id": 5, "edited_message": p.tg_text()["message"]}
        self.assertEqual(self.post_tg(edited).status_code, 200)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.IGNORED)
        self.post_tg(p.tg_text())
        self.post_tg(p.tg_text())
        self.assertEqual(Inbound.objects.count(), 1)
        self.assertEqual(self.last_log().outcome, WebhookLog.Outcome.DUPLICATE)


class ConsoleStoreTests(RedesTestCase):
    def test_store_console_goes_the_same_path(self):
        acc = accounts.console_account(self.w.esc)
        row = ingest.store_console(acc, "81 1234 5678", text="1")
        self.assertEqual((row.kind, row.sender, row.text), (Inbound.Kind.TEXT, "+528112345678", "1"))
        self.assertEqual(json.loads(WebhookLog.objects.get(pk=row.log_id).body)["text"], "1")
        where = ingest.store_console(acc, "8112345678", lat=25.79, lon=-100.32)
        self.assertEqual(where.kind, Inbound.Kind.LOCATION)
        option = ingest.store_console(acc, "8112345678", text="Reportar", option_id="1")
        self.assertEqual((option.kind, option.data["id"]), (Inbound.Kind.INTERACTIVE, "1"))
        bad = ingest.store_console(acc, "123", text="hola")
        self.assertEqual(bad.state, Inbound.State.IGNORED)


class UnreadableSecretsTests(HookCase):
    def test_secrets_under_a_lost_key_answer_503_so_the_provider_retries(self):
        from django.test import override_settings

        from redes.registry import crypto

        with override_settings(REDES_FIELD_KEYS=[crypto.generate_key()]):
            response = self.post_wa(p.wa_text())
        self.assertEqual(response.status_code, 503)
        self.assertIn("Hola", self.last_log().body)
        self.assertFalse(Inbound.objects.exists())
