from django.core.exceptions import ValidationError

from redes.audit.models import AuditEvent
from redes.liaisons.models import LiaisonAssignment
from redes.territories.models import Node
from redes.territories.services import create_node, move_node, remove_node

from .base import RedesTestCase


class TreeTests(RedesTestCase):
    def test_subtree_is_one_indexed_equality(self):
        with self.assertNumQueries(1):
            codes = sorted(Node.objects.subtree(self.w.s1).values_list("code", flat=True))
        self.assertEqual(codes, ["S01", "S01-M001", "S01-M002"])

    def test_ancestors_are_stored_for_every_depth(self):
        b = self.w.b11
        self.assertEqual(
            b.ancestor_ids, [self.w.nation.pk, self.w.state_nl.pk, self.w.esc_node.pk, self.w.s1.pk, b.pk]
        )

    def test_it_moves_a_subtree_and_keeps_ancestors_consistent(self):
        move_node(self.w.b12, self.w.s2)
        b12 = Node.objects.get(pk=self.w.b12.pk)
        self.assertEqual(b12.parent_id, self.w.s2.pk)
        self.assertEqual(b12.a3, self.w.s2.pk)
        self.assertCountEqual(
            Node.objects.subtree(self.w.s2).values_list("code", flat=True), ["S02", "S02-M001", "S01-M002"]
        )
        self.assertTrue(AuditEvent.objects.filter(action="territories.node.move").exists())

    def test_it_refuses_a_move_to_the_wrong_level(self):
        with self.assertRaises(ValidationError):
            move_node(self.w.b12, self.w.b21)
        with self.assertRaises(ValidationError):
            move_node(self.w.b12, self.w.aca_node)
        self.assertEqual(Node.objects.get(pk=self.w.b12.pk).parent_id, self.w.s1.pk)

    def test_it_refuses_children_below_the_deepest_level(self):
        with self.assertRaises(ValidationError):
            create_node(self.w.esc, self.w.b11, "X", "Too deep")

    def test_codes_are_unique_within_a_municipality_only(self):
        with self.assertRaises(ValidationError):
            create_node(self.w.esc, self.w.s2, "S01-M001", "Dup")
        create_node(self.w.aca, self.w.ag, "S01-M001", "Same code, other municipality")

    def test_removing_a_branch_needs_cascade(self):
        with self.assertRaises(ValidationError):
            remove_node(self.w.s1)
        self.assertEqual(remove_node(self.w.s1, cascade=True), 3)
        self.assertFalse(Node.objects.filter(code__startswith="S01").exists())
        self.assertFalse(LiaisonAssignment.objects.filter(node_id=self.w.b11.pk).exists())


class BulkTests(RedesTestCase):
    def test_bulk_insert_sets_every_ancestor_column(self):
        from redes.territories.services import UnitSpec, bulk_create_units

        specs = (
            [UnitSpec("S03", "Sector 3", 3)]
            + [UnitSpec(f"S03-M{i:03}", f"Manzana {i}", 4, parent_code="S03") for i in range(1, 8)]
            + [UnitSpec("S01-M003", "Manzana 3", 4, parent_code="S01")]
        )
        self.assertEqual(bulk_create_units(self.w.esc, specs, batch_size=3), 9)
        s3 = Node.objects.get(municipality=self.w.esc, code="S03")
        self.assertEqual(Node.objects.subtree(s3).count(), 8)
        m = Node.objects.get(municipality=self.w.esc, code="S01-M003")
        self.assertEqual(m.ancestor_ids, [*self.w.s1.ancestor_ids, m.pk])
        self.assertEqual(Node.objects.subtree(self.w.s1).count(), 4)
