"""The stock ledger: donations in, transfers, adjustments; refusals leave the ledger unchanged and are audited."""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import override_settings

from redes.aid import services
from redes.aid.models import (
    AppendOnlyError,
    Donation,
    DonationKind,
    EntryKind,
    PackageTemplate,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent, Outcome

from .aid_support import build_aid
from .base import RedesTestCase


@override_settings(LANGUAGE_CODE="en")
class LedgerTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)

    def balance(self, site, item) -> Decimal:
        row = StockBalance.objects.filter(site=site, item=item).first()
        return row.quantity if row else Decimal(0)

    def snapshot(self):
        return (
            StockEntry.objects.count(),
            sorted(StockBalance.objects.values_list("site_id", "item_id", "quantity", "reserved")),
        )

    def assert_refused(self, action, code, call):
        before = self.snapshot()
        audits = AuditEvent.objects.filter(action=action).exclude(outcome=Outcome.OK).count()
        with self.assertRaises(ValidationError) as ctx:
            call()
        self.assertEqual(self.snapshot(), before)
        self.assertIn(
            code,
            [e.code for e in ctx.exception.error_list]
            if not hasattr(ctx.exception, "error_dict")
            else [e.code for errs in ctx.exception.error_dict.values() for e in errs],
        )
        event = AuditEvent.objects.filter(action=action).exclude(outcome=Outcome.OK).order_by("-id").first()
        self.assertEqual(
            AuditEvent.objects.filter(action=action).exclude(outcome=Outcome.OK).count(), audits + 1
        )
        self.assertIn(code, event.summary)
        return ctx.exception

    def test_it_receives_a_donation_into_the_site(self):
        a = self.a
        donation = services.receive_donation(
            actor=self.w.coord, donor=a.donor, site=a.warehouse, lines=[(a.rice, "12.5"), (a.tuna, 40)]
        )
        self.assertEqual(donation.lines.count(), 2)
        self.assertEqual(self.balance(a.warehouse, a.rice), Decimal("12.5"))
        self.assertEqual(self.balance(a.warehouse, a.tuna), 40)
        kinds = set(StockEntry.objects.filter(donation=donation).values_list("kind", flat=True))
        self.assertEqual(kinds, {EntryKind.RECEIVED})
        self.assertTrue(
            AuditEvent.objects.filter(action="aid.donation.receive", object_id=str(donation.uuid)).exists()
        )
        self.assertTrue(services.verify_ledger().ok)

    def test_a_money_pledge_is_recorded_without_stock(self):
        before = self.snapshot()
        donation = services.receive_donation(
            actor=self.w.coord, donor=self.a.donor, kind=DonationKind.MONEY_PLEDGE, pledge_mxn="15000"
        )
        self.assertEqual(donation.pledge_mxn, Decimal("15000.00"))
        self.assertEqual(self.snapshot(), before)

    def test_fractional_whole_units_are_refused(self):
        a = self.a
        err = self.assert_refused(
            "aid.donation.receive",
            "fractional",
            lambda: services.receive_donation(
                actor=self.w.coord, donor=a.donor, site=a.warehouse, lines=[(a.tuna, "2.5")]
            ),
        )
        self.assertIn("whole", str(err))
        self.assertFalse(Donation.objects.exists())

    def test_negative_and_zero_quantities_are_refused(self):
        a = self.a
        for qty, code in (
            ("-3", "not_positive"),
            ("0", "not_positive"),
            ("abc", "not_a_number"),
            ("NaN", "not_a_number"),
        ):
            self.assert_refused(
                "aid.donation.receive",
                code,
                lambda qty=qty: services.receive_donation(
                    actor=self.w.coord, donor=a.donor, site=a.warehouse, lines=[(a.rice, qty)]
                ),
            )
        self.assert_refused(
            "aid.stock.transfer",
            "not_positive",
            lambda: services.transfer_stock(
                actor=self.w.coord, from_site=a.warehouse, to_site=a.stand1, item=a.rice, quantity=-1
            ),
        )

    def test_transfer_moves_stock_with_paired_entries(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 100)])
        transfer = services.transfer_stock(
            actor=self.w.coord, from_site=a.warehouse, to_site=a.stand1, item=a.tuna, quantity=30
        )
        self.assertEqual(self.balance(a.warehouse, a.tuna), 70)
        self.assertEqual(self.balance(a.stand1, a.tuna), 30)
        pair = StockEntry.objects.filter(transfer=transfer).order_by("kind")
        self.assertEqual(
            [(e.kind, e.quantity) for e in pair], [(EntryKind.TRANSFER_IN, 30), (EntryKind.TRANSFER_OUT, -30)]
        )
        self.assertTrue(services.verify_ledger().ok)

    def test_transfer_from_an_empty_site_is_refused(self):
        a = self.a
        err = self.assert_refused(
            "aid.stock.transfer",
            "insufficient",
            lambda: services.transfer_stock(
                actor=self.w.coord, from_site=a.stand2, to_site=a.stand1, item=a.rice, quantity=1
            ),
        )
        self.assertIn("There is no Rice available at Stand S2", str(err))

    def test_transfer_of_more_than_available_says_how_much_there_is(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.stand1, lines=[(a.tuna, 5)])
        err = self.assert_refused(
            "aid.stock.transfer",
            "insufficient",
            lambda: services.transfer_stock(
                actor=self.w.coord, from_site=a.stand1, to_site=a.stand2, item=a.tuna, quantity=6
            ),
        )
        self.assertIn("Only 5", str(err))
        self.assertEqual(self.balance(a.stand1, a.tuna), 5)

    def test_adjustment_needs_a_reason_and_cannot_go_negative(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.stand1, lines=[(a.rice, 10)])
        self.assert_refused(
            "aid.stock.adjust",
            "reason_required",
            lambda: services.adjust_stock(
                actor=self.w.coord, site=a.stand1, item=a.rice, quantity=-1, reason=" "
            ),
        )
        self.assert_refused(
            "aid.stock.adjust",
            "insufficient",
            lambda: services.adjust_stock(
                actor=self.w.coord, site=a.stand1, item=a.rice, quantity="-10.5", reason="Spoiled"
            ),
        )
        entry = services.adjust_stock(
            actor=self.w.coord, site=a.stand1, item=a.rice, quantity="-2.25", reason="Spoiled"
        )
        self.assertEqual(entry.kind, EntryKind.ADJUSTED)
        self.assertEqual(self.balance(a.stand1, a.rice), Decimal("7.75"))
        self.assertTrue(services.verify_ledger().ok)

    def test_only_coordinators_manage_stock(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 10)])
        for user in (
            self.w.sector1,
            self.w.block1,
            self.w.volunteer,
            self.w.observer,
            self.w.other_coord,
            self.w.operator,
        ):
            before = self.snapshot()
            with self.assertRaises(PermissionDenied):
                services.transfer_stock(
                    actor=user, from_site=a.warehouse, to_site=a.stand1, item=a.tuna, quantity=1
                )
            self.assertEqual(self.snapshot(), before)
            self.assertTrue(
                AuditEvent.objects.filter(
                    action="aid.stock.transfer", actor=user, outcome=Outcome.DENIED
                ).exists()
            )

    def test_entries_are_append_only(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 10)])
        entry = StockEntry.objects.first()
        entry.quantity = 999
        with self.assertRaises(AppendOnlyError):
            entry.save()
        with self.assertRaises(AppendOnlyError):
            entry.delete()
        with self.assertRaises(AppendOnlyError):
            StockEntry.objects.filter(pk=entry.pk).update(quantity=1)
        with self.assertRaises(AppendOnlyError):
            StockEntry.objects.all().delete()

    def test_the_database_refuses_to_change_an_entry(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 1)])
        with self.assertRaises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE aid_stockentry SET quantity = 99")
        self.assertEqual(StockEntry.objects.get().quantity, 1)

    def test_the_database_refuses_a_negative_balance(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 1)])
        with self.assertRaises(IntegrityError), transaction.atomic():
            StockBalance.objects.filter(site=a.warehouse, item=a.tuna).update(quantity=-1)

    def test_verify_ledger_finds_a_tampered_balance(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, 10)])
        StockBalance.objects.filter(site=a.warehouse, item=a.tuna).update(quantity=7)
        report = services.verify_ledger()
        self.assertFalse(report.ok)
        self.assertEqual(Decimal(report.mismatches[0]["ledger"][0]), 10)
        self.assertEqual(Decimal(report.mismatches[0]["balance"][0]), 7)

    def test_template_reports_sphere_energy_and_warnings(self):
        a = self.a
        package = a.package
        self.assertAlmostEqual(package.kcal_per_person_day, 60400 / 28, places=3)
        self.assertGreater(package.sphere_ratio, 1)
        self.assertEqual(package.warnings, [])
        thin = services.save_template(
            actor=self.w.coord,
            municipality=self.w.esc,
            name="Thin",
            persons=4,
            days=7,
            lines=[(a.rice, 5), (a.tuna, 4)],
        )
        thin = PackageTemplate.objects.get(pk=thin.pk)
        self.assertLess(thin.kcal_per_person_day, 2100)
        self.assertTrue(any("2,100" in w for w in thin.warnings))
        self.assertTrue(any("Fat" in w for w in thin.warnings))

    def test_item_rules(self):
        self.assert_refused(
            "aid.item.save",
            "whole_units",
            lambda: services.save_item(
                actor=self.w.coord,
                municipality=self.w.esc,
                code="X",
                name="Cans",
                unit="piece",
                whole_units=False,
            ),
        )
        with self.assertRaises(PermissionDenied):
            services.save_item(actor=self.w.sector1, municipality=self.w.esc, code="Y", name="Y")
