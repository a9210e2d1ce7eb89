"""The ``redes`` console script: Django's management commands under the project's own name."""

import os
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

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
