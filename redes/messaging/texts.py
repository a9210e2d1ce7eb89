"""Message templates of a municipality: rendering ``{placeholders}`` and saving edits (validated, audited).

Template bodies are Spanish data (seeded from ``defaults.TEMPLATES``), not msgids. ``render`` never raises: a
missing template falls back to the built-in default text, an unknown placeholder is left as written, and a
broken brace stays visible instead of failing a reply.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.models import Outcome as AuditOutcome
from redes.audit.services import record, record_denied
from redes.core import clock

from . import defaults
from .models import MessageTemplate

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_BODY = 4000
WHATSAPP_LANGUAGES = re.compile(r"^[a-z]{2}(_[A-Z]{2})?$")


def substitute(text: str, variables: dict | None) -> str:
    """``text`` with each ``{name}`` whose name is in ``variables`` replaced; others left as they are."""
    if not text:
        return ""
    values = variables or {}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in values and values[name] is not None:
            return str(values[name])
        return match.group(0)

    return PLACEHOLDER.sub(replace, str(text))


def body_of(municipality, key: str) -> str:
    """The municipality's body for ``key`` (creating the defaults on first use); "" when there is none."""
    municipality_id = getattr(municipality, "pk", municipality)
    body = (
        MessageTemplate.objects.filter(municipality_id=municipality_id, key=key)
        .values_list("body", flat=True)
        .first()
    )
    if body is None and key in defaults.TEMPLATES:
        defaults.ensure_defaults(municipality_id)
        body = (
            MessageTemplate.objects.filter(municipality_id=municipality_id, key=key)
            .values_list("body", flat=True)
            .first()
        )
        if body is None:  # pragma: no cover - only if the row could not be written
            body = defaults.TEMPLATES[key][1]
    return body or ""


def render(municipality, key: str, variables: dict | None = None) -> str:
    """The template ``key`` of the municipality with ``variables`` substituted; never raises."""
    try:
        return substitute(body_of(municipality, key), variables)
    except Exception:  # noqa: BLE001 - a reply is never lost to a template problem
        entry = defaults.TEMPLATES.get(key)
        return substitute(entry[1], variables) if entry else ""


def problems(key: str, body: str) -> list[str]:
    """What is wrong with a template body (translated, readable); empty when it is fine."""
    found: list[str] = []
    if not body.strip():
        found.append(_("The text is empty."))
    if len(body) > MAX_BODY:
        found.append(_("The text is too long (at most %(count)s characters).") % {"count": MAX_BODY})
    stripped = PLACEHOLDER.sub("", body)
    if "{" in stripped or "}" in stripped:
        found.append(_("A brace is not part of a placeholder: write placeholders as {name}."))
    allowed = defaults.template_placeholders(key)
    if allowed is not None:
        unknown = sorted({m for m in PLACEHOLDER.findall(body) if m not in allowed})
        if unknown:
            found.append(
                _("Unknown placeholders: %(unknown)s. This message may use: %(allowed)s.")
                % {
                    "unknown": ", ".join("{" + u + "}" for u in unknown),
                    "allowed": ", ".join("{" + a + "}" for a in allowed) or _("none"),
                }
            )
    return found


def save_template(
    municipality,
    *,
    actor,
    key: str,
    name: str,
    body: str,
    whatsapp_name: str = "",
    whatsapp_language: str = "es_MX",
    whatsapp_status: str = "",
) -> MessageTemplate:
    """Create or change the template ``key`` of the municipality (``MANAGE_MESSAGING``); audited."""
    from django.utils.text import slugify

    action = "messaging.template.save"
    if actor is not None and not scoping.can(actor, Perm.MANAGE_MESSAGING, municipality.node):
        record_denied(action, actor=actor, municipality=municipality, reason="forbidden")
        raise PermissionDenied(_("You may not change the messages of this municipality."))
    errors: dict[str, list[str]] = {}
    key = (key or "").strip()
    if not key or slugify(key) != key or len(key) > 60:
        errors["key"] = [_("Give the template a short key (lowercase letters, digits, dashes, underscores).")]
    name = (name or "").strip()
    if not name or len(name) > 120:
        errors["name"] = [_("Give the template a name (at most 120 characters).")]
    body = (body or "").replace("\r\n", "\n").strip()
    body_problems = problems(key, body)
    if body_problems:
        errors["body"] = body_problems
    whatsapp_name = (whatsapp_name or "").strip()
    if len(whatsapp_name) > 120 or (whatsapp_name and not re.fullmatch(r"[a-z0-9_]+", whatsapp_name)):
        errors["whatsapp_name"] = [
            _("WhatsApp template names use lowercase letters, digits and underscores.")
        ]
    whatsapp_language = (whatsapp_language or "es_MX").strip()
    if not WHATSAPP_LANGUAGES.match(whatsapp_language):
        errors["whatsapp_language"] = [_("A language code such as es_MX.")]
    if whatsapp_status not in MessageTemplate.WhatsAppStatus.values:
        errors["whatsapp_status"] = [_("Unknown approval status.")]
    if errors:
        record_denied(
            action,
            actor=actor,
            municipality=municipality,
            reason="invalid input",
            outcome=AuditOutcome.REJECTED,
            changes={"fields": sorted(errors)},
        )
        raise ValidationError(errors)
    with transaction.atomic():
        template = MessageTemplate.objects.filter(municipality=municipality, key=key).first()
        created = template is None
        if created:
            template = MessageTemplate(municipality=municipality, key=key, system=key in defaults.TEMPLATES)
        template.name, template.body = name, body
        template.whatsapp_name, template.whatsapp_language = whatsapp_name, whatsapp_language
        template.whatsapp_status = whatsapp_status
        template.updated_at = clock.now()
        template.updated_by = actor if getattr(actor, "is_authenticated", False) else None
        template.save()
        record(
            action,
            actor=actor,
            obj=template,
            municipality=municipality,
            summary=_("Message template saved"),
            changes={"key": key, "created": created},
        )
    return template
