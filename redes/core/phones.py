"""Mexican phone numbers to one E.164 key.

Accepts 10 national digits, +52, and the legacy forms people and WhatsApp still produce (044/045/01 prefixes,
"+52 1" and "521" mobile prefixes).
"""

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_LEGACY_PREFIXES = ("044", "045", "01")


def normalize_phone(raw: str) -> str:
    """Return the E.164 key (e.g. ``+528112345678``) or raise ValidationError saying why."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("The phone number is empty."))
    plus = text.startswith("+")
    digits = re.sub(r"\D", "", text)
    if plus or (digits.startswith("52") and len(digits) in (12, 13)):
        if digits.startswith("521") and len(digits) == 13:
            digits = "52" + digits[3:]
        candidate = "+" + digits
    else:
        for prefix in _LEGACY_PREFIXES:
            if digits.startswith(prefix) and len(digits) == 10 + len(prefix):
                digits = digits[len(prefix) :]
                break
        if len(digits) != 10:
            raise ValidationError(
                _("A Mexican phone number has 10 digits; “%(raw)s” has %(count)s.")
                % {"raw": raw, "count": len(digits)}
            )
        candidate = "+52" + digits
    try:
        parsed = phonenumbers.parse(candidate, "MX")
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("“%(raw)s” is not a phone number.") % {"raw": raw}) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(_("“%(raw)s” is not a valid phone number.") % {"raw": raw})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
