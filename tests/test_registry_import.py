"""Bulk import of households and persons: the fast writer, reading, mapping, validation, placement, modes."""

import datetime as dt

from redes.registry import bulk, services
from redes.registry.models import BlockCounts, Household, Person, Phone

from .base import RedesTestCase


def counts(node):
    return (
        BlockCounts.objects.filter(node=node)
        .values_list("households", "persons", "priority_households", "visited_households")
        .first()
    )


class BulkWriteTests(RedesTestCase):
    def rows(self):
        w = self.w
        households = [
            bulk.HouseholdRow(
                node_id=w.b11.pk,
                external_id="H1",
                street="Calle Hidalgo",
                ext_number="12",
                postal_code="66050",
                phones=[("+528112345678", True, True, True), ("+528112345678", True, True, True)],
            ),
            bulk.HouseholdRow(node_id=w.b21.pk, external_id="H2", street="Juárez", ext_number="3"),
        ]
        persons = [
            bulk.PersonRow(
                household=0,
                external_id="P1",
                full_name="Rosa María de la Cruz Núñez",
                given_name="Rosa María",
                surname1="de la Cruz",
                surname2="Núñez",
                birth_year=1950,
                age_stated=True,
                factors=["job_loss"],
            ),
            bulk.PersonRow(
                household=0, external_id="P2", full_name="Ana Pérez", given_name="Ana", surname1="Pérez"
            ),
            bulk.PersonRow(
                household=1,
                external_id="P3",
                full_name="Juan López",
                given_name="Juan",
                surname1="López",
                birth_date=dt.date(1990, 5, 1),
                birth_year=1990,
                sex="H",
            ),
        ]
        return households, persons

    def test_write_fills_keys_priority_and_counts(self):
        w = self.w
        households, persons = self.rows()
        result = bulk.write(w.esc.pk, households, persons, actor=w.coord)
        self.assertEqual(result.persons_created, 3)
        h1 = Household.objects.get(pk=result.household_ids[0])
        self.assertEqual(h1.members_count, 2)
        self.assertEqual(h1.address_key, "hidalgo 12 66050")
        # older adult (25) + job loss (20)
        self.assertEqual(h1.priority, 45)
        self.assertEqual({line["factor"] for line in h1.priority_explanation}, {"older_adult", "job_loss"})
        self.assertEqual(
            list(Phone.objects.filter(household=h1).values_list("number", flat=True)), ["+528112345678"]
        )
        rosa = Person.objects.get(pk=result.person_ids[0])
        self.assertEqual(
            (rosa.given_key, rosa.given2_key, rosa.surname1_key), ("rosa maria", "maria", "de la cruz")
        )
        self.assertEqual(rosa.relation, "head")
        self.assertEqual(Person.objects.get(pk=result.person_ids[1]).relation, "")
        self.assertEqual(rosa.created_by, w.coord)
        self.assertEqual(Person.objects.get(pk=result.person_ids[2]).birth_date, dt.date(1990, 5, 1))
        self.assertEqual(counts(w.b11), (1, 2, 1, 0))
        self.assertEqual(counts(w.b21), (1, 1, 0, 0))
        # a later census write keeps the counts in step with the bulk ones
        services.create_household(w.b11, actor=w.block1, street="Otra", ext_number="1")
        self.assertEqual(counts(w.b11), (2, 2, 1, 0))

    def test_update_rows_by_id_does_not_duplicate(self):
        w = self.w
        households, persons = self.rows()
        first = bulk.write(w.esc.pk, households, persons)
        households, persons = self.rows()
        for h, pk in zip(households, first.household_ids, strict=True):
            h.id = pk
        for p, pk in zip(persons, first.person_ids, strict=True):
            p.id = pk
        households[0].node_id = w.b12.pk
        persons[0].factors = []
        second = bulk.write(w.esc.pk, households, persons)
        self.assertEqual((second.households_created, second.households_updated), (0, 2))
        self.assertEqual(Household.objects.count(), 2)
        self.assertEqual(Person.objects.count(), 3)
        self.assertEqual(Person.objects.get(pk=first.person_ids[0]).node_id, w.b12.pk)
        self.assertEqual(Person.objects.get(pk=first.person_ids[0]).relation, "head")
        self.assertEqual(Household.objects.get(pk=first.household_ids[0]).priority, 25)
        self.assertEqual(counts(w.b12), (1, 2, 0, 0))
        self.assertFalse(BlockCounts.objects.filter(node=w.b11, households__gt=0).exists())

    def test_one_transaction(self):
        w = self.w
        households, persons = self.rows()
        persons[2].household = 5  # no such household: fails after the households were copied
        with self.assertRaises(IndexError):
            bulk.write(w.esc.pk, households, persons)
        self.assertEqual(Household.objects.count(), 0)
        self.assertEqual(Phone.objects.count(), 0)
