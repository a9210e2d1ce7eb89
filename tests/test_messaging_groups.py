"""The group registry: saving groups (validation, access, audit) and their members."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.test import override_settings

from redes.audit.models import AuditEvent, Outcome
from redes.messaging import groups
from redes.messaging.models import Group
from redes.needs.models import WorkingGroup

from .base import RedesTestCase
from .messaging_bcast_support import contact


@override_settings(LANGUAGE_CODE="en")
class GroupTests(RedesTestCase):
    def save(self, **kwargs):
        w = self.w
        args = {"actor": w.coord, "name": "Manzana 1", "kind": "block", "node": w.b11}
        return groups.save_group(w.esc, **{**args, **kwargs})

    def test_create_and_change(self):
        w = self.w
        theme = WorkingGroup.objects.create(municipality=w.esc, node=w.esc_node, name="Salud")
        group = self.save(
            invite_link="https://chat.whatsapp.com/xyz",
            rules="Respeto",
            moderators=[w.block1],
            working_group=theme,
        )
        self.assertEqual((group.kind, group.node, group.working_group), ("block", w.b11, theme))
        self.assertEqual(list(group.moderators.all()), [w.block1])
        changed = self.save(group=group, name="Manzana 1 (vecinos)", moderators=[], active=False)
        self.assertEqual(changed.pk, group.pk)
        self.assertEqual(
            (changed.name, changed.active, changed.moderators.count()), ("Manzana 1 (vecinos)", False, 0)
        )
        self.assertEqual(
            AuditEvent.objects.filter(
                action__in=["messaging.group.create", "messaging.group.update"]
            ).count(),
            2,
        )

    def test_refusals(self):
        w = self.w
        self.save()
        bad = [
            {"name": ""},
            {"name": "Manzana 1"},  # duplicate
            {"name": "B", "kind": "secret"},
            {"name": "C", "medium": "console"},
            {"name": "D", "invite_link": "javascript:alert(1)"},
            {"name": "E", "rules": "x" * 5000},
            {"name": "F", "node": w.ab},
            {"name": "G", "moderators": [w.other_coord]},
            {
                "name": "H",
                "working_group": WorkingGroup.objects.create(municipality=w.aca, node=w.aca_node, name="X"),
            },
        ]
        for kwargs in bad:
            with self.subTest(kwargs=kwargs), self.assertRaises(ValidationError):
                self.save(**kwargs)
        for actor in (w.sector1, w.block1, w.observer, w.other_coord):
            with self.subTest(actor=actor.username), self.assertRaises(PermissionDenied):
                self.save(actor=actor, name="Z")
        self.assertEqual(Group.objects.count(), 1)
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.group.save", outcome=Outcome.REJECTED).exists()
        )
        self.assertTrue(
            AuditEvent.objects.filter(action="messaging.group.save", outcome=Outcome.DENIED).exists()
        )

    def test_members(self):
        w = self.w
        group = self.save()
        a, b = contact(w.esc.pk, "+528110000001"), contact(w.esc.pk, "+528110000002")
        self.assertEqual(groups.add_members(group, [a, b], actor=w.coord), 2)
        self.assertEqual(groups.add_members(group, [a], actor=w.coord), 0)
        self.assertEqual(groups.remove_members(group, [a], actor=w.coord), 1)
        with self.assertRaises(PermissionDenied):
            groups.add_members(group, [a], actor=w.block1)
        with self.assertRaises(ValidationError):
            groups.add_members(group, [contact(w.aca.pk, "+527440000001")], actor=w.coord)
        self.assertEqual(list(group.members.all()), [b])
