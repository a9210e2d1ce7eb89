"""Background tasks of the registry (Django's Tasks API; ``settings.TASKS``: database queue, inline in tests)."""

from django_tasks import task


@task()
def run_import(job_id: int) -> str:
    """Run a bulk import (``registry.importing.run``); returns the job's final status."""
    from . import importing

    return importing.run(job_id).status
