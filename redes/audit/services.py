"""Writing to the audit log. Every write through a service layer calls ``record``."""

from __future__ import annotations

from typing import Any

from django.db import models

from .context import current_channel, current_ip
from .models import AuditEvent, Outcome


def _describe(obj: Any) -> tuple[str, str]:
    if obj is None:
        return "", ""
    if isinstance(obj, models.Model):
        key = getattr(obj, "uuid", None) or obj.pk
        return obj._meta.label_lower, str(key)
    return type(obj).__name__.lower(), str(obj)


def _where(obj: Any, municipality, node) -> tuple[Any, int | None]:
    """Find the tenant and the node an event belongs to, from the object when not given."""
    from redes.territories.models import Municipality, Node

    if node is None and isinstance(obj, Node):
        node = obj
    if node is None:
        node = getattr(obj, "node", None) if isinstance(obj, models.Model) else None
        if not isinstance(node, Node):
            node = None
    if municipality is None:
        if isinstance(obj, Municipality):
            municipality = obj
        elif node is not None and node.municipality_id:
            municipality = node.municipality_id
        elif isinstance(obj, models.Model) and getattr(obj, "municipality_id", None):
            municipality = obj.municipality_id
    municipality_id = getattr(municipality, "pk", municipality)
    return municipality_id, (node.pk if node is not None else None)


def record(
    action: str,
    *,
    actor=None,
    obj: Any = None,
    municipality=None,
    node=None,
    summary: str = "",
    changes: dict | None = None,
    outcome: str = Outcome.OK,
    channel: str | None = None,
) -> AuditEvent:
    """Append one audit event. ``action`` is ``app.noun.verb``, e.g. ``territories.node.move``."""
    object_type, object_id = _describe(obj)
    municipality_id, node_id = _where(obj, municipality, node)
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor_obj,
        actor_label=actor_obj.get_username() if actor_obj else "",
        channel=channel or current_channel(),
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=object_id,
        municipality_id=municipality_id,
        node_id=node_id,
        summary=summary[:300],
        changes=changes or {},
        ip=current_ip(),
    )


def record_denied(action: str, *, actor=None, obj: Any = None, reason: str = "", **kwargs) -> AuditEvent:
    """Record an attempt that was refused (no permission, invalid input). Runs outside the failed transaction."""
    outcome = kwargs.pop("outcome", Outcome.DENIED)
    return record(action, actor=actor, obj=obj, summary=reason, outcome=outcome, **kwargs)
