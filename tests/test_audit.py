from django.db import DatabaseError, connection, transaction

from redes.audit.context import Channel, using_channel
from redes.audit.models import AppendOnlyError, AuditEvent
from redes.audit.services import record
from redes.territories.services import create_node

from .base import RedesTestCase


class AuditTests(RedesTestCase):
    def test_every_service_write_is_recorded_with_actor_channel_and_tenant(self):
        with using_channel(Channel.CLI):
            node = create_node(self.w.esc, self.w.s2, "S02-M009", "Nueva", actor=self.w.coord)
        event = AuditEvent.objects.get(action="territories.node.create", object_id=str(node.uuid))
        self.assertEqual(event.actor, self.w.coord)
        self.assertEqual(event.channel, Channel.CLI)
        self.assertEqual(event.municipality_id, self.w.esc.pk)
        self.assertEqual(event.node_id, node.pk)

    def test_events_cannot_be_changed_or_deleted_through_the_orm(self):
        event = record("test.thing.do", actor=self.w.coord)
        event.summary = "changed"
        with self.assertRaises(AppendOnlyError):
            event.save()
        with self.assertRaises(AppendOnlyError):
            event.delete()
        with self.assertRaises(AppendOnlyError):
            AuditEvent.objects.filter(pk=event.pk).update(summary="x")
        with self.assertRaises(AppendOnlyError):
            AuditEvent.objects.all().delete()

    def test_the_database_refuses_updates_too(self):
        event = record("test.thing.do", actor=self.w.coord)
        table = AuditEvent._meta.db_table
        with self.assertRaises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET summary = 'x' WHERE id = %s", [event.pk])  # noqa: S608
        self.assertEqual(AuditEvent.objects.get(pk=event.pk).summary, "")
