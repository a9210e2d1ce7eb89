"""The background worker for Django's Tasks API (bulk imports and other long jobs).

``settings.TASKS`` uses the database queue of ``django_tasks_db`` by default: tasks are rows, and a worker
claims and runs them. ``redes serve`` (and therefore ``redes demo``) starts one worker in a daemon thread of
the same process with ``start_background_worker()``, so a small installation needs no second process; a larger
one runs ``redes db_worker`` processes instead (and may start ``redes serve`` with ``REDES_WORKER=0``). With
``REDES_TASKS_BACKEND=immediate`` tasks run inline and no worker is started.

The thread polls the queue every ``REDES_WORKER_INTERVAL`` seconds (default 1). It is a daemon: it never delays
the process's exit; a task cut short that way stays "running" in the queue and its import job "running"
(the import's own transaction is rolled back, so nothing is half-written).

Beside the worker, a second daemon thread sweeps the needs every ``REDES_SWEEP_INTERVAL`` seconds (default 60):
overdue needs escalate up the liaison tree (``needs.services.escalate_overdue``; ``redes needs sweep`` does the
same once). It starts and stops with the worker (off with ``REDES_WORKER=0``); on PostgreSQL concurrent sweeps
of several processes skip each other (an advisory lock).

A third daemon thread runs the messaging dispatcher (``messaging.dispatcher``: received messages, need
notifications, cascade reminders, the outbox); it starts and stops with the worker too, and is off with
``REDES_MESSAGING=0`` (or ``REDES_WORKER=0``; ``redes messaging run`` then runs it as its own process).
"""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger("redes.worker")

_lock = threading.Lock()
_worker = None
_thread: threading.Thread | None = None
_sweeper: threading.Thread | None = None
_sweep_stop = threading.Event()


def uses_database_queue(alias: str = "default") -> bool:
    backend = settings.TASKS.get(alias, {}).get("BACKEND", "")
    return backend.startswith("django_tasks_db.")


def start_background_worker(
    *, interval: float | None = None, alias: str = "default"
) -> threading.Thread | None:
    """Start (once per process) a worker thread for the database task queue; None when there is nothing to do."""
    global _worker, _thread
    if not uses_database_queue(alias) or os.environ.get("REDES_WORKER", "1") == "0":
        return None
    with _lock:
        if _thread is not None and _thread.is_alive():
            return _thread
        from django.utils.crypto import get_random_string
        from django_tasks_db.management.commands.db_worker import Worker

        _worker = Worker(
            queue_names=["*"],
            interval=float(interval or os.environ.get("REDES_WORKER_INTERVAL", 1)),
            batch=False,
            backend_name=alias,
            startup_delay=False,
            max_tasks=None,
            worker_id=f"redes-{get_random_string(12)}",
            excluded_queue_names=[],
        )

        def loop():
            try:
                _worker.run()
            except Exception:  # the thread must not die silently
                logger.exception("The background worker stopped")
            finally:
                connections.close_all()  # this thread's connection (kept between tasks by CONN_MAX_AGE)

        _thread = threading.Thread(target=loop, name="redes-worker", daemon=True)
        _thread.start()
        start_sweeper()
        start_messaging()
        return _thread


def start_sweeper(*, interval: float | None = None) -> threading.Thread | None:
    """Start (once per process) the thread that escalates overdue needs every ``interval`` seconds."""
    global _sweeper
    if os.environ.get("REDES_WORKER", "1") == "0":
        return None
    every = float(interval or os.environ.get("REDES_SWEEP_INTERVAL", 60))
    if _sweeper is not None and _sweeper.is_alive():
        return _sweeper
    _sweep_stop.clear()

    def loop():
        from redes.needs.services import escalate_overdue

        while not _sweep_stop.wait(every):
            try:
                result = escalate_overdue()
                if result.escalated or result.sensitive:
                    logger.info("Needs sweep: %s escalated, %s sensitive", result.escalated, result.sensitive)
            except Exception:  # the thread must not die silently
                logger.exception("The needs sweep failed")
            finally:
                close_old_connections()
        connections.close_all()

    _sweeper = threading.Thread(target=loop, name="redes-sweeper", daemon=True)
    _sweeper.start()
    return _sweeper


def stop_sweeper(timeout: float = 5) -> None:
    global _sweeper
    _sweep_stop.set()
    thread, _sweeper = _sweeper, None
    if thread is not None:
        thread.join(timeout)


def start_messaging() -> threading.Thread | None:
    """Start (once per process) the messaging dispatcher thread, unless messaging or the worker is off."""
    from redes.messaging.dispatcher import start_dispatcher

    return start_dispatcher()


def stop_background_worker(timeout: float = 5) -> None:
    """Ask the worker thread to stop after its current task (tests; a clean shutdown)."""
    global _thread
    with _lock:
        if _worker is not None:
            _worker.running = False
        thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout)
    stop_sweeper(timeout)
    from redes.messaging.dispatcher import stop_dispatcher

    stop_dispatcher(timeout)
