"""The registry API, endpoint by endpoint and role by role.

Every endpoint is called by every persona (coord, sector1, sector2, block1, operator, caseworker, volunteer,
observer, state_observer, other_coord, nobody, and no token) and must answer the expected status. Refused writes
change nothing; observers never receive a name, a phone or a CURP; sensitive data comes out only of the case
officer's sensitive endpoint (and the export, for case officers), and every read of it is audited.
"""

import datetime as dt
import json
import uuid

from django.db import transaction
from django.test import Client

from redes.audit.models import AuditEvent, Outcome
from redes.core.curp import curp_check_digit
from redes.registry import crypto, services
from redes.registry.models import (
    BlockCounts,
    Consent,
    DataRequest,
    DuplicateCandidate,
    Household,
    Person,
    PrivacyNotice,
    RegistryPolicy,
    Visit,
)

from .test_api_territory import ApiTestCase

ROLES = (
    "coord",
    "sector1",
    "sector2",
    "block1",
    "operator",
    "caseworker",
    "volunteer",
    "observer",
    "state_observer",
    "other_coord",
    "nobody",
    None,
)
OBSERVERS = ("observer", "state_observer")


def curp(first17: str) -> str:
    return first17 + curp_check_digit(first17)


ROSA_CURP = curp("HELR540312MNLRNS0")
PEDRO_CURP = curp("GOLP800101HNLMPD0")
ALMA_CURP = curp("RUSA900505MGRZNL0")
#: Values that must never reach an observer (names, phones, CURPs, addresses of the registry).
PERSONAL = (
    "Rosa",
    "Hernández",
    "Pedro",
    "Gómez",
    "Alma",
    "Ruiz",
    ROSA_CURP,
    PEDRO_CURP,
    ALMA_CURP,
    "8187654321",
    "+528187654321",
    "+528112340000",
    "Hidalgo",
    "Juárez 5",
)
#: The sensitive notes: never in any answer but the case officer's.
SECRET = "silla de ruedas"


def expect(default: int, **statuses: int) -> dict:
    """Expected status per persona: ``default`` for everyone named nowhere else, 401 without a token."""
    out = dict.fromkeys(ROLES, default)
    out[None] = 401
    for role, status in statuses.items():
        out[role] = status
    return out


def sees_b11(ok: int) -> dict:
    """Record endpoints of block S01-M001: those with personal data over the block, 404 for the rest."""
    return expect(404, coord=ok, sector1=ok, block1=ok, operator=ok, caseworker=ok)


class RegistryApiCase(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.notice = services.publish_notice(w.esc, version="2026-1", text="Aviso de privacidad")
        services.publish_notice(w.aca, version="A-1", text="Aviso Acapulco")
        cls.h11 = services.create_household(
            w.b11,
            actor=w.block1,
            street="Calle Hidalgo",
            ext_number="12",
            postal_code="66050",
            phones=[{"number": "81 8765 4321", "whatsapp": True}],
        )
        cls.rosa = services.add_person(
            cls.h11,
            actor=w.block1,
            full_name="Rosa Hernández Luna",
            birth_date=dt.date(1954, 3, 12),
            curp=ROSA_CURP,
            phone="8112340000",
            factors=["job_loss"],
            check_duplicates=False,
        )
        cls.consent = services.record_consent(
            cls.rosa, actor=w.block1, purposes=["aid", "contact"], sensitive=True, channel="in_person"
        )
        services.set_sensitive(cls.rosa, actor=w.caseworker, factors=["disability"], notes=SECRET)
        cls.h12 = services.create_household(w.b12, actor=w.sector1, street="Calle Hidalgo", ext_number="14")
        # The same CURP and name on another block: a pair for the review queue (on block S01-M002). Stored
        # directly so that the queue tests do not hang on the matcher's thresholds; entry-time flagging is
        # tested through POST /households/{uuid}/persons.
        cls.rosa2 = services.add_person(
            cls.h12, actor=w.sector1, full_name="Rosa Hernández Luna", curp=ROSA_CURP, check_duplicates=False
        )
        cls.pair = DuplicateCandidate.objects.create(
            municipality=w.esc,
            node=w.b12,
            person_a=cls.rosa,
            person_b=cls.rosa2,
            score=0.99,
            reasons=["curp_same", "names_same"],
        )
        cls.h21 = services.create_household(w.b21, actor=w.sector2, street="Calle Morelos", ext_number="3")
        cls.pedro = services.add_person(
            cls.h21, actor=w.sector2, full_name="Pedro Gómez López", curp=PEDRO_CURP
        )
        cls.ha = services.create_household(w.ab, actor=w.other_coord, street="Av. Juárez 5")
        cls.alma = services.add_person(
            cls.ha, actor=w.other_coord, full_name="Alma Ruiz Sánchez", curp=ALMA_CURP
        )
        cls.request11 = services.open_data_request(cls.rosa, "access", actor=w.block1)

    # --- helpers ---

    def api(self, user, method, path, data=None, **extra):
        """English answers (the Spanish wording is checked by the i18n tests)."""
        extra.setdefault("HTTP_ACCEPT_LANGUAGE", "en")
        return super().api(user, method, path, data, **extra)

    def user(self, role):
        return getattr(self.w, role) if role else None

    def call(self, role, method, path, data=None, **extra):
        response = self.api(self.user(role), method, path, data, **extra)
        if role in OBSERVERS:
            self.assert_nothing_registry_personal(response)
        if role != "caseworker":
            self.assertNotIn(SECRET, response.content.decode())
        return response

    def assert_nothing_registry_personal(self, response):
        text = response.content.decode()
        for value in PERSONAL:
            self.assertNotIn(value, text)

    def check_matrix(self, method, path, expected: dict, data=None, *, rollback: bool = True):
        """Call ``path`` as every persona; allowed writes are rolled back so that each persona meets the same
        state. Returns the answers by persona."""
        answers = {}
        for role in ROLES:
            with self.subTest(role=role, path=path):
                with transaction.atomic():
                    response = self.call(role, method, path, data)
                    if rollback:
                        transaction.set_rollback(True)
                status = expected[role]
                self.assertEqual(response.status_code, status, (role, response.content[:300]))
                if status >= 400:
                    self.assert_error(response, status)
                answers[role] = response
        return answers

    def snapshot(self):
        """Everything a refused write could have changed."""
        return (
            list(Household.objects.order_by("pk").values()),
            list(Person.objects.order_by("pk").values()),
            list(Consent.objects.order_by("pk").values()),
            list(Visit.objects.order_by("pk").values()),
            list(DataRequest.objects.order_by("pk").values()),
            list(DuplicateCandidate.objects.order_by("pk").values()),
            list(PrivacyNotice.objects.order_by("pk").values()),
            list(RegistryPolicy.objects.order_by("pk").values()),
            list(BlockCounts.objects.order_by("pk").values()),
        )

    def check_refusals_write_nothing(self, method, path, expected: dict, data=None):
        before = self.snapshot()
        for role in ROLES:
            if expected[role] < 400:
                continue
            with self.subTest(role=role):
                response = self.call(role, method, path, data)
                self.assert_error(response, expected[role])
        self.assertEqual(self.snapshot(), before)

    def loc(self, response):
        return [e["loc"] for e in response.json()["errors"]]


# --- households -----------------------------------------------------------------------------------------------


class HouseholdListTests(RegistryApiCase):
    def test_access_matrix_and_scope(self):
        expected = expect(200, volunteer=403, observer=403, state_observer=403, nobody=403)
        answers = self.check_matrix("get", "/households", expected)

        def uuids(role):
            return {h["uuid"] for h in answers[role].json()["items"]}

        esc = {str(h.uuid) for h in (self.h11, self.h12, self.h21)}
        self.assertEqual(uuids("coord"), esc)
        self.assertEqual(uuids("operator"), esc)
        self.assertEqual(uuids("sector1"), {str(self.h11.uuid), str(self.h12.uuid)})
        self.assertEqual(uuids("sector2"), {str(self.h21.uuid)})
        self.assertEqual(uuids("block1"), {str(self.h11.uuid)})
        self.assertEqual(uuids("other_coord"), {str(self.ha.uuid)})

    def test_it_orders_by_priority_and_filters(self):
        response = self.api(self.w.coord, "get", "/households")
        priorities = [h["priority"] for h in response.json()["items"]]
        self.assertEqual(priorities, sorted(priorities, reverse=True))
        self.assertGreater(priorities[0], 0)
        first = response.json()["items"][0]
        self.assertEqual(first["uuid"], str(self.h11.uuid))
        self.assertEqual(first["phones"][0]["number"], "+528187654321")
        self.assertEqual(first["block"]["code"], "S01-M001")

        def uuids(query):
            response = self.api(self.w.coord, "get", f"/households?{query}")
            self.assertEqual(response.status_code, 200, response.content)
            return {h["uuid"] for h in response.json()["items"]}

        self.assertEqual(uuids(f"block={self.w.b11.uuid}"), {str(self.h11.uuid)})
        self.assertEqual(uuids(f"block={self.w.s1.uuid}"), {str(self.h11.uuid), str(self.h12.uuid)})
        self.assertEqual(uuids("min_priority=40"), {str(self.h11.uuid)})
        self.assertEqual(len(uuids("min_priority=15")), 3)
        self.assertEqual(uuids("q=morelos"), {str(self.h21.uuid)})
        services.record_visit(self.h21, "contacted", actor=self.w.sector2)
        self.assertEqual(uuids("unvisited=true"), {str(self.h11.uuid), str(self.h12.uuid)})
        self.assertEqual(uuids("unvisited=false"), {str(self.h21.uuid)})
        self.assertEqual(self.api(self.w.coord, "get", "/households?limit=1").json()["count"], 3)

    def test_block_filter_out_of_scope_or_unknown_is_404_and_bad_values_422(self):
        self.assert_error(self.api(self.w.block1, "get", f"/households?block={self.w.b21.uuid}"), 404)
        self.assert_error(self.api(self.w.coord, "get", f"/households?block={uuid.uuid4()}"), 404)
        self.assert_error(self.api(self.w.coord, "get", "/households?min_priority=101"), 422)
        self.assert_error(self.api(self.w.coord, "get", "/households?limit=501"), 422)


class HouseholdCreateTests(RegistryApiCase):
    def payload(self, block=None, **extra):
        return {
            "block": str((block or self.w.b11).uuid),
            "street": "Calle Zaragoza",
            "ext_number": "7",
            "postal_code": "66055",
            "lat": 25.795,
            "lon": -100.325,
            "preferred_channel": "sms",
            "phones": [{"number": "045 81 1111 2222", "whatsapp": True, "sms": True, "voice": False}],
            **extra,
        }

    def test_access_matrix(self):
        expected = expect(
            404, coord=201, sector1=201, block1=201, operator=201, caseworker=201,
            volunteer=403, observer=403, state_observer=403,
        )  # fmt: skip
        self.check_matrix("post", "/households", expected, self.payload())
        self.check_refusals_write_nothing("post", "/households", expected, self.payload())
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.household.create").exclude(outcome=Outcome.OK).count(),
            6,
        )

    def test_a_block_liaison_registers_a_household(self):
        response = self.api(self.w.block1, "post", "/households", self.payload())
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(body["phones"], [
            {"number": "+528111112222", "whatsapp": True, "sms": True, "voice": False, "label": ""}
        ])  # fmt: skip
        self.assertEqual((body["preferred_channel"], body["lat"], body["members_count"]), ("sms", 25.795, 0))
        household = Household.objects.get(uuid=body["uuid"])
        self.assertEqual((household.node, household.created_by), (self.w.b11, self.w.block1))
        self.assertEqual(BlockCounts.objects.get(node=self.w.b11).households, 2)
        self.assertEqual(
            AuditEvent.objects.get(action="registry.household.create", object_id=body["uuid"]).channel, "api"
        )

    def test_bad_input_says_why_and_writes_nothing(self):
        before = self.snapshot()
        cases = [
            (self.payload(postal_code="660"), 400, "5 digits"),
            (self.payload(phones=[{"number": "12345"}]), 400, "10 digits"),
            (self.payload(lat=95, lon=0), 400, "out of range"),
            (self.payload(block=self.w.s1), 400, "not a block"),  # not a leaf
            (self.payload(block=self.w.esc_node), 400, "block"),
            ({**self.payload(), "block": str(uuid.uuid4())}, 404, None),  # unknown block
            ({**self.payload(), "block": "nope"}, 404, None),
            ({**self.payload(), "block": str(self.w.ab.uuid)}, 404, None),  # another municipality
            ({**self.payload(), "lat": "abc"}, 422, None),
            ({**self.payload(), "preferred_channel": "pigeon"}, 422, None),
            ({"street": "Sin manzana"}, 422, None),
        ]
        for payload, status, reason in cases:
            with self.subTest(payload=payload):
                response = self.api(self.w.coord, "post", "/households", payload)
                body = self.assert_error(response, status)
                if reason:
                    self.assertIn(reason, json.dumps(body, ensure_ascii=False))
                if status == 404:
                    self.assertEqual(self.loc(response), [["body", "block"]])
        bad_phone = self.api(self.w.coord, "post", "/households", self.payload(phones=[{"number": "12345"}]))
        self.assertEqual(self.loc(bad_phone), [["body", "phones"]])
        # A block outside the caller's scope is missing for them:
        self.assert_error(
            self.api(self.w.sector1, "post", "/households", self.payload(block=self.w.b21)), 404
        )
        self.assertEqual(self.snapshot(), before)


class HouseholdDetailTests(RegistryApiCase):
    def url(self, household=None):
        return f"/households/{(household or self.h11).uuid}"

    def test_access_matrix(self):
        answers = self.check_matrix("get", self.url(), sees_b11(200))
        body = answers["block1"].json()
        self.assertEqual([m["full_name"] for m in body["members"]], ["Rosa Hernández Luna"])
        self.assertEqual(body["members"][0]["curp"], ROSA_CURP)
        self.assertEqual(body["address"], "Calle Hidalgo 12, 66050")

    def test_the_priority_is_explained_with_sensitive_factors_folded(self):
        liaison = self.api(self.w.block1, "get", self.url()).json()
        factors = {line["factor"]: line["points"] for line in liaison["explanation"]}
        self.assertEqual(factors, {"older_adult": 25, "job_loss": 20, "lives_alone": 15, "protected": 20})
        self.assertNotIn("disability", json.dumps(liaison))
        self.assertEqual(liaison["priority"], 80)
        self.assertTrue(liaison["is_priority"])
        officer = self.api(self.w.caseworker, "get", self.url()).json()
        # Folded for case officers too: they read the factors through the audited sensitive endpoint.
        self.assertEqual(officer["explanation"], liaison["explanation"])
        self.assertNotIn(SECRET, json.dumps(officer))

    def test_forged_and_malformed_ids_are_404(self):
        for key in (uuid.uuid4(), "nope", self.h11.pk, self.ha.uuid):
            self.assert_error(self.api(self.w.coord, "get", f"/households/{key}"), 404)


class HouseholdUpdateTests(RegistryApiCase):
    def url(self, household=None):
        return f"/households/{(household or self.h11).uuid}"

    def test_access_matrix(self):
        payload = {"reference": "Portón verde"}
        self.check_matrix("patch", self.url(), sees_b11(200), payload)
        self.check_refusals_write_nothing("patch", self.url(), sees_b11(200), payload)

    def test_it_edits_only_the_fields_sent_and_replaces_phones(self):
        response = self.api(
            self.w.block1, "patch", self.url(), {"colonia": "Centro", "phones": [{"number": "8122223333"}]}
        )
        self.assertEqual(response.status_code, 200, response.content)
        body = response.json()
        self.assertEqual((body["colonia"], body["street"]), ("Centro", "Calle Hidalgo"))
        self.assertEqual([p["number"] for p in body["phones"]], ["+528122223333"])

    def test_moving_within_scope(self):
        response = self.api(self.w.sector1, "patch", self.url(), {"block": str(self.w.b12.uuid)})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["block"]["code"], "S01-M002")
        self.rosa.refresh_from_db()
        self.assertEqual(self.rosa.node, self.w.b12)
        self.assertEqual(BlockCounts.objects.get(node=self.w.b11).households, 0)
        # Now outside block1's scope:
        self.assert_error(self.api(self.w.block1, "get", self.url()), 404)

    def test_moving_outside_scope_or_to_a_non_block_is_refused(self):
        before = self.snapshot()
        self.assert_error(self.api(self.w.block1, "patch", self.url(), {"block": str(self.w.b12.uuid)}), 404)
        self.assert_error(self.api(self.w.sector1, "patch", self.url(), {"block": str(self.w.b21.uuid)}), 404)
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"block": str(self.w.ab.uuid)}), 404)
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"block": str(self.w.s2.uuid)}), 400)
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"postal_code": "abcde"}), 400)
        self.assert_error(self.api(self.w.coord, "patch", self.url(), {"phones": [{"number": "1"}]}), 400)
        self.assertEqual(self.snapshot(), before)


class VisitTests(RegistryApiCase):
    def url(self):
        return f"/households/{self.h11.uuid}/visits"

    def test_access_matrix(self):
        payload = {"outcome": "contacted", "note": "Todo bien"}
        self.check_matrix("post", self.url(), sees_b11(201), payload)
        self.check_refusals_write_nothing("post", self.url(), sees_b11(201), payload)
        self.check_matrix("get", self.url(), sees_b11(200))

    def test_a_visit_is_recorded_and_counted(self):
        response = self.api(self.w.block1, "post", self.url(), {"outcome": "not_home"})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["outcome_label"], "Nobody home")
        self.assertEqual(response.json()["visited_by"], str(self.w.block1.uuid))
        self.assertEqual(BlockCounts.objects.get(node=self.w.b11).visited_households, 1)
        listed = self.api(self.w.coord, "get", self.url()).json()
        self.assertEqual(listed["count"], 1)
        self.assertTrue(self.api(self.w.coord, "get", f"/households/{self.h11.uuid}").json()["visited"])

    def test_bad_visits_are_refused(self):
        before = self.snapshot()
        self.assert_error(self.api(self.w.block1, "post", self.url(), {"outcome": "abducted"}), 422)
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
        self.assert_error(
            self.api(self.w.block1, "post", self.url(), {"outcome": "contacted", "visited_at": future}), 400
        )
        self.assertEqual(self.snapshot(), before)


# --- persons --------------------------------------------------------------------------------------------------


class PersonListTests(RegistryApiCase):
    def test_access_matrix_and_scope(self):
        expected = expect(200, volunteer=403, observer=403, state_observer=403, nobody=403)
        answers = self.check_matrix("get", "/persons", expected)

        def names(role):
            return sorted(p["uuid"] for p in answers[role].json()["items"])

        self.assertEqual(names("block1"), [str(self.rosa.uuid)])
        self.assertEqual(names("sector2"), [str(self.pedro.uuid)])
        self.assertEqual(names("other_coord"), [str(self.alma.uuid)])
        self.assertEqual(len(names("coord")), 3)

    def test_search_by_name_curp_and_block(self):
        def found(user, query):
            response = self.api(user, "get", f"/persons?{query}")
            self.assertEqual(response.status_code, 200, response.content)
            return sorted(p["uuid"] for p in response.json()["items"])

        rosas = sorted([str(self.rosa.uuid), str(self.rosa2.uuid)])
        self.assertEqual(found(self.w.coord, "q=hernandez rosa"), rosas)
        self.assertEqual(found(self.w.coord, "q=HERNÁN"), rosas)
        self.assertEqual(found(self.w.block1, "q=rosa"), [str(self.rosa.uuid)])
        self.assertEqual(found(self.w.coord, f"q=rosa&block={self.w.b12.uuid}"), [str(self.rosa2.uuid)])
        self.assertEqual(found(self.w.coord, f"curp={PEDRO_CURP}"), [str(self.pedro.uuid)])
        self.assertEqual(found(self.w.coord, f"q={PEDRO_CURP}"), [str(self.pedro.uuid)])
        self.assertEqual(found(self.w.coord, f"household={self.h21.uuid}"), [str(self.pedro.uuid)])
        self.assertEqual(found(self.w.sector2, "q=rosa"), [])
        self.assertEqual(found(self.w.other_coord, f"curp={PEDRO_CURP}"), [])
        self.assert_error(self.api(self.w.sector2, "get", f"/persons?block={self.w.b11.uuid}"), 404)
        self.assert_error(self.api(self.w.coord, "get", f"/persons?household={uuid.uuid4()}"), 404)

    def test_no_sensitive_data_in_person_answers(self):
        for user in (self.w.caseworker, self.w.coord):
            for path in ("/persons", f"/persons/{self.rosa.uuid}", f"/households/{self.h11.uuid}"):
                text = self.api(user, "get", path).content.decode()
                self.assertNotIn(SECRET, text)
                self.assertNotIn("sensitive_data", text)
                self.assertNotIn('"disability"', text.replace('"factor": "disability"', ""))


class PersonCreateTests(RegistryApiCase):
    def url(self, household=None):
        return f"/households/{(household or self.h11).uuid}/persons"

    payload = {
        "full_name": "Luis Hernández Luna",
        "birth_date": "1990-06-01",
        "relation": "child",
        "sex": "H",
    }

    def test_access_matrix(self):
        self.check_matrix("post", self.url(), sees_b11(201), self.payload)
        self.check_refusals_write_nothing("post", self.url(), sees_b11(201), self.payload)
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.person.create").exclude(outcome=Outcome.OK).count(), 6
        )

    def test_a_person_is_added_with_possible_duplicates(self):
        response = self.api(
            self.w.block1,
            "post",
            self.url(),
            {"full_name": "Pedro Gómez López", "curp": PEDRO_CURP.lower(), "phone": "+52 1 81 5555 6666"},
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual((body["curp"], body["phone"], body["sex"]), (PEDRO_CURP, "+528155556666", "H"))
        self.assertEqual(
            (body["given_name"], body["surname1"], body["surname2"]), ("Pedro", "Gómez", "López")
        )
        [hint] = body["possible_duplicates"]
        self.assertEqual(hint["person"], str(self.pedro.uuid))
        self.assertGreater(hint["score"], 0.5)
        self.assertTrue(hint["reasons"])
        self.assertTrue(DuplicateCandidate.objects.filter(uuid=hint["candidate"]).exists())
        self.assertNotIn("sensitive", json.dumps(body).replace("sensitive_", ""))

    def test_a_new_person_without_duplicates(self):
        response = self.api(self.w.coord, "post", self.url(), self.payload)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["possible_duplicates"], [])
        self.assertEqual(response.json()["birth_year"], 1990)

    def test_bad_input_says_why_and_writes_nothing(self):
        before = self.snapshot()
        wrong_check = ROSA_CURP[:17] + str((int(ROSA_CURP[17]) + 1) % 10)
        cases = [
            ({**self.payload, "curp": "HELR540312MNLRNS0"}, 400, "curp", "18 characters"),
            ({**self.payload, "curp": wrong_check}, 400, "curp", "check digit"),
            ({**self.payload, "phone": "12345"}, 400, "phone", "10 digits"),
            ({**self.payload, "factors": ["astrology"]}, 400, "factors", "astrology"),
            (
                {**self.payload, "factors": ["disability"]},
                400,
                "factors",
                "disability",
            ),  # sensitive: not here
            ({**self.payload, "birth_date": "2999-01-01"}, 400, "birth_date", "plausible"),
            ({**self.payload, "age": 130, "birth_date": None}, 400, "age", "120"),
            ({**self.payload, "full_name": "   "}, 400, "full_name", "required"),
            ({**self.payload, "birth_date": "1990-13-45"}, 422, None, None),
            ({**self.payload, "sex": "Q"}, 422, None, None),
            ({"curp": ROSA_CURP}, 422, None, None),
        ]
        for payload, status, field, reason in cases:
            with self.subTest(payload=payload):
                response = self.api(self.w.coord, "post", self.url(), payload)
                body = self.assert_error(response, status)
                if field:
                    self.assertIn(["body", field], self.loc(response))
                    self.assertIn(reason, json.dumps(body, ensure_ascii=False))
        for key in (uuid.uuid4(), "nope", self.ha.uuid):
            self.assert_error(self.api(self.w.coord, "post", f"/households/{key}/persons", self.payload), 404)
        self.assertEqual(self.snapshot(), before)

    def test_refused_input_is_audited_without_personal_data(self):
        self.api(self.w.coord, "post", self.url(), {**self.payload, "curp": "HELR540312MNLRNS0"})
        event = AuditEvent.objects.get(action="registry.person.create", outcome=Outcome.REJECTED)
        self.assertNotIn("HELR", event.summary + json.dumps(event.changes))
        self.assertNotIn("Luis", event.summary + json.dumps(event.changes))


class PersonDetailTests(RegistryApiCase):
    def url(self, person=None):
        return f"/persons/{(person or self.rosa).uuid}"

    def test_access_matrix(self):
        answers = self.check_matrix("get", self.url(), sees_b11(200))
        body = answers["operator"].json()
        self.assertEqual((body["full_name"], body["curp"], body["phone"]), (
            "Rosa Hernández Luna", ROSA_CURP, "+528112340000"
        ))  # fmt: skip
        self.assertEqual(body["factors"], ["job_loss"])
        self.assertEqual(body["household"], str(self.h11.uuid))

    def test_update_matrix_and_effect(self):
        self.check_matrix("patch", self.url(), sees_b11(200), {"surname2": "Luna Díaz"})
        self.check_refusals_write_nothing("patch", self.url(), sees_b11(200), {"surname2": "Luna Díaz"})
        response = self.api(self.w.block1, "patch", self.url(), {"phone": "81 9999 0000", "factors": []})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual((response.json()["phone"], response.json()["factors"]), ("+528199990000", []))
        self.rosa.refresh_from_db()
        self.assertEqual(self.rosa.full_name, "Rosa Hernández Luna")

    def test_bad_updates_say_why(self):
        before = self.snapshot()
        response = self.api(self.w.coord, "patch", self.url(), {"curp": "XXXX", "phone": "123"})
        self.assert_error(response, 400)
        self.assertEqual(sorted(self.loc(response)), [["body", "curp"], ["body", "phone"]])
        self.assert_error(self.api(self.w.coord, "patch", f"/persons/{uuid.uuid4()}", {"phone": ""}), 404)
        self.assertEqual(self.snapshot(), before)


# --- sensitive data -------------------------------------------------------------------------------------------


def case_officer_only(ok: int) -> dict:
    return expect(404, caseworker=ok, coord=403, sector1=403, block1=403, operator=403)


class SensitiveTests(RegistryApiCase):
    def url(self, person=None):
        return f"/persons/{(person or self.rosa).uuid}/sensitive"

    def reads(self, outcome=Outcome.OK):
        return AuditEvent.objects.filter(action="registry.sensitive.read", outcome=outcome).count()

    def test_read_matrix_and_every_read_is_audited(self):
        before_ok, before_denied = self.reads(), self.reads(Outcome.DENIED)
        answers = self.check_matrix("get", self.url(), case_officer_only(200), rollback=False)
        body = answers["caseworker"].json()
        self.assertEqual(body["notes"], SECRET)
        self.assertEqual(body["factors"], [{"code": "disability", "label": "Disability"}])
        self.assertEqual(self.reads(), before_ok + 1)
        # The four who see the person but are not case officers: each refusal audited.
        self.assertEqual(self.reads(Outcome.DENIED), before_denied + 4)
        self.api(self.w.caseworker, "get", self.url())
        self.api(self.w.caseworker, "get", self.url())
        self.assertEqual(self.reads(), before_ok + 3)
        event = AuditEvent.objects.filter(action="registry.sensitive.read", outcome=Outcome.OK).latest("pk")
        self.assertEqual(
            (event.object_id, event.actor, event.channel), (str(self.rosa.uuid), self.w.caseworker, "api")
        )
        self.assertNotIn(SECRET, event.summary + json.dumps(event.changes))

    def test_write_matrix(self):
        payload = {"factors": ["violence_risk"], "notes": "ver con la trabajadora social"}
        self.check_matrix("put", self.url(), case_officer_only(200), payload)
        self.check_refusals_write_nothing("put", self.url(), case_officer_only(200), payload)
        refused = AuditEvent.objects.filter(action="registry.sensitive.update").exclude(outcome=Outcome.OK)
        self.assertEqual(refused.filter(summary="forbidden").count(), 4)
        self.assertEqual(refused.count(), 10)

    def test_a_case_officer_records_sensitive_data_encrypted(self):
        response = self.api(
            self.w.caseworker, "put", self.url(), {"factors": ["pregnancy"], "notes": "semana 20"}
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["factors"][0]["code"], "pregnancy")
        stored = Person.objects.get(pk=self.rosa.pk).sensitive_data
        self.assertNotIn("semana", stored)
        self.assertEqual(crypto.decrypt(stored)["notes"], "semana 20")

    def test_express_consent_is_required(self):
        before = self.snapshot()
        response = self.api(
            self.w.caseworker, "put", f"/persons/{self.pedro.uuid}/sensitive", {"factors": ["disability"]}
        )
        body = self.assert_error(response, 400)
        self.assertIn("express consent", body["detail"])
        bad = self.api(self.w.caseworker, "put", self.url(), {"factors": ["astrology"]})
        self.assertIn("astrology", self.assert_error(bad, 400)["detail"])
        self.assert_error(self.api(self.w.caseworker, "put", self.url(), {"notes": "x"}), 422)
        self.assertEqual(self.snapshot(), before)

    def test_other_municipalities_case_officers_do_not_see_it(self):
        self.assert_error(self.api(self.w.caseworker, "get", f"/persons/{self.alma.uuid}/sensitive"), 404)
        for key in (uuid.uuid4(), "nope"):
            self.assert_error(self.api(self.w.caseworker, "get", f"/persons/{key}/sensitive"), 404)


# --- consent --------------------------------------------------------------------------------------------------


class NoticeTests(RegistryApiCase):
    def url(self, muni=None):
        return f"/municipalities/{(muni or self.w.esc).uuid}/privacy-notices"

    field = expect(200, volunteer=403, observer=403, state_observer=403, other_coord=404, nobody=404)

    def test_list_and_current_matrix(self):
        answers = self.check_matrix("get", self.url(), self.field)
        self.assertEqual([n["version"] for n in answers["block1"].json()], ["2026-1"])
        purposes = answers["block1"].json()[0]["purposes"]
        self.assertEqual(
            [(p["code"], p["necessary"]) for p in purposes][:2], [("aid", True), ("contact", True)]
        )
        self.assertEqual(purposes[0]["label"], "Identify needs and deliver aid")
        answers = self.check_matrix("get", f"{self.url()}/current", self.field)
        self.assertEqual(answers["coord"].json()["uuid"], str(self.notice.uuid))
        self.assertEqual(
            self.api(self.w.coord, "get", "/municipalities/19021/privacy-notices/current").status_code, 200
        )

    def test_publish_matrix(self):
        payload = {"version": "2026-2", "text": "Nuevo aviso"}
        expected = expect(403, coord=201, other_coord=404, nobody=404)
        self.check_matrix("post", self.url(), expected, payload)
        self.check_refusals_write_nothing("post", self.url(), expected, payload)
        response = self.api(self.w.coord, "post", self.url(), {**payload, "purposes": [
            {"code": "aid", "necessary": True}, {"code": "raffle", "label": "Rifas"}
        ]})  # fmt: skip
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(self.api(self.w.block1, "get", f"{self.url()}/current").json()["version"], "2026-2")

    def test_publish_refuses_bad_input(self):
        before = self.snapshot()
        self.assert_error(self.api(self.w.coord, "post", self.url(), {"version": "2026-1", "text": "x"}), 400)
        self.assert_error(self.api(self.w.coord, "post", self.url(), {"version": " ", "text": "x"}), 400)
        dup = {"version": "9", "text": "x", "purposes": [{"code": "aid"}, {"code": "aid"}]}
        self.assert_error(self.api(self.w.coord, "post", self.url(), dup), 400)
        self.assert_error(self.api(self.w.coord, "post", self.url(), {"text": "x"}), 422)
        self.assertEqual(self.snapshot(), before)


class ConsentTests(RegistryApiCase):
    def url(self, person=None):
        return f"/persons/{(person or self.rosa).uuid}/consents"

    payload = {"purposes": ["aid", "contact", "messages"], "channel": "phone"}

    def test_list_matrix(self):
        answers = self.check_matrix("get", self.url(), sees_b11(200))
        [consent] = answers["block1"].json()
        self.assertEqual(
            (consent["sensitive"], consent["active"], consent["notice_version"]), (True, True, "2026-1")
        )

    def test_create_matrix_and_replacement(self):
        self.check_matrix("post", self.url(), sees_b11(201), self.payload)
        self.check_refusals_write_nothing("post", self.url(), sees_b11(201), self.payload)
        response = self.api(self.w.block1, "post", self.url(), {**self.payload, "sensitive": True})
        self.assertEqual(response.status_code, 201, response.content)
        listed = self.api(self.w.block1, "get", self.url()).json()
        self.assertEqual([c["active"] for c in listed], [True, False])

    def test_withdrawing_sensitive_consent_erases_sensitive_data(self):
        response = self.api(self.w.block1, "post", self.url(), self.payload)
        self.assertEqual(response.status_code, 201)
        self.assertEqual(Person.objects.get(pk=self.rosa.pk).sensitive_data, "")

    def test_bad_consents_say_why(self):
        before = self.snapshot()
        missing = self.api(self.w.block1, "post", self.url(), {"purposes": ["messages"], "channel": "phone"})
        self.assertIn("necessary", self.assert_error(missing, 400)["detail"])
        unknown = self.api(
            self.w.block1, "post", self.url(), {**self.payload, "purposes": ["aid", "contact", "spam"]}
        )
        self.assertIn("spam", self.assert_error(unknown, 400)["detail"])
        self.assert_error(
            self.api(self.w.block1, "post", self.url(), {**self.payload, "channel": "telepathy"}), 422
        )
        foreign = PrivacyNotice.objects.get(municipality=self.w.aca)
        response = self.api(self.w.block1, "post", self.url(), {**self.payload, "notice": str(foreign.uuid)})
        self.assert_error(response, 404)
        self.assertEqual(self.loc(response), [["body", "notice"]])
        self.assertEqual(self.snapshot(), before)

    def test_revoke_matrix(self):
        url = f"/consents/{self.consent.uuid}/revoke"
        self.check_matrix("post", url, sees_b11(200), {"reason": "Lo pidió"})
        self.check_refusals_write_nothing("post", url, sees_b11(200), {"reason": "Lo pidió"})
        response = self.api(self.w.block1, "post", url, {"reason": "Lo pidió"})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertFalse(response.json()["active"])
        self.assertEqual(Person.objects.get(pk=self.rosa.pk).sensitive_data, "")
        self.assertIn("already", self.assert_error(self.api(self.w.block1, "post", url, {}), 400)["detail"])
        self.assert_error(self.api(self.w.coord, "post", f"/consents/{uuid.uuid4()}/revoke", {}), 404)


# --- data-subject requests ------------------------------------------------------------------------------------


def managers(ok: int, seen_by: tuple = ("sector1", "block1", "operator", "caseworker")) -> dict:
    """Record endpoints for coordinators: 403 for those who see the record, 404 for the rest."""
    return expect(404, coord=ok, **dict.fromkeys(seen_by, 403))


class DataRequestTests(RegistryApiCase):
    def test_list_matrix_with_deadlines(self):
        expected = expect(403, coord=200, other_coord=200)
        answers = self.check_matrix("get", "/data-requests", expected)
        [item] = answers["coord"].json()["items"]
        self.assertEqual(item["uuid"], str(self.request11.uuid))
        self.assertEqual(item["due_on"], self.request11.due_on.isoformat())
        self.assertEqual(item["days_left"], (self.request11.due_on - dt.date.today()).days)
        self.assertGreaterEqual(item["days_left"], 20)
        self.assertEqual(answers["other_coord"].json()["items"], [])

    def test_create_matrix(self):
        url = f"/persons/{self.rosa.uuid}/data-requests"
        payload = {"kind": "rectification", "changes": {"surname2": "Díaz"}}
        self.check_matrix("post", url, sees_b11(201), payload)
        self.check_refusals_write_nothing("post", url, sees_b11(201), payload)
        before = self.snapshot()
        self.assert_error(self.api(self.w.block1, "post", url, {"kind": "rectification"}), 400)
        self.assert_error(self.api(self.w.block1, "post", url, {"kind": "objection"}), 400)
        self.assert_error(
            self.api(self.w.block1, "post", url, {"kind": "rectification", "changes": {"curp": "X"}}), 400
        )
        self.assert_error(self.api(self.w.block1, "post", url, {"kind": "revenge"}), 422)
        self.assertEqual(self.snapshot(), before)

    def test_answer_and_reject_matrix(self):
        for action in ("answer", "reject"):
            url = f"/data-requests/{self.request11.uuid}/{action}"
            self.check_matrix("post", url, managers(200), {"response": "Entregado"})
            self.check_refusals_write_nothing("post", url, managers(200), {"response": "Entregado"})

    def test_answering_carries_the_request_out(self):
        rect = services.open_data_request(self.rosa, "rectification", changes={"phone": "81 7777 6666"})
        response = self.api(
            self.w.coord, "post", f"/data-requests/{rect.uuid}/answer", {"response": "Corregido"}
        )
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["status"], "answered")
        self.assertEqual(Person.objects.get(pk=self.rosa.pk).phone, "+528177776666")
        again = self.api(self.w.coord, "post", f"/data-requests/{rect.uuid}/answer", {})
        self.assertIn("already", self.assert_error(again, 400)["detail"])
        reject = self.api(self.w.coord, "post", f"/data-requests/{self.request11.uuid}/reject", {})
        self.assertIn("why", self.assert_error(reject, 400)["detail"])
        self.assertEqual(DataRequest.objects.get(pk=self.request11.pk).status, "open")


class ExportTests(RegistryApiCase):
    def url(self, person=None):
        return f"/persons/{(person or self.rosa).uuid}/export"

    def test_matrix(self):
        expected = expect(404, coord=200, caseworker=200, sector1=403, block1=403, operator=403)
        reads = AuditEvent.objects.filter(action="registry.sensitive.read", outcome=Outcome.OK).count()
        answers = self.check_matrix("get", self.url(), expected, rollback=False)
        coord = answers["coord"].json()
        self.assertEqual((coord["curp"], coord["household"]["uuid"]), (ROSA_CURP, str(self.h11.uuid)))
        self.assertNotIn(SECRET, json.dumps(coord))
        self.assertIn("case officer", coord["sensitive"])
        officer = answers["caseworker"].json()
        self.assertEqual(officer["sensitive"]["notes"], SECRET)
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.sensitive.read", outcome=Outcome.OK).count(), reads + 1
        )
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.person.export", outcome=Outcome.OK).count(), 2
        )


# --- duplicates -----------------------------------------------------------------------------------------------


class DuplicateTests(RegistryApiCase):
    def candidate(self):
        return DuplicateCandidate.objects.get(
            person_a__in=[self.rosa, self.rosa2], person_b__in=[self.rosa, self.rosa2]
        )

    def test_queue_matrix(self):
        expected = expect(403, coord=200, other_coord=200)
        answers = self.check_matrix("get", "/duplicates", expected)
        [item] = answers["coord"].json()["items"]
        self.assertEqual(item["uuid"], str(self.candidate().uuid))
        self.assertEqual(
            {item["person_a"]["uuid"], item["person_b"]["uuid"]}, {str(self.rosa.uuid), str(self.rosa2.uuid)}
        )
        self.assertIn("curp_same", json.dumps(item["reasons"]))
        self.assertEqual(answers["other_coord"].json()["items"], [])

    def test_decide_matrix(self):
        url = f"/duplicates/{self.candidate().uuid}/decide"
        # The pair sits on block S01-M002: block1 does not see it.
        expected = managers(200, seen_by=("sector1", "operator", "caseworker"))
        self.check_matrix("post", url, expected, {"same": False})
        self.check_refusals_write_nothing("post", url, expected, {"same": True})

    def test_merge_keeps_the_one_chosen(self):
        url = f"/duplicates/{self.candidate().uuid}/decide"
        response = self.api(self.w.coord, "post", url, {"same": True, "keep": str(self.rosa2.uuid)})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["status"], "merged")
        self.assertEqual(Person.objects.get(pk=self.rosa.pk).merged_into_id, self.rosa2.pk)
        self.assertIn(
            "already", self.assert_error(self.api(self.w.coord, "post", url, {"same": False}), 400)["detail"]
        )

    def test_keep_must_be_one_of_the_pair(self):
        before = self.snapshot()
        url = f"/duplicates/{self.candidate().uuid}/decide"
        response = self.api(self.w.coord, "post", url, {"same": True, "keep": str(self.pedro.uuid)})
        self.assert_error(response, 400)
        self.assertEqual(self.loc(response), [["body", "keep"]])
        self.assert_error(self.api(self.w.coord, "post", url, {"keep": str(self.rosa.uuid)}), 422)
        self.assert_error(
            self.api(self.w.coord, "post", f"/duplicates/{uuid.uuid4()}/decide", {"same": False}), 404
        )
        self.assertEqual(self.snapshot(), before)


# --- weights and counts ---------------------------------------------------------------------------------------


class PolicyTests(RegistryApiCase):
    def url(self, muni=None):
        return f"/municipalities/{(muni or self.w.esc).uuid}/registry-policy"

    expected = expect(403, coord=200, other_coord=404, nobody=404)

    def test_read_matrix(self):
        answers = self.check_matrix("get", self.url(), self.expected)
        body = answers["coord"].json()
        weights = {w["factor"]: (w["weight"], w["default"]) for w in body["weights"]}
        self.assertEqual(weights["older_adult"], (25, 25))
        self.assertEqual(body["priority_threshold"], 40)
        self.assertEqual(
            self.api(self.w.coord, "get", "/municipalities/19021/registry-policy").status_code, 200
        )

    def test_write_matrix_and_recompute(self):
        payload = {"weights": {"older_adult": 50}, "priority_threshold": 90}
        self.check_matrix("put", self.url(), self.expected, payload)
        self.check_refusals_write_nothing("put", self.url(), self.expected, payload)
        response = self.api(self.w.coord, "put", self.url(), payload)
        self.assertEqual(response.status_code, 200, response.content)
        weights = {w["factor"]: w["weight"] for w in response.json()["weights"]}
        self.assertEqual((weights["older_adult"], response.json()["priority_threshold"]), (50, 90))
        self.h11.refresh_from_db()
        self.assertEqual(self.h11.priority, 100)  # 50 + 20 + 15 + 20, capped

    def test_bad_weights_say_why(self):
        before = self.snapshot()
        for payload, reason in (
            ({"weights": {"astrology": 3}}, "astrology"),
            ({"weights": {"older_adult": 500}}, "older_adult"),
            ({"weights": {}, "priority_threshold": 101}, "threshold"),
        ):
            with self.subTest(payload=payload):
                body = self.assert_error(self.api(self.w.coord, "put", self.url(), payload), 400)
                self.assertIn(reason, body["detail"])
        self.assert_error(self.api(self.w.coord, "put", self.url(), {"weights": "heavy"}), 422)
        self.assertEqual(self.snapshot(), before)


class CountsTests(RegistryApiCase):
    def url(self, node):
        return f"/nodes/{node.uuid}/registry-counts"

    def test_matrix_on_a_sector(self):
        expected = expect(
            404, coord=200, sector1=200, operator=200, caseworker=200, observer=200, state_observer=200,
            volunteer=403,
        )  # fmt: skip
        answers = self.check_matrix("get", self.url(self.w.s1), expected)
        body = answers["observer"].json()
        self.assertEqual((body["households"], body["persons"], body["priority_households"]), (2, 2, 1))
        self.assertEqual([(c["node"]["code"], c["households"]) for c in body["children"]], [
            ("S01-M001", 1), ("S01-M002", 1)
        ])  # fmt: skip
        self.assertEqual(answers["state_observer"].json(), body)

    def test_observers_roll_up_the_municipality_and_the_nation(self):
        body = self.api(self.w.observer, "get", self.url(self.w.esc_node)).json()
        self.assertEqual((body["households"], body["persons"]), (3, 3))
        self.assertEqual(
            [(c["node"]["code"], c["persons"]) for c in body["children"]], [("S01", 2), ("S02", 1)]
        )
        nation = self.api(self.w.observer, "get", self.url(self.w.nation))
        self.assertEqual(nation.json()["households"], 4)
        self.assert_nothing_registry_personal(nation)
        self.assert_error(self.api(self.w.state_observer, "get", self.url(self.w.aca_node)), 404)
        leaf = self.api(self.w.block1, "get", self.url(self.w.b11)).json()
        self.assertEqual((leaf["households"], leaf["children"]), (1, []))


class ObserversSeeNothingPersonalTests(RegistryApiCase):
    """Every registry GET, as an observer: counts at most, never a name, phone or CURP."""

    def test_every_read(self):
        paths = [
            "/households",
            f"/households/{self.h11.uuid}",
            f"/households/{self.h11.uuid}/visits",
            "/persons",
            "/persons?q=rosa",
            f"/persons?curp={ROSA_CURP}",
            f"/persons/{self.rosa.uuid}",
            f"/persons/{self.rosa.uuid}/sensitive",
            f"/persons/{self.rosa.uuid}/consents",
            f"/persons/{self.rosa.uuid}/export",
            f"/municipalities/{self.w.esc.uuid}/privacy-notices",
            f"/municipalities/{self.w.esc.uuid}/privacy-notices/current",
            f"/municipalities/{self.w.esc.uuid}/registry-policy",
            "/data-requests",
            "/duplicates",
            f"/nodes/{self.w.esc_node.uuid}/registry-counts",
            f"/nodes/{self.w.b11.uuid}/registry-counts",
        ]
        for role in OBSERVERS:
            for path in paths:
                with self.subTest(role=role, path=path):
                    response = self.call(role, "get", path)
                    ok = "registry-counts" in path
                    self.assertEqual(response.status_code, 200 if ok else response.status_code)
                    if not ok:
                        self.assertIn(response.status_code, (403, 404))


# --- the OpenAPI document -------------------------------------------------------------------------------------

REGISTRY_ENDPOINTS = {
    "/api/v1/households": {"get", "post"},
    "/api/v1/households/{uuid}": {"get", "patch"},
    "/api/v1/households/{uuid}/visits": {"get", "post"},
    "/api/v1/households/{uuid}/persons": {"post"},
    "/api/v1/persons": {"get"},
    "/api/v1/persons/{uuid}": {"get", "patch"},
    "/api/v1/persons/{uuid}/sensitive": {"get", "put"},
    "/api/v1/persons/{uuid}/consents": {"get", "post"},
    "/api/v1/persons/{uuid}/data-requests": {"post"},
    "/api/v1/persons/{uuid}/export": {"get"},
    "/api/v1/consents/{uuid}/revoke": {"post"},
    "/api/v1/municipalities/{uuid}/privacy-notices": {"get", "post"},
    "/api/v1/municipalities/{uuid}/privacy-notices/current": {"get"},
    "/api/v1/municipalities/{uuid}/registry-policy": {"get", "put"},
    "/api/v1/municipalities/{uuid}/registry-imports": {"post"},
    "/api/v1/data-requests": {"get"},
    "/api/v1/data-requests/{uuid}/answer": {"post"},
    "/api/v1/data-requests/{uuid}/reject": {"post"},
    "/api/v1/duplicates": {"get"},
    "/api/v1/duplicates/{uuid}/decide": {"post"},
    "/api/v1/nodes/{uuid}/registry-counts": {"get"},
    "/api/v1/registry-imports/{uuid}": {"get"},
    "/api/v1/registry-imports/{uuid}/mapping": {"put"},
    "/api/v1/registry-imports/{uuid}/preview": {"get"},
    "/api/v1/registry-imports/{uuid}/start": {"post"},
}


class RegistryOpenApiTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        pass

    def setUp(self):
        self.doc = json.loads(Client().get("/api/v1/openapi.json").content)

    def test_it_lists_every_registry_operation_with_a_description(self):
        paths = self.doc["paths"]
        registry = {
            path: {m for m, op in ops.items() if "Registry" in op["tags"]} for path, ops in paths.items()
        }
        registry = {p: m for p, m in registry.items() if m}
        self.assertEqual(registry, REGISTRY_ENDPOINTS)
        for path, methods in REGISTRY_ENDPOINTS.items():
            for method in methods:
                with self.subTest(method=method, path=path):
                    operation = paths[path][method]
                    self.assertTrue(operation.get("summary"))
                    self.assertGreater(len(operation.get("description", "")), 15)
                    self.assertEqual(operation["tags"], ["Registry"])
                    for status in ("401", "404", "422"):
                        self.assertIn(status, operation["responses"])
                    if method != "get":
                        self.assertIn("400", operation["responses"])
                        self.assertIn("403", operation["responses"])

    def test_no_schema_carries_sensitive_data_but_the_case_officers(self):
        schemas = self.doc["components"]["schemas"]
        for name, schema in schemas.items():
            if name in ("SensitiveOut", "SensitiveIn", "SensitiveFactor"):
                continue
            with self.subTest(schema=name):
                self.assertNotIn("sensitive_data", schema.get("properties", {}))
                self.assertNotIn("notes", schema.get("properties", {}))
        self.assertIn("curp", schemas["PersonIn"]["properties"])
        self.assertEqual(schemas["PersonIn"]["properties"]["curp"]["anyOf"][0]["type"], "string")
