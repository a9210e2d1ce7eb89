"""Who sees which needs (queries per role), the filters of the queue, counts and the aggregated map."""

import datetime as dt
import uuid

from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from redes.accounts.models import User
from redes.core import clock
from redes.needs import queries, services
from redes.territories.models import Node
from tests.base import RedesTestCase

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class AccessTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        services.ensure_defaults(w.esc)
        services.ensure_defaults(w.aca)

        def need(actor, node, category="alimentacion", municipality=None, urgency="normal", channel="field"):
            return services.register_need(
                actor=actor,
                municipality=municipality or w.esc,
                category=category,
                description="Descripción",
                urgency=urgency,
                channel=channel,
                node=node,
            )

        with clock.travel(T0):
            cls.n_b11 = need(w.block1, w.b11, urgency="high")
            cls.n_b12 = need(w.coord, w.b12, category="salud")
            cls.n_b21 = need(w.coord, w.b21)
            cls.n_muni = need(None, None, category="seguridad", channel="public")
            cls.v_operator = need(w.operator, w.b11, category="violencia", channel="hotline")
            cls.v_block = need(w.block1, w.b11, category="violencia")
            cls.n_aca = need(w.other_coord, w.ab, municipality=w.aca)
            services.assign_need(cls.n_b12, actor=w.coord, user=w.volunteer)
        cls.esc_plain = {cls.n_b11, cls.n_b12, cls.n_b21, cls.n_muni}

    def visible(self, user):
        return set(queries.visible_needs(user))

    def test_visibility_per_role(self):
        w = self.w
        expected = {
            "anonymous": (AnonymousUser(), set()),
            "nobody": (w.nobody, set()),
            "observer": (w.observer, set()),
            "state_observer": (w.state_observer, set()),
            "block1": (w.block1, {self.n_b11, self.v_block}),
            "sector1": (w.sector1, {self.n_b11, self.n_b12}),
            "sector2": (w.sector2, {self.n_b21}),
            "coord": (w.coord, self.esc_plain),
            "operator": (w.operator, self.esc_plain | {self.v_operator}),
            "caseworker": (w.caseworker, self.esc_plain | {self.v_operator, self.v_block}),
            "volunteer": (w.volunteer, {self.n_b12}),
            "other_coord": (w.other_coord, {self.n_aca}),
        }
        for name, (user, needs) in expected.items():
            with self.subTest(user=name):
                self.assertEqual(self.visible(user), needs)
                self.assertEqual(set(queries.queue(user)), needs)

    def test_sensitive_needs_are_stubs_except_for_case_officers(self):
        w = self.w
        self.assertTrue(queries.is_stub(self.v_operator, w.operator))
        self.assertTrue(queries.is_stub(self.v_block, w.block1))
        self.assertTrue(queries.is_stub(self.v_block, w.root))
        self.assertFalse(queries.is_stub(self.v_block, w.caseworker))
        self.assertFalse(queries.is_stub(self.n_b11, w.block1))
        stub_timeline = queries.timeline(self.v_block, w.block1)
        self.assertEqual([(e.kind, e.data, e.note) for e in stub_timeline], [("created", {}, "")])

    def test_get_need_is_404_outside(self):
        w = self.w
        self.assertEqual(queries.get_need(w.block1, self.n_b11.uuid), self.n_b11)
        for user, need in (
            (w.block1, self.n_b12),
            (w.sector2, self.n_b11),
            (w.other_coord, self.n_b11),
            (w.coord, self.v_operator),
            (w.observer, self.n_b11),
            (AnonymousUser(), self.n_b11),
        ):
            with self.subTest(user=str(user)), self.assertRaises(Http404):
                queries.get_need(user, need.uuid)
        for bad in ("not-a-uuid", uuid.uuid4(), None, "1"):
            with self.subTest(bad=bad), self.assertRaises(Http404):
                queries.get_need(w.coord, bad)

    def test_queue_filters(self):
        w = self.w
        q = queries.queue
        self.assertEqual(list(q(w.coord, category="salud")), [self.n_b12])
        self.assertEqual(list(q(w.coord, urgency="high")), [self.n_b11])
        self.assertEqual(set(q(w.coord, node=w.s1)), {self.n_b11, self.n_b12})
        self.assertEqual(set(q(w.coord, node=w.esc_node)), self.esc_plain)
        self.assertEqual(list(q(w.coord, status="assigned")), [self.n_b12])
        self.assertEqual(list(q(w.coord, status="closed")), [])
        self.assertEqual(list(q(w.coord, level=1)), [])
        with clock.travel(T0 + dt.timedelta(hours=5)):
            self.assertEqual(list(q(w.coord, overdue=True)), [self.n_b11])  # high: 4 h to acknowledge
        self.assertEqual(set(q(w.block1, mine=True)), {self.n_b11, self.v_block} - {self.v_block})
        self.assertEqual(set(q(w.coord, mine=True)), {self.n_muni})
        self.assertEqual(set(q(w.volunteer, mine=True)), {self.n_b12})
        # Open needs come most due first.
        dues = [n.due_at for n in q(w.caseworker)]
        self.assertEqual(dues, sorted(dues))

    def test_the_queue_costs_the_same_for_one_or_many_needs(self):
        coord = User.objects.get(pk=self.w.coord.pk)
        with self.assertNumQueries(4):  # grants, working groups, the page, the one assigned user
            rows = list(queries.queue(coord)[:50])
            self.assertEqual(len(rows), 4)
            [(n.category.label, n.node.name, n.holder_label) for n in rows]

    def test_counts(self):
        w = self.w
        coord = queries.counts(w.coord, w.esc_node)
        self.assertEqual(coord.open, 4)
        self.assertEqual(coord.by_category, {"alimentacion": 2, "salud": 1, "seguridad": 1})
        self.assertFalse(coord.suppressed)
        case = queries.counts(w.caseworker, w.esc_node)
        self.assertEqual(case.by_category.get("violencia"), 2)
        observer = queries.counts(w.observer, w.esc_node)
        self.assertTrue(observer.suppressed)
        self.assertIsNone(observer.open)  # 4 < 5: hidden from observers
        self.assertEqual(queries.counts(w.sector1, w.s1).open, 2)
        for user, node in ((w.other_coord, w.esc_node), (w.sector1, w.s2), (w.nobody, w.esc_node)):
            with self.subTest(user=user.username), self.assertRaises(Http404):
                queries.counts(user, node)

    def test_escalations_are_counted_per_node(self):
        w = self.w
        with clock.travel(T0 + dt.timedelta(days=2)):
            services.escalate_overdue()  # b11 → S01; b21 → the coordinators (S02 is vacant)
        with clock.travel(T0 + dt.timedelta(days=3)):
            services.escalate_overdue()  # S01 → the coordinators
        counts = queries.counts(w.coord, w.esc_node)
        per_node = {e["node"]: e["count"] for e in counts.escalations}
        self.assertEqual(per_node, {w.s1: 1, w.esc_node: 2})
        # The sector sees where its needs went, up to the coordinators.
        self.assertEqual([e["node"] for e in queries.counts(w.sector1, w.s1).escalations], [w.esc_node, w.s1])

    def test_open_needs_map(self):
        w = self.w
        Node.objects.filter(pk=w.b11.pk).update(centroid_lat=25.795, centroid_lon=-100.325)
        data = queries.open_needs_map(w.coord, w.esc)
        self.assertEqual(data["type"], "FeatureCollection")
        [feature] = data["features"]
        self.assertEqual(feature["geometry"], {"type": "Point", "coordinates": [-100.325, 25.795]})
        self.assertEqual(feature["properties"]["open"], 1)  # sensitive reports are not on the map
        self.assertEqual(data["properties"]["open"], 4)
        observer = queries.open_needs_map(w.observer, w.esc)
        self.assertIsNone(observer["features"][0]["properties"]["open"])
        self.assertNotIn("Descripción", str(observer))
        case = queries.open_needs_map(w.caseworker, w.esc)
        self.assertEqual(case["features"][0]["properties"]["open"], 3)
        with self.assertRaises(Http404):
            queries.open_needs_map(w.other_coord, w.esc)

    def test_holders_and_assignable(self):
        w = self.w
        self.assertEqual(list(queries.holders(w.b11)), [w.block1])
        self.assertEqual(list(queries.holders(w.b12)), [])
        self.assertEqual(list(queries.holders(w.esc_node)), [w.coord])
        choices = queries.assignable(self.n_b11)
        users = set(choices.users)
        self.assertTrue({w.block1, w.sector1, w.coord, w.volunteer, w.operator, w.caseworker} <= users)
        self.assertFalse({w.sector2, w.other_coord, w.observer, w.nobody} & users)
        self.assertEqual(set(queries.assignable(self.v_block).users), {w.caseworker})
