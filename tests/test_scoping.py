from django.core.exceptions import PermissionDenied
from django.http import Http404

from redes.accounts.roles import PERMISSIONS, Perm, Role
from redes.accounts.scoping import (
    can,
    get_scoped_or_404,
    municipalities,
    only_aggregates,
    require,
    scoped,
    top_nodes,
    visible_nodes,
)
from redes.accounts.services import end_membership
from redes.liaisons.models import LiaisonAssignment
from redes.territories.models import Node

from .base import RedesTestCase


class PermissionTableTests(RedesTestCase):
    def test_only_case_officers_see_sensitive_data(self):
        holders = [role for role, perms in PERMISSIONS.items() if Perm.VIEW_SENSITIVE in perms]
        self.assertEqual(holders, [Role.CASE_OFFICER])

    def test_observers_never_see_personal_data(self):
        for role in (Role.NATIONAL_OBSERVER, Role.STATE_OBSERVER):
            self.assertNotIn(Perm.VIEW_PERSONAL, PERMISSIONS[role])
            self.assertIn(Perm.VIEW_AGGREGATES, PERMISSIONS[role])

    def test_every_role_is_in_the_table(self):
        self.assertEqual(set(PERMISSIONS), set(Role))


class ScopingTests(RedesTestCase):
    def codes(self, user, perm=Perm.VIEW_TERRITORY):
        return set(visible_nodes(user, perm).values_list("code", flat=True))

    def test_a_block_liaison_sees_only_their_block(self):
        self.assertEqual(self.codes(self.w.block1), {"S01-M001"})

    def test_a_sector_liaison_sees_their_sector_and_below(self):
        self.assertEqual(self.codes(self.w.sector1), {"S01", "S01-M001", "S01-M002"})

    def test_a_coordinator_sees_their_municipality_only(self):
        codes = self.codes(self.w.coord)
        self.assertIn("S02-M001", codes)
        self.assertNotIn("A1", codes)

    def test_a_state_observer_sees_their_state_only(self):
        codes = self.codes(self.w.state_observer)
        self.assertIn("19021", codes)
        self.assertNotIn("12001", codes)

    def test_a_user_without_membership_sees_nothing(self):
        self.assertEqual(self.codes(self.w.nobody), set())
        self.assertFalse(can(self.w.nobody, Perm.VIEW_TERRITORY))

    def test_observers_hold_no_personal_data_permission(self):
        qs = scoped(LiaisonAssignment.objects.all(), self.w.observer, Perm.VIEW_PERSONAL, via="node")
        self.assertEqual(qs.count(), 0)
        self.assertTrue(only_aggregates(self.w.observer, self.w.s1))
        self.assertFalse(only_aggregates(self.w.coord, self.w.s1))

    def test_related_rows_are_scoped_through_their_node(self):
        qs = scoped(LiaisonAssignment.objects.all(), self.w.sector1, Perm.VIEW_PERSONAL, via="node")
        self.assertEqual({a.node.code for a in qs}, {"S01", "S01-M001"})

    def test_missing_and_not_yours_are_both_404(self):
        with self.assertRaises(Http404):
            get_scoped_or_404(Node.objects.all(), self.w.sector2, Perm.VIEW_TERRITORY, uuid=self.w.b11.uuid)
        with self.assertRaises(Http404):
            get_scoped_or_404(Node.objects.all(), self.w.sector2, Perm.VIEW_TERRITORY, uuid="not-a-uuid")
        node = get_scoped_or_404(
            Node.objects.all(), self.w.sector1, Perm.VIEW_TERRITORY, uuid=self.w.b11.uuid
        )
        self.assertEqual(node, self.w.b11)

    def test_assigning_liaisons_reaches_strictly_below(self):
        self.assertTrue(can(self.w.sector1, Perm.ASSIGN_LIAISONS, self.w.b11))
        self.assertFalse(can(self.w.sector1, Perm.ASSIGN_LIAISONS, self.w.s1))
        with self.assertRaises(PermissionDenied):
            require(self.w.sector1, Perm.ASSIGN_LIAISONS, self.w.s1)
        with self.assertRaises(Http404):
            require(self.w.sector2, Perm.ASSIGN_LIAISONS, self.w.b11)

    def test_ended_memberships_grant_nothing(self):
        end_membership(self.w.sector1.memberships.get())
        user = type(self.w.sector1).objects.get(pk=self.w.sector1.pk)
        self.assertEqual(self.codes(user), set())

    def test_municipalities_and_top_nodes(self):
        self.assertEqual(set(municipalities(self.w.block1).values_list("code", flat=True)), {"19021"})
        self.assertEqual(set(municipalities(self.w.state_observer).values_list("code", flat=True)), {"19021"})
        self.assertEqual(
            set(municipalities(self.w.observer).values_list("code", flat=True)), {"19021", "12001"}
        )
        self.assertEqual(top_nodes(self.w.sector1), [self.w.s1])

    def test_superusers_reach_everything(self):
        self.assertEqual(visible_nodes(self.w.root).count(), Node.objects.count())

    def test_grants_are_loaded_once_per_user_object(self):
        user = type(self.w.coord).objects.get(pk=self.w.coord.pk)
        with self.assertNumQueries(1):
            for _ in range(3):
                can(user, Perm.VIEW_TERRITORY, self.w.s1)
