"""Received messages through ``intake.process_pending`` and the default flows, over the console channel: a
neighbour reports a need by menu and asks its status, a confidential report, BAJA/ALTA, unknown senders,
stickers, floods, idle and malformed conversations, failures that keep the message, delivery statuses, and
the liaisons' commands (receive an escalated need, confirm a delivery, report a vacant household) refused to
neighbours."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import types
from unittest import mock

from redes.audit.models import AuditEvent
from redes.core import clock
from redes.messaging import accounts, actions, defaults, flows, intake
from redes.messaging.models import ChannelAccount, Contact, Inbound, Outbound, Provider
from redes.needs import services as need_services
from redes.needs.models import Need, NeedChannel
from redes.registry.models import Household, Phone, Visit

from .base import RedesTestCase

HOME_PHONE = "8111111111"
STRANGER = "8199999999"
BLOCK1_PHONE = "8112345679"  # block1's liaison post phone (tests/base.py)

_ids = itertools.count(1)


class ChatCase(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        need_services.ensure_defaults(w.esc)
        cls.console = accounts.console_account(w.esc)
        cls.home = Household.objects.create(
            municipality=w.esc, node=w.b11, street="Calle Uno", ext_number="12"
        )
        Phone.objects.create(household=cls.home, municipality=w.esc, number="+528111111111", whatsapp=True)

    def send(
        self, sender: str, text: str = "", *, kind=Inbound.Kind.TEXT, data=None, account=None
    ) -> list[Outbound]:
        """Store a message as ingest would, run the intake, return the replies it queued."""
        account = account or self.console
        before = Outbound.objects.order_by("-id").values_list("id", flat=True).first() or 0
        Inbound.objects.create(
            municipality_id=account.municipality_id,
            account=account,
            provider_id=f"m{next(_ids)}",
            kind=kind,
            sender=sender,
            text=text,
            data=data or {},
        )
        intake.process_pending()
        return list(Outbound.objects.filter(id__gt=before).order_by("id"))

    def say(self, sender: str, text: str = "", **kw) -> str:
        return "\n".join(o.body for o in self.send(sender, text, **kw))

    def option(self, replies: list[Outbound], title_start: str) -> str:
        """The number of the offered option whose title starts with ``title_start``."""
        for reply in replies:
            for opt in reply.variables.get("options", []):
                if opt["title"].startswith(title_start):
                    return opt["id"]
        self.fail(f"no option {title_start!r} in {[r.body for r in replies]}")

    def contact(self, phone: str) -> Contact:
        return Contact.objects.get(municipality=self.w.esc, address="+52" + phone)


class NeighbourConversationTests(ChatCase):
    def test_known_household_reports_a_need_and_asks_its_status(self):
        replies = self.send(HOME_PHONE, "Hola")
        self.assertEqual(len(replies), 1)
        menu = replies[0]
        self.assertIn("Red Vecinal de General Escobedo", menu.body)
        self.assertIn("1 Reportar una necesidad", menu.body)
        self.assertEqual(menu.variables["options"][0], {"id": "1", "title": "Reportar una necesidad"})
        self.assertEqual(menu.account, self.console)
        self.assertEqual(menu.kind, Outbound.Kind.REPLY)

        categories = self.send(HOME_PHONE, "1")
        body = categories[0].body
        # Non-sensitive first, the confidential one last.
        self.assertLess(body.index("Alimentación"), body.index("Violencia"))
        self.assertTrue(body.rstrip().endswith("(confidencial)"))
        food = self.option(categories, "Alimentación")

        self.assertIn("Describa", self.say(HOME_PHONE, food))
        # The household's block is known: no question about the place.
        confirm = self.say(HOME_PHONE, "Despensa para 4 personas, somos adultos mayores")
        self.assertIn("Alimentación. Despensa para 4 personas", confirm)
        self.assertIn("1 Sí", confirm)
        done = self.say(HOME_PHONE, "sí")

        need = Need.objects.get()
        self.assertEqual(need.category.code, "alimentacion")
        self.assertEqual(need.household, self.home)
        self.assertEqual(need.node, self.w.b11)
        self.assertEqual(need.channel, NeedChannel.CONSOLE)
        self.assertEqual(need.contact_phone, "+528111111111")
        self.assertIsNone(need.reported_by)
        self.assertFalse(need.sensitive)
        ref = need.uuid.hex[:8].upper()
        self.assertIn(f"folio {ref}", done)
        self.assertEqual(self.contact(HOME_PHONE).state, {})

        status = self.say(HOME_PHONE, "2")
        self.assertIn(f"{ref} Alimentación: Nueva", status)
        # Every message was processed, in order, and tied to the contact.
        self.assertFalse(Inbound.objects.exclude(state=Inbound.State.DONE).exists())
        self.assertEqual(Inbound.objects.filter(contact=self.contact(HOME_PHONE)).count(), 6)

    def test_unknown_sender_gets_a_welcome_and_reports_with_a_shared_location(self):
        first = self.send(STRANGER, "buenas tardes")
        self.assertEqual(len(first), 2)
        self.assertIn("aún no está en nuestro registro", first[0].body)
        self.assertIn("1 Reportar una necesidad", first[1].body)
        # A second message is not welcomed again.
        categories = self.send(STRANGER, "reportar")
        self.assertEqual(len(categories), 1)
        health = self.option(categories, "Medicamentos")
        self.say(STRANGER, health)
        place = self.say(STRANGER, "Insulina para mi mamá")
        self.assertIn("ubicación", place)
        wa = ChannelAccount.objects.create(municipality=self.w.esc, provider=Provider.WHATSAPP, name="wa")
        confirm = self.say(
            "5218199999999",
            kind=Inbound.Kind.LOCATION,
            data={"lat": 25.795, "lon": -100.325, "name": "Casa"},
            account=wa,
        )
        self.assertIn("¿Lo enviamos?", confirm)
        self.say(STRANGER, "1")
        need = Need.objects.get()
        self.assertEqual(need.category.code, "salud")
        self.assertIsNone(need.household)
        self.assertEqual((need.lat, need.lon), (25.795, -100.325))
        self.assertEqual(need.address, "Casa")
        self.assertEqual(need.contact_phone, "+528199999999")
        self.assertEqual(need.node, self.w.esc_node)  # no block polygon contains it: the municipality

    def test_typed_address_and_whatsapp_channel(self):
        wa = ChannelAccount.objects.create(municipality=self.w.esc, provider=Provider.WHATSAPP, name="wa")
        sender = "5218199999999"  # WhatsApp's 521 form of the same number
        self.send(sender, "hola", account=wa)
        self.send(sender, "1", account=wa)
        self.send(sender, "alimentacion", account=wa)
        self.send(sender, "Comida", account=wa)
        self.send(sender, "Calle Roble 5, col. Centro", account=wa)
        replies = self.send(sender, "1", account=wa)
        need = Need.objects.get()
        self.assertEqual(need.channel, NeedChannel.WHATSAPP)
        self.assertEqual(need.address, "Calle Roble 5, col. Centro")
        self.assertTrue(all(r.account == wa for r in replies))
        contact = self.contact("8199999999")
        self.assertEqual(contact.last_inbound_medium, "whatsapp")
        self.assertIsNotNone(contact.last_inbound_at)

    def test_a_button_press_is_the_same_as_typing_the_number(self):
        self.send(HOME_PHONE, "hola")
        status = self.say(HOME_PHONE, kind=Inbound.Kind.INTERACTIVE, data={"id": "2", "title": "Consultar"})
        self.assertIn("No encontramos reportes", status)

    def test_confidential_report(self):
        self.send(HOME_PHONE, "hola")
        categories = self.send(HOME_PHONE, "1")
        violence = self.option(categories, "Violencia")
        careful = self.say(HOME_PHONE, violence)
        self.assertIn("confidencial", careful)
        self.assertIn("911", careful)
        confirm = self.say(HOME_PHONE, "Mi pareja me golpea")
        self.assertNotIn("golpea", confirm)  # never echoed back on the phone
        done = self.say(HOME_PHONE, "1")
        need = Need.objects.get()
        self.assertTrue(need.sensitive)
        self.assertEqual(need.description, "")
        self.assertEqual(need.holder_node, self.w.esc_node)
        self.assertIn("confidencial", done)
        self.assertNotIn("Violencia", done)
        status = self.say(HOME_PHONE, "2")
        self.assertIn("Reporte confidencial", status)
        self.assertNotIn("Violencia", status)

    def test_wrong_answers_are_asked_again(self):
        self.send(HOME_PHONE, "hola")
        again = self.say(HOME_PHONE, "7")
        self.assertIn("No entendimos", again)
        self.assertIn("1 Reportar una necesidad", again)
        self.send(HOME_PHONE, "1")
        self.send(HOME_PHONE, "1")
        self.assertIn("No recibimos texto", self.say(HOME_PHONE, "   "))
        self.assertIn("muy larga", self.say(HOME_PHONE, "x" * 501))
        self.assertIn("¿Lo enviamos?", self.say(HOME_PHONE, "Comida"))
        self.assertIn("No entendimos", self.say(HOME_PHONE, "quizá"))
        self.assertIn("no se envió", self.say(HOME_PHONE, "no"))
        self.assertFalse(Need.objects.exists())

    def test_menu_keyword_restarts(self):
        self.send(HOME_PHONE, "hola")
        self.send(HOME_PHONE, "1")
        self.assertIn("1 Reportar una necesidad", self.say(HOME_PHONE, "Menú"))
        self.assertEqual(self.contact(HOME_PHONE).state["node"], "inicio")

    def test_idle_conversation_starts_again(self):
        self.send(HOME_PHONE, "hola")
        self.send(HOME_PHONE, "1")
        with clock.travel(clock.now() + dt.timedelta(minutes=31)):
            replies = self.say(HOME_PHONE, "2")
        self.assertIn("terminó por falta de respuesta", replies)
        self.assertIn("No encontramos reportes", replies)  # "2" answered the start menu

    def test_malformed_state_starts_again(self):
        self.send(HOME_PHONE, "hola")
        contact = self.contact(HOME_PHONE)
        for junk in (
            ["x"],
            {"node": "inicio"},
            {"flow": "neighbour", "version": "a", "node": "inicio"},
            {"flow": "neighbour", "version": 1, "node": "no-such", "expires_at": "2999-01-01T00:00:00+00:00"},
            {"flow": "neighbour", "version": 1, "node": "lugar", "vars": [1], "expires_at": "mañana"},
        ):
            with self.subTest(state=junk):
                Contact.objects.filter(pk=contact.pk).update(state=junk)
                self.assertIn("1 Reportar una necesidad", self.say(HOME_PHONE, "hola"))
        self.assertFalse(Inbound.objects.exclude(state=Inbound.State.DONE).exists())

    def test_edited_flow_restarts_conversations_in_progress(self):
        self.send(HOME_PHONE, "hola")
        self.send(HOME_PHONE, "1")
        definition = dict(defaults.NEIGHBOUR_FLOW)
        flows.save_flow(self.w.esc, actor=self.w.coord, key="neighbour", definition=definition)
        self.assertIn("1 Reportar una necesidad", self.say(HOME_PHONE, "Comida"))


class ConsoleTests(ChatCase):
    def test_through_the_console_ingest(self):
        from redes.messaging import ingest

        for text in ("Hola", "1", "1", "Nos quedamos sin despensa", "1"):
            ingest.store_console(self.console, HOME_PHONE, text=text)
            self.assertEqual(intake.process_pending(), 1)
        need = Need.objects.get()
        self.assertEqual((need.household, need.channel), (self.home, NeedChannel.CONSOLE))
        last = Outbound.objects.order_by("-id").first()
        self.assertIn(need.uuid.hex[:8].upper(), last.body)
        # A button of the console's simulator is an option id, like WhatsApp's.
        ingest.store_console(self.console, HOME_PHONE, option_id="2")
        intake.process_pending()
        self.assertIn(need.uuid.hex[:8].upper(), Outbound.objects.order_by("-id").first().body)

    def test_ok_acknowledges_a_real_cascade(self):
        from redes.messaging import broadcasts
        from redes.messaging.models import CascadeNode

        broadcast = broadcasts.create_broadcast(
            actor=self.w.coord,
            municipality=self.w.esc,
            node=self.w.s1,
            title="Reparto mañana",
            body="A las 9 en el módulo",
            cascade=True,
        )
        broadcasts.start_broadcast(broadcast, actor=self.w.coord)
        row = CascadeNode.objects.get(broadcast=broadcast, node=self.w.b11)
        self.assertEqual(row.status, CascadeNode.Status.SENT)
        reply = self.say(BLOCK1_PHONE, "Recibido")
        self.assertIn("«Reparto mañana»", reply)
        row.refresh_from_db()
        self.assertEqual((row.status, row.ack_via), (CascadeNode.Status.ACKED, "console"))

    def test_ok_without_a_waiting_cascade_shows_the_menu(self):
        self.assertIn("1 Reportar una necesidad", self.say(HOME_PHONE, "OK"))
        self.assertIn("No tiene avisos pendientes", self.say(BLOCK1_PHONE, "6"))


class KeywordsAndBadInputTests(ChatCase):
    def test_baja_and_alta(self):
        self.send(HOME_PHONE, "hola")
        self.assertIn("ya no le enviaremos avisos", self.say(HOME_PHONE, "BAJA"))
        contact = self.contact(HOME_PHONE)
        self.assertIsNotNone(contact.opted_out_at)
        self.assertEqual(contact.state, {})
        self.assertIn("responda ALTA", self.say(HOME_PHONE, "1"))
        self.assertFalse(Need.objects.exists())
        self.assertIn("volverá a recibir avisos", self.say(HOME_PHONE, "Alta"))
        contact.refresh_from_db()
        self.assertIsNone(contact.opted_out_at)
        self.assertIsNotNone(contact.opted_in_at)
        self.assertEqual(
            list(
                AuditEvent.objects.filter(object_id=str(contact.uuid))
                .values_list("action", flat=True)
                .order_by("id")
            ),
            ["messaging.contact.opt_out", "messaging.contact.opt_in"],
        )
        # "Sí" also opts back in, but only while opted out.
        self.send(HOME_PHONE, "stop")
        self.assertIn("volverá a recibir", self.say(HOME_PHONE, "Sí"))

    def test_the_menu_option_opts_out_too(self):
        self.send(HOME_PHONE, "hola")
        self.assertIn("ya no le enviaremos", self.say(HOME_PHONE, "3"))
        self.assertTrue(self.contact(HOME_PHONE).opted_out)

    def test_sticker_and_audio(self):
        self.send(HOME_PHONE, "hola")
        for kind in ("sticker", "audio"):
            with self.subTest(kind=kind):
                replies = self.send(HOME_PHONE, kind=Inbound.Kind.MEDIA, data={"type": kind})
                self.assertEqual(len(replies), 1)
                self.assertIn("solo podemos leer mensajes de texto", replies[0].body)
        self.assertFalse(Inbound.objects.exclude(state=Inbound.State.DONE).exists())
        # A first message that is a sticker: the welcome, the apology and the menu.
        first = [r.body for r in self.send(STRANGER, kind=Inbound.Kind.MEDIA, data={"type": "sticker"})]
        self.assertEqual(len(first), 3)
        self.assertIn("1 Reportar una necesidad", first[2])

    def test_flood(self):
        for _ in range(intake.FLOOD_LIMIT):
            self.send(HOME_PHONE, "hola")
        replies = []
        for _ in range(5):
            replies += self.send(HOME_PHONE, "hola")
        self.assertEqual([r.body for r in replies], [replies[0].body])
        self.assertIn("muchos mensajes", replies[0].body)
        rows = Inbound.objects.filter(contact=self.contact(HOME_PHONE)).order_by("id")
        self.assertEqual(rows.count(), intake.FLOOD_LIMIT + 5)  # all stored
        self.assertEqual(rows.filter(state=Inbound.State.IGNORED).count(), 5)
        # After the window, messages are processed again.
        with clock.travel(clock.now() + dt.timedelta(minutes=11)):
            Inbound.objects.create(
                municipality=self.w.esc,
                account=self.console,
                provider_id="late",
                kind="text",
                sender=HOME_PHONE,
                text="hola",
                received_at=clock.now(),
            )
            intake.process_pending()
        self.assertEqual(Inbound.objects.get(provider_id="late").state, Inbound.State.DONE)

    def test_unusable_sender_is_ignored_with_the_reason(self):
        self.assertEqual(self.send("12", "hola"), [])
        row = Inbound.objects.get()
        self.assertEqual(row.state, Inbound.State.IGNORED)
        self.assertIn("Unusable sender", row.error)

    def test_a_failing_action_keeps_the_message_and_the_others_go_on(self):
        self.send(HOME_PHONE, "hola")
        self.send(HOME_PHONE, "1")
        self.send(HOME_PHONE, "1")
        self.send(HOME_PHONE, "Comida")
        with mock.patch.object(need_services, "register_need", side_effect=RuntimeError("database on fire")):
            for sender, text in ((HOME_PHONE, "1"), (STRANGER, "hola")):
                Inbound.objects.create(
                    municipality=self.w.esc,
                    account=self.console,
                    provider_id=f"f{next(_ids)}",
                    kind="text",
                    sender=sender,
                    text=text,
                )
            before = Outbound.objects.count()
            self.assertEqual(intake.process_pending(), 2)
        failed = Inbound.objects.get(state=Inbound.State.FAILED)
        self.assertIn("database on fire", failed.error)
        self.assertFalse(Need.objects.exists())
        bodies = list(Outbound.objects.filter(id__gt=before).values_list("body", flat=True))
        self.assertTrue(any("Tuvimos un problema" in b for b in bodies))  # the apology
        self.assertTrue(any("1 Reportar una necesidad" in b for b in bodies))  # the stranger was answered
        # The conversation is still at the confirmation: requeued, the same message now registers the need.
        self.assertEqual(self.contact(HOME_PHONE).state["node"], "confirmar")
        self.assertEqual(intake.requeue([failed]), 1)
        intake.process_pending()
        failed.refresh_from_db()
        self.assertEqual(failed.state, Inbound.State.DONE)
        self.assertEqual(Need.objects.count(), 1)

    def test_a_service_refusal_is_a_friendly_reply(self):
        self.send(HOME_PHONE, "hola")
        self.send(HOME_PHONE, "1")
        self.send(HOME_PHONE, "1")
        self.send(HOME_PHONE, "Comida")
        from redes.needs.models import NeedCategory

        NeedCategory.objects.filter(code="alimentacion").update(active=False)  # switched off meanwhile
        reply = self.say(HOME_PHONE, "1")
        self.assertIn("No se pudo completar: Categoría de necesidad desconocida", reply)
        self.assertEqual(Inbound.objects.filter(state=Inbound.State.DONE).count(), 5)

    def test_status_rows_go_to_the_outbox(self):
        with mock.patch("redes.messaging.outbox.apply_status", create=True, return_value=True) as apply:
            Inbound.objects.create(
                municipality=self.w.esc,
                account=self.console,
                provider_id="wamid.1",
                kind=Inbound.Kind.STATUS,
                data={"status": "delivered", "reference": "7"},
            )
            intake.process_pending()
        apply.assert_called_once()
        self.assertEqual(Inbound.objects.get().state, Inbound.State.DONE)
        self.assertFalse(Outbound.objects.exists())

    def test_ok_acknowledges_a_waiting_cascade_else_shows_the_menu(self):
        broadcast = types.SimpleNamespace(title="Reparto mañana")
        node = types.SimpleNamespace(broadcast=broadcast, node=self.w.b11)
        fake = types.ModuleType("redes.messaging.broadcasts")
        fake.acknowledge_contact = mock.Mock(side_effect=[node, None])
        import redes.messaging as package

        with (
            mock.patch.dict(sys.modules, {"redes.messaging.broadcasts": fake}),
            mock.patch.object(package, "broadcasts", fake, create=True),
        ):
            self.send(HOME_PHONE, "hola")
            self.assertIn(
                "Gracias, quedó confirmado que recibió el aviso «Reparto mañana»", self.say(HOME_PHONE, "OK")
            )
            self.assertIn("1 Reportar una necesidad", self.say(HOME_PHONE, "Enterado"))
        self.assertEqual(fake.acknowledge_contact.call_args.kwargs, {"via": "console"})


class LiaisonTests(ChatCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.need = need_services.register_need(
            actor=None,
            municipality=w.esc,
            category="alimentacion",
            description="Despensa",
            node=w.b11,
            channel=NeedChannel.HOTLINE,
        )

    def liaison_menu(self) -> list[Outbound]:
        replies = self.send(BLOCK1_PHONE, "hola")
        self.assertIn("(enlaces)", replies[0].body)
        self.assertEqual(self.contact(BLOCK1_PHONE).user, self.w.block1)
        return replies

    def test_acknowledge_an_escalated_need(self):
        menu = self.liaison_menu()
        listing = self.send(BLOCK1_PHONE, self.option(menu, "Recibir necesidad"))
        ref = self.need.uuid.hex[:8].upper()
        self.assertIn(f"1 {ref} Alimentación, Manzana 1", listing[0].body)
        done = self.say(BLOCK1_PHONE, "1")
        self.assertIn(f"la necesidad {ref} quedó como recibida", done)
        self.need.refresh_from_db()
        self.assertIsNotNone(self.need.acknowledged_at)
        self.assertTrue(
            AuditEvent.objects.filter(
                action="needs.need.acknowledge", actor=self.w.block1, outcome="ok"
            ).exists()
        )
        # Nothing left to receive.
        self.send(BLOCK1_PHONE, "menu")
        self.assertIn("No tiene necesidades pendientes", self.say(BLOCK1_PHONE, self.option(menu, "Recibir")))

    def test_report_a_vacant_household(self):
        visited = Household.objects.create(
            municipality=self.w.esc, node=self.w.b11, street="Calle Dos", ext_number="3"
        )
        visited.last_visit_at = clock.now()
        visited.save()
        Household.objects.create(
            municipality=self.w.esc, node=self.w.b21, street="Calle Lejana", ext_number="9"
        )
        menu = self.liaison_menu()
        listing = self.say(BLOCK1_PHONE, self.option(menu, "Reportar vivienda"))
        self.assertIn("1 Calle Uno 12", listing)
        self.assertNotIn("Calle Dos", listing)  # visited recently
        self.assertNotIn("Calle Lejana", listing)  # outside the liaison's block
        self.assertIn("No entendimos", self.say(BLOCK1_PHONE, "5"))
        self.assertIn("Calle Uno 12 como deshabitada", self.say(BLOCK1_PHONE, "1"))
        visit = Visit.objects.get(household=self.home)
        self.assertEqual(visit.outcome, Visit.Outcome.VACANT)
        self.assertEqual(visit.visited_by, self.w.block1)

    def test_neighbours_never_run_liaison_actions(self):
        # A coordinator puts a liaison action into the neighbours' menu: the action still refuses.
        definition = dict(defaults.NEIGHBOUR_FLOW, nodes=dict(defaults.NEIGHBOUR_FLOW["nodes"]))
        definition["nodes"]["baja"] = {"type": "action", "action": "ack_need"}
        flows.save_flow(self.w.esc, actor=self.w.coord, key="neighbour", definition=definition)
        self.send(HOME_PHONE, "hola")
        reply = self.say(HOME_PHONE, "3")
        self.assertIn("solo para enlaces", reply)
        self.need.refresh_from_db()
        self.assertIsNone(self.need.acknowledged_at)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.action.ack_need", outcome="denied").exists()
        )
        # The neighbours' menu has no liaison commands at all.
        self.assertNotIn("Confirmar una entrega", self.say(HOME_PHONE, "menu"))

    def test_a_volunteer_is_not_a_liaison(self):
        self.w.volunteer.phone = "8177777777"
        self.w.volunteer.save()
        menu = self.say("8177777777", "hola")
        self.assertNotIn("(enlaces)", menu)
        contact = self.contact("8177777777")
        self.assertEqual(contact.user, self.w.volunteer)
        conv = flows.Conversation(contact=contact, flow=flows.flow_for(contact), inbound=None, medium="sms")
        conv.vars["code"] = "ABCD2345"
        actions.call("confirm_delivery", conv)
        self.assertIn("solo para enlaces", conv.replies[0])


class LiaisonDeliveryTests(ChatCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        from redes.aid import campaigns

        from .aid_support import build_aid, households, stock_site

        w = cls.w
        cls.a = build_aid(w)
        households(w.b11, [80, 60])
        households(w.b21, [70])
        stock_site(cls.a.stand1, cls.a, 2)
        stock_site(cls.a.stand2, cls.a, 1)
        cls.campaign = campaigns.create_campaign(
            actor=w.coord, name="Marzo", template=cls.a.package, node=w.esc_node, seed=3
        )
        campaigns.allocate_campaign(cls.campaign, actor=w.coord)
        campaigns.start_campaign(cls.campaign, actor=w.coord)

    def selected(self, block):
        from redes.aid.models import Entitlement, EntitlementStatus

        return Entitlement.objects.filter(
            campaign=self.campaign, node=block, status=EntitlementStatus.SELECTED
        )

    def confirm(self, code: str) -> str:
        menu = self.send(BLOCK1_PHONE, "menu")
        self.assertIn("Escriba el código", self.say(BLOCK1_PHONE, self.option(menu, "Confirmar una entrega")))
        return self.say(BLOCK1_PHONE, code)

    def test_confirm_a_delivery_by_code(self):
        from redes.aid import codes
        from redes.aid.models import DeliveryMode, EntitlementStatus

        entitlement = self.selected(self.w.b11).first()
        reply = self.confirm(codes.display(entitlement.code).lower())
        self.assertIn(f"Entrega confirmada: código {codes.display(entitlement.code)}", reply)
        entitlement.refresh_from_db()
        self.assertEqual(entitlement.status, EntitlementStatus.DELIVERED)
        self.assertEqual(entitlement.delivery_mode, DeliveryMode.HOME)
        self.assertEqual(entitlement.delivered_by, self.w.block1)
        # Twice: refused in Spanish, nothing changes.
        again = self.confirm(entitlement.code)
        self.assertIn("No se pudo completar: Este paquete ya se entregó", again)

    def test_codes_outside_the_territory_look_unknown(self):
        other = self.selected(self.w.b21).first()
        reply = self.confirm(other.code)
        self.assertIn("No se pudo completar", reply)
        other.refresh_from_db()
        self.assertNotEqual(other.status, "delivered")
        self.assertIn("No se pudo completar", self.confirm("no-es-codigo"))
