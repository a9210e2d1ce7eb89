"""The ``redes`` console script: Django's management commands under the project's own name."""

import os
import re
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    argv[0] = "redes"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "redes.settings")
    if len(argv) > 1 and argv[1] == "demo" and not os.environ.get("DATABASE_URL"):
        # The demo lives in its own embedded database, next to (never inside) the real one.
        from redes.paths import data_dir

        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir() / 'demo.sqlite3'}"
    from django.core.management import execute_from_command_line

    if len(argv) == 1 or argv[1] in ("-h", "--help", "help") and len(argv) == 2:
        _print_main_commands()
    execute_from_command_line(argv)


MAIN_COMMANDS = (
    "demo",
    "serve",
    "migrate",
    "municipality",
    "territory",
    "registry",
    "needs",
    "messaging",
    "user",
    "token",
    "db_worker",
)


def _print_main_commands() -> None:
    """Lead the help with redes' own commands (each described by its own translated help text)."""
    import django
    from django.core.management import get_commands, load_command_class
    from django.utils.translation import gettext as _

    django.setup()
    commands = get_commands()
    print(_("redes: the information system for neighbourhood solidarity networks. Main commands:"))
    for name in MAIN_COMMANDS:
        if name in commands:
            text = re.split(r"\.(?:\s|$)", str(load_command_class(commands[name], name).help))[0]
            print(f"  {name:<13} {text}")
    print()


if __name__ == "__main__":
    main()
