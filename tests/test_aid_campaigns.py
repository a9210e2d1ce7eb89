"""Campaigns: eligibility, zones and stock, the allocation written to the database, duplicates held, no household
twice, a byte-identical re-run, and inputs frozen after allocation."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings

from redes.aid import campaigns, services
from redes.aid.models import (
    Campaign,
    CampaignStatus,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent, Outcome
from redes.registry.models import DuplicateCandidate, Person

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase


@override_settings(LANGUAGE_CODE="en")
class CampaignTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = build_aid(w)
        cls.h11 = households(w.b11, [80, 60, 60, 40, 20, 10])
        cls.h12 = households(w.b12, [50, 50, 30, 0], start=10)
        cls.h21 = households(w.b21, [70, 10, 5], start=20)
        stock_site(cls.a.stand1, cls.a, 4)
        stock_site(cls.a.stand2, cls.a, 1)

    def campaign(self, **kw) -> Campaign:
        kw.setdefault("name", "Despensas marzo")
        kw.setdefault("template", self.a.package)
        kw.setdefault("node", self.w.esc_node)
        kw.setdefault("seed", 7)
        return campaigns.create_campaign(actor=self.w.coord, **kw)

    def statuses(self, campaign) -> dict[int, str]:
        return dict(Entitlement.objects.filter(campaign=campaign).values_list("household_id", "status"))

    # --- eligibility ------------------------------------------------------------------------------------------

    def test_eligibility_by_territory_and_priority(self):
        c = self.campaign(node=self.w.s1, min_priority=30)
        found = campaigns.eligible_households(c)
        expected = [h.pk for h in self.h11 + self.h12 if h.priority >= 30]
        self.assertEqual(found.household_ids, sorted(expected))
        self.assertEqual(found.held, set())

    def test_eligibility_by_open_need_category(self):
        need_model = campaigns.need_model()
        if need_model is None:
            self.skipTest("the needs app has no Need model yet")
        from redes.needs.models import NeedCategory

        food = NeedCategory.objects.create(municipality=self.w.esc, code="food-test")
        health = NeedCategory.objects.create(municipality=self.w.esc, code="health-test")
        channel = need_model._meta.get_field("channel").choices[0][0]

        def need(household, category, status="new"):
            need_model.objects.create(
                municipality=self.w.esc,
                node=household.node,
                holder_node=household.node,
                household=household,
                category=category,
                channel=channel,
                status=status,
            )

        need(self.h11[0], food)
        need(self.h11[1], health)
        need(self.h11[2], food, status="closed")
        only = self.campaign(node=self.w.b11, need_categories=["food-test"], include_without_needs=False)
        self.assertEqual(campaigns.eligible_households(only).household_ids, [self.h11[0].pk])
        with_none = self.campaign(node=self.w.b11, need_categories=["food-test"], include_without_needs=True)
        ids = campaigns.eligible_households(with_none).household_ids
        self.assertIn(self.h11[0].pk, ids)
        self.assertNotIn(self.h11[1].pk, ids)  # an open need, but in another category
        self.assertIn(self.h11[2].pk, ids)  # its need is closed: no open need
        with self.assertRaises(ValidationError):
            self.campaign(need_categories=["no-such-category"])

    def test_zones_are_the_deepest_site_with_whole_packages(self):
        c = self.campaign()
        zones = {row["site"].pk: row for row in campaigns.preview_zones(c)}
        self.assertEqual(set(zones), {self.a.stand1.pk, self.a.stand2.pk})
        self.assertEqual(zones[self.a.stand1.pk]["packages"], 4)
        self.assertEqual(zones[self.a.stand1.pk]["households"], 10)
        self.assertEqual(zones[self.a.stand2.pk]["packages"], 1)
        # One line short of a package: floor over the scarcest line.
        services.adjust_stock(
            actor=None, site=self.a.stand2, item=self.a.tuna, quantity=-1, reason="Damaged can"
        )
        self.assertEqual(campaigns.packages_in_stock(self.a.package, [self.a.stand2])[self.a.stand2.pk], 0)

    # --- allocation ---------------------------------------------------------------------------------------------

    def test_allocation_writes_entitlements_and_reserves_stock(self):
        c = self.campaign()
        campaigns.allocate_campaign(c, actor=self.w.coord)
        c.refresh_from_db()
        self.assertEqual(c.status, CampaignStatus.ALLOCATED)
        self.assertEqual(len(c.digest), 64)
        rows = Entitlement.objects.filter(campaign=c)
        self.assertEqual(rows.count(), 13)
        selected = rows.filter(status=EntitlementStatus.SELECTED)
        self.assertEqual(selected.count(), 5)  # 4 packages at stand 1, 1 at stand 2
        self.assertEqual(selected.filter(zone__site=self.a.stand1).count(), 4)
        # Max-min: both blocks of sector 1 get at least one package; the rest goes by priority.
        self.assertTrue(selected.filter(node=self.w.b11).exists())
        self.assertTrue(selected.filter(node=self.w.b12).exists())
        self.assertEqual(selected.get(node=self.w.b21).household_id, self.h21[0].pk)
        for row in rows:
            self.assertTrue(row.reason)
            self.assertIn("priority", row.reason_data)
            self.assertIn("block_coverage", row.reason_data)
        self.assertEqual(len({r.code for r in rows}), 13)
        # The stock of the selected packages is reserved: nothing left available at the stands.
        for line in self.a.package.lines.all():
            b = StockBalance.objects.get(site=self.a.stand1, item=line.item)
            self.assertEqual(b.quantity, 0)
            self.assertEqual(b.reserved, line.quantity * 4)
        self.assertTrue(StockEntry.objects.filter(campaign=c, kind=EntryKind.ALLOCATED).exists())
        self.assertTrue(services.verify_ledger().ok)
        self.assertEqual(c.params["households"], 13)
        self.assertEqual(c.summary["allocated"], 5)
        self.assertTrue(
            AuditEvent.objects.filter(action="aid.campaign.allocate", object_id=str(c.uuid)).exists()
        )

    def test_same_inputs_and_seed_give_a_byte_identical_result(self):
        first = self.campaign(seed=12345)
        campaigns.allocate_campaign(first, actor=self.w.coord)
        digest, export = first.digest, campaigns.export_entitlements(first)
        self.assertIn(b"selected", export)
        campaigns.cancel_campaign(first, actor=self.w.coord)  # the reserved stock goes back
        self.assertTrue(services.verify_ledger().ok)
        second = self.campaign(seed=12345)
        campaigns.allocate_campaign(second, actor=self.w.coord)
        self.assertEqual(second.digest, digest)
        self.assertEqual(campaigns.export_entitlements(second), export)
        self.assertEqual(second.params["inputs_sha256"], first.params["inputs_sha256"])
        # Different codes, same allocation.
        self.assertFalse(
            set(Entitlement.objects.filter(campaign=first).values_list("code", flat=True))
            & set(Entitlement.objects.filter(campaign=second).values_list("code", flat=True))
        )

    def test_a_household_in_a_pending_duplicate_is_held(self):
        w = self.w
        top = self.h11[0]
        p1 = Person.objects.create(municipality=w.esc, household=top, node=w.b11, full_name="Ana Ruiz")
        other = self.h21[1]
        p2 = Person.objects.create(municipality=w.esc, household=other, node=w.b21, full_name="Ana Ruíz")
        candidate = DuplicateCandidate.objects.create(
            municipality=w.esc, node=w.b11, person_a=p1, person_b=p2, score=0.9
        )
        c = self.campaign()
        campaigns.allocate_campaign(c, actor=w.coord)
        status = self.statuses(c)
        self.assertEqual(status[top.pk], EntitlementStatus.HELD)
        self.assertEqual(status[other.pk], EntitlementStatus.HELD)
        held = Entitlement.objects.get(campaign=c, household=top)
        self.assertEqual(held.reason, campaigns.REASON_HELD)
        self.assertEqual(c.params["held"], 2)
        self.assertEqual(Entitlement.objects.filter(campaign=c, status=EntitlementStatus.SELECTED).count(), 5)
        # Still pending: stays held.
        self.assertEqual(campaigns.release_held(c, actor=w.coord)["still_held"], 2)
        # Reviewed as different persons; one more package arrives at stand 1 → the household gets it.
        DuplicateCandidate.objects.filter(pk=candidate.pk).update(status=DuplicateCandidate.Status.DISTINCT)
        stock_site(self.a.stand1, self.a, 1)
        counts = campaigns.release_held(c, actor=w.coord)
        self.assertEqual(counts, {"selected": 1, "not_selected": 1, "still_held": 0})
        status = self.statuses(c)
        self.assertEqual(status[top.pk], EntitlementStatus.SELECTED)
        self.assertEqual(status[other.pk], EntitlementStatus.NOT_SELECTED)
        self.assertTrue(services.verify_ledger().ok)

    def test_no_household_twice_in_a_campaign(self):
        c = self.campaign()
        campaigns.allocate_campaign(c, actor=self.w.coord)
        self.assertEqual(
            Entitlement.objects.filter(campaign=c).values("household").distinct().count(),
            Entitlement.objects.filter(campaign=c).count(),
        )
        row = Entitlement.objects.filter(campaign=c).first()
        with self.assertRaises(IntegrityError), transaction.atomic():
            Entitlement.objects.create(
                municipality=self.w.esc,
                campaign=c,
                household=row.household,
                node=row.node,
                code="ZZZZ2222",
                status=EntitlementStatus.SELECTED,
                reason="manual",
            )
        before = Entitlement.objects.filter(campaign=c).count()
        with self.assertRaises(ValidationError):
            campaigns.allocate_campaign(c, actor=self.w.coord)
        self.assertEqual(Entitlement.objects.filter(campaign=c).count(), before)

    def test_editing_after_allocation_is_refused_and_audited(self):
        c = self.campaign()
        campaigns.update_campaign(c, actor=self.w.coord, name="Despensas abril", min_priority=10)
        self.assertEqual(Campaign.objects.get(pk=c.pk).min_priority, 10)
        campaigns.allocate_campaign(c, actor=self.w.coord)
        with self.assertRaises(ValidationError) as ctx:
            campaigns.update_campaign(c, actor=self.w.coord, min_priority=50)
        self.assertIn("allocated", str(ctx.exception))
        stored = Campaign.objects.get(pk=c.pk)
        self.assertEqual((stored.min_priority, stored.name), (10, "Despensas abril"))
        event = AuditEvent.objects.filter(action="aid.campaign.update").order_by("-id").first()
        self.assertEqual(event.outcome, Outcome.REJECTED)
        self.assertIn("campaign_locked", event.summary)

    def test_only_coordinators_run_campaigns(self):
        c = self.campaign()
        for user in (self.w.sector1, self.w.volunteer, self.w.observer, self.w.other_coord):
            with self.assertRaises(PermissionDenied):
                campaigns.allocate_campaign(c, actor=user)
            with self.assertRaises(PermissionDenied):
                campaigns.create_campaign(actor=user, name="X", template=self.a.package, node=self.w.esc_node)
        self.assertEqual(Campaign.objects.get(pk=c.pk).status, CampaignStatus.DRAFT)
        self.assertFalse(Entitlement.objects.exists())
        self.assertEqual(Campaign.objects.count(), 1)

    def test_bad_campaign_input_is_refused(self):
        with self.assertRaises(ValidationError):
            self.campaign(name=" ")
        with self.assertRaises(ValidationError):
            self.campaign(node=self.w.a1, municipality=self.w.esc)  # a node of another municipality
        with self.assertRaises(ValidationError):
            self.campaign(min_priority=101)
        with self.assertRaises(ValidationError):
            self.campaign(seed=-1)
        self.assertFalse(Campaign.objects.exists())

    def test_a_template_in_an_allocated_campaign_keeps_its_lines(self):
        c = self.campaign()
        campaigns.allocate_campaign(c, actor=self.w.coord)
        with self.assertRaises(ValidationError):
            services.save_template(self.a.package, actor=self.w.coord, lines=[(self.a.rice, 1)])
        self.assertEqual(self.a.package.lines.count(), 4)


@override_settings(LANGUAGE_CODE="en")
class ZoneChoiceTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)
        households(cls.w.b21, [10, 20, 30])

    def test_an_empty_stand_is_passed_over_for_a_stocked_warehouse(self):
        a = self.a
        stock_site(a.warehouse, a, 2)
        c = campaigns.create_campaign(
            actor=self.w.coord, name="X", template=a.package, node=self.w.s2, seed=1
        )
        zones = campaigns.preview_zones(c)
        self.assertEqual([(z["site"].pk, z["packages"]) for z in zones], [(a.warehouse.pk, 2)])
        stock_site(a.stand2, a, 1)  # now the nearer stand has a package: it serves its sector
        zones = campaigns.preview_zones(c)
        self.assertEqual([(z["site"].pk, z["packages"]) for z in zones], [(a.stand2.pk, 1)])
        campaigns.allocate_campaign(c, actor=self.w.coord)
        self.assertEqual(c.summary["packages"], 1)
        self.assertEqual(Entitlement.objects.filter(campaign=c, status=EntitlementStatus.SELECTED).count(), 1)


@override_settings(LANGUAGE_CODE="en")
class CodeCollisionTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)
        households(cls.w.b11, [10, 20, 30])
        stock_site(cls.a.stand1, cls.a, 1)

    def test_a_code_already_taken_is_drawn_again(self):
        from unittest import mock

        from redes.aid import codes

        first = campaigns.create_campaign(
            actor=None, name="A", template=self.a.package, node=self.w.s1, seed=1
        )
        campaigns.allocate_campaign(first, actor=None)
        taken = list(Entitlement.objects.filter(campaign=first).values_list("code", flat=True))
        original = codes.new_codes

        def colliding(count, *, check=True):
            return taken[:count] if not check else original(count, check=True)

        second = campaigns.create_campaign(
            actor=None, name="B", template=self.a.package, node=self.w.s1, seed=1
        )
        with mock.patch.object(codes, "new_codes", side_effect=colliding):
            campaigns.allocate_campaign(second, actor=None)
        fresh = set(Entitlement.objects.filter(campaign=second).values_list("code", flat=True))
        self.assertEqual(len(fresh), 3)
        self.assertFalse(fresh & set(taken))
