"""The aid API's ledger check (``GET aid/ledger/verify``) and the allocation's CSV export
(``GET aid/campaigns/{uuid}/entitlements.csv``): coordinators only, per role; documented in the OpenAPI document."""

from __future__ import annotations

from decimal import Decimal

from django.test import override_settings

from redes.aid import campaigns
from redes.aid.models import Entitlement, StockBalance

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase


@override_settings(LANGUAGE_CODE="en")
class LedgerAndExportApiTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = a = build_aid(w)
        households(w.b11, [80, 60, 40])
        households(w.b21, [70, 10], start=10)
        stock_site(a.stand1, a, 2)
        stock_site(a.stand2, a, 1)
        cls.campaign = campaigns.create_campaign(
            actor=w.coord, name="Marzo", template=a.package, node=w.esc_node, seed=5
        )
        campaigns.allocate_campaign(cls.campaign, actor=w.coord)

    # --- the ledger check -----------------------------------------------------------------------------------------

    def test_the_ledger_check_is_for_coordinators(self):
        w = self.w
        path = "aid/ledger/verify"
        self.assertEqual(self.api(None, "get", path).status_code, 401)
        for user in (w.observer, w.state_observer, w.volunteer, w.sector1, w.block1, w.caseworker, w.nobody):
            with self.subTest(user=user.username):
                self.assertEqual(self.api(user, "get", path).status_code, 403)
        body = self.api(w.coord, "get", path).json()
        self.assertEqual(body["municipality"], "19021")
        self.assertTrue(body["ok"])
        self.assertEqual(body["checked"], StockBalance.objects.filter(municipality=w.esc).count())
        self.assertEqual(body["mismatches"], [])
        # Another tenant's coordinator checks their own municipality, and cannot name Escobedo.
        other = self.api(w.other_coord, "get", path).json()
        self.assertEqual((other["municipality"], other["checked"]), ("12001", 0))
        self.assertEqual(self.api(w.other_coord, "get", f"{path}?municipality=19021").status_code, 404)
        self.assertEqual(self.api(w.coord, "get", f"{path}?municipality=nonsense").status_code, 404)

    def test_a_superuser_names_the_municipality(self):
        response = self.api(self.w.root, "get", "aid/ledger/verify")
        self.assertEqual(response.status_code, 400)
        self.assertIn("Give the municipality", response.json()["detail"])
        self.assertTrue(self.api(self.w.root, "get", "aid/ledger/verify?municipality=19021").json()["ok"])

    def test_a_balance_that_differs_from_the_ledger_is_listed(self):
        balance = StockBalance.objects.get(site=self.a.stand1, item=self.a.tuna)
        StockBalance.objects.filter(pk=balance.pk).update(quantity=balance.quantity + 3)
        body = self.api(self.w.coord, "get", "aid/ledger/verify").json()
        self.assertFalse(body["ok"])
        self.assertEqual(len(body["mismatches"]), 1)
        wrong = body["mismatches"][0]
        self.assertEqual((wrong["site"], wrong["item"]), (str(self.a.stand1.uuid), "ATUN"))
        self.assertEqual(Decimal(wrong["balance_available"]) - Decimal(wrong["ledger_available"]), 3)

    # --- the CSV export ---------------------------------------------------------------------------------------------

    def test_the_export_is_the_allocation_csv_for_coordinators(self):
        w = self.w
        path = f"aid/campaigns/{self.campaign.uuid}/entitlements.csv"
        self.assertEqual(self.api(None, "get", path).status_code, 401)
        for user in (w.observer, w.state_observer, w.volunteer, w.sector1, w.block1, w.caseworker, w.nobody):
            with self.subTest(user=user.username):
                self.assertEqual(self.api(user, "get", path).status_code, 403)
        self.assertEqual(self.api(w.other_coord, "get", path).status_code, 404)
        self.assertEqual(
            self.api(w.coord, "get", "aid/campaigns/not-a-uuid/entitlements.csv").status_code, 404
        )
        response = self.api(w.coord, "get", path)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/csv"))
        self.assertIn("attachment", response["Content-Disposition"])
        self.assertEqual(response.content, campaigns.export_entitlements(self.campaign))
        lines = response.content.decode().splitlines()
        self.assertEqual(lines[0], "household,block,zone_site,status,reason,rank")
        self.assertEqual(len(lines) - 1, Entitlement.objects.filter(campaign=self.campaign).count())
        for code in Entitlement.objects.filter(campaign=self.campaign).values_list("code", flat=True):
            self.assertNotIn(code, response.content.decode())

    def test_both_are_in_the_openapi_document(self):
        doc = self.client.get("/api/v1/openapi.json").json()
        check = doc["paths"]["/api/v1/aid/ledger/verify"]["get"]
        self.assertEqual(check["tags"], ["Aid"])
        self.assertIn("security", check)
        export = doc["paths"]["/api/v1/aid/campaigns/{uuid}/entitlements.csv"]["get"]
        self.assertIn("text/csv", export["responses"]["200"]["content"])
        self.assertIn("security", export)
