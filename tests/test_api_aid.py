"""The aid API, role by role: anonymous, other tenant, other territory, observer, volunteer, liaisons and the
coordinator; refusals change nothing and are audited; the public report and sites need no token."""

from decimal import Decimal

from django.test import override_settings

from redes.aid import campaigns
from redes.aid.models import (
    Campaign,
    CampaignStatus,
    Donation,
    Donor,
    Entitlement,
    EntitlementStatus,
    Item,
    PackageTemplate,
    Site,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent, Outcome

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase

AID_ENDPOINTS = {
    "/api/v1/aid/items": {"get", "post"},
    "/api/v1/aid/items/{uuid}": {"patch"},
    "/api/v1/aid/donors": {"get", "post"},
    "/api/v1/aid/donors/{uuid}": {"get", "patch"},
    "/api/v1/aid/donors/{uuid}/impact": {"get"},
    "/api/v1/aid/sites": {"get", "post"},
    "/api/v1/aid/sites/{uuid}": {"get", "patch"},
    "/api/v1/aid/donations": {"get", "post"},
    "/api/v1/aid/donations/{uuid}": {"get"},
    "/api/v1/aid/stock": {"get"},
    "/api/v1/aid/stock/ledger": {"get"},
    "/api/v1/aid/stock/transfer": {"post"},
    "/api/v1/aid/stock/adjust": {"post"},
    "/api/v1/aid/ledger/verify": {"get"},
    "/api/v1/aid/templates": {"get", "post"},
    "/api/v1/aid/templates/{uuid}": {"get", "patch"},
    "/api/v1/aid/campaigns": {"get", "post"},
    "/api/v1/aid/campaigns/{uuid}": {"get", "patch"},
    "/api/v1/aid/campaigns/{uuid}/allocate": {"post"},
    "/api/v1/aid/campaigns/{uuid}/start": {"post"},
    "/api/v1/aid/campaigns/{uuid}/finish": {"post"},
    "/api/v1/aid/campaigns/{uuid}/cancel": {"post"},
    "/api/v1/aid/campaigns/{uuid}/release-held": {"post"},
    "/api/v1/aid/campaigns/{uuid}/progress": {"get"},
    "/api/v1/aid/campaigns/{uuid}/entitlements": {"get"},
    "/api/v1/aid/campaigns/{uuid}/entitlements.csv": {"get"},
    "/api/v1/aid/entitlements/{code}": {"get"},
    "/api/v1/aid/deliveries": {"post"},
    "/api/v1/aid/deliveries/with-photo": {"post"},
    "/api/v1/aid/public/campaigns/{uuid}": {"get"},
    "/api/v1/aid/public/sites": {"get"},
}
#: Served without a token (no personal data).
AID_PUBLIC = {"/api/v1/aid/public/campaigns/{uuid}", "/api/v1/aid/public/sites"}


def state():
    return (
        Item.objects.count(),
        Donor.objects.count(),
        Donation.objects.count(),
        Site.objects.count(),
        StockEntry.objects.count(),
        sorted(StockBalance.objects.values_list("site_id", "item_id", "quantity", "reserved")),
        PackageTemplate.objects.count(),
        sorted(Campaign.objects.values_list("id", "status", "name", "min_priority")),
        sorted(Entitlement.objects.values_list("id", "status")),
    )


@override_settings(LANGUAGE_CODE="en")
class AidApiTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = a = build_aid(w)
        households(w.b11, [80, 60, 40, 20, 10, 5])
        households(w.b12, [50, 30], start=10)
        households(w.b21, [70, 10], start=20)
        stock_site(a.stand1, a, 3)
        stock_site(a.stand2, a, 1)
        cls.running = campaigns.create_campaign(
            actor=w.coord, name="Marzo", template=a.package, node=w.esc_node, seed=5
        )
        campaigns.allocate_campaign(cls.running, actor=w.coord)
        campaigns.start_campaign(cls.running, actor=w.coord)
        cls.draft = campaigns.create_campaign(
            actor=w.coord, name="Abril", template=a.package, node=w.s1, seed=9
        )

    def outsiders(self):
        w = self.w
        return {
            "observer": w.observer,
            "volunteer": w.volunteer,
            "sector1": w.sector1,
            "other_coord": w.other_coord,
        }

    def code_in(self, block, status=EntitlementStatus.SELECTED):
        return (
            Entitlement.objects.filter(campaign=self.running, node=block, status=status)
            .order_by("id")
            .first()
        )

    # --- documentation --------------------------------------------------------------------------------------

    def test_every_endpoint_is_documented(self):
        doc = self.client.get("/api/v1/openapi.json").json()
        paths = {p: set(ops) for p, ops in doc["paths"].items() if p.startswith("/api/v1/aid/")}
        self.assertEqual(paths, AID_ENDPOINTS)
        for path in AID_PUBLIC:
            self.assertNotIn("security", doc["paths"][path]["get"])
        self.assertEqual(doc["paths"]["/api/v1/aid/items"]["get"]["tags"], ["Aid"])

    # --- reads --------------------------------------------------------------------------------------------------

    def test_management_lists_are_for_coordinators(self):
        lists = [
            "aid/items",
            "aid/donors",
            "aid/sites",
            "aid/donations",
            "aid/stock",
            "aid/stock/ledger",
            "aid/templates",
            "aid/campaigns",
        ]
        for path in lists:
            with self.subTest(path=path):
                self.assertEqual(self.api(None, "get", path).status_code, 401)
                for name, user in self.outsiders().items():
                    response = self.api(user, "get", path)
                    if name == "other_coord":  # a coordinator elsewhere: 200, with nothing of Escobedo
                        self.assertEqual(response.status_code, 200)
                        self.assertEqual(response.json()["count"], 0)
                    else:
                        self.assertEqual(response.status_code, 403, name)
                response = self.api(self.w.coord, "get", path)
                self.assertEqual(response.status_code, 200)
                self.assertGreater(response.json()["count"], 0)

    def test_records_answer_404_outside_and_for_bad_ids(self):
        donor = f"aid/donors/{self.a.donor.uuid}"
        site = f"aid/sites/{self.a.stand1.uuid}"
        campaign = f"aid/campaigns/{self.running.uuid}"
        for path in (donor, site, campaign, f"aid/templates/{self.a.package.uuid}", f"{donor}/impact"):
            for user in self.outsiders().values():
                self.assertEqual(self.api(user, "get", path).status_code, 404, path)
            self.assertEqual(self.api(self.w.coord, "get", path).status_code, 200, path)
        self.assertEqual(self.api(self.w.coord, "get", "aid/donors/not-a-uuid").status_code, 404)
        body = self.api(self.w.coord, "get", donor).json()
        self.assertEqual(body["phone"], "+528112345000")

    def test_stock_and_ledger(self):
        body = self.api(self.w.coord, "get", f"aid/stock?site={self.a.stand1.uuid}").json()
        rows = {r["item"]: r for r in body["items"]}
        self.assertEqual(Decimal(rows["Tuna can"]["reserved"]), 30)
        self.assertEqual(Decimal(rows["Tuna can"]["available"]), 0)
        ledger = self.api(self.w.coord, "get", "aid/stock/ledger?kind=allocated").json()
        self.assertTrue(ledger["count"] > 0)
        self.assertTrue(all(e["kind"] == "allocated" for e in ledger["items"]))

    def test_campaign_detail_and_progress(self):
        body = self.api(self.w.coord, "get", f"aid/campaigns/{self.running.uuid}").json()
        self.assertEqual(body["status"], "running")
        self.assertEqual(len(body["digest"]), 64)
        self.assertEqual({z["site"]["name"] for z in body["zones"]}, {"Stand S1", "Stand S2"})
        path = f"aid/campaigns/{self.running.uuid}/progress"
        for user in (self.w.coord, self.w.observer, self.w.state_observer):
            response = self.api(user, "get", path)
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response.json()["total"]["allocated"], 4)
            self.assertNotIn("Calle", response.content.decode())
        for user in (self.w.volunteer, self.w.sector1, self.w.other_coord, self.w.nobody):
            self.assertEqual(self.api(user, "get", path).status_code, 404)

    def test_entitlement_lists_follow_the_delivery_territory(self):
        path = f"aid/campaigns/{self.running.uuid}/entitlements"
        everyone = self.api(self.w.coord, "get", path).json()
        self.assertEqual(everyone["count"], 10)
        volunteer = self.api(self.w.volunteer, "get", path).json()
        self.assertEqual({r["block"]["code"] for r in volunteer["items"]}, {"S01-M001", "S01-M002"})
        block1 = self.api(self.w.block1, "get", f"{path}?status=selected").json()
        self.assertEqual({r["block"]["code"] for r in block1["items"]}, {"S01-M001"})
        self.assertTrue(all(r["status"] == "selected" for r in block1["items"]))
        self.assertRegex(block1["items"][0]["code"], r"^[2-9A-Z]{4}-[2-9A-Z]{4}$")
        # The address is personal data: the block liaison sees it, the volunteer (no VIEW_PERSONAL) does not.
        self.assertTrue(all(r["address"].startswith("Calle") for r in block1["items"]))
        self.assertTrue(all(r["address"] == "" for r in volunteer["items"]))
        for user in (self.w.observer, self.w.other_coord, self.w.operator):
            self.assertEqual(self.api(user, "get", path).status_code, 404)

    # --- writes -------------------------------------------------------------------------------------------------

    def test_create_records_as_coordinator(self):
        w, a = self.w, self.a
        r = self.api(
            w.coord,
            "post",
            "aid/items",
            {
                "municipality": "19021",
                "code": "LECHE",
                "name": "Milk",
                "unit": "litre",
                "whole_units": False,
                "kcal": 640,
            },
        )
        self.assertEqual(r.status_code, 201, r.content)
        r = self.api(
            w.coord,
            "post",
            "aid/donors",
            {"municipality": "19021", "kind": "church", "name": "Parroquia San José"},
        )
        self.assertEqual(r.status_code, 201, r.content)
        donor = r.json()["uuid"]
        r = self.api(
            w.coord,
            "post",
            "aid/sites",
            {
                "municipality": "19021",
                "node": str(w.s2.uuid),
                "kind": "kitchen",
                "name": "Comedor",
                "portions_per_day": 120,
                "lat": 25.8,
                "lon": -100.3,
            },
        )
        self.assertEqual(r.status_code, 201, r.content)
        kitchen = r.json()["uuid"]
        r = self.api(
            w.coord,
            "post",
            "aid/donations",
            {
                "donor": donor,
                "site": kitchen,
                "lines": [{"item": "LECHE", "quantity": "12.5"}, {"item": str(a.tuna.uuid), "quantity": 6}],
            },
        )
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(len(r.json()["lines"]), 2)
        r = self.api(
            w.coord,
            "post",
            "aid/stock/transfer",
            {"from_site": kitchen, "to_site": str(a.stand2.uuid), "item": "ATUN", "quantity": 4},
        )
        self.assertEqual(r.status_code, 201, r.content)
        r = self.api(
            w.coord,
            "post",
            "aid/stock/adjust",
            {"site": kitchen, "item": "ATUN", "quantity": -2, "reason": "Dented cans"},
        )
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(StockBalance.objects.get(site__uuid=kitchen, item=a.tuna).quantity, 0)
        r = self.api(
            w.coord,
            "post",
            "aid/templates",
            {
                "municipality": "19021",
                "name": "Leche",
                "persons": 1,
                "days": 1,
                "lines": [{"item": "LECHE", "quantity": 1}],
            },
        )
        self.assertEqual(r.status_code, 201, r.content)
        self.assertTrue(r.json()["warnings"])
        r = self.api(
            w.coord,
            "post",
            "aid/campaigns",
            {"name": "Mayo", "template": str(a.package.uuid), "node": str(w.s2.uuid), "seed": 3},
        )
        self.assertEqual(r.status_code, 201, r.content)
        self.assertEqual(r.json()["status"], "draft")

    def test_refused_writes_change_nothing_and_are_audited(self):
        w, a = self.w, self.a
        cases = [
            (
                "aid/donations",
                {
                    "donor": str(a.donor.uuid),
                    "site": str(a.warehouse.uuid),
                    "lines": [{"item": "ATUN", "quantity": "1.5"}],
                },
                400,
                "fractional",
            ),
            (
                "aid/donations",
                {
                    "donor": str(a.donor.uuid),
                    "site": str(a.warehouse.uuid),
                    "lines": [{"item": "ATUN", "quantity": -4}],
                },
                400,
                "not_positive",
            ),
            (
                "aid/stock/transfer",
                {
                    "from_site": str(a.warehouse.uuid),
                    "to_site": str(a.stand1.uuid),
                    "item": "ATUN",
                    "quantity": 1,
                },
                400,
                "insufficient",
            ),
            (
                "aid/stock/adjust",
                {"site": str(a.warehouse.uuid), "item": "ATUN", "quantity": 5, "reason": "  "},
                400,
                "reason_required",
            ),
            (f"aid/campaigns/{self.running.uuid}/allocate", None, 400, "campaign_locked"),
        ]
        for path, body, status, code in cases:
            with self.subTest(path=path, code=code):
                before = state()
                r = self.api(w.coord, "post", path, body or {})
                self.assertEqual(r.status_code, status, r.content)
                self.assertEqual(state(), before)
                event = AuditEvent.objects.order_by("-id").first()
                self.assertEqual(event.outcome, Outcome.REJECTED)
                self.assertIn(code, event.summary)
        before = state()
        r = self.api(w.coord, "patch", f"aid/campaigns/{self.running.uuid}", {"min_priority": 90})
        self.assertEqual(r.status_code, 400)
        self.assertIn("allocated", r.json()["detail"])
        self.assertEqual(state(), before)

    def test_writes_by_other_roles_are_refused(self):
        w, a = self.w, self.a
        writes = [
            ("post", "aid/donors", {"municipality": "19021", "name": "X"}),
            (
                "post",
                "aid/donations",
                {
                    "donor": str(a.donor.uuid),
                    "site": str(a.warehouse.uuid),
                    "lines": [{"item": "ATUN", "quantity": 1}],
                },
            ),
            (
                "post",
                "aid/stock/adjust",
                {"site": str(a.warehouse.uuid), "item": "ATUN", "quantity": 5, "reason": "count"},
            ),
            ("patch", f"aid/campaigns/{self.draft.uuid}", {"name": "Hijacked"}),
            ("post", f"aid/campaigns/{self.draft.uuid}/allocate", {}),
            ("post", f"aid/campaigns/{self.running.uuid}/finish", {}),
        ]
        for method, path, body in writes:
            for name, user in {**self.outsiders(), "anonymous": None}.items():
                with self.subTest(path=path, user=name):
                    before = state()
                    r = self.api(user, method, path, body)
                    expected = {"anonymous": {401}, "other_coord": {403, 404}}.get(name, {403, 404})
                    self.assertIn(r.status_code, expected, r.content)
                    self.assertEqual(state(), before)
        denied = AuditEvent.objects.filter(action__startswith="aid.").exclude(outcome=Outcome.OK)
        self.assertTrue(denied.filter(actor=w.observer).exists())
        self.assertTrue(denied.filter(actor=w.volunteer).exists())

    def test_campaign_lifecycle_over_the_api(self):
        w = self.w
        path = f"aid/campaigns/{self.draft.uuid}"
        r = self.api(w.coord, "patch", path, {"min_priority": 30})
        self.assertEqual((r.status_code, r.json()["min_priority"]), (200, 30))
        # Stand 1's stock is reserved by the running campaign; bring one more package.
        stock_site(self.a.stand1, self.a, 1)
        r = self.api(w.coord, "post", f"{path}/allocate")
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["status"], "allocated")
        self.assertEqual(r.json()["summary"]["allocated"], 1)
        self.assertEqual(self.api(w.coord, "post", f"{path}/start").status_code, 200)
        r = self.api(w.coord, "post", f"{path}/finish")
        self.assertEqual(r.json(), {"delivered": 0, "returned": 1})
        self.assertEqual(Campaign.objects.get(pk=self.draft.pk).status, CampaignStatus.FINISHED)

    # --- deliveries ------------------------------------------------------------------------------------------

    def test_delivery_by_code(self):
        w = self.w
        row = self.code_in(w.b11)
        code = f"{row.code[:4]}-{row.code[4:]}".lower()
        # Outside the delivery territory the code does not exist.
        for user in (w.sector2, w.observer, w.other_coord, w.operator):
            before = state()
            r = self.api(user, "post", "aid/deliveries", {"code": code, "mode": "home"})
            self.assertEqual(r.status_code, 404, user)
            self.assertEqual(state(), before)
        self.assertEqual(self.api(w.volunteer, "get", f"aid/entitlements/{row.code}").status_code, 200)
        self.assertEqual(self.api(w.sector2, "get", f"aid/entitlements/{row.code}").status_code, 404)
        r = self.api(
            w.block1,
            "post",
            "aid/deliveries",
            {"code": code, "mode": "site", "site": str(self.a.stand2.uuid)},
        )
        self.assertEqual(r.status_code, 400)
        self.assertIn("Stand S1", r.json()["detail"])
        r = self.api(
            w.block1,
            "post",
            "aid/deliveries",
            {"code": code, "mode": "site", "site": str(self.a.stand1.uuid)},
        )
        self.assertEqual(r.status_code, 200, r.content)
        self.assertEqual(r.json()["status"], "delivered")
        before = state()
        r = self.api(w.volunteer, "post", "aid/deliveries", {"code": code, "mode": "home"})
        self.assertEqual(r.status_code, 400)
        self.assertIn("already delivered", r.json()["detail"])
        self.assertEqual(state(), before)
        event = AuditEvent.objects.filter(action="aid.entitlement.deliver").order_by("-id").first()
        self.assertIn("already_delivered", event.summary)
        self.assertEqual(
            self.api(w.block1, "post", "aid/deliveries", {"code": "nope", "mode": "home"}).status_code, 404
        )

    def test_delivery_with_a_photo(self):
        import shutil
        import tempfile

        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client, override_settings

        media = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, media, True)
        row = self.code_in(self.w.b11)
        headers = {"Authorization": f"Bearer {self.token_for(self.w.volunteer)}"}
        png = SimpleUploadedFile("entrega.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, content_type="image/png")
        with override_settings(MEDIA_ROOT=media):
            r = Client().post(
                "/api/v1/aid/deliveries/with-photo",
                {"code": row.code, "mode": "home", "photo": png},
                headers=headers,
            )
            self.assertEqual(r.status_code, 200, r.content)
            row.refresh_from_db()
            self.assertTrue(row.photo.name.endswith(".png"))
            bad = SimpleUploadedFile("x.txt", b"hello", content_type="text/plain")
            other = self.code_in(self.w.b11)
            before = state()
            r = Client().post(
                "/api/v1/aid/deliveries/with-photo",
                {"code": other.code, "mode": "home", "photo": bad},
                headers=headers,
            )
            self.assertEqual(r.status_code, 400)
            self.assertEqual(state(), before)

    # --- public ---------------------------------------------------------------------------------------------------

    def test_public_report_and_sites_need_no_token(self):
        r = self.client.get(f"/api/v1/aid/public/campaigns/{self.running.uuid}")
        self.assertEqual(r.status_code, 200)
        body = r.json()
        self.assertEqual(body["name"], "Marzo")
        self.assertEqual(body["suppress_below"], 5)
        self.assertNotIn("Calle", r.content.decode())
        self.assertEqual(self.client.get(f"/api/v1/aid/public/campaigns/{self.draft.uuid}").status_code, 404)
        self.assertEqual(self.client.get("/api/v1/aid/public/campaigns/bad").status_code, 404)
        r = self.client.get("/api/v1/aid/public/sites?municipality=19021")
        self.assertEqual(r.status_code, 200)
        names = {f["properties"]["name"] for f in r.json()["features"]}
        self.assertEqual(names, {"Central warehouse", "Stand S1"})
        self.assertNotIn("López", r.content.decode())
        self.assertEqual(self.client.get("/api/v1/aid/public/sites?municipality=99999").status_code, 404)
