"""JSON API for liaison posts: history, appointment, ending and listing.

Liaison rows carry personal data (names, phones): every read needs ``Perm.VIEW_PERSONAL`` over the node, so an
observer never sees one (coverage numbers, which are aggregates, live in the territory API).
"""

import datetime as dt
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from redes.accounts import scoping
from redes.accounts.models import User
from redes.accounts.roles import Perm
from redes.core.api import ERRORS, WRITE_ERRORS, ErrorOut, Input, NotFound, Paginator, attempt, user_of
from redes.territories.api import NodeRef, find_municipality, find_node

from . import services
from .models import LiaisonAssignment

router = Router(tags=["Liaisons"])


class LiaisonOut(Schema):
    uuid: UUID
    node: NodeRef
    full_name: str = Field(..., examples=["María López Hernández"])
    phone: str = Field("", examples=["+528112345678"], description="E.164.")
    user: UUID | None = Field(None, description="The liaison's user account, when they have one.")
    start_date: dt.date
    end_date: dt.date | None = Field(None, description="Exclusive: the post is vacant from this day.")
    end_reason: str = ""
    active: bool

    @staticmethod
    def resolve_user(obj: LiaisonAssignment) -> UUID | None:
        return obj.user.uuid if obj.user_id else None

    @staticmethod
    def resolve_active(obj: LiaisonAssignment) -> bool:
        return obj.is_active


class LiaisonIn(Input):
    full_name: str = Field(..., max_length=200, examples=["María López Hernández"])
    phone: str = Field(
        "", max_length=30, examples=["81 1234 5678"], description="Mexican number, any common form."
    )
    user: str | None = Field(None, description="UUID of a user account in the caller's territory.")
    start_date: dt.date | None = Field(None, examples=["2026-02-01"], description="Default: today.")
    reason: str = Field("", max_length=200, description="Why the previous holder, if any, leaves.")


class EndIn(Input):
    end_date: dt.date | None = Field(None, examples=["2026-03-01"], description="Default: today.")
    reason: str = Field("", max_length=200, examples=["Moved away"])


class LiaisonFilters(Input):
    municipality: str | None = Field(None, description="Municipality UUID or INEGI key.")
    subtree: str | None = Field(None, description="Only posts of this node and the units under it.")
    active: bool | None = Field(None, description="true: posts held today; false: ended posts.")


def _assignments():
    return LiaisonAssignment.objects.select_related("node", "node__municipality", "user")


def _user_in_scope(request, key: str) -> User:
    """A user account the caller may name: one with an active membership in the caller's territory."""
    caller = user_of(request)
    qs = (
        User.objects.all()
        if caller.is_superuser
        else scoping.users(caller, Perm.VIEW_PERSONAL, active_memberships=True)
    )
    qs = qs.filter(is_active=True)
    try:
        return qs.get(uuid=key)
    except (User.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(["body", "user"]) from exc


@router.get(
    "/nodes/{uuid}/liaisons",
    response={200: list[LiaisonOut], **ERRORS, 403: ErrorOut},
    summary="History of a node's liaison post",
    description="Newest first. Personal data: needs permission to see personal data over the node.",
)
def node_history(request, uuid: str):
    node = find_node(request, uuid)
    scoping.require(user_of(request), Perm.VIEW_PERSONAL, node)
    return _assignments().filter(node=node).order_by("-start_date", "-id")


@router.post(
    "/nodes/{uuid}/liaisons",
    response={201: LiaisonOut, **WRITE_ERRORS},
    summary="Appoint the liaison of a node",
    description="The current holder, if any, ends on the new start date. Needs the liaison-assignment "
    "permission strictly above the node (a sector liaison appoints block liaisons, not their own successor).",
)
def assign(request, uuid: str, payload: LiaisonIn):
    actor = user_of(request)
    with attempt(request, "liaisons.assignment.create") as a:
        a.obj = node = find_node(request, uuid)
        scoping.require(actor, Perm.ASSIGN_LIAISONS, node)
        account = _user_in_scope(request, payload.user) if payload.user else None
        assignment = services.assign_liaison(
            node,
            full_name=payload.full_name,
            phone=payload.phone,
            user=account,
            start_date=payload.start_date,
            actor=actor,
            reason=payload.reason,
        )
    return Status(201, _assignments().get(pk=assignment.pk))


@router.post(
    "/liaisons/{uuid}/end",
    response={200: LiaisonOut, **WRITE_ERRORS},
    summary="End a liaison post",
    description="The node becomes vacant from ``end_date`` (default today).",
)
def end(request, uuid: str, payload: EndIn | None = None):
    actor = user_of(request)
    payload = payload or EndIn()
    with attempt(request, "liaisons.assignment.end") as a:
        a.obj = assignment = scoping.get_scoped_or_404(
            _assignments(), actor, Perm.VIEW_PERSONAL, via="node", uuid=uuid
        )
        scoping.require(actor, Perm.ASSIGN_LIAISONS, assignment.node)
        services.end_liaison(assignment, actor=actor, end_date=payload.end_date, reason=payload.reason)
    return _assignments().get(pk=assignment.pk)


@router.get(
    "/liaisons",
    response={200: list[LiaisonOut], **ERRORS, 403: ErrorOut},
    summary="Liaison posts in the caller's territory",
    description="Personal data: observers and volunteers get 403. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_liaisons(request, filters: Query[LiaisonFilters]):
    user = user_of(request)
    if not scoping.can(user, Perm.VIEW_PERSONAL):
        raise PermissionDenied(_("Your role does not allow seeing personal data."))
    qs = scoping.scoped(_assignments(), user, Perm.VIEW_PERSONAL, via="node")
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
        qs = qs.filter(municipality=municipality)
    if filters.subtree:
        top = find_node(request, filters.subtree, loc=["query", "subtree"])
        scoping.require(user, Perm.VIEW_PERSONAL, top)
        qs = qs.filter(**{f"node__a{top.depth}": top.pk})
    if filters.active is True:
        qs = qs.filter(pk__in=LiaisonAssignment.objects.active().values("pk"))
    elif filters.active is False:
        qs = qs.exclude(pk__in=LiaisonAssignment.objects.active().values("pk"))
    return qs.order_by("node__depth", "node__code", "-start_date", "-id")
