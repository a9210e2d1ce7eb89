"""Entitlement codes: short, random, unique, from an alphabet without look-alikes (no 0/O, 1/I/L), and their QR.

A code is 8 characters (31^8 ≈ 8.5 × 10^11 values), shown as ``ABCD-EFGH``; typing is forgiving (case, spaces
and dashes are ignored). The QR encodes the bare code, so a phone camera or a printed sheet gives the same code.
"""

from __future__ import annotations

import io
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
_BATCH = 5000


def _random_codes(count: int) -> list[str]:
    """``count`` uniform random codes from one read of the system's randomness (bytes below 248 = 8 × 31 map
    evenly onto the alphabet; the others are drawn again)."""
    out: list[str] = []
    limit = len(ALPHABET) * (256 // len(ALPHABET))
    while len(out) < count:
        need = count - len(out)
        usable = [b % len(ALPHABET) for b in secrets.token_bytes(need * LENGTH * 2) if b < limit]
        for start in range(0, len(usable) - LENGTH + 1, LENGTH):
            out.append("".join(ALPHABET[i] for i in usable[start : start + LENGTH]))
            if len(out) == count:
                break
    return out


def new_codes(count: int, *, check: bool = True) -> list[str]:
    """``count`` fresh codes, unique among themselves and (``check``) against every stored entitlement.

    Without ``check`` the caller relies on the unique index and retries on a collision (bulk writes: a
    collision is rare, ~count × stored / 31^8, so checking every code costs more than retrying a batch)."""
    from .models import Entitlement

    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        batch = []
        for code in _random_codes(min(_BATCH, count - len(out))):
            if code not in seen:
                seen.add(code)
                batch.append(code)
        taken = (
            set(Entitlement.objects.filter(code__in=batch).values_list("code", flat=True)) if check else set()
        )
        out.extend(c for c in batch if c not in taken)
    return out


def normalize(raw: str) -> str:
    """What the user typed or scanned → the stored form (upper case, no spaces or dashes)."""
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


def is_well_formed(code: str) -> bool:
    return len(code) == LENGTH and all(ch in ALPHABET for ch in code)


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if len(code) == LENGTH else code


def qr_svg(code: str, *, scale: int = 4) -> str:
    """An SVG QR code of the entitlement code (segno), ready to inline in a page or a printed sheet."""
    import segno

    qr = segno.make(code, error="m", micro=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True, title=display(code))
    return out.getvalue().decode()
