"""The messaging API, role by role: anonymous, other tenant, observer, volunteer, block liaison, sector liaison
and the coordinator; refusals change nothing and are audited; bad input answers 4xx with reasons."""

from django.test import override_settings
from django.utils import timezone

from redes.audit.models import AuditEvent, Outcome
from redes.messaging import broadcasts
from redes.messaging.models import Broadcast, CascadeNode, ChannelAccount, Group, Outbound

from .base import RedesTestCase
from .messaging_bcast_support import contact, home

MESSAGING_ENDPOINTS = {
    "/api/v1/messaging/broadcasts": {"get", "post"},
    "/api/v1/messaging/broadcasts/{uuid}": {"get"},
    "/api/v1/messaging/broadcasts/{uuid}/start": {"post"},
    "/api/v1/messaging/broadcasts/{uuid}/cancel": {"post"},
    "/api/v1/messaging/broadcasts/{uuid}/progress": {"get"},
    "/api/v1/messaging/broadcasts/{uuid}/ack": {"post"},
    "/api/v1/messaging/groups": {"get", "post"},
    "/api/v1/messaging/groups/{uuid}": {"get", "patch"},
    "/api/v1/messaging/templates": {"get"},
    "/api/v1/messaging/templates/{key}": {"put"},
    "/api/v1/messaging/flows/validate": {"post"},
    "/api/v1/messaging/flows/{key}": {"get", "put"},
    "/api/v1/messaging/contacts": {"get"},
    "/api/v1/messaging/contacts/{uuid}/opt-out": {"post"},
    "/api/v1/messaging/contacts/{uuid}/opt-in": {"post"},
    "/api/v1/messaging/outbox": {"get"},
    "/api/v1/messaging/inbox": {"get"},
    "/api/v1/messaging/accounts": {"get", "post"},
    "/api/v1/messaging/accounts/{uuid}": {"patch"},
}


@override_settings(LANGUAGE_CODE="en")
class MessagingApiTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        home(w.b11, "+528110000001")
        home(w.b12, "+528110000002")
        cls.neighbour = contact(w.esc.pk, "+528110000009", node=w.b11)
        cls.cascade = broadcasts.create_broadcast(
            actor=w.coord, municipality=w.esc, node=w.esc_node, title="Alerta", body="Lluvia", cascade=True
        )
        broadcasts.start_broadcast(cls.cascade, actor=w.coord)
        cls.draft = broadcasts.create_broadcast(
            actor=w.coord, municipality=w.esc, node=w.s1, title="Despensas", body="Mañana"
        )
        cls.group = Group.objects.create(municipality=w.esc, name="Manzana 1", kind="block", node=w.b11)

    def everyone(self):
        w = self.w
        return {
            "observer": w.observer,
            "state_observer": w.state_observer,
            "volunteer": w.volunteer,
            "block1": w.block1,
            "sector1": w.sector1,
            "sector2": w.sector2,
            "coord": w.coord,
            "other_coord": w.other_coord,
            "nobody": w.nobody,
        }

    def status_of(self, user, method, path, data=None):
        return self.api(user, method, path, data).status_code

    # --- documentation ------------------------------------------------------------------------------------------

    def test_every_endpoint_is_documented(self):
        doc = self.client.get("/api/v1/openapi.json").json()
        paths = {p: set(ops) for p, ops in doc["paths"].items() if p.startswith("/api/v1/messaging/")}
        self.assertEqual(paths, MESSAGING_ENDPOINTS)
        self.assertEqual(doc["paths"]["/api/v1/messaging/broadcasts"]["get"]["tags"], ["Messaging"])

    def test_anonymous_gets_401_everywhere(self):
        for path, methods in MESSAGING_ENDPOINTS.items():
            url = path.replace("{uuid}", str(self.draft.uuid)).replace("{key}", "broadcast")
            for method in methods:
                with self.subTest(path=path, method=method):
                    self.assertEqual(self.status_of(None, method, url[len("/api/v1/") :], {}), 401)

    # --- broadcasts ---------------------------------------------------------------------------------------------

    def test_broadcast_lists_per_role(self):
        expected = {
            "observer": 403,
            "state_observer": 403,
            "volunteer": 403,
            "nobody": 403,
        }
        for name, user in self.everyone().items():
            response = self.api(user, "get", "messaging/broadcasts")
            with self.subTest(name=name):
                self.assertEqual(response.status_code, expected.get(name, 200))
                if response.status_code == 200:
                    titles = {b["title"] for b in response.json()["items"]}
                    wanted = {
                        "coord": {"Alerta", "Despensas"},
                        "sector1": {"Alerta", "Despensas"},  # own sector's draft; reached by the cascade
                        "sector2": set(),
                        "block1": set(),  # the cascade has not reached the block yet
                        "other_coord": set(),
                    }[name]
                    self.assertEqual(titles, wanted)

    def test_create_start_and_double_start(self):
        w = self.w
        body = {"municipality": "19021", "node": str(w.s1.uuid), "title": "Aviso", "body": "Texto"}
        self.assertEqual(self.status_of(w.block1, "post", "messaging/broadcasts", body), 404)  # above them
        block = {**body, "node": str(w.b11.uuid)}
        self.assertEqual(self.status_of(w.block1, "post", "messaging/broadcasts", block), 403)  # no BROADCAST
        self.assertEqual(self.status_of(w.volunteer, "post", "messaging/broadcasts", body), 403)
        self.assertEqual(self.status_of(w.other_coord, "post", "messaging/broadcasts", body), 404)
        self.assertEqual(self.status_of(w.sector2, "post", "messaging/broadcasts", body), 404)  # unseen node
        own = {**body, "node": str(w.esc_node.uuid)}
        self.assertEqual(self.status_of(w.sector1, "post", "messaging/broadcasts", own), 404)  # above them
        self.assertEqual(self.status_of(w.operator, "post", "messaging/broadcasts", own), 403)
        response = self.api(w.sector1, "post", "messaging/broadcasts", body)
        self.assertEqual(response.status_code, 201, response.content)
        key = response.json()["uuid"]
        self.assertEqual(response.json()["status"], "draft")
        for user, code in ((w.sector2, 404), (w.block1, 404), (w.observer, 404), (w.other_coord, 404)):
            self.assertEqual(self.status_of(user, "post", f"messaging/broadcasts/{key}/start"), code)
        response = self.api(w.sector1, "post", f"messaging/broadcasts/{key}/start")
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual((response.json()["status"], response.json()["recipients"]), ("sending", 2))
        rows = Outbound.objects.count()
        again = self.api(w.coord, "post", f"messaging/broadcasts/{key}/start")
        self.assertEqual(again.status_code, 400)
        self.assertIn("already started", again.json()["detail"])
        self.assertEqual(Outbound.objects.count(), rows)
        self.assertEqual(self.status_of(w.sector1, "post", f"messaging/broadcasts/{key}/cancel"), 200)
        self.assertEqual(self.status_of(w.sector1, "post", f"messaging/broadcasts/{key}/cancel"), 400)

    def test_bad_input_answers_4xx_with_reasons(self):
        w = self.w
        base = {"municipality": "19021", "node": str(w.s1.uuid), "title": "Aviso", "body": "Texto"}
        cases = [
            ({**base, "title": ""}, 400, ["body", "title"]),
            ({**base, "target": "everyone"}, 400, ["body", "target"]),
            ({**base, "target": "segment", "segment": {"min_priority": 500}}, 422, None),
            ({**base, "target": "segment", "segment": {"categories": ["nada"]}}, 400, ["body", "segment"]),
            ({**base, "node": "not-a-uuid"}, 404, ["body", "node"]),
            (
                {**base, "group": "00000000-0000-0000-0000-000000000000", "target": "group"},
                404,
                ["body", "group"],
            ),
            ({**base, "ack_minutes": "x"}, 422, None),
            ({**base, "title": "a\x00b"}, 422, None),
            ({**base, "cascade": True, "node": str(w.b11.uuid)}, 400, ["body", "node"]),
            ({"title": "x"}, 422, None),
        ]
        for data, code, loc in cases:
            with self.subTest(data=data):
                response = self.api(w.coord, "post", "messaging/broadcasts", data)
                self.assertEqual(response.status_code, code, response.content)
                self.assertTrue(response.json()["detail"])
                if loc:
                    self.assertIn(loc, [e["loc"] for e in response.json()["errors"]])
        response = self.client.post(
            "/api/v1/messaging/broadcasts",
            data="{not json",
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token_for(w.coord)}"},
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Broadcast.objects.count(), 2)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.broadcast.create", outcome=Outcome.REJECTED).exists()
        )

    def test_progress_per_role(self):
        w = self.w
        path = f"messaging/broadcasts/{self.cascade.uuid}/progress"
        for name in ("coord", "sector1"):
            body = self.api(getattr(w, name), "get", path).json()
            self.assertEqual(body["totals"]["sent"], 1)
            names = {n["code"]: n["liaison"] for n in body["nodes"]}
            self.assertEqual(names["S01"], "Sergio Sector")
            # The sender's own name is the coordinator's business, not the sector liaison's.
            self.assertEqual(names["19021"], "Carmen Coordinadora" if name == "coord" else "")
        for name in ("observer", "state_observer"):
            response = self.api(getattr(w, name), "get", path)
            self.assertEqual(response.status_code, 200)
            body = response.json()
            self.assertEqual(body["totals"]["sent"], 1)
            self.assertFalse(any(n["liaison"] for n in body["nodes"]))
            self.assertNotIn("Alerta", response.content.decode())
            self.assertNotIn("Lluvia", response.content.decode())
        for name in ("other_coord", "nobody"):
            self.assertEqual(self.status_of(getattr(w, name), "get", path), 404)
        self.assertEqual(self.status_of(w.coord, "get", "messaging/broadcasts/nope/progress"), 404)

    def test_acknowledge_only_ones_own_node(self):
        w = self.w
        path = f"messaging/broadcasts/{self.cascade.uuid}/ack"
        self.assertEqual(self.status_of(w.block1, "post", path, {}), 404)  # not reached yet: unseen
        self.assertEqual(self.status_of(w.coord, "post", path, {"node": str(w.s1.uuid)}), 403)
        self.assertEqual(
            self.status_of(w.coord, "post", path, {}), 400
        )  # nothing waiting for the coordinator
        self.assertEqual(self.status_of(w.sector1, "post", path, {"node": "zzz"}), 404)
        detail = self.api(w.sector1, "get", f"messaging/broadcasts/{self.cascade.uuid}").json()
        self.assertEqual([n["code"] for n in detail["waiting_for_me"]], ["S01"])
        response = self.api(w.sector1, "post", path, {})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual((response.json()["status"], response.json()["ack_via"]), ("acked", "web"))
        self.assertEqual(self.status_of(w.sector1, "post", path, {"node": str(w.s1.uuid)}), 400)  # twice
        # Now the block liaison sees the broadcast and acknowledges their block only.
        self.assertEqual(self.status_of(w.block1, "post", path, {"node": str(w.s1.uuid)}), 403)
        self.assertEqual(self.status_of(w.block1, "post", path, {"node": str(w.b11.uuid)}), 200)
        self.assertEqual(
            CascadeNode.objects.get(broadcast=self.cascade, node=w.b11).status, CascadeNode.Status.ACKED
        )

    # --- groups -------------------------------------------------------------------------------------------------

    def test_groups_per_role(self):
        w = self.w
        for name, code in (("observer", 403), ("volunteer", 403), ("nobody", 403)):
            self.assertEqual(self.status_of(getattr(w, name), "get", "messaging/groups"), code, name)
        self.assertEqual(self.api(w.other_coord, "get", "messaging/groups").json()["count"], 0)
        self.assertEqual(self.api(w.block1, "get", "messaging/groups").json()["count"], 1)
        self.assertEqual(self.api(w.sector2, "get", "messaging/groups").json()["count"], 0)
        path = f"messaging/groups/{self.group.uuid}"
        self.assertEqual(self.status_of(w.other_coord, "get", path), 404)
        self.assertEqual(self.status_of(w.block1, "get", path), 200)
        body = {
            "municipality": "19021",
            "name": "Sector 1 — Avisos",
            "kind": "sector",
            "node": str(w.s1.uuid),
            "invite_link": "https://chat.whatsapp.com/abc",
            "moderators": [str(w.sector1.uuid)],
        }
        self.assertEqual(self.status_of(w.sector1, "post", "messaging/groups", body), 403)
        self.assertEqual(self.status_of(w.other_coord, "post", "messaging/groups", body), 404)
        response = self.api(w.coord, "post", "messaging/groups", body)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual([m["name"] for m in response.json()["moderators"]], ["Sergio Sector"])
        self.assertEqual(self.status_of(w.coord, "post", "messaging/groups", body), 400)  # same name
        bad = self.api(w.coord, "post", "messaging/groups", {**body, "name": "Otro", "invite_link": "nope"})
        self.assertEqual(bad.status_code, 400)
        self.assertEqual(bad.json()["errors"][0]["loc"], ["body", "invite_link"])
        bad = self.api(w.coord, "post", "messaging/groups", {**body, "name": "Otro", "kind": "secret"})
        self.assertEqual(bad.status_code, 400)
        patched = self.api(w.coord, "patch", path, {"rules": "Sin política", "active": False})
        self.assertEqual(patched.status_code, 200, patched.content)
        self.assertEqual((patched.json()["rules"], patched.json()["active"]), ("Sin política", False))
        self.assertEqual(self.status_of(w.block1, "patch", path, {"rules": "x"}), 403)
        self.assertEqual(self.status_of(w.other_coord, "patch", path, {"rules": "x"}), 404)

    # --- contacts, outbox, inbox -------------------------------------------------------------------------------

    def test_personal_lists_follow_the_territory(self):
        w = self.w
        for path in ("messaging/contacts", "messaging/outbox", "messaging/inbox"):
            for name in ("observer", "state_observer", "volunteer", "nobody"):
                self.assertEqual(self.status_of(getattr(w, name), "get", path), 403, (path, name))
            self.assertEqual(self.api(w.other_coord, "get", path).json()["count"], 0, path)
        coord = {c["address"] for c in self.api(w.coord, "get", "messaging/contacts").json()["items"]}
        self.assertIn("+528110000009", coord)
        self.assertIn("+528112345678", coord)  # the sector liaison, reached by the cascade
        block1 = {c["address"] for c in self.api(w.block1, "get", "messaging/contacts").json()["items"]}
        self.assertIn("+528110000009", block1)
        self.assertNotIn("+528112345678", block1)
        outbox = self.api(w.coord, "get", f"messaging/outbox?broadcast={self.cascade.uuid}").json()
        self.assertEqual([(o["kind"], o["address"]) for o in outbox["items"]], [("cascade", "+528112345678")])
        self.assertEqual(self.status_of(w.coord, "get", "messaging/outbox?status=lost"), 400)
        self.assertEqual(self.status_of(w.coord, "get", "messaging/outbox?broadcast=nope"), 404)

    def test_opt_out_and_back(self):
        w = self.w
        path = f"messaging/contacts/{self.neighbour.uuid}"
        self.assertEqual(self.status_of(w.volunteer, "post", f"{path}/opt-out"), 404)
        self.assertEqual(self.status_of(w.other_coord, "post", f"{path}/opt-out"), 404)
        self.assertEqual(self.status_of(w.sector2, "post", f"{path}/opt-out"), 404)
        response = self.api(w.block1, "post", f"{path}/opt-out")
        self.assertEqual(response.status_code, 200)
        self.assertIsNotNone(response.json()["opted_out_at"])
        response = self.api(w.block1, "post", f"{path}/opt-in")
        self.assertIsNone(response.json()["opted_out_at"])
        self.assertIsNone(response.json()["opted_in_at"])  # no consent recorded on the person's behalf
        self.assertEqual(
            AuditEvent.objects.filter(action__startswith="messaging.contact.opt", outcome=Outcome.OK).count(),
            2,
        )

    # --- set-up: accounts, templates, flows ---------------------------------------------------------------------

    def test_setup_is_for_coordinators(self):
        w = self.w
        for path in ("messaging/accounts", "messaging/templates?municipality=19021"):
            for name in ("observer", "volunteer", "block1", "sector1", "nobody"):
                self.assertEqual(self.status_of(getattr(w, name), "get", path), 403, (path, name))
        self.assertEqual(self.status_of(w.other_coord, "get", "messaging/templates?municipality=19021"), 404)
        templates = self.api(w.coord, "get", "messaging/templates?municipality=19021&limit=500").json()
        self.assertIn("cascade_prompt", {t["key"] for t in templates["items"]})
        self.assertEqual(
            self.status_of(w.sector1, "get", "messaging/flows/neighbour?municipality=19021"), 403
        )
        flow = self.api(w.coord, "get", "messaging/flows/neighbour?municipality=19021")
        self.assertEqual(flow.status_code, 200)
        check = self.api(
            w.coord, "post", "messaging/flows/validate", {"definition": flow.json()["definition"]}
        )
        self.assertEqual(check.json(), {"valid": True, "problems": []})
        check = self.api(w.coord, "post", "messaging/flows/validate", {"definition": {"start": "x"}})
        self.assertFalse(check.json()["valid"])
        self.assertTrue(check.json()["problems"])
        self.assertEqual(
            self.status_of(w.block1, "post", "messaging/flows/validate", {"definition": {}}), 403
        )
        bad = self.api(
            w.coord, "put", "messaging/flows/neighbour", {"municipality": "19021", "definition": {}}
        )
        self.assertEqual(bad.status_code, 400)
        saved = self.api(
            w.coord, "put", "messaging/flows/neighbour", {"municipality": "19021", **flow.json(), "name": ""}
        )
        self.assertEqual(saved.status_code, 200, saved.content)
        self.assertEqual(saved.json()["version"], flow.json()["version"] + 1)
        self.assertEqual(
            self.status_of(
                w.sector1,
                "put",
                "messaging/templates/broadcast",
                {"municipality": "19021", "name": "x", "body": "y"},
            ),
            403,
        )

    def test_accounts_secrets_are_write_only(self):
        w = self.w
        body = {
            "municipality": "19021",
            "provider": "telegram",
            "name": "bot",
            "address": "redes_bot",
            "secrets": {"bot_token": "123:SECRETO", "webhook_secret": "otro-secreto"},
        }
        self.assertEqual(self.status_of(w.sector1, "post", "messaging/accounts", body), 403)
        self.assertEqual(self.status_of(w.other_coord, "post", "messaging/accounts", body), 404)
        response = self.api(w.coord, "post", "messaging/accounts", body)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertNotIn("SECRETO", response.content.decode())
        self.assertEqual(response.json()["secrets_set"], ["bot_token", "webhook_secret"])
        key = response.json()["uuid"]
        listed = self.api(w.coord, "get", "messaging/accounts")
        self.assertNotIn("SECRETO", listed.content.decode())
        self.assertEqual(self.api(w.other_coord, "get", "messaging/accounts").json()["count"], 0)
        self.assertEqual(
            self.status_of(w.other_coord, "patch", f"messaging/accounts/{key}", {"active": False}), 404
        )
        patched = self.api(w.coord, "patch", f"messaging/accounts/{key}", {"active": False})
        self.assertEqual(patched.status_code, 200, patched.content)
        self.assertEqual(
            (patched.json()["active"], patched.json()["secrets_set"]),
            (False, ["bot_token", "webhook_secret"]),
        )
        self.assertFalse(ChannelAccount.objects.get(uuid=key).active)
        self.assertEqual(
            self.status_of(w.coord, "patch", f"messaging/accounts/{key}", {"rate_per_second": -1}), 422
        )

    def test_opted_out_contact_counts_as_excluded_through_the_api(self):
        w = self.w
        contact(w.esc.pk, "+528110000001", opted_out_at=timezone.now())
        b = broadcasts.create_broadcast(actor=w.coord, municipality=w.esc, node=w.s1, title="T", body="B")
        response = self.api(w.coord, "post", f"messaging/broadcasts/{b.uuid}/start")
        self.assertEqual(response.json()["recipients"], 1)
        progress = self.api(w.coord, "get", f"messaging/broadcasts/{b.uuid}/progress").json()
        self.assertEqual((progress["excluded"], progress["outbound"]["queued"]), (1, 1))
