"""Template helpers of the aid pages."""

from django import template

from redes.aid import codes

register = template.Library()


@register.filter
def entitlement_code(value: str) -> str:
    """An entitlement code as people read it: ``ABCD-EFGH``."""
    return codes.display(value or "")


@register.filter
def qty(value) -> str:
    """A stock quantity without trailing zeros: 12, 2.5, 1,250."""
    from redes.aid.common import format_quantity

    if value is None or value == "":
        return ""
    return format_quantity(value)
