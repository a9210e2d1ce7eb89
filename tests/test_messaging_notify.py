"""Need notifications go out as messages once each (the cursor), to users with a contact, with no personal data
of the neighbour."""

from __future__ import annotations

import datetime as dt

from redes.core import clock
from redes.messaging import notify
from redes.messaging.models import Contact, Cursor, Outbound
from redes.needs import services as needs
from redes.needs.models import Notification
from tests.base import RedesTestCase


class NotifyTests(RedesTestCase):
    def setUp(self):
        needs.ensure_defaults(self.w.esc)
        self.need = needs.register_need(
            actor=self.w.coord,
            municipality=self.w.esc,
            category="alimentacion",
            description="Doña Rosa Pérez no tiene despensa",
            node=self.w.b11,
            address="Calle Olmo 12",
            contact_phone="8119998877",
        )
        Notification.objects.all().delete()
        self.w.sector1.phone = "8112345678"
        self.w.sector1.save(update_fields=["phone"])

    def test_each_notification_is_queued_once_without_personal_data(self):
        Notification.objects.create(user=self.w.sector1, need=self.need, kind="escalated")
        Notification.objects.create(
            user=self.w.nobody, need=self.need, kind="escalated"
        )  # no phone: no contact
        self.assertEqual(notify.pump(), 1)
        self.assertEqual(notify.pump(), 0)
        row = Outbound.objects.get()
        self.assertEqual((row.kind, row.template), (Outbound.Kind.NOTIFICATION, "need_notification"))
        self.assertEqual(row.contact, Contact.objects.get(user=self.w.sector1))
        self.assertEqual(row.variables["reference"], self.need.uuid.hex[:8].upper())
        self.assertEqual(row.variables["node"], self.w.b11.name)
        text = " ".join(str(v) for v in row.variables.values())
        for private in ("Rosa", "Olmo", "8119998877", "despensa"):
            self.assertNotIn(private, text)
        self.assertEqual(
            Cursor.objects.get(name="notifications").position, Notification.objects.order_by("-id")[0].id
        )

    def test_sensitive_needs_do_not_name_their_category(self):
        self.need.sensitive = True
        self.need.save(update_fields=["sensitive"])
        Notification.objects.create(user=self.w.sector1, need=self.need, kind="sensitive")
        notify.pump()
        self.assertEqual(Outbound.objects.get().variables["category"], "")

    def test_a_summary_notification_without_need(self):
        Notification.objects.create(user=self.w.sector1, need=None, kind="escalated", data={"count": 40})
        self.assertEqual(notify.pump(), 1)
        self.assertEqual(Outbound.objects.get().variables["reference"], "(40)")

    def test_first_run_skips_old_notifications(self):
        with clock.travel(clock.now() - dt.timedelta(days=3)):
            Notification.objects.create(user=self.w.sector1, need=self.need, kind="escalated")
        Notification.objects.create(user=self.w.sector1, need=self.need, kind="assigned")
        self.assertEqual(notify.pump(), 1)
        self.assertEqual(Outbound.objects.get().variables["kind"], "Se le asignó una necesidad")
