"""Public aggregates: the campaign report (by sector and block, small counts suppressed, no personal data), the
public sites map (GeoJSON) and the donor impact view."""

import json

from django.test import override_settings

from redes.aid import campaigns, queries, services
from redes.aid.delivery import confirm_delivery, finish_campaign
from redes.aid.models import Campaign, DonationKind, DonorKind, Entitlement, EntitlementStatus, SiteKind

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase


@override_settings(LANGUAGE_CODE="en")
class ReportTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = a = build_aid(w)
        cls.big = households(w.b11, [50] * 12)
        households(w.b12, [40, 30, 20], start=20)  # a small block: its counts are suppressed
        households(w.b21, [60] * 6, start=30)
        cls.other_donor = services.save_donor(
            actor=None, municipality=w.esc, kind=DonorKind.CHURCH, name="Parroquia"
        )
        stock_site(a.stand1, a, 6)  # from the business donor
        stock_site(a.stand2, a, 2, donor=cls.other_donor)
        services.receive_donation(actor=None, donor=a.donor, kind=DonationKind.MONEY_PLEDGE, pledge_mxn=5000)
        cls.campaign = campaigns.create_campaign(
            actor=w.coord, name="Marzo", template=a.package, node=w.esc_node, seed=1
        )
        campaigns.allocate_campaign(cls.campaign, actor=w.coord)
        campaigns.start_campaign(cls.campaign, actor=w.coord)
        for row in Entitlement.objects.filter(
            campaign=cls.campaign, status=EntitlementStatus.SELECTED
        ).order_by("id"):
            confirm_delivery(row, actor=w.coord, mode="home")

    def test_public_report_suppresses_small_counts_and_holds_no_personal_data(self):
        report = queries.public_report(self.campaign)
        blocks = {row["code"]: row for row in report["blocks"]}
        self.assertIsNone(blocks["S01-M001"]["eligible"])  # 12, hidden too: S01 (15) − 12 would give M002's 3
        self.assertIsNone(blocks["S01-M002"]["eligible"])  # 3 households: suppressed
        self.assertIsNone(blocks["S01-M002"]["coverage"])
        self.assertEqual(blocks["S02-M001"]["eligible"], 6)
        self.assertIsNone(blocks["S02-M001"]["allocated"])  # 2 packages: suppressed
        sectors = {row["code"]: row for row in report["sectors"]}
        self.assertEqual(sectors["S01"]["eligible"], 15)
        # S02's 2 packages are hidden, so S01's 6 are too (the total, 8, minus 6 would give them).
        self.assertIsNone(sectors["S01"]["allocated"])
        self.assertIsNone(sectors["S01"]["delivered"])
        self.assertEqual(report["total"]["allocated"], 8)
        self.assertEqual(report["total"]["eligible"], 21)
        text = json.dumps(report, default=str)
        for household in self.big:
            self.assertNotIn(str(household.uuid), text)
            self.assertNotIn(household.street, text)
        for row in Entitlement.objects.filter(campaign=self.campaign):
            self.assertNotIn(row.code, text)
        self.assertNotIn("Luis", text)

    def test_a_draft_campaign_has_no_public_report(self):
        draft = campaigns.create_campaign(
            actor=self.w.coord, name="Borrador", template=self.a.package, node=self.w.s1
        )
        with self.assertRaises(Campaign.DoesNotExist):
            queries.public_report(draft)

    def test_public_sites_are_geojson_without_private_sites(self):
        services.save_site(
            actor=None,
            municipality=self.w.esc,
            node=self.w.s1,
            kind=SiteKind.KITCHEN,
            name="Comedor Centro",
            lat=25.791,
            lon=-100.321,
            portions_per_day=150,
            schedule="L-V 13:00-16:00",
        )
        data = queries.public_sites(self.w.esc)
        self.assertEqual(data["type"], "FeatureCollection")
        names = {f["properties"]["name"] for f in data["features"]}
        self.assertEqual(names, {"Central warehouse", "Stand S1", "Comedor Centro"})  # stand 2 is not public
        kitchen = next(f for f in data["features"] if f["properties"]["kind"] == "kitchen")
        self.assertEqual(kitchen["geometry"]["coordinates"], [-100.321, 25.791])
        self.assertEqual(kitchen["properties"]["portions_per_day"], 150)
        self.assertEqual(queries.public_sites(self.w.aca)["features"], [])

    def test_donor_impact(self):
        finish_campaign(self.campaign, actor=self.w.coord)
        impact = queries.donor_impact(self.a.donor)
        self.assertEqual(impact["public_name"], "Abarrotes López")
        self.assertEqual(impact["pledged_mxn"], 5000)
        received = {row["item"].code: row for row in impact["received"]}
        self.assertEqual(received["ATUN"]["quantity"], 60)
        self.assertAlmostEqual(received["ATUN"]["share_of_all_received"], 0.75)
        (campaign,) = impact["campaigns"]
        self.assertEqual(campaign["packages_delivered"], 8)
        self.assertAlmostEqual(campaign["share"], 0.75)
        sectors = {row["node"].code: row for row in campaign["sectors"]}
        self.assertEqual(sectors["S01"]["packages_delivered"], 6)
        self.assertAlmostEqual(sectors["S01"]["package_equivalents"], 4.5)
        church = queries.donor_impact(self.other_donor)
        self.assertAlmostEqual(church["campaigns"][0]["share"], 0.25)
        anonymous = services.save_donor(actor=None, municipality=self.w.esc, name="Vecina")
        self.assertEqual(queries.donor_impact(anonymous)["public_name"], "Anonymous donor")
