"""Conversation flows as data: validation, saving (permission, audit, versions), default templates and flows,
template rendering and saving, keyword and option matching."""

from __future__ import annotations

import copy

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from redes.audit.models import AuditEvent
from redes.messaging import defaults, flows, texts
from redes.messaging.models import Flow, MessageTemplate

from .base import RedesTestCase


def good() -> dict:
    return copy.deepcopy(defaults.NEIGHBOUR_FLOW)


class ValidateTests(RedesTestCase):
    def test_default_flows_are_valid(self):
        for key, (_name, definition) in defaults.FLOWS.items():
            with self.subTest(key=key):
                self.assertEqual(flows.validate(definition), [])

    def problems(self, definition) -> str:
        with translation.override("en"):
            return "\n".join(flows.validate(definition))

    def test_not_an_object_or_no_nodes(self):
        self.assertIn("JSON object", self.problems([1, 2]))
        self.assertIn("no nodes", self.problems({"start": "a", "nodes": {}}))

    def test_missing_and_unknown_start(self):
        d = good()
        del d["start"]
        self.assertIn("no “start”", self.problems(d))
        d["start"] = "nowhere"
        self.assertIn("start node “nowhere” does not exist", self.problems(d))

    def test_unknown_node_type(self):
        d = good()
        d["nodes"]["baja"] = {"type": "teleport", "text": "x"}
        self.assertIn("unknown type “teleport”", self.problems(d))

    def test_dangling_next(self):
        d = good()
        d["nodes"]["inicio"]["options"][0]["next"] = "perdido"
        self.assertIn("leads to “perdido”, which does not exist", self.problems(d))
        d = good()
        del d["nodes"]["confirmar"]["no"]
        self.assertIn("Node “confirmar”: “no” is missing", self.problems(d))

    def test_unreachable_nodes(self):
        d = good()
        d["nodes"]["suelto"] = {"type": "message", "text": "Hola"}
        self.assertIn("cannot be reached from the start: suelto", self.problems(d))

    def test_unknown_action(self):
        d = good()
        d["nodes"]["baja"] = {"type": "action", "action": "launch_rockets"}
        self.assertIn("unknown action “launch_rockets”", self.problems(d))

    def test_menu_with_more_than_nine_options(self):
        d = good()
        d["nodes"]["inicio"]["options"] = [{"label": f"Opción {i}", "next": "baja"} for i in range(10)]
        text = self.problems(d)
        self.assertIn("has 10 options; at most 9", text)

    def test_input_checks(self):
        d = good()
        d["nodes"]["descripcion"]["var"] = "no valid"
        d["nodes"]["descripcion"]["max_length"] = 0
        d["nodes"]["lugar"]["input"] = "photo"
        text = self.problems(d)
        self.assertIn("“var” must name a variable", text)
        self.assertIn("“max_length” must be a whole number", text)
        self.assertIn("unknown input kind “photo”", text)

    def test_duplicate_ids_in_json_text(self):
        raw = '{"start": "a", "nodes": {"a": {"type": "message", "text": "x"}, "a": {"type": "message", "text": "y"}}}'
        with translation.override("en"), self.assertRaises(ValidationError) as ctx:
            flows.parse_definition(raw)
        self.assertIn("Repeated ids: a", " ".join(ctx.exception.messages))

    def test_invalid_json(self):
        with translation.override("en"), self.assertRaises(ValidationError) as ctx:
            flows.parse_definition('{"start": ')
        self.assertIn("not valid JSON", " ".join(ctx.exception.messages))


class SaveFlowTests(RedesTestCase):
    def test_coordinator_saves_and_version_goes_up(self):
        defaults.ensure_defaults(self.w.esc)
        before = Flow.objects.get(municipality=self.w.esc, key="neighbour")
        d = good()
        d["nodes"]["inicio"]["text"] = "Hola vecino de {municipality}:"
        flow = flows.save_flow(self.w.esc, actor=self.w.coord, key="neighbour", definition=d)
        self.assertEqual(flow.pk, before.pk)
        self.assertEqual(flow.version, before.version + 1)
        self.assertEqual(flow.updated_by, self.w.coord)
        self.assertTrue(
            AuditEvent.objects.filter(
                action="messaging.flow.save", object_id=str(flow.uuid), outcome="ok"
            ).exists()
        )

    def test_invalid_flow_refused_with_every_problem_and_audited(self):
        d = good()
        d["nodes"]["baja"] = {"type": "action", "action": "nope"}
        d["nodes"]["suelto"] = {"type": "message", "text": "x"}
        with translation.override("en"), self.assertRaises(ValidationError) as ctx:
            flows.save_flow(self.w.esc, actor=self.w.coord, key="neighbour", definition=d)
        messages = " ".join(ctx.exception.messages)
        self.assertIn("unknown action “nope”", messages)
        self.assertIn("suelto", messages)
        self.assertFalse(
            Flow.objects.filter(municipality=self.w.esc, definition__nodes__has_key="suelto").exists()
        )
        self.assertTrue(AuditEvent.objects.filter(action="messaging.flow.save", outcome="rejected").exists())

    def test_only_coordinators_of_the_municipality(self):
        for user in (self.w.sector1, self.w.block1, self.w.observer, self.w.other_coord, self.w.nobody):
            with self.subTest(user=user.username), self.assertRaises(PermissionDenied):
                flows.save_flow(self.w.esc, actor=user, key="neighbour", definition=good())
        self.assertTrue(AuditEvent.objects.filter(action="messaging.flow.save", outcome="denied").exists())

    def test_bad_key(self):
        with self.assertRaises(ValidationError):
            flows.save_flow(self.w.esc, actor=self.w.coord, key="No Key!", definition=good())


class DefaultsAndTextsTests(RedesTestCase):
    def test_ensure_defaults_is_idempotent_and_keeps_edits(self):
        defaults.ensure_defaults(self.w.esc)
        count = MessageTemplate.objects.filter(municipality=self.w.esc).count()
        self.assertEqual(count, len(defaults.TEMPLATES))
        self.assertEqual(Flow.objects.filter(municipality=self.w.esc).count(), 2)
        MessageTemplate.objects.filter(municipality=self.w.esc, key="flood").update(body="Más despacio.")
        defaults.ensure_defaults(self.w.esc)
        self.assertEqual(MessageTemplate.objects.filter(municipality=self.w.esc).count(), count)
        self.assertEqual(texts.render(self.w.esc, "flood"), "Más despacio.")
        self.assertFalse(MessageTemplate.objects.filter(municipality=self.w.aca).exists())

    def test_contract_keys_exist(self):
        for key in (
            "welcome",
            "unknown_sender",
            "menu_invalid",
            "media_unsupported",
            "optout_done",
            "optin_done",
            "flood",
            "need_registered",
            "need_status",
            "no_needs",
            "need_notification",
            "cascade_prompt",
            "cascade_reminder",
            "cascade_ack_thanks",
            "cascade_escalated",
            "broadcast",
        ):
            self.assertIn(key, defaults.TEMPLATES)
        self.assertEqual(set(defaults.TEMPLATES["cascade_prompt"][2]), {"title", "body", "node"})
        self.assertEqual(set(defaults.TEMPLATES["broadcast"][2]), {"title", "body"})

    def test_default_bodies_use_only_their_placeholders(self):
        for key, (_name, body, _vars) in defaults.TEMPLATES.items():
            with self.subTest(key=key):
                self.assertEqual(texts.problems(key, body), [])

    def test_render_substitutes_and_never_raises(self):
        self.assertEqual(
            texts.render(self.w.esc, "broadcast", {"title": "Reparto", "body": "Mañana 9:00"}),
            "Reparto\nMañana 9:00",
        )
        # Unknown placeholders stay as written; a missing key renders empty; stray braces survive.
        self.assertEqual(texts.render(self.w.esc, "broadcast", {"title": "T"}), "T\n{body}")
        self.assertEqual(texts.render(self.w.esc, "no-such-key", {"x": 1}), "")
        self.assertEqual(texts.substitute("a {b} {c d} }{", {"b": "B"}), "a B {c d} }{")

    def test_save_template_validates_placeholders(self):
        with translation.override("en"), self.assertRaises(ValidationError) as ctx:
            texts.save_template(
                self.w.esc, actor=self.w.coord, key="broadcast", name="Broadcast", body="{titulo}"
            )
        self.assertIn("Unknown placeholders: {titulo}", " ".join(ctx.exception.message_dict["body"]))
        with self.assertRaises(ValidationError) as ctx:
            texts.save_template(self.w.esc, actor=self.w.coord, key="broadcast", name="B", body="Hola {")
        self.assertIn("body", ctx.exception.message_dict)
        with self.assertRaises(ValidationError) as ctx:
            texts.save_template(self.w.esc, actor=self.w.coord, key="Bad Key", name="", body="x")
        self.assertEqual(set(ctx.exception.message_dict), {"key", "name"})
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.template.save", outcome="rejected").exists()
        )

    def test_save_template_creates_and_updates(self):
        t = texts.save_template(
            self.w.esc, actor=self.w.coord, key="broadcast", name="Broadcast", body="AVISO: {title}\n{body}"
        )
        self.assertTrue(t.system)
        self.assertEqual(texts.render(self.w.esc, "broadcast", {"title": "A", "body": "B"}), "AVISO: A\nB")
        own = texts.save_template(
            self.w.esc,
            actor=self.w.coord,
            key="aviso-lluvias",
            name="Lluvias",
            body="Alerta {zona}",
            whatsapp_name="aviso_lluvias",
        )
        self.assertFalse(own.system)
        self.assertEqual(AuditEvent.objects.filter(action="messaging.template.save", outcome="ok").count(), 2)

    def test_save_template_permission(self):
        for user in (self.w.sector1, self.w.observer, self.w.other_coord):
            with self.subTest(user=user.username), self.assertRaises(PermissionDenied):
                texts.save_template(self.w.esc, actor=user, key="flood", name="F", body="x")
        self.assertNotEqual(texts.render(self.w.esc, "flood"), "x")


class MatchingTests(RedesTestCase):
    def test_keywords_ignore_case_and_accents(self):
        self.assertEqual(flows.keyword("baja"), "optout")
        self.assertEqual(flows.keyword(" Stop! "), "optout")
        self.assertEqual(flows.keyword("alta"), "optin")
        self.assertEqual(flows.keyword("Menú"), "menu")
        self.assertEqual(flows.keyword("0"), "menu")
        self.assertEqual(flows.keyword("enterado."), "ack")
        self.assertIsNone(flows.keyword("bajar la basura"))

    def test_pick(self):
        labels = ["Reportar una necesidad", "Consultar mis reportes", "Dejar de recibir mensajes (BAJA)"]
        self.assertEqual(flows.pick("2", labels), 1)
        self.assertEqual(flows.pick(" 1 ", labels), 0)
        self.assertIsNone(flows.pick("4", labels))
        self.assertEqual(flows.pick("consultar", labels), 1)
        self.assertEqual(flows.pick("estado", labels, [[], ["estado"], []]), 1)
        self.assertIsNone(flows.pick("re", labels))
        self.assertIsNone(flows.pick("", labels))
