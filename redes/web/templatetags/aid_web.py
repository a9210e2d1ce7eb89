"""Template helpers of the aid pages."""

from django import template

from redes.aid import codes

register = template.Library()


@register.filter
def entitlement_code(value: str) -> str:
    """An entitlement code as people read it: ``ABCD-EFGH``."""
    return codes.display(value or "")
