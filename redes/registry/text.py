"""Folding of names and addresses into comparison keys (accents, ñ, case and punctuation removed).

The one normaliser of the registry: the services, the bulk writer, the importer, the queries and the duplicate
matcher (``registry.matching``) all use these functions, so a key stored in the database (``Person.*_key``,
``Household.address_key``) is exactly what the matcher computes for the same input.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
_NON_DIGITS = re.compile(r"\D+")
#: Particles that open a compound name ("de la Cruz", "del Río", "de los Santos", "y Pérez", "San Martín"):
#: RENAPO's list for the CURP plus "san", "santa". Folded (lower case, no accents).
PARTICLES = frozenset(
    {
        "de", "del", "la", "las", "los", "el", "y", "da", "das", "do", "dos", "di", "die", "der", "le", "les",
        "van", "von", "mc", "san", "santa",
    }
)  # fmt: skip
#: Words dropped from a street name in the address key ("Calle Hidalgo" = "Hidalgo", "Av. Juárez" = "Juárez").
STREET_WORDS = frozenset(
    {
        "calle", "c", "av", "ave", "avenida", "privada", "priv", "pvda", "cda", "cerrada", "callejon", "cjon",
        "blvd", "boulevard", "bulevar", "calz", "calzada", "and", "andador", "prol", "prolongacion",
    }
)  # fmt: skip
#: The house number of an address without one ("S/N", "sin número") and the postal code of one without it.
NO_NUMBER = "sn"
NO_POSTAL_CODE = "0"
_NUMBER_WORDS = frozenset({"no", "num", "numero", "n", "sin", "s"})
ADDRESS_KEY_LENGTH = 120


@lru_cache(maxsize=1 << 16)
def fold(text: str | None) -> str:
    """``"  Núñez-Ibáñez "`` → ``"nunez ibanez"``: lower case, no accents (ñ → n), no punctuation."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", ascii_text)).strip()


def _house_number(number: str | None) -> str:
    """``"No. 12-A"`` → ``"12a"``, ``"S/N"`` / ``""`` → :data:`NO_NUMBER`."""
    words = fold(str(number or "")).split()
    kept = [w for w in words if w not in _NUMBER_WORDS]
    value = "".join(kept)
    return value or NO_NUMBER


def address_key(street: str | None, number: str | None = "", postal_code: str | None = "") -> str:
    """A compact key for "same address": ``"<street words> <number> <postal code>"``, folded.

    ``address_key("Calle Hidalgo", "No. 12-A", "39 300")`` → ``"hidalgo 12a 39300"``. The street loses common
    words (calle, avenida, privada…); the number is one token (:data:`NO_NUMBER` ``"sn"`` when there is none);
    the postal code keeps its digits only (:data:`NO_POSTAL_CODE` ``"0"`` when missing), so the last two words
    are always the number and the postal code. ``""`` when all three are empty. Street words are cut (never the
    number and postal code) to fit :data:`ADDRESS_KEY_LENGTH`. Parse it back with :func:`address_parts`."""
    words = [w for w in fold(street).split() if w not in STREET_WORDS]
    code = _NON_DIGITS.sub("", str(postal_code or ""))
    if not words and not code and not fold(str(number or "")):
        return ""
    tail = f"{_house_number(number)} {code or NO_POSTAL_CODE}"
    room = ADDRESS_KEY_LENGTH - len(tail) - 1
    head = " ".join(words)
    if len(head) > room:
        head = head[:room].rsplit(" ", 1)[0] if " " in head[:room] else head[:room]
    return f"{head} {tail}" if head else tail


def address_parts(key: str) -> tuple[str, str, str]:
    """``(street, number, postal code)`` of an :func:`address_key` (number ``""`` when it was missing)."""
    words = key.split()
    if len(words) < 2:
        return " ".join(words), "", ""
    code, number = words.pop(), words.pop()
    return " ".join(words), ("" if number == NO_NUMBER else number), ("" if code == NO_POSTAL_CODE else code)


def address_tail(key: str) -> str:
    """``"<number> <postal code>"`` of an address key when it has both, else ``""``: two records with a street
    name typed differently still share it (a blocking key of the duplicate matcher)."""
    if not key:
        return ""
    _street, number, code = address_parts(key)
    return f"{number} {code}" if number and code else ""


def group_particles(tokens: list[str]) -> list[str]:
    """Join particles with the word they introduce: ["de", "la", "cruz", "lopez"] → ["de la cruz", "lopez"]."""
    groups: list[str] = []
    pending: list[str] = []
    for token in tokens:
        pending.append(token)
        if fold(token) not in PARTICLES:
            groups.append(" ".join(pending))
            pending = []
    if pending:
        if groups:
            groups[-1] = " ".join([groups[-1], *pending])
        else:
            groups.append(" ".join(pending))
    return groups


def split_full_name(full_name: str | None) -> tuple[str, str, str]:
    """Split a Mexican full name written "given names, first surname, second surname".

    Heuristic: the last two surname groups (a group is a word with the particles before it, so "de la Cruz"
    is one) are the surnames, the rest the given names; two words are "given surname1"; one word is a given
    name. Compound given names ("María José") stay given names. Use the separate fields whenever the source
    has them."""
    tokens = (full_name or "").split()
    if not tokens:
        return "", "", ""
    if len(tokens) == 1:
        return tokens[0], "", ""
    groups = group_particles(tokens[1:])
    given = [tokens[0]]
    while len(groups) > 2:
        given.append(groups.pop(0))
    if len(groups) == 1:
        return " ".join(given), groups[0], ""
    return " ".join(given), groups[0], groups[1]
