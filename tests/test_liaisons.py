import datetime as dt

from django.core.exceptions import ValidationError

from redes.liaisons.models import LiaisonAssignment
from redes.liaisons.services import assign_liaison, coverage, coverage_by_child, end_liaison, vacant_posts

from .base import RedesTestCase


class LiaisonTests(RedesTestCase):
    def test_coverage_counts_units_below_with_an_active_liaison(self):
        cov = coverage(self.w.esc_node)
        self.assertEqual((cov.covered, cov.total), (2, 5))
        self.assertEqual(cov.percent, 40)
        self.assertEqual(coverage(self.w.b11).total, 0)
        self.assertIsNone(coverage(self.w.b11).ratio)

    def test_vacant_posts_list_the_units_without_a_liaison(self):
        codes = list(vacant_posts(self.w.esc_node).values_list("code", flat=True))
        self.assertEqual(codes, ["S02", "S01-M002", "S02-M001"])

    def test_coverage_by_child_is_one_group_by(self):
        with self.assertNumQueries(1):
            by_child = coverage_by_child(self.w.esc_node)
        self.assertEqual((by_child[self.w.s1.pk].covered, by_child[self.w.s1.pk].total), (1, 2))
        self.assertEqual((by_child[self.w.s2.pk].covered, by_child[self.w.s2.pk].total), (0, 1))

    def test_a_new_appointment_closes_the_previous_one_and_keeps_history(self):
        new = assign_liaison(
            self.w.b11, full_name="Nueva Enlace", phone="045 81 1111 2222", start_date=dt.date(2026, 3, 1)
        )
        self.assertEqual(new.phone, "+528111112222")
        history = list(LiaisonAssignment.objects.filter(node=self.w.b11).order_by("start_date"))
        self.assertEqual(len(history), 2)
        self.assertEqual(history[0].end_date, dt.date(2026, 3, 1))
        self.assertIsNone(history[1].end_date)

    def test_ending_a_post_leaves_the_node_vacant(self):
        end_liaison(self.w.b11_post, reason="Se mudó")
        self.assertIn(self.w.b11, list(vacant_posts(self.w.s1)))
        with self.assertRaises(ValidationError):
            end_liaison(LiaisonAssignment.objects.get(pk=self.w.b11_post.pk))

    def test_it_refuses_bad_input(self):
        with self.assertRaises(ValidationError):
            assign_liaison(self.w.b12, full_name="  ")
        with self.assertRaises(ValidationError):
            assign_liaison(self.w.b12, full_name="X", phone="123")
        with self.assertRaises(ValidationError):
            assign_liaison(self.w.state_nl, full_name="X")
        with self.assertRaises(ValidationError):
            assign_liaison(self.w.b11, full_name="X", start_date=dt.date(2025, 1, 1))
        self.assertFalse(LiaisonAssignment.objects.filter(node=self.w.b12).exists())
