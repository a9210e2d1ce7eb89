"""``redes demo`` and its generator: deterministic data, the six logins, vacant posts, a sane street grid."""

from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import TestCase
from shapely.geometry import shape

from redes.accounts.models import Membership, User
from redes.accounts.roles import Role
from redes.audit.models import AuditEvent
from redes.core.geo import clean_geometry
from redes.core.phones import normalize_phone
from redes.demo.generator import DEMO_PASSWORD, build_demo
from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import coverage, vacant_posts
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
        for key in ("nodes", "liaisons", "users"):
            self.assertNotEqual(first[key], other[key], key)
        # The logins are the same six whatever the seed; their people differ.
        self.assertEqual([u[0] for u in first["users"]], [u[0] for u in other["users"]])


class DemoDataTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.result = build_demo(seed=1)
        cls.esc = cls.result.escobedo
        cls.aca = cls.result.acapulco

    def test_it_creates_the_six_logins_with_the_demo_password_and_their_roles(self):
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
