"""Small template helpers for the pages."""

import json

import phonenumbers
from django import template
from django.utils.translation import gettext_lazy as _

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


_ACTION_LABELS = {
    "territories.nation.create": _("Nation created"),
    "territories.state.create": _("State created"),
    "territories.municipality.create": _("Municipality created"),
    "territories.levels.update": _("Levels changed"),
    "territories.node.create": _("Unit added"),
    "territories.node.update": _("Unit changed"),
    "territories.node.move": _("Unit moved"),
    "territories.node.remove": _("Unit removed"),
    "territories.node.bulk_create": _("Units added in bulk"),
    "liaisons.assignment.create": _("Liaison assigned"),
    "liaisons.assignment.end": _("Liaison post ended"),
    "accounts.user.create": _("User created"),
    "accounts.membership.grant": _("Role granted"),
    "accounts.membership.end": _("Role ended"),
    "accounts.token.create": _("API token created"),
    "accounts.token.revoke": _("API token revoked"),
}


@register.filter
def as_json(value) -> str:
    """A JSON value written compactly for people (audit changes)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def phone(value: str) -> str:
    """An E.164 number written for people, e.g. +52 81 1234 5678."""
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, "MX")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@register.filter
def action_label(action: str) -> str:
    """A readable name for an audit action (the action's code when it has none)."""
    return str(_ACTION_LABELS.get(action, action))
