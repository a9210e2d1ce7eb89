"""Small database helpers shared by the services."""

from django.db import connection


def lock_tree(key: int) -> None:
    """Serialise writes to one tree (one municipality) for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writes are already serialised because every
    transaction starts IMMEDIATE (see settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, int(key)])
