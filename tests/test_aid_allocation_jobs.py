"""The campaign page's allocation in the background (``aid.jobs``, ``aid.tasks``): queued once (a double click
never allocates twice), progress by phase, a failure rolls everything back and shows why, access per role."""

from __future__ import annotations

import uuid
from unittest import mock

from django.db import connection, transaction
from django.test import TransactionTestCase, override_settings
from django.urls import reverse

from redes.aid import campaigns, jobs
from redes.aid.models import (
    AllocationJob,
    Campaign,
    CampaignStatus,
    CampaignZone,
    Entitlement,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent, Outcome

from .aid_support import build_aid, households, stock_site
from .base import RedesTestCase

DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": []}}


@override_settings(LANGUAGE_CODE="en")
class AllocationJobTests(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        w = cls.w
        cls.a = build_aid(w)
        cls.h = households(w.b11, [80, 60, 40]) + households(w.b21, [70, 10], start=10)
        stock_site(cls.a.stand1, cls.a, 2)
        stock_site(cls.a.stand2, cls.a, 1)

    def setUp(self):
        self.campaign = campaigns.create_campaign(
            actor=self.w.coord, name="Despensas", template=self.a.package, node=self.w.esc_node, seed=3
        )

    def post_allocate(self, user=None, **kw):
        url = reverse("aid-campaign-action", args=[self.campaign.uuid, "allocate"])
        return self.client_for(user or self.w.coord).post(url, **kw)

    def ledger_state(self):
        return (
            StockEntry.objects.count(),
            sorted(StockBalance.objects.values_list("site_id", "item_id", "quantity", "reserved")),
        )

    # --- the flow -------------------------------------------------------------------------------------------

    def test_the_page_queues_the_allocation_and_the_task_allocates(self):
        response = self.post_allocate(follow=True)  # immediate backend: the task runs inline
        self.assertContains(response, "Packages allocated")
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.ALLOCATED)
        job = AllocationJob.objects.get(campaign=self.campaign)
        self.assertEqual((job.status, job.phase), (AllocationJob.Status.DONE, "done"))
        self.assertEqual(job.done, len(self.h))
        self.assertEqual(Entitlement.objects.filter(campaign=self.campaign).count(), len(self.h))
        self.assertTrue(
            AuditEvent.objects.filter(action="aid.campaign.allocate.queue", outcome=Outcome.OK).exists()
        )
        self.assertTrue(
            AuditEvent.objects.filter(action="aid.campaign.allocate", outcome=Outcome.OK).exists()
        )

    @override_settings(TASKS=DUMMY_TASKS)
    def test_a_double_click_queues_one_allocation_and_the_page_shows_its_progress(self):
        self.post_allocate(headers={"HX-Request": "true"})
        response = self.post_allocate(follow=True)
        self.assertContains(response, "already being allocated")
        self.assertEqual(AllocationJob.objects.filter(campaign=self.campaign).count(), 1)
        self.assertTrue(
            AuditEvent.objects.filter(
                action="aid.campaign.allocate", outcome=Outcome.REJECTED, summary__contains="allocating"
            ).exists()
        )
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.ALLOCATING)
        self.assertEqual(Entitlement.objects.filter(campaign=self.campaign).count(), 0)
        # The page shows the progress, polled with htmx; editing is closed while allocating.
        page = self.client_for(self.w.coord).get(reverse("aid-campaign", args=[self.campaign.uuid]))
        self.assertContains(page, 'id="allocation-progress"')
        self.assertContains(page, reverse("aid-campaign-allocation", args=[self.campaign.uuid]))
        self.assertContains(page, "Waiting for the background worker")
        self.assertNotContains(page, 'id="allocate"')
        self.assertNotContains(page, 'id="save-campaign"')
        # The API's synchronous allocate is refused too.
        api = self.api(self.w.coord, "post", f"aid/campaigns/{self.campaign.uuid}/allocate")
        self.assertEqual(api.status_code, 400)
        self.assertIn("already being allocated", api.content.decode())
        # The worker runs it once; a second run of the same job does nothing.
        job = AllocationJob.objects.get(campaign=self.campaign)
        self.assertEqual(jobs.run_allocation(job.pk).status, AllocationJob.Status.DONE)
        self.assertEqual(jobs.run_allocation(job.pk).status, AllocationJob.Status.DONE)
        self.assertEqual(Entitlement.objects.filter(campaign=self.campaign).count(), len(self.h))
        self.assertEqual(
            StockEntry.objects.filter(campaign=self.campaign, kind="allocated").count(),
            2 * self.a.package.lines.count(),  # two zones, each line once
        )
        # Once over, the polled fragment asks htmx to reload the page.
        url = reverse("aid-campaign-allocation", args=[self.campaign.uuid])
        done = self.client_for(self.w.coord).get(url, headers={"HX-Request": "true"})
        self.assertEqual(done.status_code, 204)
        self.assertEqual(done["HX-Refresh"], "true")

    @override_settings(TASKS=DUMMY_TASKS)
    def test_progress_goes_through_the_phases_in_order(self):
        job = jobs.queue_allocation(self.campaign, actor=self.w.coord)
        seen = []

        class Recorder(jobs.Publisher):
            def update(self, phase, done=0, total=0):
                seen.append((phase, done, total))

        with mock.patch.object(jobs, "Publisher", Recorder):
            jobs.run_allocation(job.pk)
        phases = list(dict.fromkeys(p for p, _d, _t in seen))
        self.assertEqual(phases, ["eligibility", "solving", "writing", "reserving"])
        writing = [(d, t) for p, d, t in seen if p == "writing"]
        self.assertEqual(writing[0], (0, len(self.h)))
        self.assertEqual(writing[-1], (len(self.h), len(self.h)))

    def test_the_bar_follows_the_phase_and_the_rows_written(self):
        job = AllocationJob.objects.create(campaign=self.campaign, status="running", phase="writing")
        job.done, job.total = 50, 100
        state = jobs.state(job)
        start, end = jobs.PHASES["writing"][1], jobs.WRITING_END
        self.assertEqual(state["percent"], start + (end - start) // 2)
        job.phase = "reserving"
        self.assertEqual(jobs.state(job)["percent"], jobs.PHASES["reserving"][1])
        self.assertGreater(jobs.state(job)["percent"], state["percent"])

    @override_settings(TASKS=DUMMY_TASKS)
    def test_the_fragment_shows_the_rows_written(self):
        jobs.queue_allocation(self.campaign, actor=self.w.coord)
        AllocationJob.objects.filter(campaign=self.campaign).update(
            status="running", phase="writing", done=3, total=5
        )
        url = reverse("aid-campaign-allocation", args=[self.campaign.uuid])
        response = self.client_for(self.w.coord).get(url, headers={"HX-Request": "true"})
        self.assertContains(response, "3 of 5 entitlements written")
        self.assertContains(response, "Writing the entitlements")
        self.assertContains(response, 'hx-trigger="every 1s"')

    # --- failure ----------------------------------------------------------------------------------------------

    def test_a_failure_leaves_nothing_written_and_the_campaign_a_draft(self):
        before = self.ledger_state()
        with mock.patch.object(campaigns, "post", side_effect=RuntimeError("disk full")):
            response = self.post_allocate(follow=True)
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.DRAFT)
        self.assertEqual(Entitlement.objects.filter(campaign=self.campaign).count(), 0)
        self.assertEqual(CampaignZone.objects.filter(campaign=self.campaign).count(), 0)
        self.assertEqual(self.ledger_state(), before)
        job = AllocationJob.objects.get(campaign=self.campaign)
        self.assertEqual((job.status, job.phase), (AllocationJob.Status.FAILED, "failed"))
        self.assertIn("RuntimeError", job.error)
        self.assertContains(response, 'id="allocation-failed"')
        self.assertContains(response, "Nothing was saved")
        self.assertContains(response, 'id="allocate"')  # it can be tried again
        self.assertTrue(
            AuditEvent.objects.filter(
                action="aid.campaign.allocate", outcome=Outcome.DENIED, summary="failed: RuntimeError"
            ).exists()
        )
        # ... and allocated the second time.
        self.post_allocate()
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.ALLOCATED)

    @override_settings(TASKS=DUMMY_TASKS)
    def test_a_refusal_when_running_is_shown_with_its_reason(self):
        job = jobs.queue_allocation(self.campaign, actor=self.w.coord)
        self.a.package.lines.all().delete()  # the template lost its items meanwhile
        jobs.run_allocation(job.pk)
        job.refresh_from_db()
        self.assertEqual(job.status, AllocationJob.Status.FAILED)
        self.assertEqual(job.error, "The package template has no items.")
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.DRAFT)

    @override_settings(TASKS=DUMMY_TASKS)
    def test_a_stuck_allocation_can_be_cancelled(self):
        job = jobs.queue_allocation(self.campaign, actor=self.w.coord)
        url = reverse("aid-campaign-action", args=[self.campaign.uuid, "cancel"])
        self.client_for(self.w.coord).post(url)
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.CANCELLED)
        jobs.run_allocation(job.pk)  # the worker comes back: it finds the campaign cancelled
        job.refresh_from_db()
        self.assertEqual(job.status, AllocationJob.Status.FAILED)
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.CANCELLED)
        self.assertEqual(Entitlement.objects.filter(campaign=self.campaign).count(), 0)

    # --- access -----------------------------------------------------------------------------------------------

    def test_only_its_coordinators_queue_or_watch_an_allocation(self):
        w = self.w
        queue = reverse("aid-campaign-action", args=[self.campaign.uuid, "allocate"])
        watch = reverse("aid-campaign-allocation", args=[self.campaign.uuid])
        before = self.ledger_state()
        anonymous = self.client_for(None)
        for response in (anonymous.post(queue), anonymous.get(watch)):
            self.assertEqual(response.status_code, 302)
            self.assertIn(reverse("login"), response["Location"])
        for user, status in [
            (w.other_coord, 404),
            (w.observer, 403),
            (w.volunteer, 403),
            (w.sector1, 403),
            (w.block1, 403),
            (w.caseworker, 403),
        ]:
            client = self.client_for(user)
            with self.subTest(user=user.username):
                self.assertEqual(client.post(queue).status_code, status)
                self.assertEqual(client.get(watch).status_code, status)
        self.campaign.refresh_from_db()
        self.assertEqual(self.campaign.status, CampaignStatus.DRAFT)
        self.assertFalse(AllocationJob.objects.exists())
        self.assertEqual(self.ledger_state(), before)
        self.assertEqual(self.client_for(w.coord).get(watch).status_code, 200)
        unknown = reverse("aid-campaign-allocation", args=[uuid.uuid4()])
        self.assertEqual(self.client_for(w.coord).get(unknown).status_code, 404)


class PublisherTests(TransactionTestCase):
    """Progress published while the allocation's transaction is open is seen outside it."""

    def make_job(self):
        from tests.base import build_world

        w = build_world()
        a = build_aid(w)
        campaign = campaigns.create_campaign(
            actor=None, name="C", template=a.package, node=w.esc_node, municipality=w.esc
        )
        return AllocationJob.objects.create(campaign=campaign, status="running", phase="eligibility")

    def test_progress_is_visible_while_the_transaction_is_open(self):
        job = self.make_job()
        publisher = jobs.Publisher(job)
        try:
            with transaction.atomic():
                Campaign.objects.select_for_update().get(pk=job.campaign_id)  # as the allocation does
                publisher.update("writing", 40, 80)
                if connection.vendor == "postgresql":
                    # The side connection committed; a fresh read (READ COMMITTED) sees it.
                    row = AllocationJob.objects.values_list("phase", "done", "total").get(pk=job.pk)
                    self.assertEqual(row, ("writing", 40, 80))
                else:
                    self.assertEqual(jobs._read_file(job), {"phase": "writing", "done": 40, "total": 80})
                state = jobs.state(AllocationJob.objects.get(pk=job.pk))
                self.assertEqual((state["phase"], state["done"], state["total"]), ("writing", 40, 80))
        finally:
            publisher.close()
        if connection.vendor != "postgresql":
            self.assertIsNone(jobs._read_file(job))  # the file goes with the job's end


class BackgroundWorkerTests(TransactionTestCase):
    """In production the page's allocation goes to the database queue, and the worker thread runs it."""

    def test_the_worker_thread_runs_a_queued_allocation(self):
        import time

        from redes.core import worker
        from tests.base import build_world

        w = build_world()
        a = build_aid(w)
        households(w.b11, [80, 60, 40])
        stock_site(a.stand1, a, 2)
        campaign = campaigns.create_campaign(
            actor=w.coord, name="C", template=a.package, node=w.esc_node, seed=1
        )
        database_queue = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}
        # The messaging dispatcher thread stays off: this is about the task worker (and it would share
        # the in-memory test database with it).
        with self.settings(TASKS=database_queue, REDES_MESSAGING=False):
            job = jobs.queue_allocation(campaign, actor=w.coord)
            self.assertEqual(job.status, AllocationJob.Status.QUEUED)
            campaign.refresh_from_db()
            self.assertEqual(campaign.status, CampaignStatus.ALLOCATING)
            worker.start_background_worker(interval=0.05)
            self.addCleanup(worker.stop_background_worker)
            deadline = time.monotonic() + 60  # a bound for a stuck worker, not a performance assertion
            while time.monotonic() < deadline:
                job.refresh_from_db()
                if job.status in (AllocationJob.Status.DONE, AllocationJob.Status.FAILED):
                    break
                time.sleep(0.05)
            worker.stop_background_worker()
        self.assertEqual(job.status, AllocationJob.Status.DONE, job.error)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, CampaignStatus.ALLOCATED)
        self.assertEqual(Entitlement.objects.filter(campaign=campaign).count(), 3)
