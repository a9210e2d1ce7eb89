"""The one clock of deadlines and escalation, which tests (and the demo) can move.

Every deadline computation calls ``clock.now()`` instead of ``timezone.now()``::

    with clock.travel(some_datetime):      # frozen at that instant (a timedelta: that far from now)
        clock.advance(timedelta(hours=2))  # move the frozen instant forward
        escalate_overdue()

Outside ``travel`` the clock is the real one, shifted by whatever ``advance`` added (reset with ``reset()``).
"""

from __future__ import annotations

import datetime as dt
import threading
from contextlib import contextmanager

from django.utils import timezone

_lock = threading.Lock()
_frozen: dt.datetime | None = None
_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """The current instant (aware), as the deadlines see it."""
    frozen = _frozen
    if frozen is not None:
        return frozen
    return timezone.now() + _offset


def _aware(value: dt.datetime) -> dt.datetime:
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


@contextmanager
def travel(to: dt.datetime | dt.timedelta):
    """Freeze the clock at ``to`` (a datetime, or a timedelta from now) for the ``with`` block."""
    global _frozen, _offset
    target = now() + to if isinstance(to, dt.timedelta) else _aware(to)
    with _lock:
        saved = (_frozen, _offset)
        _frozen = target
    try:
        yield target
    finally:
        with _lock:
            _frozen, _offset = saved


def advance(delta: dt.timedelta) -> dt.datetime:
    """Move the clock forward (or back, with a negative delta); returns the new ``now()``."""
    global _frozen, _offset
    with _lock:
        if _frozen is not None:
            _frozen = _frozen + delta
        else:
            _offset = _offset + delta
    return now()


def reset() -> None:
    """Back to the real clock."""
    global _frozen, _offset
    with _lock:
        _frozen, _offset = None, dt.timedelta(0)
