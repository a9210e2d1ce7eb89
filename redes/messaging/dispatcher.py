"""The messaging dispatcher: one loop that processes what came in, queues what must go out, and sends it.

Each round (``run_once``) runs, each step on its own so that one failing step never stops the others:

1. ``intake.process_pending()`` — inbound messages and delivery statuses stored by the webhooks;
2. ``notify.pump()`` — need notifications become messages;
3. ``broadcasts.tick(now)`` — cascade reminders, overdue escalation, vacant nodes passed through;
4. ``outbox.send_due()`` — reconcile, claim and send what is due within the rate limits.

``run_forever`` repeats steps 1–3 every ``REDES_MESSAGING_INTERVAL`` seconds (default 0.5; at once again while
there is more to do), and sends in a second thread, so that sending never waits for the callbacks being
processed: there step 4 is a stream (``outbox.send_stream``) that claims the next batch while the current one
is being sent and lasts while anything is due, until its stop event is set. ``redes serve``/``redes demo`` run it in a daemon thread
(``start_dispatcher``, beside the background worker; off with ``REDES_MESSAGING=0`` or ``REDES_WORKER=0``);
``redes messaging run`` runs it as a process of its own, and several processes share the work (claims with
leases, shared token buckets).
"""

from __future__ import annotations

import logging
import os
import threading
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections, connections

from redes.core import clock

logger = logging.getLogger("redes.messaging")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def interval() -> float:
    return float(os.environ.get("REDES_MESSAGING_INTERVAL") or 0.5)


def _step(name: str, call, stats: dict) -> None:
    try:
        stats[name] = call()
    except Exception as exc:  # noqa: BLE001 - one failing step must not stop the others
        logger.exception("Messaging step %s failed", name)
        stats[name] = {"error": f"{exc.__class__.__name__}: {exc}"[:300]}
        stats.setdefault("errors", []).append(name)


def run_once(
    now=None, *, worker: str = "", limit: int = 500, threads: int = 8, stop: threading.Event | None = None
) -> dict:
    """One round of the dispatcher; returns what each step reported (``errors`` lists failed steps)."""
    stats = intake_round(now)
    _merge(stats, send_round(now, worker=worker, limit=limit, threads=threads, stop=stop))
    return stats


def intake_round(now=None) -> dict:
    """The steps other than sending: received messages, notifications, broadcasts' cascade."""
    stats: dict = {}
    _step("intake", lambda: _module("intake").process_pending(), stats)
    _step("notify", lambda: _module("notify").pump(), stats)
    _step("broadcasts", lambda: _module("broadcasts").tick(now or clock.now()), stats)
    return stats


def send_round(
    now=None, *, worker: str = "", limit: int = 500, threads: int = 8, stop=None, stream: bool = False
) -> dict:
    """One round of sending (``outbox.send_due``), or with ``stream`` a stream that lasts while anything is due
    (``outbox.send_stream``: the next batch claimed while the current one is sent, no pause between batches)."""
    stats: dict = {}
    out = _module("outbox")

    def call():
        if stream:
            return out.send_stream(limit=limit, worker=worker, threads=threads, stop=stop)
        return out.send_due(limit=limit, worker=worker, threads=threads, now=now, stop=stop)

    _step("outbox", call, stats)
    return stats


def _merge(stats: dict, more: dict) -> None:
    errors = stats.get("errors", []) + more.pop("errors", [])
    stats.update(more)
    if errors:
        stats["errors"] = errors


def _module(name: str):
    return import_module(f"redes.messaging.{name}")


def busy(stats: dict) -> bool:
    """Whether the round did work (so the next one starts at once)."""
    out = stats.get("outbox")
    claimed = out.get("claimed", 0) if isinstance(out, dict) else 0
    intake = stats.get("intake")
    return bool(claimed) or (isinstance(intake, int) and intake > 0)


def _loop(stop_event: threading.Event, round_, pause: float, on_round) -> None:
    """Repeat ``round_`` until ``stop_event``; at once again while busy; never raises."""
    failures = 0
    while not stop_event.is_set():
        try:
            stats = round_()
            failures = 0
            if on_round is not None:
                on_round(stats)
            if busy(stats):
                continue
        except Exception:  # noqa: BLE001 - the loop must not die silently
            failures += 1
            logger.exception("The messaging dispatcher round failed")
        finally:
            close_old_connections()
        stop_event.wait(min(pause * (2 ** min(failures, 6)), 60.0))
    # This thread's connection (kept between rounds by DATABASE_CONN_MAX_AGE) goes back when the loop ends.
    connections.close_all()


def run_forever(
    stop_event: threading.Event,
    *,
    worker: str = "",
    every: float | None = None,
    limit: int = 500,
    threads: int = 8,
    on_round=None,
) -> None:
    """Run until ``stop_event`` is set: sending in a thread of its own (so that processing status callbacks
    never pauses the outbox), the other steps in this one. Never raises: a failing round is logged and
    retried."""
    pause = interval() if every is None else every

    def sending():
        return send_round(worker=worker, limit=limit, threads=threads, stop=stop_event, stream=True)

    sender = threading.Thread(
        target=_loop, args=(stop_event, sending, pause, on_round), name="redes-messaging-send", daemon=True
    )
    sender.start()
    try:
        _loop(stop_event, intake_round, pause, on_round)
    finally:
        stop_event.set()
        sender.join(60)


def enabled() -> bool:
    return bool(getattr(settings, "REDES_MESSAGING", True)) and os.environ.get("REDES_WORKER", "1") != "0"


def start_dispatcher(*, every: float | None = None) -> threading.Thread | None:
    """Start (once per process) the dispatcher daemon thread; None when messaging is switched off."""
    global _thread
    if not enabled():
        return None
    with _lock:
        if _thread is not None and _thread.is_alive():
            return _thread
        _stop.clear()

        def loop():
            while not _stop.is_set():
                try:
                    run_forever(_stop, every=every)
                except BaseException:  # noqa: BLE001 - log and start over rather than vanish
                    logger.exception("The messaging dispatcher stopped; restarting it")
                    if _stop.wait(5):
                        break
            logger.info("The messaging dispatcher stopped")

        _thread = threading.Thread(target=loop, name="redes-messaging", daemon=True)
        _thread.start()
        return _thread


def stop_dispatcher(timeout: float = 10) -> None:
    global _thread
    _stop.set()
    with _lock:
        thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout)


def running() -> bool:
    return _thread is not None and _thread.is_alive()
