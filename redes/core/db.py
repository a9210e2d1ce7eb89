"""Small database helpers shared by the services."""

from collections.abc import Iterable, Sequence

from django.db import connection, connections


def lock_tree(key: int) -> None:
    """Serialise writes to one tree (one municipality) for the rest of the transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writes are already serialised because every
    transaction starts IMMEDIATE (see settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7301, int(key)])


def reserve_ids(model, count: int) -> list[int]:
    """Reserve ``count`` primary keys for new rows of ``model`` so each row can be written once, id included.

    PostgreSQL: ``nextval`` on the table's sequence. SQLite: ``MAX(id) + 1 …``, safe because writers are
    serialised (IMMEDIATE transactions): callers must be inside the writing transaction.
    """
    if count <= 0:
        return []
    conn = connections[model.objects.db]
    table = model._meta.db_table
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # The sequence is looked up once (``pg_get_serial_sequence`` per row costs ~8x the nextval calls).
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {conn.ops.quote_name(table)}")  # noqa: S608
        first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))


def copy_rows(model, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows (already adapted to database values) into ``model``'s table: COPY on PostgreSQL, else
    ``executemany``. Values must be plain: str/int/float/bool/None, JSON as text, uuid as ``UUID`` on
    PostgreSQL and hex text on SQLite (see ``adapt_uuid``), datetimes through ``adapt_datetime``."""
    conn = connections[model.objects.db]
    table = conn.ops.quote_name(model._meta.db_table)
    cols = ", ".join(conn.ops.quote_name(c) for c in columns)
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(rows))  # noqa: S608


def adapt_uuid(value, model=None):
    """A uuid as ``copy_rows`` wants it: the UUID itself on PostgreSQL, its hex on SQLite."""
    conn = connections[model.objects.db] if model is not None else connection
    return value if conn.vendor == "postgresql" else value.hex


def adapt_datetime(value, model=None):
    conn = connections[model.objects.db] if model is not None else connection
    return conn.ops.adapt_datetimefield_value(value)
