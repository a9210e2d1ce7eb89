"""CURP (Clave Única de Registro de Población) validation.

A CURP has 18 characters::

    position  1     first letter of the first surname
              2     first inner vowel of the first surname ("X" when none, and when the first four letters
                    would spell an "inconvenient word": BUEI → BXEI; that rule is tolerated, not checked)
              3     first letter of the second surname ("X" when there is none)
              4     first letter of the given name
              5–10  birth date, YYMMDD
              11    sex: H (hombre), M (mujer), X (non-binary, issued since 2023)
              12–13 state of birth (two letters, "NE" for born abroad)
              14–16 first inner consonants of first surname, second surname and given name
              17    differentiator: a digit for people born before 2000, a letter from 2000 on (gives the century)
              18    check digit

The check digit is RENAPO's: each of the first 17 characters takes its index in
``0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ`` and is weighted 18, 17, … 2; the digit is ``(10 - sum % 10) % 10``.

``normalize_curp`` returns the upper-cased CURP or raises ``ValidationError`` saying why it is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

CURP_LENGTH = 18
ALPHABET = "0123456789ABCDEFGHIJKLMNÑOPQRSTUVWXYZ"
_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}

#: RENAPO state codes (position 12–13). "NE": born abroad (nacido en el extranjero).
STATE_CODES = {
    "AS": "Aguascalientes",
    "BC": "Baja California",
    "BS": "Baja California Sur",
    "CC": "Campeche",
    "CL": "Coahuila",
    "CM": "Colima",
    "CS": "Chiapas",
    "CH": "Chihuahua",
    "DF": "Ciudad de México",
    "DG": "Durango",
    "GT": "Guanajuato",
    "GR": "Guerrero",
    "HG": "Hidalgo",
    "JC": "Jalisco",
    "MC": "Estado de México",
    "MN": "Michoacán",
    "MS": "Morelos",
    "NT": "Nayarit",
    "NL": "Nuevo León",
    "OC": "Oaxaca",
    "PL": "Puebla",
    "QT": "Querétaro",
    "QR": "Quintana Roo",
    "SP": "San Luis Potosí",
    "SL": "Sinaloa",
    "SR": "Sonora",
    "TC": "Tabasco",
    "TS": "Tamaulipas",
    "TL": "Tlaxcala",
    "VZ": "Veracruz",
    "YN": "Yucatán",
    "ZS": "Zacatecas",
    "NE": "Nacido en el extranjero",
}

SEXES = ("H", "M", "X")
_LETTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = set("0123456789")
_VOWELS_OR_X = set("AEIOUX")
_CONSONANTS = _LETTERS - set("AEIOU")


@dataclass(frozen=True)
class CurpInfo:
    birth_date: dt.date
    sex: str  # "H", "M" or "X"
    state: str  # two-letter RENAPO code


def curp_check_digit(first17: str) -> str:
    """RENAPO check digit of the first 17 characters (upper case)."""
    if len(first17) != CURP_LENGTH - 1:
        raise ValueError("curp_check_digit needs exactly 17 characters")
    total = 0
    for i, ch in enumerate(first17):
        try:
            total += _VALUES[ch] * (18 - i)
        except KeyError:
            raise ValueError(f"character {ch!r} is not allowed in a CURP") from None
    return str((10 - total % 10) % 10)


def curp_without_check(curp: str) -> str:
    """The first 17 characters (for matching records whose check digit was mistyped)."""
    return (curp or "").strip().upper()[: CURP_LENGTH - 1]


def _allowed(position: int) -> set[str]:
    """The characters allowed at a 1-based position (dates and state apart)."""
    if position == 1 or position in (3, 4):
        return _LETTERS
    if position == 2:
        return _VOWELS_OR_X
    if 5 <= position <= 10 or position == 18:
        return _DIGITS
    if position == 11:
        return set(SEXES)
    if position in (12, 13):
        return _LETTERS
    if 14 <= position <= 16:
        return _CONSONANTS
    return _LETTERS | _DIGITS  # 17


#: Allowed characters of each position, 0-based (precomputed: checked for every CURP).
_ALLOWED = [frozenset(_allowed(position)) for position in range(1, CURP_LENGTH + 1)]


def _expected(position: int) -> tuple[set[str], str]:
    """(allowed characters, translatable description) for a 1-based position, dates and state apart."""
    if position == 1 or position in (3, 4):
        description = _("a letter")
    elif position == 2:
        description = _("a vowel or X")
    elif 5 <= position <= 10 or position == 18:
        description = _("a digit")
    elif position == 11:
        description = _("H, M or X (the sex)")
    elif position in (12, 13):
        description = _("a letter (the state code)")
    elif 14 <= position <= 16:
        description = _("a consonant")
    else:
        description = _("a letter or a digit")  # 17
    return _allowed(position), description


def _birth_date(curp: str) -> dt.date:
    yy, mm, dd = int(curp[4:6]), int(curp[6:8]), int(curp[8:10])
    century = 1900 if curp[16].isdigit() else 2000
    return dt.date(century + yy, mm, dd)


def normalize_curp(raw: str | None) -> str:
    """Return the CURP upper-cased ("" for empty input) or raise ValidationError saying why."""
    curp = (raw or "").strip().upper().replace(" ", "").replace("-", "")
    if not curp:
        return ""
    if len(curp) != CURP_LENGTH:
        raise ValidationError(
            _("A CURP has 18 characters; “%(raw)s” has %(count)s.")
            % {"raw": raw.strip(), "count": len(curp)},
            code="curp_length",
        )
    for position, ch in enumerate(curp, start=1):
        if ch in _ALLOWED[position - 1]:
            continue
        _chars, description = _expected(position)  # the message is translated only for a refusal
        raise ValidationError(
            _("Character %(position)s of the CURP (“%(char)s”) should be %(expected)s.")
            % {"position": position, "char": ch, "expected": description},
            code="curp_structure",
        )
    try:
        birth = _birth_date(curp)
    except ValueError:
        raise ValidationError(
            _("The CURP’s birth date (characters 5 to 10, “%(date)s”) is not a valid date.")
            % {"date": curp[4:10]},
            code="curp_birth_date",
        ) from None
    if birth > dt.date.today():
        raise ValidationError(
            _("The CURP’s birth date (%(date)s) is in the future.") % {"date": birth.isoformat()},
            code="curp_birth_date",
        )
    if curp[11:13] not in STATE_CODES:
        raise ValidationError(
            _("“%(code)s” (characters 12 and 13) is not a state code of the CURP.") % {"code": curp[11:13]},
            code="curp_state",
        )
    expected = curp_check_digit(curp[:17])
    if curp[17] != expected:
        raise ValidationError(
            _("The CURP’s check digit is wrong: the check digit should be %(digit)s, not %(given)s.")
            % {"digit": expected, "given": curp[17]},
            code="curp_check_digit",
        )
    return curp


def is_valid_curp(raw: str | None) -> bool:
    try:
        return bool(normalize_curp(raw))
    except ValidationError:
        return False


def parse_curp(curp: str) -> CurpInfo:
    """Birth date, sex and state of a CURP (validated first: raises ValidationError when invalid or empty)."""
    value = normalize_curp(curp)
    if not value:
        raise ValidationError(_("The CURP is empty."), code="curp_empty")
    return CurpInfo(birth_date=_birth_date(value), sex=value[10], state=value[11:13])
