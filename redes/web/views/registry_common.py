"""Helpers shared by the registry pages for coordinators and case officers.

Coordinator pages need ``MANAGE_REGISTRY`` somewhere (else 403); records are fetched through the scoping door
with that permission (404 for missing and not-yours alike). Municipality-wide settings (weights, privacy
notices) need ``MANAGE_REGISTRY`` at the municipality's own node.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.services import record_denied
from redes.registry.models import Person
from redes.territories.models import Municipality

#: Readable names of the duplicate-detection reason codes (``registry.matching.REASON_CODES``).
REASON_LABELS = {
    "curp_exact": _("Same CURP"),
    "curp_same_valid": _("Same valid CURP"),
    "curp_check_digit": _("CURP equal except the check digit"),
    "curp_typo": _("CURP differs by one character"),
    "curp_differs": _("Different CURP"),
    "given_exact": _("Same given name"),
    "given_similar": _("Similar given name"),
    "given_partial": _("One given name contains the other"),
    "given_close": _("Given names close but not the same"),
    "given_differs": _("Different given name"),
    "surnames_exact": _("Same surnames"),
    "surnames_similar": _("Similar surnames"),
    "surnames_swapped": _("Surnames in swapped order"),
    "second_surname_missing": _("Second surname missing on one record"),
    "second_surname_differs": _("Different second surname"),
    "surnames_differ": _("Different surnames"),
    "birth_date_exact": _("Same birth date"),
    "birth_day_month_swapped": _("Birth day and month swapped"),
    "birth_date_similar": _("Similar birth date"),
    "birth_year_close": _("Birth year within one"),
    "birth_date_differs": _("Different birth date"),
    "birth_year_differs": _("Different birth year"),
    "sex_same": _("Same sex"),
    "sex_differs": _("Different sex"),
    "address_exact": _("Same address"),
    "address_similar": _("Similar address"),
    "address_differs": _("Different address"),
    "phone_exact": _("Same phone"),
    "phone_differs": _("Different phone"),
    "same_household": _("Same household"),
}


def reason_label(code: str) -> str:
    """A readable reason for a duplicate pair; an unknown code is shown as it is."""
    label = REASON_LABELS.get(code)
    return str(label) if label is not None else code


def known_reason_codes() -> list[str]:
    """The reason codes the matcher emits (imported lazily: the matcher pulls in numpy)."""
    from redes.registry import matching

    return list(getattr(matching, "REASON_CODES", []))


def require_manage(request, action: str = "") -> None:
    """403 unless the user holds MANAGE_REGISTRY somewhere; a refused write is audited."""
    if scoping.can(request.user, Perm.MANAGE_REGISTRY):
        return
    if action and request.method == "POST":
        record_denied(action, actor=request.user, reason="missing permission manage_registry")
    raise PermissionDenied


def managed_municipalities(user) -> list[Municipality]:
    """Municipalities where the user holds MANAGE_REGISTRY at the municipality itself."""
    qs = scoping.municipalities(user, Perm.MANAGE_REGISTRY).select_related("node").order_by("name")
    return [m for m in qs if scoping.can(user, Perm.MANAGE_REGISTRY, m.node)]


def chosen_municipality(request, action: str = "") -> tuple[Municipality, list[Municipality]]:
    """The municipality a settings page works on (``?m=<uuid>``, else the first managed one)."""
    require_manage(request, action)
    choices = managed_municipalities(request.user)
    if not choices:
        if action and request.method == "POST":
            record_denied(action, actor=request.user, reason="manage_registry below the municipality only")
        raise PermissionDenied
    wanted = (request.GET.get("m") or request.POST.get("m") or "").strip()
    if wanted:
        for municipality in choices:
            if str(municipality.uuid) == wanted:
                return municipality, choices
        raise Http404
    return choices[0], choices


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
