"""Folding of names and addresses into comparison keys (accents, ñ, case and punctuation removed)."""

from __future__ import annotations

import re
import unicodedata

_NON_ALNUM = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
#: Particles that open a compound surname ("de la Cruz", "del Río", "de los Santos", "y").
PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "san", "santa", "mc", "van", "von"})


def fold(text: str | None) -> str:
    """``"  Núñez-Ibáñez "`` → ``"nunez ibanez"``: lower case, no accents (ñ → n), no punctuation."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", _NON_ALNUM.sub(" ", ascii_text)).strip()


def address_key(street: str, number: str, postal_code: str) -> str:
    """A compact key for "same address": folded street without common words, number, postal code."""
    words = [
        w for w in fold(street).split() if w not in {"calle", "av", "avenida", "c", "privada", "priv", "cda"}
    ]
    key = " ".join([*words, fold(number).replace(" ", ""), (postal_code or "").strip()]).strip()
    return key[:120]


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


def split_full_name(full_name: str) -> tuple[str, str, str]:
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
