"""Template helpers of the needs pages: deadlines as "due in 3 h" / "overdue by 2 h", the unread badge."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.translation import gettext as _

from redes.core import clock

register = template.Library()

_DUE = {
    "min": lambda n: _("due in %(n)s min") % {"n": n},
    "h": lambda n: _("due in %(n)s h") % {"n": n},
    "d": lambda n: _("due in %(n)s d") % {"n": n},
}
_LATE = {
    "min": lambda n: _("overdue by %(n)s min") % {"n": n},
    "h": lambda n: _("overdue by %(n)s h") % {"n": n},
    "d": lambda n: _("overdue by %(n)s d") % {"n": n},
}


def _span(delta: dt.timedelta) -> tuple[int, str]:
    minutes = max(1, round(abs(delta.total_seconds()) / 60))
    if minutes < 60:
        return minutes, "min"
    hours = round(minutes / 60)
    if hours < 48:
        return hours, "h"
    return round(hours / 24), "d"


def next_deadline(need) -> dt.datetime | None:
    """The deadline that matters now (acknowledge, then resolve); none once the need is done."""
    if not need.is_open:
        return None
    return need.due_at


def deadline_text(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if when is None:
        return ""
    now = now or clock.now()
    n, unit = _span(when - now)
    return (_DUE if when >= now else _LATE)[unit](n)


@register.simple_tag(takes_context=True)
def needs_unread(context) -> int:
    """How many in-app notifications the signed-in user has not read (one indexed COUNT)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    cached = getattr(request, "_needs_unread", None)
    if cached is None:
        from redes.needs.queries import unread_count

        cached = unread_count(user)
        request._needs_unread = cached
    return cached


@register.filter
def few(value) -> str:
    """A count, or "fewer than 5" where it is hidden from observers (``None``)."""
    if value is None:
        return _("fewer than 5")
    return str(value)


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
