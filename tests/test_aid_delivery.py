"""Deliveries: by code at the zone's site or at home, who may confirm, refusals (twice, wrong site, not selected,
campaign not running), photo and signature, finishing returns the rest to stock, progress per block and sector."""

import shutil
import tempfile

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from redes.aid import campaigns, codes, queries, services
from redes.aid.delivery import confirm_delivery, find_by_code, finish_campaign
from redes.aid.models import (
    CampaignStatus,
    DeliveryMode,
    Entitlement,
    EntitlementStatus,
    EntryKind,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent, Outcome

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@override_settings(LANGUAGE_CODE="en")
class DeliveryTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = build_aid(w)
        households(w.b11, [80, 60, 60, 40])
        households(w.b12, [50, 30], start=10)
        households(w.b21, [70, 10], start=20)
        stock_site(cls.a.stand1, cls.a, 4)
        stock_site(cls.a.stand2, cls.a, 1)
        cls.campaign = campaigns.create_campaign(
            actor=w.coord, name="Marzo", template=cls.a.package, node=w.esc_node, seed=3
        )
        campaigns.allocate_campaign(cls.campaign, actor=w.coord)
        campaigns.start_campaign(cls.campaign, actor=w.coord)

    def selected(self, block):
        return Entitlement.objects.filter(
            campaign=self.campaign, node=block, status=EntitlementStatus.SELECTED
        ).order_by("id")

    def state(self):
        return (
            StockEntry.objects.count(),
            sorted(Entitlement.objects.values_list("id", "status", "delivered_by_id")),
            sorted(StockBalance.objects.values_list("site_id", "item_id", "quantity", "reserved")),
        )

    def refused(self, code, call, exc=ValidationError):
        before = self.state()
        with self.assertRaises(exc) as ctx:
            call()
        self.assertEqual(self.state(), before)
        event = AuditEvent.objects.filter(action="aid.entitlement.deliver").order_by("-id").first()
        self.assertNotEqual(event.outcome, Outcome.OK)
        if code:
            self.assertIn(code, event.summary)
        return ctx.exception

    def test_codes_are_short_unambiguous_and_have_a_qr(self):
        for row in Entitlement.objects.filter(campaign=self.campaign):
            self.assertTrue(codes.is_well_formed(row.code))
            self.assertFalse(set(row.code) & set("01OIL"))
        code = self.selected(self.w.b11).first().code
        self.assertEqual(codes.normalize(codes.display(code).lower()), code)
        svg = codes.qr_svg(code)
        self.assertTrue(svg.startswith("<svg"))
        self.assertIn(codes.display(code), svg)

    def test_a_delivery_at_the_site_by_code(self):
        row = self.selected(self.w.b11).first()
        typed = codes.display(row.code).lower()
        done = confirm_delivery(typed, actor=self.w.block1, mode=DeliveryMode.SITE, site=self.a.stand1)
        self.assertEqual(done.status, EntitlementStatus.DELIVERED)
        self.assertEqual(done.delivered_by, self.w.block1)
        self.assertIsNotNone(done.delivered_at)
        self.assertEqual(done.delivered_site, self.a.stand1)
        entries = StockEntry.objects.filter(entitlement=done, kind=EntryKind.DISTRIBUTED)
        self.assertEqual(entries.count(), self.a.package.lines.count())
        for entry in entries:
            self.assertEqual(entry.quantity, 0)
            self.assertLess(entry.reserved, 0)
        self.assertTrue(services.verify_ledger().ok)
        self.assertTrue(
            AuditEvent.objects.filter(
                action="aid.entitlement.deliver", object_id=str(done.uuid), outcome="ok"
            ).exists()
        )

    def test_confirming_twice_is_refused_and_audited(self):
        row = self.selected(self.w.b11).first()
        confirm_delivery(row, actor=self.w.volunteer, mode=DeliveryMode.HOME)
        err = self.refused(
            "already_delivered",
            lambda: confirm_delivery(
                row.code, actor=self.w.block1, mode=DeliveryMode.SITE, site=self.a.stand1
            ),
        )
        self.assertIn("already delivered", str(err))

    def test_a_code_at_the_wrong_site_is_refused(self):
        row = self.selected(self.w.b11).first()
        err = self.refused(
            "wrong_site",
            lambda: confirm_delivery(
                row.code, actor=self.w.coord, mode=DeliveryMode.SITE, site=self.a.stand2
            ),
        )
        self.assertIn("Stand S1", str(err))

    def test_unknown_or_malformed_codes(self):
        with self.assertRaises(ValidationError):
            find_by_code("hello")
        with self.assertRaises(ValidationError) as ctx:
            find_by_code("2222-2222")
        self.assertIn("2222-2222", str(ctx.exception))

    def test_not_selected_and_held_households_get_nothing(self):
        row = Entitlement.objects.filter(
            campaign=self.campaign, status=EntitlementStatus.NOT_SELECTED
        ).first()
        self.refused(
            "not_selected", lambda: confirm_delivery(row, actor=self.w.coord, mode=DeliveryMode.HOME)
        )

    def test_who_may_confirm(self):
        row21 = self.selected(self.w.b21).first()
        # Sector 1's volunteer and liaisons do not reach sector 2; observers and operators hold no DELIVER_AID.
        for user in (
            self.w.volunteer,
            self.w.sector1,
            self.w.block1,
            self.w.observer,
            self.w.operator,
            self.w.other_coord,
        ):
            self.refused(
                "", lambda user=user: confirm_delivery(row21, actor=user, mode="home"), PermissionDenied
            )
        confirm_delivery(row21, actor=self.w.sector2, mode=DeliveryMode.HOME)
        row12 = self.selected(self.w.b12).first()
        # The block liaison of b11 does not reach b12.
        self.refused("", lambda: confirm_delivery(row12, actor=self.w.block1, mode="home"), PermissionDenied)
        confirm_delivery(row12, actor=self.w.volunteer, mode="home")

    def test_only_while_the_campaign_runs(self):
        draft = campaigns.create_campaign(
            actor=self.w.coord, name="Abril", template=self.a.package, node=self.w.s1
        )
        self.assertEqual(draft.status, CampaignStatus.DRAFT)
        finish_campaign(self.campaign, actor=self.w.coord)
        row = Entitlement.objects.filter(campaign=self.campaign, status=EntitlementStatus.RETURNED).first()
        self.refused("not_selected", lambda: confirm_delivery(row, actor=self.w.coord, mode="home"))

    def test_photo_and_signature(self):
        media = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, media, True)
        self.enterContext(override_settings(MEDIA_ROOT=media))
        row = self.selected(self.w.b11).first()
        photo = SimpleUploadedFile("entrega.png", PNG, content_type="image/png")
        signature = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0L10 10"/></svg>'
        done = confirm_delivery(row, actor=self.w.block1, mode="home", photo=photo, signature=signature)
        self.assertTrue(done.photo.name.endswith(".png"))
        self.assertEqual(done.signature, signature)
        other = self.selected(self.w.b11).first()
        bad = SimpleUploadedFile("x.exe", b"MZ", content_type="application/octet-stream")
        self.refused(
            "photo_type", lambda: confirm_delivery(other, actor=self.w.block1, mode="home", photo=bad)
        )
        self.refused(
            "signature_type",
            lambda: confirm_delivery(
                other, actor=self.w.block1, mode="home", signature="<svg><script>x</script></svg>"
            ),
        )

    def test_finishing_returns_undelivered_packages_and_progress_counts(self):
        b11 = list(self.selected(self.w.b11))
        confirm_delivery(b11[0], actor=self.w.block1, mode="home")
        progress = queries.campaign_progress(self.campaign)
        self.assertEqual(progress["total"]["delivered"], 1)
        self.assertEqual(progress["total"]["allocated"], 5)
        blocks = {row["node"].pk: row for row in progress["blocks"]}
        self.assertEqual(blocks[self.w.b11.pk]["delivered"], 1)
        sectors = {row["node"].pk: row for row in progress["sectors"]}
        self.assertEqual(sectors[self.w.s1.pk]["allocated"], 4)
        self.assertAlmostEqual(sectors[self.w.s1.pk]["delivered_share"], 0.25)

        reserved_before = {
            (b.site_id, b.item_id): (b.quantity, b.reserved)
            for b in StockBalance.objects.filter(reserved__gt=0)
        }
        outcome = finish_campaign(self.campaign, actor=self.w.coord)
        self.assertEqual(outcome, {"delivered": 1, "returned": 4})
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.FINISHED)
        self.assertEqual(
            Entitlement.objects.filter(campaign=self.campaign, status=EntitlementStatus.RETURNED).count(), 4
        )
        for (site_id, item_id), (quantity, reserved) in reserved_before.items():
            b = StockBalance.objects.get(site_id=site_id, item_id=item_id)
            self.assertEqual(b.reserved, 0)
            self.assertEqual(b.quantity, quantity + reserved)
        self.assertTrue(StockEntry.objects.filter(campaign=self.campaign, kind=EntryKind.RETURNED).exists())
        self.assertTrue(services.verify_ledger().ok)
        with self.assertRaises(ValidationError):
            finish_campaign(self.campaign, actor=self.w.coord)
        progress = queries.campaign_progress(self.campaign)
        self.assertEqual(progress["total"]["returned"], 4)
