"""Messaging pages: who may open each page (per role), what observers never see, the forms with good and bad
input, the console's conversation and a cascade's acknowledgement from the pages.

The messaging world (``build_messaging``) sits on the base world: the default texts and menus of Escobedo, a
household of block S01-M001 with a phone, a WhatsApp group of sector S01, a malformed webhook request, a finished
neighbour conversation through the console, and a cascade broadcast over Escobedo started by the coordinator
(sector S01's liaison ``sector1`` and block S01-M001's liaison ``block1`` wait for it).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from django.test import override_settings
from django.urls import reverse

from redes.audit.models import AuditEvent
from redes.messaging import accounts, broadcasts, defaults, dispatcher, ingest
from redes.messaging.models import (
    Broadcast,
    CascadeNode,
    ChannelAccount,
    Flow,
    Group,
    Inbound,
    MessageTemplate,
    Outbound,
    WebhookLog,
)
from redes.registry import services as registry
from tests.base import RedesTestCase

HOUSEHOLD_PHONE = "+528112349876"
SECRET_PAYLOAD = "payload-que-no-se-lee-7731"
BROADCAST_BODY = "Entrega de despensas mañana a las 10 en el centro comunitario"


def build_messaging(w) -> SimpleNamespace:
    m = SimpleNamespace()
    defaults.ensure_defaults(w.esc)
    m.account = accounts.console_account(w.esc)
    m.household = registry.create_household(
        w.b11, street="Calle Secreta", ext_number="1", phones=[{"number": "81 1234 9876"}]
    )
    m.group = Group.objects.create(
        municipality=w.esc,
        name="Vecinos Sector 1",
        kind=Group.Kind.SECTOR,
        node=w.s1,
        rules="Sin política",
        invite_link="https://chat.whatsapp.com/demo",
    )
    m.group.moderators.add(w.sector1)
    m.log = WebhookLog.objects.create(
        municipality=w.esc, account=m.account, body=SECRET_PAYLOAD, outcome=WebhookLog.Outcome.MALFORMED
    )
    ingest.store_console(m.account, HOUSEHOLD_PHONE, text="MENU")
    dispatcher.run_once()
    m.broadcast = broadcasts.create_broadcast(
        actor=w.coord,
        municipality=w.esc,
        node=w.esc_node,
        title="Despensas",
        body=BROADCAST_BODY,
        cascade=True,
        ack_minutes=60,
        remind_minutes=30,
    )
    broadcasts.start_broadcast(m.broadcast, actor=w.coord)
    m.broadcast.refresh_from_db()
    return m


@override_settings(LANGUAGE_CODE="en")
class MessagingPagesBase(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.m = build_messaging(cls.w)

    def assert_login_redirect(self, response):
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("login"), response["Location"])

    def node_row(self, node):
        return CascadeNode.objects.get(broadcast=self.m.broadcast, node=node)

    def manage_pages(self) -> list[str]:
        m = self.m
        key = MessageTemplate.objects.filter(municipality=self.w.esc).order_by("key").first().key
        flow = Flow.objects.filter(municipality=self.w.esc).order_by("key").first().key
        return [
            reverse("messaging-console"),
            reverse("messaging-console-conversation") + f"?number={HOUSEHOLD_PHONE}",
            reverse("messaging-group-new"),
            reverse("messaging-group", args=[m.group.uuid]),
            reverse("messaging-templates"),
            reverse("messaging-template-new"),
            reverse("messaging-template", args=[key]),
            reverse("messaging-flows"),
            reverse("messaging-flow", args=[flow]),
            reverse("messaging-accounts"),
            reverse("messaging-account-new"),
            reverse("messaging-account", args=[m.account.uuid]),
            reverse("messaging-inbound"),
            reverse("messaging-inbound-entry", args=[m.log.pk]),
        ]

    def broadcast_pages(self) -> list[str]:
        b = self.m.broadcast
        return [
            reverse("messaging-broadcasts"),
            reverse("messaging-broadcast", args=[b.uuid]),
            reverse("messaging-broadcast-map", args=[b.uuid]),
            reverse("messaging-groups"),
        ]


# ------------------------------------------------------------------------------------------------ access


class AccessMatrixTests(MessagingPagesBase):
    def test_anonymous_is_sent_to_sign_in(self):
        client = self.client_for(None)
        for url in [reverse("messaging-home"), *self.broadcast_pages(), *self.manage_pages()]:
            with self.subTest(url=url):
                self.assert_login_redirect(client.get(url))
        self.assert_login_redirect(client.post(reverse("messaging-ack", args=[self.node_row(self.w.s1).pk])))

    def test_the_coordinator_opens_every_page(self):
        client = self.client_for(self.w.coord)
        for url in [reverse("messaging-home"), *self.broadcast_pages(), *self.manage_pages()]:
            with self.subTest(url=url):
                self.assertEqual(client.get(url).status_code, 200)

    def test_the_superuser_opens_every_page(self):
        client = self.client_for(self.w.root)
        for url in [reverse("messaging-home"), *self.broadcast_pages()]:
            with self.subTest(url=url):
                self.assertEqual(
                    client.get(url + ("&" if "?" in url else "?") + f"m={self.w.esc.uuid}").status_code, 200
                )

    def test_roles_without_messaging_management_get_403_on_set_up_pages(self):
        w = self.w
        for user in (w.sector1, w.block1, w.volunteer, w.observer, w.operator, w.nobody):
            client = self.client_for(user)
            for url in self.manage_pages():
                with self.subTest(user=user.username, url=url):
                    self.assertEqual(client.get(url).status_code, 403)

    def test_roles_without_broadcast_get_403_on_broadcast_pages(self):
        w = self.w
        for user in (w.block1, w.volunteer, w.observer, w.state_observer, w.operator, w.caseworker, w.nobody):
            client = self.client_for(user)
            for url in self.broadcast_pages():
                with self.subTest(user=user.username, url=url):
                    self.assertEqual(client.get(url).status_code, 403)

    def test_the_home_page_per_role(self):
        w = self.w
        for user in (w.volunteer, w.nobody):
            with self.subTest(user=user.username):
                self.assertEqual(self.client_for(user).get(reverse("messaging-home")).status_code, 403)
        for user in (w.coord, w.sector1, w.block1, w.observer, w.state_observer, w.operator):
            with self.subTest(user=user.username):
                self.assertEqual(self.client_for(user).get(reverse("messaging-home")).status_code, 200)

    def test_another_tenant_gets_404_for_records_of_escobedo(self):
        m = self.m
        client = self.client_for(self.w.other_coord)
        key = MessageTemplate.objects.filter(municipality=self.w.esc).first().key
        urls = [
            reverse("messaging-broadcast", args=[m.broadcast.uuid]),
            reverse("messaging-broadcast-map", args=[m.broadcast.uuid]),
            reverse("messaging-group", args=[m.group.uuid]),
            reverse("messaging-account", args=[m.account.uuid]),
            reverse("messaging-inbound-entry", args=[m.log.pk]),
            reverse("messaging-console") + f"?m={self.w.esc.uuid}",
            reverse("messaging-templates") + f"?m={self.w.esc.uuid}",
            reverse("messaging-template", args=[key]) + f"?m={self.w.esc.uuid}",
        ]
        for url in urls:
            with self.subTest(url=url):
                self.assertEqual(client.get(url).status_code, 404)
        # Acapulco's own pages work, and show nothing of Escobedo.
        response = client.get(reverse("messaging-inbound"))
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "Malformed", status_code=200)
        response = client.post(reverse("messaging-broadcast-action", args=[m.broadcast.uuid, "cancel"]))
        self.assertEqual(response.status_code, 404)
        response = client.post(reverse("messaging-ack", args=[self.node_row(self.w.s1).pk]))
        self.assertEqual(response.status_code, 404)
        m.broadcast.refresh_from_db()
        self.assertEqual(m.broadcast.status, Broadcast.Status.SENDING)

    def test_a_sector_liaison_sees_broadcasts_of_their_sector_only(self):
        w = self.w
        client = self.client_for(w.sector1)
        self.assertEqual(client.get(reverse("messaging-broadcasts")).status_code, 200)
        self.assertEqual(client.get(reverse("messaging-groups")).status_code, 200)
        # The coordinator's broadcast over the whole municipality reaches them: they follow it.
        self.assertEqual(
            client.get(reverse("messaging-broadcast", args=[self.m.broadcast.uuid])).status_code, 200
        )
        own = broadcasts.create_broadcast(
            actor=w.sector1, municipality=w.esc, node=w.s1, title="Junta", body="Junta del sector el sábado"
        )
        self.assertEqual(client.get(reverse("messaging-broadcast", args=[own.uuid])).status_code, 200)
        # A broadcast of sector 2 is unseen.
        other = broadcasts.create_broadcast(
            actor=w.coord, municipality=w.esc, node=w.s2, title="Sector 2", body="Aviso del sector 2"
        )
        self.assertEqual(client.get(reverse("messaging-broadcast", args=[other.uuid])).status_code, 404)


class ObserverPrivacyTests(MessagingPagesBase):
    def test_observers_see_counts_never_phones_names_or_texts(self):
        for user in (self.w.observer, self.w.state_observer):
            response = self.client_for(user).get(reverse("messaging-home"))
            with self.subTest(user=user.username):
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, 'id="broadcast-counts"')
                for private in (
                    HOUSEHOLD_PHONE,
                    "8112349876",
                    BROADCAST_BODY,
                    "Sergio Sector",
                    "Blanca Manzana",
                ):
                    self.assertNotContains(response, private)

    def test_the_raw_payload_is_for_coordinators_only(self):
        url = reverse("messaging-inbound-entry", args=[self.m.log.pk])
        self.assertContains(self.client_for(self.w.coord).get(url), SECRET_PAYLOAD)
        for user in (self.w.sector1, self.w.observer, self.w.block1):
            response = self.client_for(user).get(url)
            self.assertEqual(response.status_code, 403)
            self.assertNotContains(response, SECRET_PAYLOAD, status_code=403)

    def test_account_secrets_are_never_shown(self):
        account = ChannelAccount.objects.create(municipality=self.w.esc, provider="telegram", name="bot")
        accounts.set_secrets(
            account, {"bot_token": "token-muy-secreto-42", "webhook_secret": "otro-secreto-99"}
        )
        account.save()
        client = self.client_for(self.w.coord)
        for url in (reverse("messaging-accounts"), reverse("messaging-account", args=[account.uuid])):
            response = client.get(url)
            self.assertEqual(response.status_code, 200)
            self.assertNotContains(response, "token-muy-secreto-42")
            self.assertNotContains(response, "otro-secreto-99")


# ------------------------------------------------------------------------------------------- the console


class ConsoleTests(MessagingPagesBase):
    def test_a_neighbour_texts_the_menu_and_the_reply_shows_in_the_conversation(self):
        client = self.client_for(self.w.coord)
        before = Inbound.objects.count()
        response = client.post(
            reverse("messaging-console"), {"number": "81 1234 9876", "quick": "1"}, HTTP_HX_REQUEST="true"
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(Inbound.objects.count(), before + 1)
        row = Inbound.objects.order_by("-pk").first()
        self.assertEqual((row.sender, row.text, row.state), (HOUSEHOLD_PHONE, "1", Inbound.State.PENDING))
        self.assertContains(response, 'data-pending="1"')
        dispatcher.run_once()
        conversation = client.get(reverse("messaging-console-conversation") + f"?number={HOUSEHOLD_PHONE}")
        self.assertContains(conversation, 'data-pending="0"')
        reply = Outbound.objects.filter(contact__address=HOUSEHOLD_PHONE).order_by("-pk").first()
        self.assertTrue(reply.body)
        self.assertContains(conversation, reply.body.splitlines()[0][:30])

    def test_bad_console_input_is_a_form_error(self):
        client = self.client_for(self.w.coord)
        before = Inbound.objects.count()
        for data in (
            {"number": "", "text": "hola"},
            {"number": "12", "text": "hola"},
            {"number": HOUSEHOLD_PHONE, "text": ""},
            {"number": HOUSEHOLD_PHONE, "lat": "25.1"},
            {"number": HOUSEHOLD_PHONE, "lat": "999", "lon": "0"},
        ):
            with self.subTest(data=data):
                response = client.post(reverse("messaging-console"), data)
                self.assertEqual(response.status_code, 400)
                self.assertContains(response, "errorlist", status_code=400)
        self.assertEqual(Inbound.objects.count(), before)

    def test_a_location_is_sent(self):
        client = self.client_for(self.w.coord)
        response = client.post(
            reverse("messaging-console"), {"number": HOUSEHOLD_PHONE, "lat": "25.79", "lon": "-100.32"}
        )
        self.assertEqual(response.status_code, 302)
        row = Inbound.objects.order_by("-pk").first()
        self.assertEqual(row.kind, Inbound.Kind.LOCATION)


# ----------------------------------------------------------------------------------------------- broadcasts


class BroadcastPageTests(MessagingPagesBase):
    def test_a_broadcast_is_created_started_and_shows_its_progress(self):
        client = self.client_for(self.w.coord)
        data = {
            "title": "Vacunación",
            "body": "Jornada de vacunación el lunes",
            "node": self.w.s1.pk,
            "target": "subtree",
            "cascade": "on",
            "ack_minutes": "45",
            "remind_minutes": "15",
        }
        response = client.post(reverse("messaging-broadcasts"), data)
        self.assertEqual(response.status_code, 302, response.content[:2000])
        broadcast = Broadcast.objects.get(title="Vacunación")
        self.assertEqual((broadcast.status, broadcast.ack_minutes, broadcast.node), ("draft", 45, self.w.s1))
        response = client.post(reverse("messaging-broadcast-action", args=[broadcast.uuid, "start"]))
        self.assertEqual(response.status_code, 302)
        broadcast.refresh_from_db()
        self.assertEqual(broadcast.status, Broadcast.Status.SENDING)
        page = client.get(reverse("messaging-broadcast", args=[broadcast.uuid]))
        self.assertContains(page, 'id="progress"')
        self.assertContains(page, "S01-M001")
        fragment = client.get(
            reverse("messaging-broadcast", args=[broadcast.uuid]) + "?part=progress", HTTP_HX_REQUEST="true"
        )
        self.assertContains(fragment, 'hx-trigger="every')
        self.assertNotContains(fragment, "<html")
        geo = client.get(reverse("messaging-broadcast-map", args=[broadcast.uuid])).json()
        self.assertEqual(geo["type"], "FeatureCollection")
        states = {f["properties"]["code"]: f["properties"]["state"] for f in geo["features"]}
        self.assertIn("S01", states)  # only S01 has a shape in the base world

    def test_bad_broadcast_input_is_a_form_error(self):
        client = self.client_for(self.w.coord)
        before = Broadcast.objects.count()
        base = {
            "title": "X",
            "body": "Y",
            "node": self.w.s1.pk,
            "target": "subtree",
            "ack_minutes": "60",
            "remind_minutes": "30",
        }
        for change in (
            {"title": ""},
            {"node": "999999"},
            {"node": self.w.a1.pk},
            {"target": "everyone"},
            {"target": "role"},
            {"target": "group"},
            {"ack_minutes": "-5"},
            {"ack_minutes": "abc"},
            {"cascade": "on", "remind_minutes": "90"},
        ):
            with self.subTest(change=change):
                response = client.post(reverse("messaging-broadcasts"), {**base, **change})
                self.assertEqual(response.status_code, 400)
        self.assertEqual(Broadcast.objects.count(), before)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.broadcast.create", outcome="rejected").exists()
        )

    def test_a_sector_liaison_cannot_broadcast_outside_their_sector(self):
        client = self.client_for(self.w.sector1)
        data = {
            "title": "X",
            "body": "Y",
            "node": self.w.s2.pk,
            "target": "subtree",
            "ack_minutes": "60",
            "remind_minutes": "30",
        }
        response = client.post(reverse("messaging-broadcasts"), data)
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Broadcast.objects.filter(node=self.w.s2, title="X").exists())


class AcknowledgementTests(MessagingPagesBase):
    def test_the_sector_liaison_acknowledges_from_the_home_page(self):
        w = self.w
        row = self.node_row(w.s1)
        self.assertEqual(row.status, CascadeNode.Status.SENT)
        client = self.client_for(w.sector1)
        home = client.get(reverse("messaging-home"))
        self.assertContains(home, BROADCAST_BODY)
        self.assertContains(home, reverse("messaging-ack", args=[row.pk]))
        response = client.post(reverse("messaging-ack", args=[row.pk]), {"next": "https://evil.example/"})
        self.assertRedirects(response, reverse("messaging-home"), fetch_redirect_response=False)
        row.refresh_from_db()
        self.assertEqual((row.status, row.ack_via), (CascadeNode.Status.ACKED, "web"))
        # The block below now waits for block1, who sees it on their home page.
        block = self.node_row(w.b11)
        self.assertEqual(block.status, CascadeNode.Status.SENT)
        self.assertContains(
            self.client_for(w.block1).get(reverse("messaging-home")),
            reverse("messaging-ack", args=[block.pk]),
        )
        # The coordinator's progress view counts it.
        page = self.client_for(w.coord).get(reverse("messaging-broadcast", args=[self.m.broadcast.uuid]))
        self.assertContains(page, 'data-node="S01" data-state="acked"')

    def test_no_one_acknowledges_for_someone_else(self):
        row = self.node_row(self.w.s1)
        response = self.client_for(self.w.block1).post(reverse("messaging-ack", args=[row.pk]))
        self.assertEqual(response.status_code, 404)
        response = self.client_for(self.w.coord).post(reverse("messaging-ack", args=[row.pk]), follow=True)
        self.assertEqual(response.status_code, 200)
        row.refresh_from_db()
        self.assertEqual(row.status, CascadeNode.Status.SENT)
        self.assertEqual(
            self.client_for(self.w.sector1).post(reverse("messaging-ack", args=[987654])).status_code, 404
        )


# ------------------------------------------------------------------------------------------ set-up pages


class SetUpFormTests(MessagingPagesBase):
    def test_a_group_is_registered_and_edited(self):
        client = self.client_for(self.w.coord)
        data = {
            "name": "Salud Escobedo",
            "kind": "theme",
            "medium": "whatsapp",
            "node": self.w.esc_node.pk,
            "invite_link": "https://chat.whatsapp.com/salud",
            "rules": "Solo temas de salud",
            "moderators": [self.w.sector1.pk],
            "active": "on",
        }
        response = client.post(reverse("messaging-group-new"), data)
        self.assertEqual(response.status_code, 302, response.content[:3000])
        group = Group.objects.get(name="Salud Escobedo")
        self.assertEqual(list(group.moderators.all()), [self.w.sector1])
        response = client.post(
            reverse("messaging-group", args=[group.uuid]), {**data, "rules": "Nuevas reglas"}
        )
        self.assertEqual(response.status_code, 302)
        group.refresh_from_db()
        self.assertEqual(group.rules, "Nuevas reglas")
        listing = client.get(reverse("messaging-groups") + "?kind=theme")
        self.assertContains(listing, "Salud Escobedo")
        self.assertNotContains(listing, "Vecinos Sector 1")
        listing = client.get(reverse("messaging-groups") + "?node=S01")
        self.assertContains(listing, "Vecinos Sector 1")
        self.assertNotContains(listing, "Salud Escobedo")

    def test_bad_group_input_is_a_form_error(self):
        client = self.client_for(self.w.coord)
        base = {"name": "G", "kind": "block", "medium": "whatsapp", "node": self.w.b11.pk}
        for change in (
            {"name": ""},
            {"kind": "x"},
            {"node": self.w.ab.pk},
            {"invite_link": "not a link"},
            {"moderators": [self.w.other_coord.pk]},
        ):
            with self.subTest(change=change):
                self.assertEqual(
                    client.post(reverse("messaging-group-new"), {**base, **change}).status_code, 400
                )
        self.assertFalse(Group.objects.filter(name="G").exists())

    def test_a_template_is_edited_and_bad_input_refused(self):
        client = self.client_for(self.w.coord)
        template = MessageTemplate.objects.get(municipality=self.w.esc, key="broadcast")
        url = reverse("messaging-template", args=["broadcast"])
        data = {
            "name": template.name,
            "body": "Aviso: {title}. {body}",
            "whatsapp_name": "aviso_general",
            "whatsapp_language": "es_MX",
            "whatsapp_status": "approved",
        }
        response = client.post(url, data)
        self.assertEqual(response.status_code, 302, response.content[:3000])
        template.refresh_from_db()
        self.assertEqual((template.body, template.whatsapp_status), ("Aviso: {title}. {body}", "approved"))
        for change in ({"body": ""}, {"whatsapp_status": "maybe"}, {"body": "Hola {desconocido}"}):
            with self.subTest(change=change):
                self.assertEqual(client.post(url, {**data, **change}).status_code, 400)
        self.assertEqual(client.get(reverse("messaging-template", args=["no-such-key"])).status_code, 404)

    def test_the_flow_editor_checks_and_saves(self):
        client = self.client_for(self.w.coord)
        flow = Flow.objects.get(municipality=self.w.esc, key="neighbour")
        url = reverse("messaging-flow", args=["neighbour"])
        page = client.get(url)
        self.assertContains(page, 'id="flow-preview"')
        good = json.dumps(flow.definition)
        response = client.post(url, {"definition": good, "check": "1"})
        self.assertContains(response, 'id="flow-ok"')
        response = client.post(url, {"definition": good, "save": "1"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Flow.objects.get(pk=flow.pk).version, flow.version + 1)
        for bad in ("{not json", "[1, 2]", json.dumps({"steps": "nothing"})):
            with self.subTest(bad=bad):
                response = client.post(url, {"definition": bad, "save": "1"})
                self.assertEqual(response.status_code, 400)
        self.assertEqual(Flow.objects.get(pk=flow.pk).version, flow.version + 1)

    def test_an_account_is_added_with_write_only_secrets(self):
        client = self.client_for(self.w.coord)
        data = {
            "provider": "telegram",
            "name": "Bot Escobedo",
            "rate_per_second": "30",
            "burst": "30",
            "active": "on",
            "secret_bot_token": "123:abc-secret",
            "secret_webhook_secret": "hook-secret-1",
        }
        response = client.post(reverse("messaging-account-new"), data)
        self.assertEqual(response.status_code, 302, response.content[:3000])
        account = ChannelAccount.objects.get(name="Bot Escobedo")
        self.assertEqual(accounts.secrets_of(account)["bot_token"], "123:abc-secret")
        # Saving again with the secret fields empty keeps them.
        response = client.post(
            reverse("messaging-account", args=[account.uuid]),
            {**data, "secret_bot_token": "", "rate_per_second": "20"},
        )
        self.assertEqual(response.status_code, 302, response.content[:3000])
        account.refresh_from_db()
        self.assertEqual(account.rate_per_second, 20)
        self.assertEqual(accounts.secrets_of(account)["bot_token"], "123:abc-secret")
        for change in ({"name": ""}, {"provider": "pigeon"}, {"rate_per_second": "-1"}, {"burst": "x"}):
            with self.subTest(change=change):
                self.assertEqual(
                    client.post(reverse("messaging-account-new"), {**data, **change}).status_code, 400
                )

    def test_the_inbound_log_lists_problems(self):
        client = self.client_for(self.w.coord)
        response = client.get(reverse("messaging-inbound"))
        self.assertContains(response, reverse("messaging-inbound-entry", args=[self.m.log.pk]))
        self.assertNotContains(response, SECRET_PAYLOAD)
        self.assertEqual(client.get(reverse("messaging-inbound") + "?outcome=bogus").status_code, 200)
        self.assertEqual(client.get(reverse("messaging-inbound-entry", args=[99999999])).status_code, 404)
