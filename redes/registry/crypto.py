"""Encryption at rest of sensitive data (health, disability, violence risk).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a ``MultiFernet`` of the configured keys
(``settings.REDES_FIELD_KEYS``, newest first): new values are encrypted with the first key, old values stay
readable with any listed key, and ``rotate`` re-encrypts a value under the first key. See ``docs/operations.md``.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SensitiveDataUnreadable(Exception):
    """The stored value was encrypted with a key that is no longer configured (or was tampered with)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise RuntimeError("REDES_FIELD_KEYS is empty: sensitive data cannot be encrypted.")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.REDES_FIELD_KEYS))


def encrypt(payload: dict) -> str:
    """Encrypt a JSON-able dict; an empty dict is stored as the empty string."""
    if not payload:
        return ""
    return _current().encrypt(json.dumps(payload, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken as exc:
        raise SensitiveDataUnreadable from exc


def rotate(token: str) -> str:
    """Re-encrypt ``token`` under the newest key (a no-op for empty values)."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SensitiveDataUnreadable from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()
