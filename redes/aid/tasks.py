"""Background tasks of the aid app (Django's Tasks API, ADR 0005: database queue, inline in tests)."""

from django_tasks import task


@task()
def run_allocation(job_id: int) -> str:
    """Allocate a campaign (``aid.jobs.run_allocation``); returns the job's final status."""
    from . import jobs

    return jobs.run_allocation(job_id).status
