"""Check that the Spanish (es-MX) catalogue covers every translatable string and that the .mo is current.

Run from the repository root: ``python -m redes.core.i18ncheck`` (needs GNU gettext: xgettext, msgfmt).
``--update`` refreshes the .po from the code first (``makemessages``) and compiles it.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
PO = PACKAGE / "locale" / "es_MX" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _entries(text: str):
    """Yield (msgid, msgstr, fuzzy) for each entry of a .po file (plural forms: msgstr[0])."""
    for block in re.split(r"\n\s*\n", text):
        if "msgid" not in block or block.lstrip().startswith("#~"):
            continue
        fuzzy = "#, fuzzy" in block or re.search(r"^#,.*\bfuzzy\b", block, re.M) is not None
        ids = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        strs = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M)
        if not ids or not strs:
            continue

        def join(chunk):
            return "".join(re.findall(r'"(.*)"', chunk))

        yield join(ids.group(1)), join(strs.group(1)), fuzzy


def problems(po_text: str) -> list[str]:
    out = []
    for msgid, msgstr, fuzzy in _entries(po_text):
        if not msgid:
            continue  # the header
        if fuzzy:
            out.append(f"fuzzy: {msgid!r}")
        elif not msgstr:
            out.append(f"untranslated: {msgid!r}")
    return out


_ALIAS = re.compile(r"\b(?:n|p|np)?gettext(?:_lazy|_noop)?\s+as\s+(?!_\b)(\w+)")


def hidden_strings() -> list[str]:
    """Modules that import gettext under a name makemessages does not know: their strings never get extracted."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for match in _ALIAS.finditer(path.read_text(encoding="utf-8")):
            out.append(
                f"{path.relative_to(PACKAGE.parent)}: gettext imported as {match.group(1)!r}; use _ or its own name"
            )
    return out


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "redes.settings")
    import django
    from django.core.management import call_command

    django.setup()
    os.chdir(PACKAGE)
    issues = hidden_strings()
    original = PO.read_text() if PO.exists() else ""
    if "--update" not in argv:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "django.mo"
            subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(PO)], check=True)  # noqa: S603, S607
            if not MO.exists() or fresh.read_bytes() != MO.read_bytes():
                issues.append(
                    f"{MO.name} does not match {PO.name}: run python -m redes.core.i18ncheck --update"
                )
    call_command(
        "makemessages", locale=["es_MX"], no_obsolete=True, verbosity=0, ignore_patterns=["static/vendor/*"]
    )
    issues += problems(PO.read_text())
    if "--update" in argv:
        call_command("compilemessages", locale=["es_MX"], verbosity=0)
    elif original:
        PO.write_text(original)  # a check leaves the tree as it found it
    for line in issues:
        print(line)
    print(f"i18n: {len(issues)} problem(s) in {PO.relative_to(PACKAGE.parent)}")
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
