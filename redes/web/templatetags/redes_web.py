"""Small template helpers for the pages."""

from django import template

register = template.Library()


@register.filter
def minutes(value) -> int:
    """A timedelta as whole minutes (at least 1)."""
    try:
        return max(1, round(value.total_seconds() / 60))
    except AttributeError:
        return 0


@register.filter
def meter_class(percent) -> str:
    """CSS modifier for a coverage meter: ``low`` under 50 %, ``mid`` under 80 %, else nothing."""
    if percent is None:
        return "low"
    if percent < 50:
        return "low"
    if percent < 80:
        return "mid"
    return ""


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (``None`` removes one), for pagination links."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
