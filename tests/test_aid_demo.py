"""The demo's aid: deterministic for a seed; a catalogue, donors of every kind, warehouses, stands and kitchens,
a package that meets Sphere, a finished campaign (mostly delivered, the rest returned) and a running one with
packages still to deliver in manzana1's block; the ledger balances."""

from django.db import transaction
from django.test import TestCase, override_settings

from redes.accounts.models import Membership, User
from redes.aid import queries, services
from redes.aid.models import (
    Campaign,
    CampaignStatus,
    Donation,
    Donor,
    DonorKind,
    Entitlement,
    EntitlementStatus,
    Item,
    PackageTemplate,
    Site,
    SiteKind,
    StockBalance,
)
from redes.demo.generator import build_demo


def snapshot() -> dict:
    return {
        "items": list(Item.objects.order_by("code").values_list("code", "name", "unit", "kcal")),
        "donors": list(Donor.objects.order_by("pk").values_list("kind", "name", "public_name", "phone")),
        "donations": list(
            Donation.objects.order_by("pk").values_list("donor__name", "site__name", "kind", "pledge_mxn")
        ),
        "sites": list(
            Site.objects.order_by("pk").values_list("kind", "name", "lat", "lon", "portions_per_day")
        ),
        "balances": list(
            StockBalance.objects.order_by("site__name", "item__code").values_list(
                "site__name", "item__code", "quantity", "reserved"
            )
        ),
        "entitlements": list(
            Entitlement.objects.order_by(
                "campaign__name", "household__node__code", "household__street", "pk"
            ).values_list(
                "campaign__name",
                "node__code",
                "household__street",
                "household__ext_number",
                "status",
                "reason",
                "rank",
            )
        ),
    }


def built_and_rolled_back(seed: int) -> dict:
    with transaction.atomic():
        build_demo(seed=seed)
        data = snapshot()
        transaction.set_rollback(True)
    return data


@override_settings(LANGUAGE_CODE="en")
class AidDemoDeterminismTest(TestCase):
    def test_the_same_seed_gives_the_same_aid(self):
        first = built_and_rolled_back(3)
        again = built_and_rolled_back(3)
        self.assertTrue(first["entitlements"])
        self.assertEqual(first, again)


@override_settings(LANGUAGE_CODE="en")
class AidDemoTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.result = build_demo(seed=1)
        cls.esc = cls.result.escobedo

    def test_catalogue_donors_and_sites(self):
        self.assertGreaterEqual(Item.objects.filter(municipality=self.esc).count(), 10)
        for kind in DonorKind.values:
            self.assertEqual(Donor.objects.filter(municipality=self.esc, kind=kind).count(), 10, kind)
        kinds = {k: Site.objects.filter(municipality=self.esc, kind=k).count() for k in SiteKind.values}
        self.assertEqual(kinds[SiteKind.WAREHOUSE], 2)
        self.assertGreaterEqual(kinds[SiteKind.STAND], 3)
        self.assertTrue(3 <= kinds[SiteKind.KITCHEN] <= 5)
        for kitchen in Site.objects.filter(kind=SiteKind.KITCHEN):
            self.assertTrue(kitchen.schedule)
            self.assertGreater(kitchen.portions_per_day, 0)
        self.assertGreater(len(queries.public_sites(self.esc)["features"]), 5)
        self.assertTrue(Donation.objects.filter(kind="money_pledge").exists())

    def test_a_package_meets_sphere(self):
        best = max(PackageTemplate.objects.filter(municipality=self.esc), key=lambda t: t.kcal_per_person_day)
        self.assertGreaterEqual(best.kcal_per_person_day, 2100)
        self.assertEqual(best.warnings, [])
        self.assertTrue(any(t.warnings for t in PackageTemplate.objects.filter(municipality=self.esc)))

    def test_a_finished_and_a_running_campaign(self):
        finished = Campaign.objects.get(municipality=self.esc, status=CampaignStatus.FINISHED)
        counts = queries.campaign_progress(finished)["total"]
        self.assertGreater(counts["delivered"], counts["returned"] * 2)
        self.assertGreater(counts["returned"], 0)
        self.assertEqual(counts["selected"], 0)
        running = Campaign.objects.get(municipality=self.esc, status=CampaignStatus.RUNNING)
        counts = queries.campaign_progress(running)["total"]
        self.assertGreater(counts["delivered"], 0)
        self.assertGreater(counts["selected"], counts["delivered"] / 2)
        self.assertEqual(len(running.digest), 64)
        self.assertTrue(queries.public_report(running)["blocks"])

    def test_manzana1_and_voluntario_have_packages_to_deliver(self):
        manzana1 = User.objects.get(username="manzana1")
        voluntario = User.objects.get(username="voluntario")
        block = Membership.objects.get(user=manzana1).node
        running = Campaign.objects.get(municipality=self.esc, status=CampaignStatus.RUNNING)
        mine = queries.entitlements_for(manzana1, running, status=EntitlementStatus.SELECTED)
        self.assertGreater(mine.count(), 0)
        self.assertEqual(set(mine.values_list("node_id", flat=True)), {block.pk})
        self.assertTrue(
            queries.entitlements_for(manzana1, running, status=EntitlementStatus.DELIVERED).exists()
        )
        self.assertTrue(
            queries.entitlements_for(voluntario, running, status=EntitlementStatus.SELECTED)
            .filter(node=block)
            .exists()
        )
        self.assertTrue(
            Entitlement.objects.filter(campaign__municipality=self.esc, delivered_by=voluntario).exists()
        )

    def test_the_ledger_balances_and_the_stats_print(self):
        self.assertTrue(services.verify_ledger(self.esc).ok)
        lines = self.result.aid.lines()
        self.assertEqual(len(lines), 3)
        self.assertIn("60 donors", lines[0])
