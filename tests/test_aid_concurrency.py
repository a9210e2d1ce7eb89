"""Stock never goes negative under concurrent requests (PostgreSQL: real row locks between real connections).

Several threads, each on its own database connection, withdraw and transfer from the same balance at once. The
final balance equals the ledger sum, never drops below zero, and exactly the attempts beyond the stock are
refused. SQLite serialises every write transaction (IMMEDIATE), so there is nothing to race there.
"""

import threading
import unittest
from collections import Counter
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.test import TransactionTestCase, override_settings

from redes.accounts.models import User
from redes.aid import campaigns, services
from redes.aid.delivery import confirm_delivery
from redes.aid.models import Entitlement, EntitlementStatus, EntryKind, StockBalance, StockEntry

from .aid_support import build_aid, households, stock_site
from .base import build_world

THREADS = 8


def _codes(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [e.code for errors in exc.error_dict.values() for e in errors]
    return [e.code for e in exc.error_list]


@unittest.skipUnless(
    connection.vendor == "postgresql", "row-lock races need PostgreSQL (SQLite serialises writers)"
)
@override_settings(LANGUAGE_CODE="en")
class ConcurrentStockTests(TransactionTestCase):
    def setUp(self):
        self.w = build_world()
        self.a = build_aid(self.w)

    def run_threads(self, work):
        """Run ``work(index)`` in THREADS threads started together; collect outcomes and unexpected errors."""
        barrier = threading.Barrier(THREADS)
        outcomes: Counter = Counter()
        errors: list[BaseException] = []
        lock = threading.Lock()

        def runner(index):
            try:
                barrier.wait()
                for outcome in work(index):
                    with lock:
                        outcomes[outcome] += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=runner, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        return outcomes

    def balance(self, site, item) -> StockBalance:
        return StockBalance.objects.get(site=site, item=item)

    def ledger_sum(self, site, item) -> Decimal:
        return StockEntry.objects.filter(site=site, item=item).aggregate(s=Sum("quantity"))["s"] or Decimal(0)

    def test_concurrent_withdrawals_and_transfers_never_overdraw(self):
        a = self.a
        stock, per_thread = 50, 10  # 8 × 10 = 80 attempts of 1 unit against 50 units
        services.receive_donation(actor=None, donor=a.donor, site=a.warehouse, lines=[(a.tuna, stock)])
        coord_id = self.w.coord.pk

        def work(index):
            coord = User.objects.get(pk=coord_id)
            for step in range(per_thread):
                try:
                    if (index + step) % 2:
                        services.transfer_stock(
                            actor=coord, from_site=a.warehouse, to_site=a.stand1, item=a.tuna, quantity=1
                        )
                        yield "transferred"
                    else:
                        services.adjust_stock(
                            actor=coord, site=a.warehouse, item=a.tuna, quantity=-1, reason="Handed out"
                        )
                        yield "withdrawn"
                except ValidationError as exc:
                    self.assertEqual(_codes(exc), ["insufficient"])
                    yield "refused"

        outcomes = self.run_threads(work)
        attempts = THREADS * per_thread
        self.assertEqual(sum(outcomes.values()), attempts)
        self.assertEqual(outcomes["transferred"] + outcomes["withdrawn"], stock)
        self.assertEqual(outcomes["refused"], attempts - stock)
        warehouse = self.balance(a.warehouse, a.tuna)
        self.assertEqual(warehouse.quantity, 0)
        self.assertEqual(warehouse.quantity, self.ledger_sum(a.warehouse, a.tuna))
        self.assertEqual(self.balance(a.stand1, a.tuna).quantity, outcomes["transferred"])
        self.assertEqual(self.ledger_sum(a.stand1, a.tuna), outcomes["transferred"])
        self.assertFalse(StockBalance.objects.filter(quantity__lt=0).exists())
        self.assertTrue(services.verify_ledger().ok)

    def test_opposite_transfers_do_not_deadlock_and_conserve_stock(self):
        a = self.a
        services.receive_donation(actor=None, donor=a.donor, site=a.stand1, lines=[(a.tuna, 5), (a.rice, 5)])
        services.receive_donation(actor=None, donor=a.donor, site=a.stand2, lines=[(a.tuna, 5), (a.rice, 5)])
        coord_id = self.w.coord.pk

        def work(index):
            coord = User.objects.get(pk=coord_id)
            source, target = (a.stand1, a.stand2) if index % 2 else (a.stand2, a.stand1)
            for step in range(12):
                item = a.tuna if step % 2 else a.rice
                try:
                    services.transfer_stock(
                        actor=coord, from_site=source, to_site=target, item=item, quantity=2
                    )
                    yield "moved"
                except ValidationError as exc:
                    self.assertEqual(_codes(exc), ["insufficient"])
                    yield "refused"

        outcomes = self.run_threads(work)
        self.assertEqual(sum(outcomes.values()), THREADS * 12)
        for item in (a.tuna, a.rice):
            one, two = self.balance(a.stand1, item).quantity, self.balance(a.stand2, item).quantity
            self.assertEqual(one + two, 10)
            self.assertGreaterEqual(min(one, two), 0)
            self.assertEqual(one, self.ledger_sum(a.stand1, item))
        moved = StockEntry.objects.filter(kind="transfer_out").count()
        self.assertEqual(moved, outcomes["moved"])
        self.assertTrue(services.verify_ledger().ok)

    def test_a_package_confirmed_from_several_phones_at_once_is_delivered_once(self):
        w, a = self.w, self.a
        households(w.b11, [50, 40, 30])
        stock_site(a.stand1, a, 3)
        campaign = campaigns.create_campaign(actor=None, name="Race", template=a.package, node=w.s1, seed=1)
        campaigns.allocate_campaign(campaign, actor=None)
        campaigns.start_campaign(campaign, actor=None)
        rows = list(
            Entitlement.objects.filter(campaign=campaign, status=EntitlementStatus.SELECTED).order_by("id")
        )
        self.assertEqual(len(rows), 3)
        user_ids = [w.block1.pk, w.volunteer.pk, w.sector1.pk, w.coord.pk]

        def work(index):
            user = User.objects.get(pk=user_ids[index % len(user_ids)])
            for row in rows:  # every thread tries every package
                try:
                    confirm_delivery(row.code, actor=user, mode="home")
                    yield "delivered"
                except ValidationError as exc:
                    self.assertEqual(_codes(exc), ["already_delivered"])
                    yield "refused"

        outcomes = self.run_threads(work)
        self.assertEqual(outcomes["delivered"], len(rows))
        self.assertEqual(outcomes["refused"], THREADS * len(rows) - len(rows))
        self.assertEqual(
            Entitlement.objects.filter(campaign=campaign, status=EntitlementStatus.DELIVERED).count(),
            len(rows),
        )
        lines = a.package.lines.count()
        self.assertEqual(StockEntry.objects.filter(kind=EntryKind.DISTRIBUTED).count(), lines * len(rows))
        self.assertFalse(StockBalance.objects.filter(reserved__gt=0).exists())
        self.assertTrue(services.verify_ledger().ok)
