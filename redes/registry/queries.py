"""Scoped reads of the registry, shared by pages and the API.

Everything here starts from ``accounts.scoping`` (the one door): a user sees households and persons whose
block lies under a node where they hold ``VIEW_PERSONAL``. Observers hold no such permission and get nothing.
Blocked, merged and anonymised records are out of every list (only ARCO and audit screens reach them).
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db.models import Q, QuerySet

from redes.accounts import scoping
from redes.accounts.roles import Perm

from .models import DataRequest, DuplicateCandidate, Household, Person, RecordStatus
from .text import fold, group_particles

LIST_LIMIT = 200
SEARCH_LIMIT = 50


def households(user, perm: str = Perm.VIEW_PERSONAL, *, include_inactive: bool = False) -> QuerySet:
    qs = Household.objects.all()
    if not include_inactive:
        qs = qs.filter(status=RecordStatus.ACTIVE)
    return scoping.scoped(qs, user, perm, via="node")


def persons(user, perm: str = Perm.VIEW_PERSONAL, *, include_inactive: bool = False) -> QuerySet:
    qs = Person.objects.all()
    if not include_inactive:
        qs = qs.filter(status=RecordStatus.ACTIVE)
    return scoping.scoped(qs, user, perm, via="node")


def block_households(user, node, *, unvisited: bool = False) -> QuerySet:
    """A block's households for its liaison's list: highest priority first, unvisited ones on request.

    One indexed range (``household_block_list``: node, status, priority)."""
    qs = households(user).filter(node=node)
    if unvisited:
        qs = qs.filter(last_visit_at__isnull=True)
    return qs.order_by("-priority", "street", "ext_number", "pk")


def _prefix(field: str, word: str) -> Q:
    """``field`` starts with ``word``, written as an index range plus the exact test (any collation)."""
    upper = word[:-1] + chr(ord(word[-1]) + 1)
    return Q(**{f"{field}__gte": word, f"{field}__lt": upper, f"{field}__startswith": word})


NAME_KEYS = ("surname1_key", "surname2_key", "given_key", "given2_key")


def _name_word(word: str) -> Q:
    return reduce(or_, (Q(**{f"{key}__startswith": word}) for key in NAME_KEYS))


ANCHOR_PROBE = 2000


def _rarest(base: QuerySet, words: list[str]) -> str:
    """The word whose prefix matches the fewest index entries (counted up to ``ANCHOR_PROBE`` per key, inside
    the indexes): walking from it reaches a page of matches soonest. Ties go to the longer word."""
    if len(words) == 1:
        return words[0]

    def size(word: str) -> int:
        return sum(base.filter(_prefix(key, word)).values("pk")[:ANCHOR_PROBE].count() for key in NAME_KEYS)

    return min(words, key=lambda w: (size(w), -len(w)))


def search_persons(user, query: str, *, municipality=None, limit: int = SEARCH_LIMIT) -> QuerySet:
    """Persons whose names start with the words typed, in any order ("lopez ana", "ana lop", "nuñez").

    Each word must start the first surname, the second surname, the first given name or the other given
    names. A full CURP is looked up exactly. How it stays fast at a million persons: the rarest word is the
    *anchor*; for each of the four name keys one query walks the index ``(municipality, key, other keys…)``
    in order from the anchor's prefix, checks the other words inside that (covering) index and stops at
    ``limit`` rows; the union (at most four pages) is then fetched and sorted. No query sorts every match.
    Municipalities are searched one by one (the indexes start with the municipality)."""
    # Particles stay with the word they introduce: "de la cruz" is one term, as it is one surname.
    words = group_particles(fold(query).split()) if fold(query) else []
    scoped_all = persons(user)
    if not words:
        return scoped_all.none()
    raw = (query or "").strip().upper()
    if len(raw) == 18 and raw.isalnum():
        if municipality is not None:
            scoped_all = scoped_all.filter(municipality=municipality)
        return scoped_all.filter(curp=raw)[:limit]
    places = (
        [municipality] if municipality is not None else list(scoping.municipalities(user, Perm.VIEW_PERSONAL))
    )
    found: set[int] = set()
    for place in places:
        if scoping.can(user, Perm.VIEW_PERSONAL, place.node):
            # The whole municipality is visible: the scope is the municipality column, no join needed.
            base = Person.objects.filter(municipality=place, status=RecordStatus.ACTIVE)
        else:
            base = scoped_all.filter(municipality=place)
        anchor = _rarest(base, words)
        rest = list(words)
        rest.remove(anchor)
        for word in rest:
            base = base.filter(_name_word(word))
        for key in NAME_KEYS:
            page = base.filter(_prefix(key, anchor)).order_by(key).values_list("pk", flat=True)[:limit]
            found.update(page)
    return scoped_all.filter(pk__in=found).order_by("surname1_key", "surname2_key", "given_key", "pk")[:limit]


def duplicate_queue(user, *, status: str = DuplicateCandidate.Status.PENDING) -> QuerySet:
    qs = DuplicateCandidate.objects.filter(status=status).select_related("person_a", "person_b")
    return scoping.scoped(qs, user, Perm.MANAGE_REGISTRY, via="node").order_by("-score", "pk")


def open_requests(user) -> QuerySet:
    """Data-subject requests still to answer, the most urgent first (coordinators see their deadlines)."""
    qs = DataRequest.objects.filter(status=DataRequest.Status.OPEN).select_related("person")
    return scoping.scoped(qs, user, Perm.MANAGE_REGISTRY, via="node").order_by("due_on", "pk")


COUNT_FIELDS = ("households", "persons", "priority_households", "visited_households")


def registry_counts(node) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """Registry counts under ``node`` (ADR 0004: from per-block counts, never raw rows): the total and one row
    per child node id. Aggregates only — callers check ``VIEW_AGGREGATES``."""
    from django.db.models import Sum

    from .models import BlockCounts

    sums = {f: Sum(f) for f in COUNT_FIELDS}
    qs = BlockCounts.objects.filter(**{f"node__a{node.depth}": node.pk})
    total = {f: v or 0 for f, v in qs.aggregate(**sums).items()}
    per_child: dict[int, dict[str, int]] = {}
    if node.depth < 7:
        key = f"node__a{node.depth + 1}"
        for row in qs.exclude(**{key: None}).values(key).annotate(**sums):
            per_child[row[key]] = {f: row[f] or 0 for f in COUNT_FIELDS}
    return total, per_child
