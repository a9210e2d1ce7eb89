"""Shared helpers of the aid services: access checks, refusal auditing, quantities."""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.models import Outcome
from redes.audit.services import record_denied
from redes.territories.models import Municipality, Node

from .models import Item

MAX_QUANTITY = Decimal("1000000000")
ZERO = Decimal(0)


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def invalid(message: str, code: str, field_name: str | None = None) -> ValidationError:
    if field_name:
        return ValidationError({field_name: ValidationError(message, code=code)})
    return ValidationError(message, code=code)


def _error_code(exc: ValidationError) -> str:
    codes = []
    for error in exc.error_list if not hasattr(exc, "error_dict") else sum(exc.error_dict.values(), []):
        codes.append(error.code or "invalid")
    return ",".join(sorted(set(codes))) or "invalid"


_OBJ_KEYS = (
    "entitlement",
    "campaign",
    "template",
    "site",
    "from_site",
    "donor",
    "item",
    "municipality",
    "node",
)


def audited(action: str):
    """Record a refused call (``PermissionDenied``/``ValidationError``) under ``action``; the error propagates.

    The refusal is written after the service's transaction rolled back, so only the audit row remains."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PermissionDenied as exc:
                record_denied(
                    action, actor=kwargs.get("actor"), obj=_obj_of(args, kwargs), reason="forbidden"
                )
                exc.audited = True  # ``core.api.attempt`` around the call does not write it again
                raise
            except ValidationError as exc:
                record_denied(
                    action,
                    actor=kwargs.get("actor"),
                    obj=_obj_of(args, kwargs),
                    reason=f"invalid input: {_error_code(exc)}",
                    outcome=Outcome.REJECTED,
                )
                exc.audited = True
                raise

        return wrapper

    return decorate


def _obj_of(args, kwargs):
    for arg in args:
        if isinstance(arg, models.Model):
            return arg
    for key in _OBJ_KEYS:
        value = kwargs.get(key)
        if isinstance(value, models.Model):
            return value
    return None


# --------------------------------------------------------------------------------------------------- access


def can_manage(actor, municipality) -> bool:
    if actor is None:
        return True
    municipality = _municipality(municipality)
    return scoping.can(actor, Perm.MANAGE_AID, municipality.node)


def require_manage(actor, municipality) -> None:
    """``MANAGE_AID`` over the whole municipality (coordinators); ``actor=None`` is the system."""
    if not can_manage(actor, municipality):
        raise PermissionDenied(_("Your role does not allow managing aid in this municipality."))


def can_deliver(actor, node: Node) -> bool:
    if actor is None:
        return True
    return scoping.can(actor, Perm.DELIVER_AID, node)


def _municipality(value) -> Municipality:
    if isinstance(value, Municipality):
        return value
    return Municipality.objects.select_related("node").get(pk=value)


def _same_tenant(municipality, *objs, field_name=None) -> None:
    municipality_id = getattr(municipality, "pk", municipality)
    for obj in objs:
        if obj is not None and obj.municipality_id != municipality_id:
            raise invalid(
                _("All records must belong to the same municipality."), "other_municipality", field_name
            )


# --------------------------------------------------------------------------------------------------- quantities


def parse_quantity(
    item: Item, value, *, allow_negative: bool = False, field_name: str = "quantity"
) -> Decimal:
    """A quantity of ``item`` as a Decimal: positive (or non-zero when ``allow_negative``), whole for whole-unit
    items, at most three decimals."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        number = None
    if number is None or not number.is_finite():
        raise invalid(_("The quantity must be a number."), "not_a_number", field_name)
    if allow_negative:
        if number == 0:
            raise invalid(_("The quantity must not be zero."), "zero", field_name)
    elif number <= 0:
        raise invalid(_("The quantity must be greater than zero."), "not_positive", field_name)
    if abs(number) > MAX_QUANTITY:
        raise invalid(_("The quantity is too large."), "too_large", field_name)
    if item.whole_units and number != number.to_integral_value():
        raise invalid(
            _("%(item)s is counted in whole units: %(qty)s is not a whole number.")
            % {"item": item.name, "qty": format_quantity(number)},
            "fractional",
            field_name,
        )
    if number.as_tuple().exponent < -3 and number != number.quantize(Decimal("0.001")):
        raise invalid(_("Use at most three decimals."), "too_precise", field_name)
    return number.quantize(Decimal("0.001"))


def format_quantity(value) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,f}"
