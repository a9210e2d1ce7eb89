"""Helpers shared by the needs pages: roles of the caller, municipality choice, blocks, a count-free pager."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse

from redes.accounts import scoping
from redes.accounts.roles import Perm, Role
from redes.territories.models import Municipality, Node, NodeKind

PAGE_SIZE = 30


def roles_of(user) -> set[str]:
    return {g.role for g in scoping.grants(user)}


def leaf_units(qs: QuerySet | None = None) -> QuerySet:
    """Blocks: units with no unit below."""
    qs = Node.objects.all() if qs is None else qs
    return qs.filter(kind=NodeKind.UNIT).filter(~Exists(Node.objects.filter(parent=OuterRef("pk"))))


def blocks_for(user, perm: str, municipality: Municipality) -> QuerySet:
    """The blocks of one municipality under the user's ``perm`` grants, by code."""
    return scoping.scoped(leaf_units(Node.objects.filter(municipality=municipality)), user, perm).order_by(
        "code"
    )


def pick_municipality(request, perm: str) -> Municipality:
    """The municipality the page works in: ``?m=<code>`` among those the user reaches, else the first."""
    allowed = scoping.municipalities(request.user, perm).select_related("node").order_by("name")
    code = (request.GET.get("m") or request.POST.get("m") or "").strip()
    if code:
        chosen = allowed.filter(code=code).first()
        if chosen is not None:
            return chosen
    first = allowed.first()
    if first is None:
        raise PermissionDenied
    return first


@dataclass
class Page:
    """One page of rows without a COUNT(*) (queue pages must stay cheap with a million needs)."""

    rows: list
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def page_of(qs, raw_page, size: int = PAGE_SIZE) -> Page:
    try:
        number = max(1, min(int(raw_page or 1), 10_000))
    except (TypeError, ValueError):
        number = 1
    start = (number - 1) * size
    rows = list(qs[start : start + size + 1])
    return Page(rows=rows[:size], number=number, has_next=len(rows) > size)


def need_url(need) -> str:
    return reverse("needs-detail", args=[need.uuid])


def is_case_officer(user, node=None) -> bool:
    return scoping.can(user, Perm.VIEW_SENSITIVE, node, superuser=False)


FIELD_ROLES = {Role.BLOCK_LIAISON, Role.SECTOR_LIAISON}
