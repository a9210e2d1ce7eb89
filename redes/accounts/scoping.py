"""The one door to tenant data.

Every page and API handler that reads tenant data goes through these helpers. A user reaches a record only
through a membership whose role grants the permission asked for, at a node that the record lies under.
"Missing" and "not yours" look the same: both raise ``Http404``.

Usage::

    nodes = scoped(Node.objects.all(), user, Perm.VIEW_TERRITORY)                     # a Node queryset
    posts = scoped(LiaisonAssignment.objects.all(), user, Perm.VIEW_PERSONAL, via="node")
    node = get_scoped_or_404(Node.objects.all(), user, Perm.VIEW_TERRITORY, uuid=some_uuid)
    require(user, Perm.ASSIGN_LIAISONS, node)   # 404 if the node is unseen, 403 if seen but not allowed
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404

from redes.territories.models import Municipality, Node

from .roles import PERMISSIONS, STRICTLY_BELOW, Perm, Role

if TYPE_CHECKING:
    from .models import User

_CACHE_ATTR = "_redes_grants"


@dataclass(frozen=True)
class Grant:
    node_id: int
    depth: int
    municipality_id: int | None
    role: str


def grants(user: User) -> tuple[Grant, ...]:
    """The user's active memberships, loaded once per user object (i.e. once per request)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return ()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        from .models import Membership

        rows = (
            Membership.objects.active()
            .filter(user=user)
            .values_list("node_id", "node__depth", "municipality_id", "role")
        )
        cached = tuple(Grant(*row) for row in rows)
        setattr(user, _CACHE_ATTR, cached)
    return cached


def forget_grants(user: User) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def _is_root(user: User) -> bool:
    return bool(getattr(user, "is_superuser", False)) and user.is_active


def grants_for(user: User, perm: str) -> list[Grant]:
    perm = Perm(perm)
    return [g for g in grants(user) if perm in PERMISSIONS.get(Role(g.role), frozenset())]


def _q_for(grant_list: list[Grant], via: str, strict: bool) -> Q:
    prefix = f"{via}__" if via else ""
    parts = []
    for g in grant_list:
        q = Q(**{f"{prefix}a{g.depth}": g.node_id})
        if strict:
            q &= ~Q(**{f"{prefix}pk" if via else "pk": g.node_id})
        parts.append(q)
    return reduce(or_, parts) if parts else Q(pk__in=[])


def scope_q(user: User, perm: str, via: str = "") -> Q | None:
    """A Q selecting rows whose node (``via`` is the path to it; empty for Node itself) the user reaches.

    ``None`` means "everything" (superusers)."""
    if _is_root(user):
        return None
    return _q_for(grants_for(user, perm), via, Perm(perm) in STRICTLY_BELOW)


def scoped(qs: QuerySet, user: User, perm: str, via: str = "") -> QuerySet:
    """Filter any queryset down to what the user may see with ``perm``."""
    q = scope_q(user, perm, via)
    return qs if q is None else qs.filter(q)


def visible_nodes(user: User, perm: str = Perm.VIEW_TERRITORY) -> QuerySet:
    return scoped(Node.objects.all(), user, perm)


def can(user: User, perm: str, node: Node | None = None, *, superuser: bool = True) -> bool:
    """Does the user hold ``perm`` over ``node`` (or anywhere, when no node is given)?

    ``superuser=False`` ignores superuser status: only a real membership counts (sensitive data is for case
    officers, not for whoever administers the installation)."""
    if superuser and _is_root(user):
        return True
    held = grants_for(user, perm)
    if node is None:
        return bool(held)
    strict = Perm(perm) in STRICTLY_BELOW
    ancestors = set(node.ancestor_ids)
    return any(g.node_id in ancestors and not (strict and g.node_id == node.pk) for g in held)


def require(user: User, perm: str, node: Node, *, seen_with: str = Perm.VIEW_TERRITORY) -> None:
    """Raise 404 if the user cannot even see ``node``, 403 if they see it but lack ``perm``."""
    if can(user, perm, node):
        return
    if can(user, seen_with, node):
        raise PermissionDenied
    raise Http404


def get_scoped_or_404(qs: QuerySet, user: User, perm: str, via: str = "", **lookup):
    """Fetch one object the user may see; 404 for missing, not-yours and malformed ids alike."""
    try:
        return scoped(qs, user, perm, via).get(**lookup)
    except (qs.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def municipalities(user: User, perm: str = Perm.VIEW_TERRITORY) -> QuerySet:
    """Municipalities the user reaches at least part of (a liaison reaches their own)."""
    if _is_root(user):
        return Municipality.objects.all()
    held = grants_for(user, perm)
    ids = {g.municipality_id for g in held if g.municipality_id}
    above = [g for g in held if g.municipality_id is None]
    q = Q(pk__in=ids)
    if above:
        q |= _q_for(above, "node", strict=False)
    return Municipality.objects.filter(q)


def users(user: User, perm: str, *, active_memberships: bool = False) -> QuerySet:
    """Accounts holding a membership (active only, if asked) at a node the user reaches with ``perm``."""
    from .models import Membership, User

    memberships = Membership.objects.active() if active_memberships else Membership.objects.all()
    return User.objects.filter(pk__in=scoped(memberships, user, perm, via="node").values("user_id"))


def top_nodes(user: User, perm: str = Perm.VIEW_TERRITORY) -> list[Node]:
    """The highest nodes the user holds ``perm`` at (their "home" territories), without nested repeats."""
    if _is_root(user):
        return list(Node.objects.filter(depth=0)) or list(Node.objects.filter(parent__isnull=True))
    held = grants_for(user, perm)
    nodes = Node.objects.in_bulk({g.node_id for g in held})
    tops = []
    for node in sorted(nodes.values(), key=lambda n: (n.depth, n.code)):
        if not any(t.pk in node.ancestor_ids for t in tops):
            tops.append(node)
    return tops


def only_aggregates(user: User, node: Node | None = None) -> bool:
    """True when the user sees aggregates but no personal data (observers) at ``node``."""
    return not can(user, Perm.VIEW_PERSONAL, node)
