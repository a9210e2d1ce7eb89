"""Helpers shared by the registry pages for coordinators and case officers.

Coordinator pages need ``MANAGE_REGISTRY`` somewhere (else 403); records are fetched through the scoping door
with that permission (404 for missing and not-yours alike). Municipality-wide settings (weights, privacy
notices) need ``MANAGE_REGISTRY`` at the municipality's own node.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.registry.matching import REASON_CODES, REASON_LABELS
from redes.registry.models import Person
from redes.territories.models import Municipality

from . import common


def reason_label(code: str) -> str:
    """A readable reason for a duplicate pair; an unknown code is shown as it is."""
    label = REASON_LABELS.get(code)
    return str(label) if label is not None else code


def known_reason_codes() -> list[str]:
    """The reason codes the matcher emits."""
    return list(REASON_CODES)


def require_manage(request, action: str = "") -> None:
    """403 unless the user holds MANAGE_REGISTRY somewhere; a refused write is audited."""
    common.require_perm(request, Perm.MANAGE_REGISTRY, action)


def managed_municipalities(user) -> list[Municipality]:
    """Municipalities where the user holds MANAGE_REGISTRY at the municipality itself."""
    return common.managed_municipalities(user, Perm.MANAGE_REGISTRY)


def chosen_municipality(request, action: str = "") -> tuple[Municipality, list[Municipality]]:
    """The municipality a settings page works on (``?m=<uuid>``, else the first managed one)."""
    return common.chosen_municipality(request, Perm.MANAGE_REGISTRY, action)


def person_for_manager(request, uuid, *, include_inactive: bool = True) -> Person:
    """A person record the coordinator manages (any status), 404 otherwise."""
    qs = Person.objects.select_related("household", "node", "merged_into")
    if not include_inactive:
        from redes.registry.models import RecordStatus

        qs = qs.filter(status=RecordStatus.ACTIVE)
    return scoping.get_scoped_or_404(qs, request.user, Perm.MANAGE_REGISTRY, via="node", uuid=uuid)


def optional_url(name: str, *args) -> str | None:
    """The URL of a page another part of the project may not have yet (None when the name is not wired)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None
