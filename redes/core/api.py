"""Building blocks shared by the JSON API routers: bearer auth, the error shape, pagination, audited writes.

Every error the API answers has one shape, ``{"detail": "...", "errors": [{"loc": [...], "msg": "..."}]}``:

- 401: no token, a token of another scheme, or an unknown, expired or revoked token (``detail`` says which);
- 404: missing, not yours and malformed ids alike;
- 403: the record is visible but the action is not allowed;
- 400: the service refused the input (Django ``ValidationError``), with one entry per reason;
- 422: the request does not fit the schema (wrong types, missing fields), with one entry per field.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import LimitOffsetPagination
from ninja.security import HttpBearer
from pydantic import model_validator

from redes.accounts.models import ApiToken, hash_token
from redes.accounts.services import TOKEN_PREFIX, user_for_token
from redes.audit.models import Outcome
from redes.audit.services import record_denied

MAX_PAGE = 500
DEFAULT_PAGE = 100
MAX_OFFSET = 1_000_000_000


# --- input --------------------------------------------------------------------------------------------------


def _has_nul(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 50:
        return False
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


class Input(Schema):
    """Base of every request schema: refuses NUL characters, which no database column can hold."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        raw = getattr(data, "_obj", data)  # ninja hands over its DjangoGetter wrapper
        values = raw.items() if isinstance(raw, dict) else ()
        for key, value in values:
            if _has_nul(value):
                raise ValueError(_("%(field)s: NUL characters are not allowed.") % {"field": key})
        return data


# --- errors -------------------------------------------------------------------------------------------------


class ErrorItem(Schema):
    loc: list[str | int] = Field(default_factory=list, examples=[["body", "code"]])
    msg: str = Field(..., examples=["The code S01 is already used in this municipality."])


class ErrorOut(Schema):
    detail: str = Field(..., examples=["Not found."])
    errors: list[ErrorItem] = Field(default_factory=list)


#: The error answers every authenticated operation may give; merge with an operation's own answers.
ERRORS: dict[int, Any] = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITE_ERRORS: dict[int, Any] = {**ERRORS, 400: ErrorOut, 403: ErrorOut}
#: Reads that a role may be refused (observers asking for personal data): 403 besides the usual errors.
READ_403: dict[int, Any] = {**ERRORS, 403: ErrorOut}


class NotFound(Http404):
    """A 404 that says which input pointed at nothing (e.g. ``["body", "parent"]``)."""

    def __init__(self, loc: list[str | int] | None = None):
        super().__init__()
        self.loc = loc or []


def _body(detail: str, errors: list[dict] | None = None) -> dict:
    return {"detail": str(detail), "errors": errors or []}


def install_error_handlers(api) -> None:
    """Register the uniform error answers on a NinjaAPI."""

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        response = api.create_response(request, _body(exc.message), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="redes"'
        return response

    @api.exception_handler(Http404)
    def not_found(request, exc):
        loc = getattr(exc, "loc", None)
        errors = [{"loc": loc, "msg": str(_("Not found."))}] if loc else []
        return api.create_response(request, _body(_("Not found."), errors), status=404)

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        detail = str(exc) if str(exc) else _("You do not have permission to do this here.")
        return api.create_response(request, _body(detail), status=403)

    @api.exception_handler(ValidationError)
    def invalid(request, exc):
        errors = validation_errors(exc)
        detail = errors[0]["msg"] if len(errors) == 1 else _("The input is not valid.")
        return api.create_response(request, _body(detail, errors), status=400)

    @api.exception_handler(NinjaValidationError)
    def unprocessable(request, exc):
        errors = [
            {"loc": list(e.get("loc", [])), "msg": str(e.get("msg", ""))}
            for e in exc.errors
            if isinstance(e, dict)
        ]
        return api.create_response(
            request, _body(_("The request does not fit the schema."), errors), status=422
        )

    @api.exception_handler(DataError)
    def unstorable(request, exc):
        # A last line of defence: values the database refuses (out of range, unstorable characters).
        return api.create_response(
            request, _body(_("The request contains a value the database cannot store.")), status=400
        )

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        detail = exc.message
        if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
            detail = _("The request body is not valid JSON.")
        return api.create_response(request, _body(detail), status=exc.status_code)


def _loc(field: str) -> list[str]:
    """``name`` → ["body", "name"]; ``query.level`` → ["query", "level"]; ``__all__`` → ["body"]."""
    if field == "__all__":
        return ["body"]
    return field.split(".", 1) if "." in field else ["body", field]


def validation_errors(exc: ValidationError) -> list[dict]:
    if hasattr(exc, "error_dict"):
        return [
            {"loc": _loc(field), "msg": str(message)}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"loc": [], "msg": str(message)} for message in exc.messages]


# --- authentication -----------------------------------------------------------------------------------------


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``, tokens made with ``redes token create USERNAME``.

    Unlike ninja's default, a refusal says why (missing, wrong scheme, unknown, expired, revoked)."""

    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest):
        header = request.headers.get(self.header, "").strip()
        if not header:
            raise AuthenticationError(
                message=_("Authentication required: send the header “Authorization: Bearer <token>”.")
            )
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != self.openapi_scheme:
            raise AuthenticationError(
                message=_("Unsupported authorization scheme: use “Authorization: Bearer <token>”.")
            )
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str):
        user = user_for_token(token)
        if user is None:
            raise AuthenticationError(message=token_problem(token))
        request.user = user
        return user


def token_problem(raw: str) -> str:
    """Why a token was refused (it names the token's state, never the account behind it)."""
    token = None
    if raw and raw.startswith(TOKEN_PREFIX) and len(raw) <= 200:
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
    if token is None:
        return _("The token is not valid.")
    if token.revoked_at is not None:
        return _("The token has been revoked.")
    if not token.is_usable():
        return _("The token has expired.")
    return _("The account behind this token is disabled.")


def user_of(request: HttpRequest):
    return request.auth


# --- pagination ---------------------------------------------------------------------------------------------


class Paginator(LimitOffsetPagination):
    """``limit`` (1 … 500, default 100) and ``offset``; answers ``{"items": [...], "count": N}``."""

    class Input(Schema):
        limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Page size (at most 500).")
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description="How many rows to skip.")

    def __init__(self, **kwargs):
        super().__init__(max_limit=MAX_PAGE, **kwargs)


# --- audited writes -----------------------------------------------------------------------------------------


class Attempt:
    """What a write is about; set ``obj`` once the record is found, so that a refusal names it."""

    def __init__(self, obj: Any = None):
        self.obj = obj


@contextmanager
def attempt(request: HttpRequest, action: str, obj: Any = None):
    """Run a write; if it is refused (404, 403 or invalid input), record the refusal in the audit log.

    Usage::

        with attempt(request, "territories.node.update") as a:
            a.obj = node = find_node(request, uuid)
            scoping.require(user, Perm.MANAGE_TERRITORY, node)
            update_node(node, ...)

    The summary names no person, only the kind of refusal. A refusal that a service already audited (it marks
    the exception ``audited = True``) is not written twice."""
    state = Attempt(obj)
    try:
        yield state
    except PermissionDenied as exc:
        if not getattr(exc, "audited", False):
            record_denied(action, actor=user_of(request), obj=state.obj, reason="forbidden")
        raise
    except Http404:
        record_denied(action, actor=user_of(request), obj=state.obj, reason="not found")
        raise
    except ValidationError as exc:
        if not getattr(exc, "audited", False):
            record_denied(
                action,
                actor=user_of(request),
                obj=state.obj,
                reason="invalid input",
                outcome=Outcome.REJECTED,
            )
        raise
