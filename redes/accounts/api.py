"""JSON API for the caller, users and memberships.

Listing and changing memberships needs ``Perm.MANAGE_USERS`` over the node; a coordinator manages the people
of their own municipality and nobody else's.
"""

import datetime as dt
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from redes.core.api import ERRORS, WRITE_ERRORS, ErrorOut, Input, NotFound, Paginator, attempt, user_of
from redes.territories.api import NodeRef, find_municipality, find_node

from . import scoping, services
from .models import Membership, User
from .roles import PERMISSIONS, Perm, Role

router = Router(tags=["Accounts"])


class UserRef(Schema):
    uuid: UUID
    username: str = Field(..., examples=["mlopez"])
    full_name: str = Field("", examples=["María López Hernández"])


class MembershipOut(Schema):
    uuid: UUID
    user: UserRef
    node: NodeRef
    municipality: UUID | None = Field(None, description="The municipality of the node (null above them).")
    role: str = Field(..., examples=["sector_liaison"])
    role_label: str = Field(..., examples=["Sector liaison"])
    permissions: list[str] = Field(..., examples=[["view_aggregates", "view_territory", "view_personal"]])
    created_at: dt.datetime
    ended_at: dt.datetime | None = None
    active: bool

    @staticmethod
    def resolve_municipality(obj: Membership) -> UUID | None:
        return obj.node.municipality.uuid if obj.node.municipality_id else None

    @staticmethod
    def resolve_role_label(obj: Membership) -> str:
        return str(Role(obj.role).label)

    @staticmethod
    def resolve_permissions(obj: Membership) -> list[str]:
        return sorted(p.value for p in PERMISSIONS[Role(obj.role)])

    @staticmethod
    def resolve_active(obj: Membership) -> bool:
        return obj.is_active


class UserOut(UserRef):
    email: str = Field("", examples=["mlopez@example.org"])
    phone: str = Field("", examples=["+528112345678"])


class UserWithMemberships(UserOut):
    memberships: list[MembershipOut] = Field(..., description="Active memberships in the caller's territory.")

    @staticmethod
    def resolve_memberships(obj: User) -> list[Membership]:
        return getattr(obj, "scoped_memberships", [])


class MeOut(UserOut):
    is_superuser: bool
    memberships: list[MembershipOut] = Field(
        ..., description="Active memberships, each with its permissions."
    )


class MembershipFilters(Input):
    municipality: str | None = Field(None, description="Municipality UUID or INEGI key.")
    subtree: str | None = Field(None, description="Only memberships at this node or under it.")
    active: bool = Field(True, description="false lists ended memberships too.")


class MembershipIn(Input):
    user: str = Field(..., description="UUID of a user with a membership in the caller's territory.")
    node: str = Field(..., description="UUID of the node where the role is held.")
    role: Role = Field(..., examples=["block_liaison"])


class UserIn(Input):
    username: str = Field(..., max_length=150, examples=["mlopez"])
    full_name: str = Field("", max_length=200, examples=["María López Hernández"])
    email: str = Field("", max_length=254, examples=["mlopez@example.org"])
    phone: str = Field("", max_length=30, examples=["81 1234 5678"])
    password: str | None = Field(None, description="Left out: the account cannot log in with a password.")
    node: str = Field(..., description="UUID of the node where the first role is held.")
    role: Role = Field(..., examples=["block_liaison"])


class UserFilters(Input):
    municipality: str | None = Field(None, description="Municipality UUID or INEGI key.")
    q: str | None = Field(None, max_length=100, description="Search in usernames and names.")


def _memberships():
    return Membership.objects.select_related("user", "node", "node__municipality")


def _managed(user) -> QuerySet:
    return scoping.scoped(_memberships(), user, Perm.MANAGE_USERS, via="node")


def _require_managing(user) -> None:
    if not scoping.can(user, Perm.MANAGE_USERS):
        raise PermissionDenied(_("Your role does not allow managing users."))


@router.get("/me", response={200: MeOut, **ERRORS}, summary="The caller, with memberships and permissions")
def me(request):
    user = user_of(request)
    memberships = _memberships().active().filter(user=user).order_by("node__depth", "pk")
    return {
        "uuid": user.uuid,
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "phone": user.phone,
        "is_superuser": user.is_superuser,
        "memberships": list(memberships),
    }


@router.get(
    "/memberships",
    response={200: list[MembershipOut], **ERRORS, 403: ErrorOut},
    summary="Memberships in the caller's territory",
    description="Needs the user-management permission. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_memberships(request, filters: Query[MembershipFilters]):
    user = user_of(request)
    _require_managing(user)
    qs = _managed(user)
    if filters.active:
        qs = qs.active()
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
        qs = qs.filter(node__municipality=municipality)
    if filters.subtree:
        top = find_node(request, filters.subtree, loc=["query", "subtree"])
        scoping.require(user, Perm.MANAGE_USERS, top)
        qs = qs.filter(**{f"node__a{top.depth}": top.pk})
    return qs.order_by("node__depth", "node__code", "user__username", "pk")


def _managed_user(request, key: str) -> User:
    """A user the caller manages (one with a membership, active or not, in their territory)."""
    caller = user_of(request)
    qs = User.objects.all() if caller.is_superuser else scoping.users(caller, Perm.MANAGE_USERS)
    try:
        return qs.get(uuid=key)
    except (User.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound(["body", "user"]) from exc


@router.post(
    "/memberships",
    response={201: MembershipOut, **WRITE_ERRORS},
    summary="Grant a role at a node",
    description="Needs the user-management permission over the node. The user must already belong to the "
    "caller's territory (create new people with POST /users).",
)
def grant(request, payload: MembershipIn):
    actor = user_of(request)
    with attempt(request, "accounts.membership.grant") as a:
        a.obj = node = find_node(request, payload.node, loc=["body", "node"])
        scoping.require(actor, Perm.MANAGE_USERS, node)
        target = _managed_user(request, payload.user)
        membership = services.grant_membership(target, node, payload.role, actor=actor)
    return Status(201, _memberships().get(pk=membership.pk))


@router.post(
    "/memberships/{uuid}/end",
    response={200: MembershipOut, **WRITE_ERRORS},
    summary="End a membership",
)
def end(request, uuid: str):
    actor = user_of(request)
    with attempt(request, "accounts.membership.end") as a:
        a.obj = membership = scoping.get_scoped_or_404(
            _memberships(), actor, Perm.VIEW_PERSONAL, via="node", uuid=uuid
        )
        scoping.require(actor, Perm.MANAGE_USERS, membership.node)
        services.end_membership(membership, actor=actor)
    return _memberships().get(pk=membership.pk)


@router.get(
    "/users",
    response={200: list[UserWithMemberships], **ERRORS, 403: ErrorOut},
    summary="Users with a membership in the caller's territory",
    description="Needs the user-management permission. Each user lists only the memberships the caller "
    "manages. Paginated (``limit`` at most 500).",
)
@paginate(Paginator)
def list_users(request, filters: Query[UserFilters]):
    caller = user_of(request)
    _require_managing(caller)
    managed = _managed(caller).active()
    if filters.municipality:
        municipality = find_municipality(request, filters.municipality, loc=["query", "municipality"])
        managed = managed.filter(node__municipality=municipality)
    qs = User.objects.filter(pk__in=managed.values("user_id"))
    if filters.q:
        text = filters.q.strip()
        qs = qs.filter(Q(username__icontains=text) | Q(full_name__icontains=text))
    return qs.prefetch_related(
        Prefetch("memberships", queryset=managed.order_by("node__depth", "pk"), to_attr="scoped_memberships")
    ).order_by("username")


@router.post(
    "/users",
    response={201: UserWithMemberships, **WRITE_ERRORS},
    summary="Create a user with a first role",
    description="Needs the user-management permission over the node. The user and the membership are created "
    "together or not at all.",
)
def create_user(request, payload: UserIn):
    actor = user_of(request)
    with attempt(request, "accounts.user.create") as a:
        a.obj = node = find_node(request, payload.node, loc=["body", "node"])
        scoping.require(actor, Perm.MANAGE_USERS, node)
        with transaction.atomic():
            user = services.create_user(
                payload.username,
                password=payload.password,
                full_name=payload.full_name,
                email=payload.email,
                phone=payload.phone,
                actor=actor,
                municipality=node.municipality_id,
            )
            membership = services.grant_membership(user, node, payload.role, actor=actor)
    user.scoped_memberships = [_memberships().get(pk=membership.pk)]
    return Status(201, user)
