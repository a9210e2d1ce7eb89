"""Aid page forms with good and bad input: a refusal shows a clear message, changes nothing (the ledger stays
as it was) and is audited; a write by a role that may not is a 403 (or 404 across tenants), also audited."""

from __future__ import annotations

from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from redes.aid import codes, services
from redes.aid.models import (
    Campaign,
    Donation,
    Donor,
    Entitlement,
    Item,
    PackageTemplate,
    Site,
    StockBalance,
    StockEntry,
)
from redes.audit.models import AuditEvent
from tests.base import RedesTestCase
from tests.test_pages_aid import build_aid, ledger_state

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
SIGNATURE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4//8/AAX+Av6nNYGEAAAAAElFTkSuQmCC"


@override_settings(LANGUAGE_CODE="en")
class AidFormsBase(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)

    def setUp(self):
        self.coord = self.client_for(self.w.coord)

    def balance(self, site, item) -> Decimal:
        row = StockBalance.objects.filter(site=site, item=item).first()
        return row.quantity if row else Decimal(0)

    def rejected(self, action: str) -> int:
        return AuditEvent.objects.filter(action=action, outcome__in=["rejected", "denied"]).count()

    def assert_refused(
        self, response, action: str, before_audit: int, before_ledger, text: str | None = None
    ):
        self.assertEqual(response.status_code, 400, response.content[:300])
        if text:
            self.assertContains(response, text, status_code=400)
        self.assertEqual(ledger_state(), before_ledger)
        self.assertEqual(self.rejected(action), before_audit + 1)


# ------------------------------------------------------------------------------------------------- donors


class DonorFormTests(AidFormsBase):
    def test_a_coordinator_adds_a_donor(self):
        response = self.coord.post(
            reverse("aid-donors"),
            {
                "kind": "church",
                "name": "Parroquia San José",
                "public_name": "Parroquia San José",
                "phone": "",
            },
        )
        donor = Donor.objects.get(name="Parroquia San José")
        self.assertRedirects(response, reverse("aid-donor", args=[donor.uuid]))
        self.assertEqual(donor.municipality, self.w.esc)

    def test_a_donor_without_a_name_or_with_a_bad_phone_is_refused(self):
        count = Donor.objects.count()
        before = self.rejected("aid.donor.save")
        response = self.coord.post(reverse("aid-donors"), {"kind": "church", "name": ""})
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "This field is required.", status_code=400)
        response = self.coord.post(reverse("aid-donors"), {"kind": "church", "name": "X", "phone": "12"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Donor.objects.count(), count)
        self.assertEqual(self.rejected("aid.donor.save"), before + 2)

    def test_a_coordinator_edits_a_donor(self):
        url = reverse("aid-donor", args=[self.a.donor.uuid])
        response = self.coord.post(
            url, {"kind": "business", "name": "Abarrotes Lupita SA de CV", "public_name": ""}
        )
        self.assertRedirects(response, url)
        self.a.donor.refresh_from_db()
        self.assertEqual(self.a.donor.public_name, "")

    def test_others_may_not_add_donors(self):
        count = Donor.objects.count()
        for user in (self.w.sector1, self.w.volunteer, self.w.observer):
            response = self.client_for(user).post(
                reverse("aid-donors"), {"kind": "church", "name": "Intruso"}
            )
            self.assertEqual(response.status_code, 403)
        response = self.client_for(self.w.other_coord).post(
            reverse("aid-donor", args=[self.a.donor.uuid]), {"kind": "church", "name": "Robado"}
        )
        self.assertEqual(response.status_code, 404)
        self.assertEqual(Donor.objects.count(), count)
        self.a.donor.refresh_from_db()
        self.assertEqual(self.a.donor.name, "Abarrotes Lupita SA de CV")

    def test_the_donor_impact_page_shows_what_was_given(self):
        response = self.coord.get(reverse("aid-donor-impact", args=[self.a.donor.uuid]))
        self.assertContains(response, "Arroz")
        self.assertContains(response, "Despensas de diciembre") if Entitlement.objects.filter(
            status="delivered"
        ).exists() else self.assertContains(response, "None of it has been delivered")


# ---------------------------------------------------------------------------------------------- donations


class DonationFormTests(AidFormsBase):
    def post(self, **data):
        base = {"kind": "in_kind", "site": self.a.stand.pk, "donor": self.a.donor.pk}
        base.update(data)
        return self.coord.post(reverse("aid-donation-new"), {k: v for k, v in base.items() if v is not None})

    def test_a_donation_enters_the_stock(self):
        before = self.balance(self.a.stand, self.a.rice)
        response = self.post(item0=self.a.rice.pk, quantity0="12", item1=self.a.sugar.pk, quantity1="2.5")
        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.balance(self.a.stand, self.a.rice), before + 12)
        self.assertEqual(self.balance(self.a.stand, self.a.sugar), Decimal("2.5"))
        donation = Donation.objects.latest("pk")
        self.assertEqual(donation.lines.count(), 2)
        self.assertIn(str(donation.uuid), response["Location"])

    def test_a_new_donor_can_be_written_inline(self):
        response = self.post(
            donor="",
            new_donor_name="Tienda Don Beto",
            new_donor_kind="business",
            item0=self.a.soap.pk,
            quantity0="3",
        )
        self.assertEqual(response.status_code, 302)
        donor = Donor.objects.get(name="Tienda Don Beto")
        self.assertEqual(donor.donations.count(), 1)

    def test_a_money_pledge_is_recorded_without_touching_the_stock(self):
        before = ledger_state()
        response = self.post(kind="money_pledge", site="", pledge_mxn="5000")
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Donation.objects.latest("pk").pledge_mxn, Decimal("5000.00"))
        self.assertEqual(ledger_state(), before)

    def test_bad_quantities_are_refused_and_the_ledger_is_unchanged(self):
        cases = [
            ({"item0": self.a.rice.pk, "quantity0": "-3"}, "The quantity must be more than zero."),
            ({"item0": self.a.rice.pk, "quantity0": "1.5"}, "counted in whole units"),
            ({"item0": self.a.rice.pk, "quantity0": "abc"}, "Enter a number"),
            ({"item0": self.a.rice.pk}, "Write how much of Arroz was received."),
            ({}, "Add at least one item with its quantity."),
            ({"donor": "", "item0": self.a.rice.pk, "quantity0": "1"}, "Choose a donor or write the name"),
            (
                {"item0": self.a.rice.pk, "quantity0": "1", "item1": self.a.rice.pk, "quantity1": "2"},
                "Arroz is on two lines",
            ),
        ]
        for data, text in cases:
            with self.subTest(data=data):
                before, audit = ledger_state(), self.rejected("aid.donation.receive")
                self.assert_refused(self.post(**data), "aid.donation.receive", audit, before, text)

    def test_a_site_of_another_tenant_is_not_a_choice(self):
        other = services.save_site(
            actor=self.w.other_coord,
            municipality=self.w.aca,
            node=self.w.a1,
            kind="stand",
            name="Puesto Acapulco",
        )
        before, audit = ledger_state(), self.rejected("aid.donation.receive")
        response = self.post(site=other.pk, item0=self.a.rice.pk, quantity0="1")
        self.assert_refused(response, "aid.donation.receive", audit, before, "Select a valid choice")

    def test_roles_without_manage_aid_may_not_record_donations(self):
        before, audit = ledger_state(), self.rejected("aid.donation.receive")
        response = self.client_for(self.w.block1).post(
            reverse("aid-donation-new"),
            {
                "kind": "in_kind",
                "site": self.a.stand.pk,
                "donor": self.a.donor.pk,
                "item0": self.a.rice.pk,
                "quantity0": "1",
            },
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(ledger_state(), before)
        self.assertEqual(self.rejected("aid.donation.receive"), audit + 1)


# ------------------------------------------------------------------------------------------ sites and stock


class SiteFormTests(AidFormsBase):
    def action(self, site, action, data, client=None):
        url = reverse("aid-site-action", args=[site.uuid, action])
        prefixed = {f"{action}-{k}": v for k, v in data.items()}
        return (client or self.coord).post(url, prefixed)

    def test_a_coordinator_adds_a_kitchen_and_a_kitchen_needs_its_portions(self):
        data = {
            "kind": "kitchen",
            "name": "Comedor Nuevo",
            "node": self.w.s1.pk,
            "public": "on",
            "active": "on",
        }
        before = self.rejected("aid.site.save")
        response = self.coord.post(reverse("aid-sites"), data)
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "portions it serves per day", status_code=400)
        self.assertEqual(self.rejected("aid.site.save"), before + 1)
        self.assertFalse(Site.objects.filter(name="Comedor Nuevo").exists())
        response = self.coord.post(
            reverse("aid-sites"), {**data, "portions_per_day": "80", "lat": "25.8", "lon": "-100.3"}
        )
        site = Site.objects.get(name="Comedor Nuevo")
        self.assertRedirects(response, reverse("aid-site", args=[site.uuid]))

    def test_half_a_map_point_is_refused(self):
        response = self.coord.post(
            reverse("aid-sites"), {"kind": "stand", "name": "Sin punto", "node": self.w.s1.pk, "lat": "25.8"}
        )
        self.assertContains(response, "Give both latitude and longitude, or neither.", status_code=400)

    def test_receive_transfer_and_adjust(self):
        a = self.a
        soap = self.balance(a.stand, a.soap)
        self.assertRedirects(
            self.action(a.stand, "receive", {"donor": a.donor.pk, "item": a.soap.pk, "quantity": "4"}),
            reverse("aid-site", args=[a.stand.uuid]),
        )
        self.assertEqual(self.balance(a.stand, a.soap), soap + 4)
        response = self.action(
            a.stand, "transfer", {"to_site": a.kitchen.pk, "item": a.soap.pk, "quantity": "5"}
        )
        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.balance(a.stand, a.soap), soap - 1)
        self.assertEqual(self.balance(a.kitchen, a.soap), 5)
        transfer = StockEntry.objects.filter(kind__in=["transfer_out", "transfer_in"]).order_by("-pk")[:2]
        self.assertEqual(len({e.transfer for e in transfer}), 1)
        response = self.action(
            a.kitchen, "adjust", {"item": a.soap.pk, "quantity": "-2", "reason": "Se mojaron"}
        )
        self.assertEqual(response.status_code, 302)
        self.assertEqual(self.balance(a.kitchen, a.soap), 3)
        self.assertEqual(StockEntry.objects.filter(kind="adjusted").latest("pk").reason, "Se mojaron")
        page = self.coord.get(reverse("aid-site", args=[a.kitchen.uuid]))
        self.assertContains(page, "Se mojaron")

    def test_bad_stock_moves_are_refused_with_a_clear_message(self):
        a = self.a
        soap = self.balance(a.stand, a.soap)
        cases = [
            (
                "transfer",
                a.stand,
                {"to_site": a.kitchen.pk, "item": a.soap.pk, "quantity": str(soap + 1)},
                "aid.stock.transfer",
                None,
            ),
            (
                "transfer",
                a.kitchen,
                {"to_site": a.stand.pk, "item": a.rice.pk, "quantity": "1"},
                "aid.stock.transfer",
                None,
            ),
            (
                "transfer",
                a.stand,
                {"to_site": a.kitchen.pk, "item": a.soap.pk, "quantity": "-1"},
                "aid.stock.transfer",
                "The quantity must be more than zero.",
            ),
            (
                "transfer",
                a.stand,
                {"to_site": a.kitchen.pk, "item": a.soap.pk, "quantity": "0.5"},
                "aid.stock.transfer",
                "counted in whole units",
            ),
            (
                "adjust",
                a.stand,
                {"item": a.soap.pk, "quantity": "-3", "reason": ""},
                "aid.stock.adjust",
                "This field is required.",
            ),
            (
                "adjust",
                a.stand,
                {"item": a.soap.pk, "quantity": str(-(soap + 1)), "reason": "Conteo"},
                "aid.stock.adjust",
                None,
            ),
            (
                "adjust",
                a.stand,
                {"item": a.soap.pk, "quantity": "0", "reason": "Conteo"},
                "aid.stock.adjust",
                "The quantity must not be zero.",
            ),
            (
                "receive",
                a.stand,
                {"donor": a.donor.pk, "item": a.soap.pk, "quantity": "2.5"},
                "aid.donation.receive",
                "counted in whole units",
            ),
        ]
        for action, site, data, audit_action, text in cases:
            with self.subTest(action=action, data=data):
                before, audit = ledger_state(), self.rejected(audit_action)
                response = self.action(site, action, data)
                self.assert_refused(response, audit_action, audit, before, text)
                # The refused form comes back open, with its message.
                self.assertContains(response, f'id="{action}" open', status_code=400)
                self.assertTrue(response.context[f"{action}_form"].errors)

    def test_more_than_the_balance_says_how_much_there_is(self):
        a = self.a
        soap = self.balance(a.stand, a.soap)
        response = self.action(
            a.stand, "transfer", {"to_site": a.kitchen.pk, "item": a.soap.pk, "quantity": "999"}
        )
        self.assertEqual(response.status_code, 400)
        errors = " ".join(str(e) for e in response.context["transfer_form"].errors.values())
        self.assertIn(services.format_quantity(soap), errors)

    def test_others_may_not_move_stock(self):
        a = self.a
        before = ledger_state()
        audit = self.rejected("aid.stock.adjust")
        for user in (self.w.sector1, self.w.volunteer):
            response = self.action(
                a.stand, "adjust", {"item": a.soap.pk, "quantity": "5", "reason": "x"}, self.client_for(user)
            )
            self.assertEqual(response.status_code, 403)
        response = self.action(
            a.stand,
            "adjust",
            {"item": a.soap.pk, "quantity": "5", "reason": "x"},
            self.client_for(self.w.other_coord),
        )
        self.assertEqual(response.status_code, 404)
        self.assertEqual(ledger_state(), before)
        self.assertEqual(self.rejected("aid.stock.adjust"), audit + 2)

    def test_anonymous_writes_go_to_sign_in_and_change_nothing(self):
        a = self.a
        before = ledger_state()
        anonymous = self.client_for(None)
        posts = [
            (
                reverse("aid-site-action", args=[a.stand.uuid, "adjust"]),
                {"adjust-item": a.soap.pk, "adjust-quantity": "5", "adjust-reason": "x"},
            ),
            (
                reverse("aid-donation-new"),
                {
                    "donor": a.donor.pk,
                    "site": a.stand.pk,
                    "kind": "in_kind",
                    "item0": a.rice.pk,
                    "quantity0": "1",
                },
            ),
            (reverse("aid-campaign-action", args=[a.campaign.uuid, "finish"]), {}),
            (
                reverse("aid-deliver"),
                {"code": Entitlement.objects.filter(status="selected").first().code, "mode": "home"},
            ),
        ]
        for url, data in posts:
            with self.subTest(url=url):
                response = anonymous.post(url, data)
                self.assertEqual(response.status_code, 302)
                self.assertIn(reverse("login"), response["Location"])
        self.assertEqual(ledger_state(), before)
        a.campaign.refresh_from_db()
        self.assertEqual(a.campaign.status, "running")

    def test_an_unknown_action_is_refused(self):
        response = self.coord.post(reverse("aid-site-action", args=[self.a.stand.uuid, "steal"]), {})
        self.assertEqual(response.status_code, 403)

    def test_the_stock_page_filters_the_ledger(self):
        url = reverse("aid-stock")
        response = self.coord.get(url, {"site": self.a.warehouse.pk, "kind": "received"})
        self.assertEqual(response.status_code, 200)
        sites = {e.site_id for e in response.context["ledger"]}
        self.assertEqual(sites, {self.a.warehouse.pk})
        self.assertEqual({e.kind for e in response.context["ledger"]}, {"received"})

    def test_the_catalogue_takes_new_items_and_refuses_bad_ones(self):
        url = reverse("aid-stock")
        response = self.coord.post(
            url, {"item-code": "LECHE", "item-name": "Leche", "item-unit": "litre", "item-kcal": "640"}
        )
        self.assertEqual(response.status_code, 302)
        self.assertTrue(Item.objects.filter(code="LECHE", municipality=self.w.esc).exists())
        before = self.rejected("aid.item.save")
        response = self.coord.post(
            url, {"item-code": "", "item-name": "Nada", "item-unit": "kg", "item-kcal": "-1"}
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(self.rejected("aid.item.save"), before + 1)
        self.assertFalse(Item.objects.filter(name="Nada").exists())


# ------------------------------------------------------------------------------------------------ packages


class TemplateFormTests(AidFormsBase):
    def test_packages_show_their_energy_against_sphere(self):
        response = self.coord.get(reverse("aid-templates"))
        self.assertContains(response, "Despensa básica")
        kcal = round(self.a.template.kcal_per_person_day)
        self.assertContains(response, f"<strong>{kcal}</strong>")
        self.assertContains(response, "below the Sphere reference")

    def test_a_package_is_saved_and_a_package_without_items_is_refused(self):
        url = reverse("aid-templates")
        data = {"name": "Despensa grande", "persons": "4", "days": "3"}
        before = self.rejected("aid.template.save")
        response = self.coord.post(url, data)
        self.assertContains(response, "A package needs at least one item.", status_code=400)
        self.assertEqual(self.rejected("aid.template.save"), before + 1)
        response = self.coord.post(
            url, {**data, "item0": self.a.rice.pk, "quantity0": "3", "item1": self.a.oil.pk, "quantity1": "1"}
        )
        self.assertRedirects(response, url)
        template = PackageTemplate.objects.get(name="Despensa grande")
        self.assertEqual(template.lines.count(), 2)


# ----------------------------------------------------------------------------------------------- campaigns


class CampaignFormTests(AidFormsBase):
    def test_create_allocate_start_and_finish(self):
        w, a = self.w, self.a
        response = self.coord.post(
            reverse("aid-campaigns"),
            {
                "name": "Campaña S01",
                "template": a.template.pk,
                "node": w.s1.pk,
                "min_priority": "0",
                "include_without_needs": "on",
                "seed": "11",
            },
        )
        campaign = Campaign.objects.get(name="Campaña S01")
        self.assertRedirects(response, reverse("aid-campaign", args=[campaign.uuid]))
        page = self.coord.get(reverse("aid-campaign", args=[campaign.uuid]))
        self.assertContains(page, "Allocate the packages")
        self.assertContains(page, "Centro Comunitario S1")  # the zone preview
        # Allocating from htmx answers with a redirect header.
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "allocate"]), headers={"HX-Request": "true"}
        )
        self.assertEqual(response.status_code, 204)
        self.assertEqual(response["HX-Redirect"], reverse("aid-campaign", args=[campaign.uuid]))
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, "allocated")
        page = self.coord.get(reverse("aid-campaign", args=[campaign.uuid]))
        self.assertContains(page, "Coverage by block")
        self.assertContains(page, "Households and why")
        self.assertContains(page, "S01-M001")
        entitlement = Entitlement.objects.filter(campaign=campaign).first()
        self.assertContains(page, entitlement.household.street)  # the coordinator sees addresses
        # Start, then finish: undelivered packages return to stock.
        self.assertEqual(
            self.coord.post(reverse("aid-campaign-action", args=[campaign.uuid, "start"])).status_code, 302
        )
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, "running")
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "finish"]), follow=True
        )
        self.assertContains(response, "undelivered packages returned to stock")
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, "finished")

    def test_need_categories_are_offered_by_their_names(self):
        from redes.needs.models import NeedCategory

        NeedCategory.objects.create(municipality=self.w.esc, code="agua-potable", name="Agua potable")
        NeedCategory.objects.create(municipality=self.w.aca, code="ajena", name="Categoría ajena")
        page = self.coord.get(reverse("aid-campaigns"))
        self.assertContains(page, "Agua potable")
        self.assertNotContains(page, "Categoría ajena")
        response = self.coord.post(
            reverse("aid-campaigns"),
            {
                "name": "Con necesidades",
                "template": self.a.template.pk,
                "node": self.w.s1.pk,
                "min_priority": "0",
                "need_categories": ["agua-potable"],
            },
        )
        self.assertEqual(response.status_code, 302)
        campaign = Campaign.objects.get(name="Con necesidades")
        self.assertEqual(
            (campaign.need_categories, campaign.include_without_needs), (["agua-potable"], False)
        )
        response = self.coord.post(
            reverse("aid-campaigns"),
            {
                "name": "Otra",
                "template": self.a.template.pk,
                "node": self.w.s1.pk,
                "min_priority": "0",
                "need_categories": ["ajena"],
            },
        )
        self.assertContains(response, "Select a valid choice", status_code=400)

    def test_a_bad_campaign_is_refused(self):
        before = self.rejected("aid.campaign.create")
        count = Campaign.objects.count()
        response = self.coord.post(
            reverse("aid-campaigns"),
            {"name": "", "template": self.a.template.pk, "node": self.w.s1.pk, "min_priority": "101"},
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Campaign.objects.count(), count)
        self.assertEqual(self.rejected("aid.campaign.create"), before + 1)

    def test_a_block_cannot_be_a_campaign_territory_choice_from_another_tenant(self):
        response = self.coord.post(
            reverse("aid-campaigns"),
            {"name": "Ajena", "template": self.a.template.pk, "node": self.w.a1.pk, "min_priority": "0"},
        )
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Campaign.objects.filter(name="Ajena").exists())

    def test_editing_after_allocation_is_refused_with_a_clear_message(self):
        campaign = self.a.campaign
        before = self.rejected("aid.campaign.update")
        entitlements = list(Entitlement.objects.filter(campaign=campaign).values_list("pk", "status", "code"))
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "edit"]),
            {
                "name": "Otro nombre",
                "template": self.a.template.pk,
                "node": self.w.esc_node.pk,
                "min_priority": "0",
            },
            follow=True,
        )
        self.assertContains(response, "its inputs can no longer change")
        campaign.refresh_from_db()
        self.assertEqual(campaign.name, "Despensas de diciembre")
        self.assertEqual(
            list(Entitlement.objects.filter(campaign=campaign).values_list("pk", "status", "code")),
            entitlements,
        )
        self.assertEqual(self.rejected("aid.campaign.update"), before + 1)

    def test_allocating_twice_is_refused(self):
        before = ledger_state()
        response = self.coord.post(
            reverse("aid-campaign-action", args=[self.a.campaign.uuid, "allocate"]), follow=True
        )
        self.assertContains(response, "already been allocated")
        self.assertEqual(ledger_state(), before)

    def test_a_campaign_without_deliveries_can_be_cancelled_and_its_packages_return(self):
        campaign = self.a.campaign
        reserved = StockBalance.objects.get(site=self.a.stand, item=self.a.rice).reserved
        self.assertGreater(reserved, 0)
        page = self.coord.get(reverse("aid-campaign", args=[campaign.uuid]))
        self.assertContains(page, 'id="cancel"')
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "cancel"]), follow=True
        )
        self.assertContains(response, "Campaign cancelled")
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, "cancelled")
        self.assertEqual(StockBalance.objects.get(site=self.a.stand, item=self.a.rice).reserved, 0)

    def test_a_campaign_with_deliveries_cannot_be_cancelled(self):
        campaign = self.a.campaign
        e = Entitlement.objects.filter(campaign=campaign, status="selected").first()
        services.confirm_delivery(e, actor=self.w.coord, mode="home")
        page = self.coord.get(reverse("aid-campaign", args=[campaign.uuid]))
        self.assertNotContains(page, 'id="cancel"')
        before, audit = ledger_state(), self.rejected("aid.campaign.cancel")
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "cancel"]), follow=True
        )
        self.assertContains(response, "finish it instead of cancelling it")
        self.assertEqual(ledger_state(), before)
        self.assertEqual(self.rejected("aid.campaign.cancel"), audit + 1)

    def test_held_households_are_shown_and_checked_again_after_review(self):
        from redes.registry.models import DuplicateCandidate, Person

        w, a = self.w, self.a
        people = list(Person.objects.filter(household__in=a.households["b11"][:2]).order_by("pk"))
        pair = DuplicateCandidate.objects.create(
            municipality=w.esc, node=w.b11, person_a=people[0], person_b=people[1], score=0.9
        )
        services.receive_donation(
            actor=w.coord, donor=a.donor, site=a.stand, lines=[(a.rice, 20), (a.beans, 20), (a.oil, 10)]
        )
        campaign = services.create_campaign(
            actor=w.coord, name="Con espera", template=a.template, node=w.s1, seed=5
        )
        services.allocate_campaign(campaign, actor=w.coord)
        url = reverse("aid-campaign", args=[campaign.uuid])
        page = self.coord.get(url)
        self.assertContains(page, "2 households are held until their possible duplicates are reviewed.")
        self.assertContains(page, "Held: the registry flags a probable duplicate")
        self.assertContains(page, 'id="release"')
        pair.status = DuplicateCandidate.Status.DISTINCT
        pair.save()
        response = self.coord.post(
            reverse("aid-campaign-action", args=[campaign.uuid, "release"]), follow=True
        )
        self.assertContains(response, "Held households checked again")
        self.assertFalse(Entitlement.objects.filter(campaign=campaign, status="held").exists())

    def test_the_printable_sheets_hold_codes_and_qr_but_no_names(self):
        response = self.coord.get(reverse("aid-campaign-print", args=[self.a.campaign.uuid]))
        content = response.content.decode()
        selected = Entitlement.objects.filter(campaign=self.a.campaign, status="selected")
        self.assertTrue(selected.exists())
        for e in selected:
            self.assertIn(codes.display(e.code), content)
        self.assertEqual(content.count('class="aid-card"'), selected.count())
        self.assertIn('<svg viewBox="0 0', content)  # scalable: print CSS gives it 32 mm
        for text in ("Rosa Privada", "Pedro Privado", "Calle Secreta"):
            self.assertNotIn(text, content)
        only = self.coord.get(
            reverse("aid-campaign-print", args=[self.a.campaign.uuid]), {"block": "S01-M001"}
        )
        self.assertEqual(
            only.content.decode().count('class="aid-card"'), selected.filter(node=self.w.b11).count()
        )

    def test_the_households_list_filters_by_status_from_htmx(self):
        url = reverse("aid-campaign", args=[self.a.campaign.uuid])
        response = self.coord.get(
            url, {"part": "households", "status": "not_selected"}, headers={"HX-Request": "true"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "<html")
        self.assertTrue(all(e.status == "not_selected" for e in response.context["entitlements"]))


# ------------------------------------------------------------------------------------------------ delivery


class DeliveryFormTests(AidFormsBase):
    def code_in(self, block):
        e = Entitlement.objects.filter(campaign=self.a.campaign, status="selected", node=block).first()
        self.assertIsNotNone(e, f"no selected household on {block.code}")
        return e

    def deliver(self, user, **data):
        data.setdefault("mode", "site")
        return self.client_for(user).post(reverse("aid-deliver"), data)

    def test_a_block_liaison_confirms_a_delivery_at_the_site(self):
        e = self.code_in(self.w.b11)
        zone_site = e.zone.site
        entries = StockEntry.objects.filter(kind="distributed").count()
        client = self.client_for(self.w.block1)
        typed = e.code.lower()[:4] + "-" + e.code[4:]  # typing is forgiving: case and dashes ignored
        response = client.post(reverse("aid-deliver"), {"code": typed, "mode": "site", "site": zone_site.pk})
        self.assertEqual(response.status_code, 302)
        e.refresh_from_db()
        self.assertEqual(e.status, "delivered")
        self.assertEqual(e.delivered_by, self.w.block1)
        self.assertEqual(e.delivery_mode, "site")
        self.assertGreater(StockEntry.objects.filter(kind="distributed").count(), entries)
        page = client.get(response["Location"])
        self.assertContains(page, "Delivered:")
        self.assertNotContains(page, f'data-code="{e.code}"')  # no longer pending
        # The coordinator sees the progress.
        campaign_page = self.coord.get(reverse("aid-campaign", args=[self.a.campaign.uuid]))
        self.assertEqual(campaign_page.context["totals"]["delivered"], 1)

    def test_a_code_is_checked_before_confirming(self):
        e = self.code_in(self.w.b11)
        url = reverse("aid-deliver-check")
        block1 = self.client_for(self.w.block1)
        self.assertEqual(block1.get(url, {"code": e.code[:5]}).content.strip(), b"")
        response = block1.get(url, {"code": codes.display(e.code).lower()})
        self.assertContains(response, "Ready to deliver")
        self.assertContains(response, f'data-site="{e.zone.site_id}"')
        self.assertContains(response, "Calle Secreta")  # the liaison may see the address (home delivery)
        volunteer = self.client_for(self.w.volunteer).get(url, {"code": e.code})
        self.assertContains(volunteer, "Ready to deliver")
        self.assertNotContains(volunteer, "Calle Secreta")
        self.assertContains(
            self.client_for(self.w.sector2).get(url, {"code": e.code}), "No entitlement has the code"
        )
        services.confirm_delivery(e, actor=self.w.coord, mode="home")
        self.assertContains(block1.get(url, {"code": e.code}), "Already delivered on")
        self.assertEqual(self.client_for(self.w.observer).get(url, {"code": e.code}).status_code, 403)
        response = self.client_for(None).get(url, {"code": e.code})
        self.assertEqual(response.status_code, 302)

    def test_the_only_site_serving_the_liaison_is_chosen_beforehand(self):
        response = self.client_for(self.w.block1).get(reverse("aid-deliver"))
        self.assertEqual(response.context["form"].initial.get("site"), self.a.stand)
        sites = list(response.context["form"].fields["site"].queryset)
        self.assertEqual(sites, [self.a.stand])

    def test_a_second_confirmation_is_refused(self):
        e = self.code_in(self.w.b11)
        self.assertEqual(self.deliver(self.w.block1, code=e.code, site=e.zone.site.pk).status_code, 302)
        before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.sector1, code=e.code, site=e.zone.site.pk)
        self.assert_refused(response, "aid.entitlement.deliver", audit, before, "already delivered")

    def test_a_code_at_the_wrong_site_is_refused(self):
        e = self.code_in(self.w.b11)
        other = Site.objects.filter(municipality=self.w.esc).exclude(pk=e.zone.site_id).first()
        before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.coord, code=e.code, site=other.pk)
        self.assert_refused(response, "aid.entitlement.deliver", audit, before, "not to this site")
        e.refresh_from_db()
        self.assertEqual(e.status, "selected")

    def test_a_code_of_another_territory_or_tenant_is_unknown(self):
        e = self.code_in(self.w.b11)
        for user in (self.w.sector2, self.w.other_coord):
            with self.subTest(user=user.username):
                before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
                response = self.deliver(user, code=e.code, mode="home")
                self.assert_refused(
                    response, "aid.entitlement.deliver", audit, before, "No entitlement has the code"
                )
        e.refresh_from_db()
        self.assertEqual(e.status, "selected")

    def test_a_malformed_code_and_a_missing_site_are_refused(self):
        before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.block1, code="HOLA", mode="home")
        self.assert_refused(
            response, "aid.entitlement.deliver", audit, before, "That is not an entitlement code"
        )
        e = self.code_in(self.w.b11)
        audit = self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.block1, code=e.code, mode="site")
        self.assert_refused(
            response, "aid.entitlement.deliver", audit, before, "Choose the site where the package"
        )

    def test_a_delivery_at_home_with_photo_and_signature(self):
        e = self.code_in(self.w.b11)
        photo = SimpleUploadedFile("entrega.png", PNG, content_type="image/png")
        response = self.client_for(self.w.volunteer).post(
            reverse("aid-deliver"), {"code": e.code, "mode": "home", "photo": photo, "signature": SIGNATURE}
        )
        self.assertEqual(response.status_code, 302)
        e.refresh_from_db()
        self.assertEqual((e.status, e.delivery_mode, e.signature), ("delivered", "home", SIGNATURE))
        self.assertTrue(e.photo.name.endswith(".png"))
        e.photo.delete(save=False)

    def test_a_bad_signature_or_photo_is_refused(self):
        e = self.code_in(self.w.b11)
        before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.block1, code=e.code, mode="home", signature="javascript:alert(1)")
        self.assert_refused(
            response, "aid.entitlement.deliver", audit, before, "The signature could not be read"
        )
        audit = self.rejected("aid.entitlement.deliver")
        text = SimpleUploadedFile("nota.txt", b"hola", content_type="text/plain")
        response = self.client_for(self.w.block1).post(
            reverse("aid-deliver"), {"code": e.code, "mode": "home", "photo": text}
        )
        self.assert_refused(response, "aid.entitlement.deliver", audit, before, "JPEG, PNG or WebP")

    def test_a_campaign_that_is_not_running_takes_no_deliveries(self):
        campaign = services.create_campaign(
            actor=self.w.coord, name="Sin empezar", template=self.a.template, node=self.w.s1, seed=3
        )
        services.receive_donation(
            actor=self.w.coord,
            donor=self.a.donor,
            site=self.a.stand,
            lines=[(self.a.rice, 20), (self.a.beans, 20), (self.a.oil, 10)],
        )
        services.allocate_campaign(campaign, actor=self.w.coord)
        e = Entitlement.objects.filter(campaign=campaign, status="selected").first()
        before, audit = ledger_state(), self.rejected("aid.entitlement.deliver")
        response = self.deliver(self.w.coord, code=e.code, mode="home")
        self.assert_refused(response, "aid.entitlement.deliver", audit, before, "not delivering")

    def test_roles_without_deliver_aid_may_not_confirm(self):
        e = self.code_in(self.w.b11)
        before = ledger_state()
        for user in (self.w.operator, self.w.observer, self.w.nobody):
            response = self.deliver(user, code=e.code, mode="home")
            self.assertEqual(response.status_code, 403)
        self.assertEqual(ledger_state(), before)
        e.refresh_from_db()
        self.assertEqual(e.status, "selected")
