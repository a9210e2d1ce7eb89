"""The database itself refuses to change stock ledger entries, like the audit log (TRUNCATE, used by test
flushes, stays allowed; on SQLite only UPDATE is refused because Django's test flush deletes rows there)."""

from django.db import migrations

PG_UP = """
CREATE OR REPLACE FUNCTION aid_stockentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'stock ledger entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER aid_stockentry_no_update BEFORE UPDATE OR DELETE ON aid_stockentry
    FOR EACH ROW EXECUTE FUNCTION aid_stockentry_append_only();
"""
PG_DOWN = """
DROP TRIGGER IF EXISTS aid_stockentry_no_update ON aid_stockentry;
DROP FUNCTION IF EXISTS aid_stockentry_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER aid_stockentry_no_update BEFORE UPDATE ON aid_stockentry
BEGIN SELECT RAISE(ABORT, 'stock ledger entries are append-only'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS aid_stockentry_no_update;"


def up(apps, schema_editor):
    sql = {"postgresql": PG_UP, "sqlite": SQLITE_UP}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


def down(apps, schema_editor):
    sql = {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(schema_editor.connection.vendor)
    if sql:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("aid", "0001_initial")]
    operations = [migrations.RunPython(up, down)]
