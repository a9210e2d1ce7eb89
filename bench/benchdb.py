"""The database plumbing the benchmarks share: each script gets a SQLite file or a PostgreSQL database of its
own (``--db sqlite|postgres``, ``--pg-url``), rebuilt from scratch unless the script reuses it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def data_path(filename: str) -> Path:
    """A file or folder of the benchmarks in ``$REDES_DATA_DIR`` (default ``/tmp/redes-bench``)."""
    base = Path(os.environ.get("REDES_DATA_DIR") or "/tmp/redes-bench")
    base.mkdir(parents=True, exist_ok=True)
    return base / filename


def reset_database(args, filename: str) -> None:
    """Delete the SQLite file (and its WAL) or drop and create the PostgreSQL database."""
    if args.db == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{data_path(filename)}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    parts = urlsplit(args.pg_url)
    name = parts.path.lstrip("/")
    admin = urlunsplit((parts.scheme.replace("postgres", "postgresql", 1), parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(args, filename: str) -> None:
    """Point Django at the benchmark's database and start it."""
    os.environ["DATABASE_URL"] = f"sqlite:///{data_path(filename)}" if args.db == "sqlite" else args.pg_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "redes.settings"
    import django

    django.setup()
