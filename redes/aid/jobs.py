"""A campaign's allocation in the background: queue it, run it (``aid.tasks.run_allocation``), show its progress.

``queue_allocation`` turns a draft campaign into "allocating" and queues one ``AllocationJob`` (a second click
finds the campaign allocating and is refused: one allocation per campaign). ``run_allocation`` is the task's
body: the allocation (``campaigns.allocate_campaign``'s work, one transaction) with its phases — eligibility,
solving, writing entitlements, reserving stock — published on the job row from outside that transaction
(``Publisher``: a second autocommit connection on PostgreSQL, a small file beside the database on SQLite, whose
single writer the allocation holds; as the registry import does). A failure rolls the allocation back, so nothing
is half-written, sets the campaign back to draft and keeps the reason on the job for the page.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.audit.models import Outcome
from redes.audit.services import record, record_denied

from .common import _error_code, audited, invalid, require_manage
from .models import AllocationJob, Campaign, CampaignStatus

logger = logging.getLogger("redes.aid")

#: The phases in order, with the share of the bar reached when each starts (writing advances by its rows).
PHASES = {
    "queued": (gettext_lazy("Waiting for the background worker"), 0),
    "eligibility": (gettext_lazy("Finding the eligible households"), 5),
    "solving": (gettext_lazy("Solving the fair allocation"), 15),
    "writing": (gettext_lazy("Writing the entitlements"), 25),
    "reserving": (gettext_lazy("Reserving the packages in stock"), 92),
    "done": (gettext_lazy("Done"), 100),
    "failed": (gettext_lazy("Failed"), 0),
}
WRITING_END = 90


@audited("aid.campaign.allocate")
def queue_allocation(campaign: Campaign, *, actor, enqueue: bool = True) -> AllocationJob:
    """Mark a draft campaign "allocating" and queue its allocation; refused (clear error, audited) when the
    campaign is already allocating or allocated, so a double click never allocates twice."""
    from . import tasks

    require_manage(actor, campaign.municipality_id)
    with transaction.atomic():
        current = Campaign.objects.select_for_update(of=("self",)).get(pk=campaign.pk)
        if current.status == CampaignStatus.ALLOCATING:
            raise invalid(_("The campaign is already being allocated."), "allocating")
        if current.status != CampaignStatus.DRAFT:
            raise invalid(_("The campaign has already been allocated."), "campaign_locked")
        if not current.template.lines.exists():
            raise invalid(_("The package template has no items."), "template", "template")
        current.status = CampaignStatus.ALLOCATING
        current.save(update_fields=["status"])
        job = AllocationJob.objects.create(
            campaign=current,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            language=translation.get_language() or "",
        )
        record(
            "aid.campaign.allocate.queue",
            actor=actor,
            obj=current,
            municipality=current.municipality_id,
            changes={"job": str(job.uuid)},
        )
    campaign.status = current.status
    if enqueue:
        tasks.run_allocation.enqueue(job.pk)
        job.refresh_from_db()
    return job


def run_allocation(job_id: int) -> AllocationJob:
    """The task's body: allocate the job's campaign, publishing progress; returns the job (done or failed)."""
    from .campaigns import _allocate

    job = AllocationJob.objects.select_related("campaign", "created_by").get(pk=job_id)
    if job.status != AllocationJob.Status.QUEUED:
        return job
    with translation.override(job.language or settings.LANGUAGE_CODE):
        AllocationJob.objects.filter(pk=job.pk).update(
            status=AllocationJob.Status.RUNNING, phase="eligibility", started_at=timezone.now()
        )
        publisher = Publisher(job)
        try:
            _allocate(
                job.campaign,
                actor=job.created_by,
                progress=publisher.update,
                expect=CampaignStatus.ALLOCATING,
                job=job,
                before_commit=publisher.close,
            )
        except Exception as exc:  # noqa: BLE001 - any failure leaves the campaign a draft and says why
            publisher.close()
            _fail(job, exc)
        finally:
            publisher.close()
    job.refresh_from_db()
    return job


def _fail(job: AllocationJob, exc: Exception) -> None:
    known = isinstance(exc, ValidationError | PermissionDenied)
    if isinstance(exc, ValidationError):
        reason = " ".join(exc.messages)
    elif isinstance(exc, PermissionDenied):
        reason = str(exc) or _("Your role does not allow allocating this campaign.")
    else:
        logger.exception("The allocation of campaign %s failed", job.campaign_id)
        reason = _("The allocation failed unexpectedly (%(error)s). Nothing was saved.") % {
            "error": type(exc).__name__
        }
    with transaction.atomic():
        Campaign.objects.filter(pk=job.campaign_id, status=CampaignStatus.ALLOCATING).update(
            status=CampaignStatus.DRAFT
        )
        AllocationJob.objects.filter(pk=job.pk).update(
            status=AllocationJob.Status.FAILED,
            phase="failed",
            error=reason[:2000],
            finished_at=timezone.now(),
        )
    if isinstance(exc, PermissionDenied):
        code = "forbidden"
    elif isinstance(exc, ValidationError):
        code = f"invalid input: {_error_code(exc)}"
    else:
        code = f"failed: {type(exc).__name__}"
    record_denied(
        "aid.campaign.allocate",
        actor=job.created_by,
        obj=job.campaign,
        reason=code,
        outcome=Outcome.REJECTED if known else Outcome.DENIED,
    )


def state(job: AllocationJob | None) -> dict | None:
    """The job as the page shows it: phase label, percent, rows written (live while its transaction is open)."""
    if job is None:
        return None
    phase, done, total = job.phase, job.done, job.total
    if job.status == AllocationJob.Status.RUNNING:
        live = _read_file(job)
        if live:
            phase, done, total = live.get("phase", phase), live.get("done", done), live.get("total", total)
    label, start = PHASES.get(phase, (phase, 0))
    percent = start
    if phase == "writing" and total:
        percent = start + round((WRITING_END - start) * min(done, total) / total)
    return {
        "job": job,
        "phase": phase,
        "label": str(label),
        "percent": int(percent),
        "done": int(done),
        "total": int(total),
        "finished": job.status in (AllocationJob.Status.DONE, AllocationJob.Status.FAILED),
    }


def latest(campaign: Campaign) -> AllocationJob | None:
    return AllocationJob.objects.filter(campaign=campaign).order_by("-id").first()


# --------------------------------------------------------------------------------------------- publishing


def _path(job: AllocationJob) -> Path:
    return Path(settings.DATA_DIR) / "aid-jobs" / f"{job.uuid}.json"


def _read_file(job: AllocationJob) -> dict | None:
    try:
        return json.loads(_path(job).read_text())
    except (OSError, ValueError):
        return None


class Publisher:
    """The job's phase and rows written, published while the allocation's transaction is open (at most twice a
    second, and at every change of phase). PostgreSQL: short ``UPDATE``s from a second, autocommit connection.
    SQLite: a small JSON file next to the database (the allocation holds the only writer). Progress is a
    courtesy: if publishing fails the allocation goes on without it."""

    def __init__(self, job: AllocationJob):
        self.job_id = job.pk
        self.conn = None
        self.path = None
        self.last = 0.0
        self.phase = ""
        if connection.vendor != "postgresql":
            self.path = _path(job)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.path = None
            return
        try:
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params["autocommit"] = True
            self.conn = psycopg.connect(**params)
            self.conn.execute("SET lock_timeout = '1s'")
            self.conn.execute("SET statement_timeout = '5s'")
        except Exception:  # noqa: BLE001 - see the docstring
            self.conn = None

    def update(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self.conn is None and self.path is None:
            return
        now = time.monotonic()
        if phase == self.phase and now - self.last < 0.5:
            return
        self.phase, self.last = phase, now
        if self.path is not None:
            try:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"phase": phase, "done": int(done), "total": int(total)}))
                tmp.replace(self.path)
            except OSError:
                self.path = None
            return
        try:
            self.conn.execute(
                "UPDATE aid_allocationjob SET phase = %s, done = %s, total = %s WHERE id = %s",
                (phase, int(done), int(total), self.job_id),
            )
        except Exception:  # noqa: BLE001 - see the docstring
            self.close()

    def close(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
