"""Users, memberships and API tokens."""

from __future__ import annotations

import datetime as dt
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.audit.services import record
from redes.core.phones import normalize_phone
from redes.territories.models import Node

from .models import ApiToken, Membership, User, hash_token
from .roles import ROLE_NODE_KINDS, Role
from .scoping import forget_grants

TOKEN_PREFIX = "rds_"  # noqa: S105 (a public prefix, not a secret)


@transaction.atomic
def create_user(
    username: str,
    *,
    password: str | None,
    full_name: str = "",
    email: str = "",
    phone: str = "",
    actor=None,
    check_password: bool = True,
    municipality=None,
) -> User:
    """Create an account. ``municipality``: the tenant it is created for (so its coordinators see it audited)."""
    username = (username or "").strip()
    if not username:
        raise ValidationError(_("The username is required."))
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(_("The username “%(username)s” is taken.") % {"username": username})
    user = User(username=username, full_name=full_name.strip(), email=email.strip())
    if phone:
        user.phone = normalize_phone(phone)
    if password:
        if check_password:
            validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    record("accounts.user.create", actor=actor, obj=user, municipality=municipality)
    return user


@transaction.atomic
def grant_membership(user: User, node: Node, role: str, *, actor=None) -> Membership:
    """Give ``user`` the ``role`` at ``node``. The role must fit the kind of node (see ``ROLE_NODE_KINDS``)."""
    try:
        role = Role(role)
    except ValueError as exc:
        raise ValidationError(_("Unknown role “%(role)s”.") % {"role": role}) from exc
    if node.kind not in ROLE_NODE_KINDS[role]:
        raise ValidationError(
            _("The role %(role)s cannot be held at a %(kind)s.")
            % {"role": role.label, "kind": node.level_name}
        )
    existing = Membership.objects.active().filter(user=user, node=node, role=role).first()
    if existing:
        return existing
    membership = Membership.objects.create(
        user=user,
        node=node,
        municipality_id=node.municipality_id,
        role=role,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    forget_grants(user)
    record("accounts.membership.grant", actor=actor, obj=membership, node=node, changes={"role": role.value})
    return membership


@transaction.atomic
def end_membership(membership: Membership, *, actor=None) -> Membership:
    if membership.ended_at is None:
        membership.ended_at = timezone.now()
        membership.save(update_fields=["ended_at"])
        forget_grants(membership.user)
        record("accounts.membership.end", actor=actor, obj=membership, node=membership.node)
    return membership


@transaction.atomic
def create_token(
    user: User, *, name: str = "", expires_in_days: int | None = None, actor=None
) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the raw token, which is never stored and shown only once."""
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValidationError(_("The token's lifetime must be a positive number of days."))
    secret = secrets.token_urlsafe(32)
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secret}"
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:100],
        prefix=prefix,
        key_hash=hash_token(raw),
        expires_at=timezone.now() + dt.timedelta(days=expires_in_days) if expires_in_days else None,
    )
    record("accounts.token.create", actor=actor or user, obj=token, changes={"prefix": prefix})
    return token, raw


@transaction.atomic
def revoke_token(token: ApiToken, *, actor=None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record("accounts.token.revoke", actor=actor, obj=token)
    return token


def user_for_token(raw: str) -> User | None:
    """The active user behind a bearer token, or None for unknown, revoked or expired tokens."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    now = timezone.now()
    if token is None or not token.is_usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
