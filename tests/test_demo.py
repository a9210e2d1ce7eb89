"""``redes demo`` and its generator: deterministic data, the seven logins, vacant posts, a sane street grid, and
the demo's populated registry (households, consents, encrypted sensitive data, duplicates, ARCO requests)."""

import datetime as dt
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import TestCase
from shapely.geometry import Point, shape

from redes.accounts.models import Membership, User
from redes.accounts.roles import Role
from redes.audit.models import AuditEvent
from redes.core.geo import clean_geometry
from redes.core.phones import normalize_phone
from redes.demo.generator import DEMO_PASSWORD, build_demo
from redes.demo.registry import ESCOBEDO_POSTAL_CODES
from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import coverage, vacant_posts
from redes.registry import crypto, queries, services, vulnerability
from redes.registry.models import (
    BlockCounts,
    Consent,
    DataRequest,
    DuplicateCandidate,
    Household,
    Person,
    Phone,
    PrivacyNotice,
    Visit,
)
from redes.territories.models import Municipality, Node, NodeKind
from redes.territories.services import create_municipality

from .base import RedesTestCase

LOGINS = {
    "coordinacion": Role.COORDINATOR,
    "sector1": Role.SECTOR_LIAISON,
    "manzana1": Role.BLOCK_LIAISON,
    "observador": Role.NATIONAL_OBSERVER,
    "operador": Role.HOTLINE_OPERATOR,
    "caso": Role.CASE_OFFICER,
    "voluntario": Role.VOLUNTEER,
}


def snapshot() -> dict:
    return {
        "nodes": list(
            Node.objects.order_by("municipality__code", "depth", "code").values_list(
                "code", "name", "depth", "parent__code", "geometry", "centroid_lat", "centroid_lon"
            )
        ),
        "liaisons": list(
            LiaisonAssignment.objects.order_by("node__code", "start_date", "id").values_list(
                "node__code", "full_name", "phone", "start_date", "end_date", "end_reason", "user__username"
            )
        ),
        "users": list(User.objects.order_by("username").values_list("username", "full_name", "phone")),
        "persons": list(
            Person.objects.order_by("pk").values_list(
                "full_name", "birth_date", "birth_year", "curp", "phone", "relation", "factors", "node__code"
            )
        ),
        "households": list(
            Household.objects.order_by("pk").values_list(
                "node__code", "street", "ext_number", "colonia", "postal_code", "lat", "lon", "priority"
            )
        ),
        "counts": [
            model.objects.count()
            for model in (Household, Person, Phone, Consent, Visit, DuplicateCandidate, DataRequest)
        ],
    }


def built_and_rolled_back(seed: int) -> dict:
    with transaction.atomic():
        build_demo(seed=seed)
        data = snapshot()
        transaction.set_rollback(True)
    return data


class GeneratorDeterminismTest(TestCase):
    def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(self):
        first = built_and_rolled_back(1)
        again = built_and_rolled_back(1)
        other = built_and_rolled_back(2)
        self.assertEqual(first, again)
        self.assertTrue(first["liaisons"])
        self.assertTrue(first["persons"])
        for key in ("nodes", "liaisons", "users", "persons", "households"):
            self.assertNotEqual(first[key], other[key], key)
        # The logins (users with a password) are the same seven whatever the seed; their people differ. The
        # liaisons' accounts without a password (reached by message) follow the seed's held posts.
        logins = [u[0] for u in first["users"] if not u[0].startswith("enlace-")]
        self.assertEqual(logins, [u[0] for u in other["users"] if not u[0].startswith("enlace-")])
        self.assertEqual(len(logins), 7)


class DemoDataTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.result = build_demo(seed=1)
        cls.esc = cls.result.escobedo
        cls.aca = cls.result.acapulco

    def test_it_creates_the_seven_logins_with_the_demo_password_and_their_roles(self):
        for username, role in LOGINS.items():
            user = User.objects.get(username=username)
            self.assertTrue(user.check_password(DEMO_PASSWORD), username)
            self.assertTrue(user.full_name)
            memberships = list(Membership.objects.active().filter(user=user))
            self.assertEqual([m.role for m in memberships], [role], username)
        node_of = {m.user.username: m.node for m in Membership.objects.select_related("user", "node")}
        self.assertEqual(node_of["coordinacion"], self.esc.node)
        self.assertEqual(node_of["operador"], self.esc.node)
        self.assertEqual(node_of["caso"], self.esc.node)
        self.assertEqual(node_of["observador"].kind, NodeKind.NATION)
        self.assertEqual(node_of["sector1"].code, "S01")
        self.assertEqual(node_of["manzana1"].parent, node_of["sector1"])
        self.assertEqual(node_of["voluntario"], node_of["sector1"])

    def test_sector1_and_manzana1_hold_the_liaison_posts_of_their_nodes(self):
        for username in ("sector1", "manzana1"):
            user = User.objects.get(username=username)
            node = Membership.objects.get(user=user).node
            post = LiaisonAssignment.objects.active().get(node=node)
            self.assertEqual(post.user, user)
            self.assertEqual(post.full_name, user.full_name)
            self.assertEqual(post.phone, user.phone)

    def test_escobedo_has_14_sectors_of_10_to_25_blocks_with_inegi_style_keys(self):
        self.assertEqual((self.esc.code, self.esc.name), ("19021", "General Escobedo"))
        self.assertEqual(self.esc.level_names(), ["Sector", "Manzana"])
        self.assertEqual(self.esc.node.parent.name, "Nuevo León")
        sectors = Node.objects.filter(municipality=self.esc, depth=3)
        self.assertEqual(sectors.count(), 14)
        for sector in sectors:
            blocks = Node.objects.subtree(sector, include_self=False)
            self.assertTrue(10 <= blocks.count() <= 25, sector.code)
            for code in blocks.values_list("code", flat=True):
                self.assertEqual(len(code), 16)
                self.assertTrue(code.startswith("190210001"))
        self.assertEqual(self.aca.level_names(), ["Sector", "Zona", "Grupo", "Manzana"])
        self.assertTrue(Node.objects.filter(municipality=self.aca, depth=6).exists())

    def test_blocks_are_disjoint_rectangles_inside_their_sector_near_the_real_centre(self):
        for sector in Node.objects.filter(municipality=self.esc, depth=3):
            outline = shape(sector.geometry)
            blocks = [shape(b.geometry) for b in Node.objects.subtree(sector, include_self=False)]
            for i, block in enumerate(blocks):
                self.assertTrue(outline.contains(block), sector.code)
                for other in blocks[i + 1 :]:
                    self.assertFalse(block.intersects(other))
        for node in Node.objects.filter(municipality=self.esc):
            _, lat, lon = clean_geometry(node.geometry)
            self.assertAlmostEqual(node.centroid_lat, lat, places=5)
            self.assertAlmostEqual(node.centroid_lon, lon, places=5)
            self.assertTrue(25.74 < lat < 25.84 and -100.37 < lon < -100.27, node.code)

    def test_it_leaves_about_a_sixth_of_the_posts_vacant_and_keeps_past_liaisons(self):
        cov = coverage(self.esc.node)
        self.assertTrue(0.12 <= cov.vacant / cov.total <= 0.23, cov)
        self.assertEqual(vacant_posts(self.esc.node).count(), cov.vacant)
        self.assertTrue(
            LiaisonAssignment.objects.filter(municipality=self.esc, end_date__isnull=False).exists()
        )
        for phone in LiaisonAssignment.objects.values_list("phone", flat=True):
            self.assertEqual(normalize_phone(phone), phone)
            self.assertTrue(phone.startswith(("+5281", "+52744")))

    def test_every_write_is_audited_on_the_system_channel(self):
        events = AuditEvent.objects.all()
        self.assertTrue(events.filter(action="liaisons.assignment.create").exists())
        self.assertEqual(set(events.values_list("channel", flat=True)), {"system"})


class DemoRegistryTest(TestCase):
    """The demo municipality's registry: what a coordinator, a block liaison and a case officer will find."""

    @classmethod
    def setUpTestData(cls):
        cls.result = build_demo(seed=1)
        cls.esc = cls.result.escobedo
        cls.users = {u.username: u for u in User.objects.all()}
        cls.block = Membership.objects.get(user__username="manzana1").node

    def test_a_few_thousand_households_of_about_three_and_a_half_persons_with_consent_for_most(self):
        households = Household.objects.filter(municipality=self.esc)
        persons = Person.objects.filter(municipality=self.esc)
        self.assertTrue(2000 <= households.count() <= 5000, households.count())
        self.assertTrue(3.0 <= persons.count() / households.count() <= 4.0)
        with_consent = Consent.objects.filter(municipality=self.esc, revoked_at__isnull=True)
        self.assertTrue(0.8 <= with_consent.count() / persons.count() < 1.0)
        notice = PrivacyNotice.objects.get(municipality=self.esc)
        self.assertEqual(set(with_consent.values_list("notice", flat=True)), {notice.pk})
        for purposes in with_consent.values_list("purposes", flat=True)[:500]:
            self.assertLessEqual({"aid", "contact"}, set(purposes))
        # Nothing in another municipality (the scale path is off by default).
        self.assertFalse(Person.objects.exclude(municipality=self.esc).exists())

    def test_addresses_are_local_and_points_lie_inside_their_block(self):
        households = list(Household.objects.filter(municipality=self.esc).select_related("node"))
        self.assertTrue(all(h.postal_code in ESCOBEDO_POSTAL_CODES for h in households))
        self.assertTrue(all(h.street and h.ext_number and h.colonia for h in households))
        for h in households[::25]:
            self.assertTrue(shape(h.node.geometry).contains(Point(h.lon, h.lat)), h.pk)
            self.assertEqual(h.node.municipality_id, self.esc.pk)
            self.assertFalse(Node.objects.filter(parent=h.node).exists())  # a block, not a sector
        colonias = {h.colonia for h in households}
        self.assertTrue(10 <= len(colonias) <= 18, colonias)

    def test_phones_mostly_whatsapp_some_sms_only_some_none(self):
        total = Household.objects.filter(municipality=self.esc).count()
        whatsapp = Household.objects.filter(municipality=self.esc, phones__whatsapp=True).distinct().count()
        sms_only = Phone.objects.filter(municipality=self.esc, whatsapp=False, sms=True).count()
        none = Household.objects.filter(municipality=self.esc, phones__isnull=True).count()
        self.assertTrue(0.7 <= whatsapp / total <= 0.85)
        self.assertTrue(0.05 <= sms_only / total <= 0.2)
        self.assertTrue(0.05 <= none / total <= 0.15)
        self.assertEqual(
            none, Household.objects.filter(municipality=self.esc, preferred_channel="visit").count()
        )
        for number in Phone.objects.values_list("number", flat=True)[:200]:
            self.assertEqual(normalize_phone(number), number)
            self.assertTrue(number.startswith("+5281"))

    def test_vulnerable_persons_at_plausible_rates_and_priorities_explained(self):
        persons = Person.objects.filter(municipality=self.esc)
        n = persons.count()
        today = dt.date.today()
        older = persons.filter(birth_year__lte=today.year - 60).count()
        children = persons.filter(birth_year__gte=today.year - 4).count()
        self.assertTrue(0.03 <= older / n <= 0.3, older / n)
        self.assertTrue(0.01 <= children / n <= 0.2, children / n)
        factors = [f for fs in persons.values_list("factors", flat=True) for f in fs]
        for code in ("job_loss", "no_income", "food_insecurity", "no_phone", "single_caregiver"):
            self.assertIn(code, factors)
        self.assertTrue(0.02 <= factors.count("job_loss") / n <= 0.1)
        self.assertTrue(set(factors) <= set(vulnerability.DECLARED))
        priority = Household.objects.filter(municipality=self.esc, priority__gte=40)
        self.assertTrue(priority.exists())
        self.assertTrue(all(h.priority_explanation for h in priority[:50]))

    def test_sensitive_data_is_stored_encrypted_only_with_express_consent(self):
        held = Person.objects.filter(municipality=self.esc).exclude(sensitive_data="")
        self.assertTrue(4 <= held.count() <= 40, held.count())
        notes = set()
        for person in held:
            self.assertTrue(person.sensitive_data.startswith("gAAAAA"))  # a Fernet token
            for code in vulnerability.SENSITIVE:
                self.assertNotIn(code, person.sensitive_data)
            data = crypto.decrypt(person.sensitive_data)
            self.assertTrue(data["factors"])
            self.assertLessEqual(set(data["factors"]), set(vulnerability.SENSITIVE))
            notes.add(data["notes"])
            self.assertTrue(services.active_consent(person).sensitive)
            self.assertFalse(set(person.factors) & set(vulnerability.SENSITIVE))
        notes.discard("")
        self.assertTrue(notes)
        # The clear text is nowhere else: not in another column, not in the audit trail.
        for note in notes:
            self.assertFalse(Person.objects.filter(full_name__contains=note).exists())
            self.assertFalse(AuditEvent.objects.filter(changes__icontains=note).exists())
            self.assertFalse(AuditEvent.objects.filter(summary__icontains=note).exists())
        updates = AuditEvent.objects.filter(action="registry.sensitive.update")
        self.assertEqual(updates.count(), held.count())
        self.assertEqual(set(updates.values_list("actor__username", flat=True)), {"caso"})
        # Their households' priority counts them, folded as "protected" for everyone (stored folded).
        household = held.filter(node=self.block).first().household
        self.assertTrue(any(line["sensitive"] for line in household.priority_explanation))
        liaison_view = services.explain_priority(household, self.users["manzana1"])
        self.assertIn("protected", [line["factor"] for line in liaison_view])
        self.assertFalse(any(line["factor"] in vulnerability.SENSITIVE for line in liaison_view))
        self.assertFalse(any(code in str(household.priority_explanation) for code in vulnerability.SENSITIVE))

    def test_the_block_liaison_has_households_to_census_some_not_visited_yet(self):
        liaison = self.users["manzana1"]
        mine = queries.block_households(liaison, self.block)
        self.assertGreaterEqual(mine.count(), 16)
        unvisited = queries.block_households(liaison, self.block, unvisited=True).count()
        self.assertTrue(0 < unvisited < mine.count())
        self.assertEqual(queries.households(liaison).exclude(node=self.block).count(), 0)
        visits = Visit.objects.filter(node=self.block)
        self.assertTrue(visits.exists())
        self.assertEqual(set(visits.values_list("visited_by__username", flat=True)), {"manzana1"})
        self.assertEqual(
            set(Consent.objects.filter(node=self.block).values_list("captured_by__username", flat=True)),
            {"manzana1"},
        )
        # The last visit of every household is the newest of its visits.
        for household in Household.objects.filter(municipality=self.esc, last_visit_at__isnull=False)[:100]:
            self.assertEqual(household.last_visit_at, household.visits.order_by("-visited_at")[0].visited_at)
        self.assertFalse(Visit.objects.filter(household__last_visit_at__isnull=True).exists())

    def test_the_coordinator_has_duplicates_to_review_and_two_open_requests(self):
        coordinator = self.users["coordinacion"]
        queue = queries.duplicate_queue(coordinator)
        self.assertTrue(50 <= queue.count() <= 400, queue.count())
        top = queue.first()
        self.assertGreater(top.score, 0.5)
        self.assertTrue(top.reasons)
        self.assertEqual(queries.duplicate_queue(self.users["manzana1"]).count(), 0)
        requests = list(queries.open_requests(coordinator))
        self.assertEqual(len(requests), 2)
        today = dt.date.today()
        overdue, soon = requests  # the most urgent first
        self.assertLess(overdue.due_on, today)
        self.assertTrue(today <= soon.due_on <= today + dt.timedelta(days=7))
        for request in requests:
            self.assertEqual(request.due_on, services.add_business_days(request.received_at.date(), 20))

    def test_block_counts_match_a_recount(self):
        def counts():
            return sorted(
                BlockCounts.objects.filter(municipality=self.esc).values_list(
                    "node_id", "households", "persons", "priority_households", "visited_households"
                )
            )

        before = counts()
        self.assertTrue(before)
        self.assertEqual(
            sum(row[1] for row in before), Household.objects.filter(municipality=self.esc).count()
        )
        services.recount(self.esc)
        self.assertEqual(counts(), before)

    def test_a_name_search_finds_the_registry_persons(self):
        person = Person.objects.filter(municipality=self.esc, surname2__gt="").order_by("pk")[100]
        found = queries.search_persons(self.users["coordinacion"], f"{person.surname1} {person.given_name}")
        self.assertIn(person, list(found))


def _matches(person: Person, words: list[str]) -> bool:
    keys = (person.surname1_key, person.surname2_key, person.given_key, person.given2_key)
    return all(any(k.startswith(w) for k in keys) for w in words)


class DemoSearchTest(TestCase):
    """``queries.search_persons`` on the demo's 10,000 persons: every match, every word, in name order."""

    @classmethod
    def setUpTestData(cls):
        build_demo(seed=4)
        cls.coordinator = User.objects.get(username="coordinacion")
        cls.everyone = list(Person.objects.filter(status="active"))

    def test_it_finds_persons_matching_every_word_in_name_order(self):
        for query, words in [
            ("Hernández", ["hernandez"]),
            ("maria", ["maria"]),
            ("her", ["her"]),
            ("josé luis", ["jose", "luis"]),
            ("garcia maria", ["garcia", "maria"]),
            ("De La Cruz", ["de la cruz"]),
            ("lopez ana", ["lopez", "ana"]),
        ]:
            found = list(queries.search_persons(self.coordinator, query))
            expected = [p for p in self.everyone if _matches(p, words)]
            self.assertEqual(len(found), min(queries.SEARCH_LIMIT, len(expected)), query)
            self.assertTrue(all(_matches(p, words) for p in found), query)
            keys = [(p.surname1_key, p.surname2_key, p.given_key, p.pk) for p in found]
            self.assertEqual(keys, sorted(keys), query)
            if len(expected) <= queries.SEARCH_LIMIT:
                self.assertEqual({p.pk for p in found}, {p.pk for p in expected}, query)


class DemoCommandTest(TestCase):
    def test_it_builds_the_demo_and_lists_the_logins_without_serving(self):
        out = StringIO()
        call_command("demo", "--no-serve", "--seed", "3", stdout=out)
        text = out.getvalue()
        for username in LOGINS:
            self.assertIn(username, text)
        self.assertIn(DEMO_PASSWORD, text)
        self.assertIn("http://127.0.0.1:8000/", text)
        self.assertEqual(set(Municipality.objects.values_list("code", flat=True)), {"19021", "12001"})
        self.assertTrue(AuditEvent.objects.filter(action="demo.build", channel="system").exists())

    def test_it_rebuilds_its_own_data_and_keeps_it_with_keep(self):
        call_command("demo", "--no-serve", stdout=StringIO())
        names = snapshot()["liaisons"]
        call_command("demo", "--no-serve", "--seed", "2", stdout=StringIO())
        self.assertNotEqual(snapshot()["liaisons"], names)
        self.assertEqual(Municipality.objects.count(), 2)
        kept = snapshot()
        out = StringIO()
        call_command("demo", "--no-serve", "--keep", "--port", "8123", stdout=out)
        self.assertEqual(snapshot(), kept)
        self.assertIn("http://127.0.0.1:8123/", out.getvalue())

    def test_persons_go_to_acapulco_deterministically_and_negative_is_refused(self):
        out = StringIO()
        call_command("demo", "--no-serve", "--persons", "400", stdout=out, stderr=StringIO())
        aca = Municipality.objects.get(code="12001")
        persons = Person.objects.filter(municipality=aca)
        self.assertEqual(persons.count(), 408)  # 400 and 2% likely duplicates
        self.assertTrue(persons.filter(phone__startswith="+52744").exists())
        self.assertTrue(
            all(
                pc.startswith("39")
                for pc in Household.objects.filter(municipality=aca).values_list("postal_code", flat=True)
            )
        )
        self.assertIn("Acapulco", out.getvalue())
        with self.assertRaises(CommandError):
            call_command("demo", "--no-serve", "--persons", "-5", stdout=StringIO())

    def test_it_refuses_a_bad_port(self):
        with self.assertRaises(CommandError):
            call_command("demo", "--no-serve", "--port", "70000", stdout=StringIO())
        self.assertFalse(Municipality.objects.exists())


class DemoCommandOnRealDataTest(RedesTestCase):
    def test_it_refuses_to_wipe_a_database_it_did_not_build(self):
        before = snapshot()
        with self.assertRaises(CommandError):
            call_command("demo", "--no-serve", stdout=StringIO())
        self.assertEqual(snapshot(), before)

    def test_it_refuses_to_add_to_a_database_it_did_not_build_even_with_keep(self):
        create_municipality("19039", "Monterrey", ["Sector", "Manzana"], state_name="Nuevo León")
        before = snapshot()
        with self.assertRaises(CommandError):
            call_command("demo", "--no-serve", "--keep", stdout=StringIO())
        self.assertEqual(snapshot(), before)
