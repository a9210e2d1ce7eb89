"""Aid pages: who may open each page (per role), the forms with good and bad input, the public pages' privacy.

The aid world (``build_aid``) sits on the base world: a catalogue, a donor with private contact data, a stand in
sector S01, a municipal warehouse, a public community kitchen in S02, stock, a package template, households with
named members on the three blocks, and a running campaign allocated over Escobedo.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from redes.aid import codes, services
from redes.aid.models import (
    Entitlement,
    StockBalance,
    StockEntry,
)
from redes.registry import services as registry
from tests.base import RedesTestCase

#: Personal data of the fixtures that must never appear on public pages.
PRIVATE = (
    "Guadalupe Contacto Privado",
    "8187654321",
    "lupita@example.org",
    "Abarrotes Lupita SA de CV",
    "Calle Secreta",
    "Rosa Privada",
    "Pedro Privado",
)

HOUSEHOLDS = {"b11": 4, "b12": 3, "b21": 2}


def build_aid(w, *, campaign: bool = True, start: bool = True) -> SimpleNamespace:
    """Aid data of Escobedo, written through the aid services as the coordinator."""
    a = SimpleNamespace()
    coord, esc = w.coord, w.esc

    def item(code, name, unit, **extra):
        return services.save_item(actor=coord, municipality=esc, code=code, name=name, unit=unit, **extra)

    a.rice = item("ARROZ", "Arroz", "kg", whole_units=True, kcal=3600, protein_g=70, fat_g=6)
    a.beans = item("FRIJOL", "Frijol", "kg", whole_units=True, kcal=3400, protein_g=220, fat_g=15)
    a.oil = item("ACEITE", "Aceite", "litre", whole_units=True, kcal=8000, fat_g=900)
    a.sugar = item("AZUCAR", "Azúcar", "kg", whole_units=False, kcal=3870)
    a.soap = item("JABON", "Jabón", "piece", whole_units=True)
    a.donor = services.save_donor(
        actor=coord,
        municipality=esc,
        kind="business",
        name="Abarrotes Lupita SA de CV",
        public_name="Abarrotes Lupita",
        contact_name="Guadalupe Contacto Privado",
        phone="8187654321",
        email="lupita@example.org",
    )
    a.anonymous = services.save_donor(actor=coord, municipality=esc, kind="neighbour", name="Vecina Anónima")
    a.stand = services.save_site(
        actor=coord,
        municipality=esc,
        node=w.s1,
        kind="stand",
        name="Centro Comunitario S1",
        address="Av. Principal 100",
        lat=25.795,
        lon=-100.335,
        schedule="Lunes a viernes, 10:00 a 14:00",
    )
    a.warehouse = services.save_site(
        actor=coord,
        municipality=esc,
        node=w.esc_node,
        kind="warehouse",
        name="Bodega Municipal",
        public=False,
    )
    a.kitchen = services.save_site(
        actor=coord,
        municipality=esc,
        node=w.s2,
        kind="kitchen",
        name="Comedor Vecinal S2",
        lat=25.796,
        lon=-100.31,
        schedule="Todos los días, 13:00 a 16:00",
        portions_per_day=150,
    )
    a.donation = services.receive_donation(
        actor=coord,
        donor=a.donor,
        site=a.stand,
        lines=[(a.rice, 10), (a.beans, 10), (a.oil, 5), (a.soap, 20)],
    )
    services.receive_donation(
        actor=coord, donor=a.anonymous, site=a.warehouse, lines=[(a.rice, 2), (a.beans, 2), (a.oil, 1)]
    )
    a.template = services.save_template(
        actor=coord,
        municipality=esc,
        name="Despensa básica",
        persons=4,
        days=7,
        lines=[(a.rice, 2), (a.beans, 2), (a.oil, 1)],
    )
    a.households = {}
    n = 0
    for block, count in HOUSEHOLDS.items():
        node = getattr(w, block)
        for _ in range(count):
            n += 1
            household = registry.create_household(node, street="Calle Secreta", ext_number=str(n))
            given = "Rosa Privada" if n % 2 else "Pedro Privado"
            registry.add_person(household, full_name=f"{given} Número{n}", check_duplicates=False)
            a.households.setdefault(block, []).append(household)
    a.campaign = None
    if campaign:
        a.campaign = services.create_campaign(
            actor=coord, name="Despensas de diciembre", template=a.template, node=w.esc_node, seed=7
        )
        services.allocate_campaign(a.campaign, actor=coord)
        if start:
            services.start_campaign(a.campaign, actor=coord)
        a.campaign.refresh_from_db()
    return a


def ledger_state():
    return (
        StockEntry.objects.count(),
        sorted(StockBalance.objects.values_list("site_id", "item_id", "quantity", "reserved")),
    )


@override_settings(LANGUAGE_CODE="en")
class AidPagesBase(RedesTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.a = build_aid(cls.w)

    def assert_login_redirect(self, response):
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("login"), response["Location"])

    def selected(self, **filters):
        return Entitlement.objects.filter(campaign=self.a.campaign, status="selected", **filters)


# ------------------------------------------------------------------------------------------------ access


class AccessMatrixTests(AidPagesBase):
    """Every page, every role: anonymous → sign in; no aid role → 403; other tenant → 404 (records) or 403."""

    def manager_pages(self):
        a = self.a
        return [
            reverse("aid-donors"),
            reverse("aid-donor", args=[a.donor.uuid]),
            reverse("aid-donor-impact", args=[a.donor.uuid]),
            reverse("aid-donations"),
            reverse("aid-donation-new"),
            reverse("aid-sites"),
            reverse("aid-site", args=[a.stand.uuid]),
            reverse("aid-stock"),
            reverse("aid-templates"),
            reverse("aid-campaigns"),
            reverse("aid-campaign", args=[a.campaign.uuid]),
            reverse("aid-campaign-print", args=[a.campaign.uuid]),
        ]

    def test_anonymous_is_sent_to_sign_in_except_on_public_pages(self):
        client = self.client_for(None)
        for url in [reverse("aid-home"), reverse("aid-deliver"), *self.manager_pages()]:
            with self.subTest(url=url):
                self.assert_login_redirect(client.get(url))
        self.assertEqual(client.get(reverse("aid-public-map") + "?m=19021").status_code, 200)
        self.assertEqual(
            client.get(reverse("aid-public-report", args=[self.a.campaign.uuid])).status_code, 200
        )

    def test_the_coordinator_opens_every_page(self):
        client = self.client_for(self.w.coord)
        for url in [reverse("aid-home"), reverse("aid-deliver"), *self.manager_pages()]:
            with self.subTest(url=url):
                self.assertEqual(client.get(url).status_code, 200)

    def test_roles_without_manage_aid_get_403_on_management_pages(self):
        w = self.w
        a = self.a
        list_pages = [
            reverse(name)
            for name in ("aid-donors", "aid-donations", "aid-donation-new", "aid-sites", "aid-stock")
            + ("aid-templates", "aid-campaigns")
        ]
        record_pages = [
            reverse("aid-donor", args=[a.donor.uuid]),
            reverse("aid-site", args=[a.stand.uuid]),
            reverse("aid-campaign", args=[a.campaign.uuid]),
            reverse("aid-campaign-print", args=[a.campaign.uuid]),
        ]
        for user in (w.sector1, w.block1, w.volunteer, w.operator, w.caseworker, w.observer, w.nobody):
            client = self.client_for(user)
            for url in list_pages + record_pages:
                with self.subTest(user=user.username, url=url):
                    self.assertEqual(client.get(url).status_code, 403)

    def test_another_tenant_sees_none_of_these_records(self):
        client = self.client_for(self.w.other_coord)
        a = self.a
        for url in (
            reverse("aid-donor", args=[a.donor.uuid]),
            reverse("aid-donor-impact", args=[a.donor.uuid]),
            reverse("aid-site", args=[a.stand.uuid]),
            reverse("aid-campaign", args=[a.campaign.uuid]),
            reverse("aid-campaign-print", args=[a.campaign.uuid]),
        ):
            with self.subTest(url=url):
                self.assertEqual(client.get(url).status_code, 404)
        # Their own lists open, empty of Escobedo's records.
        for name in ("aid-donors", "aid-sites", "aid-campaigns", "aid-stock", "aid-donations"):
            response = client.get(reverse(name))
            self.assertEqual(response.status_code, 200)
            self.assertNotContains(response, "Centro Comunitario S1")
            self.assertNotContains(response, "Abarrotes Lupita")

    def test_a_malformed_id_is_a_404(self):
        client = self.client_for(self.w.coord)
        response = client.get("/aid/campaigns/not-a-uuid/")
        self.assertEqual(response.status_code, 404)

    def test_the_home_page_fits_each_role(self):
        w = self.w
        cases = [
            (w.coord, 200, "Stock by site"),
            (w.sector1, 200, "Your blocks in running campaigns"),
            (w.block1, 200, "Your blocks in running campaigns"),
            (w.volunteer, 200, "Your blocks in running campaigns"),
            (w.observer, 200, "as totals only"),
            (w.state_observer, 200, "as totals only"),
            (w.operator, 200, "as totals only"),
        ]
        for user, status, text in cases:
            with self.subTest(user=user.username):
                response = self.client_for(user).get(reverse("aid-home"))
                self.assertEqual(response.status_code, status)
                self.assertContains(response, text)
        self.assertEqual(self.client_for(w.nobody).get(reverse("aid-home")).status_code, 403)

    def test_observers_see_aggregates_only_on_the_home_page(self):
        response = self.client_for(self.w.observer).get(reverse("aid-home"))
        self.assertContains(response, "Despensas de diciembre")
        for text in PRIVATE:
            self.assertNotContains(response, text)
        self.assertNotContains(response, reverse("aid-campaign", args=[self.a.campaign.uuid]))

    def test_a_block_liaison_sees_the_work_of_their_block_only(self):
        response = self.client_for(self.w.block1).get(reverse("aid-home"))
        self.assertContains(response, "S01-M001")
        self.assertNotContains(response, "S01-M002")
        self.assertNotContains(response, "S02-M001")

    def test_the_delivery_screen_is_for_deliverers(self):
        w = self.w
        for user in (w.coord, w.sector1, w.sector2, w.block1, w.volunteer):
            with self.subTest(user=user.username):
                self.assertEqual(self.client_for(user).get(reverse("aid-deliver")).status_code, 200)
        for user in (w.operator, w.caseworker, w.observer, w.nobody, w.other_coord):
            with self.subTest(user=user.username):
                expected = 200 if user == w.other_coord else 403
                self.assertEqual(self.client_for(user).get(reverse("aid-deliver")).status_code, expected)

    def test_the_delivery_list_holds_only_the_users_territory(self):
        w = self.w
        response = self.client_for(w.block1).get(reverse("aid-deliver"))
        codes = {e.code for e in response.context["rows"]}
        expected = set(self.selected(node=w.b11).values_list("code", flat=True))
        self.assertEqual(codes, expected)
        response = self.client_for(w.other_coord).get(reverse("aid-deliver"))
        self.assertEqual(response.context["rows"], [])
        # Volunteers see no addresses; liaisons do (to deliver at home).
        volunteer = self.client_for(w.volunteer).get(reverse("aid-deliver"))
        self.assertNotContains(volunteer, "Calle Secreta")
        if expected:
            self.assertContains(
                response := self.client_for(w.block1).get(reverse("aid-deliver")), "Calle Secreta"
            )
            del response


class CampaignMapTests(AidPagesBase):
    def test_the_coverage_map_gives_each_block_with_a_shape_its_coverage(self):
        from redes.territories.services import update_node

        square = {
            "type": "Polygon",
            "coordinates": [[[-100.33, 25.79], [-100.32, 25.79], [-100.32, 25.8], [-100.33, 25.79]]],
        }
        update_node(self.w.b11, geometry=square)
        url = reverse("aid-campaign-map", args=[self.a.campaign.uuid])
        data = self.client_for(self.w.coord).get(url).json()
        self.assertEqual([f["properties"]["code"] for f in data["features"]], ["S01-M001"])
        chosen = self.selected(node=self.w.b11).count()
        eligible = (
            Entitlement.objects.filter(campaign=self.a.campaign, node=self.w.b11)
            .exclude(status="held")
            .count()
        )
        self.assertEqual(data["features"][0]["properties"]["coverage"], round(100 * chosen / eligible))
        page = self.client_for(self.w.coord).get(reverse("aid-campaign", args=[self.a.campaign.uuid]))
        self.assertContains(page, f'data-geojson="{url}"')
        self.assert_login_redirect(self.client_for(None).get(url))
        self.assertEqual(self.client_for(self.w.volunteer).get(url).status_code, 403)
        self.assertEqual(self.client_for(self.w.other_coord).get(url).status_code, 404)


class LargeCampaignTests(AidPagesBase):
    """With many blocks the campaign page lists the lowest coverage first and block filters become typed codes."""

    def test_many_blocks_show_the_lowest_coverage_and_typed_block_filters(self):
        from unittest import mock

        url = reverse("aid-campaign", args=[self.a.campaign.uuid])
        with (
            mock.patch("redes.web.views.aid_campaigns.BLOCK_BARS", 1),
            mock.patch("redes.web.views.aid_campaigns.BLOCK_CHOICES", 1),
        ):
            response = self.client_for(self.w.coord).get(url)
            lowest = min(response.context["blocks"], key=lambda r: r["coverage"])
            self.assertEqual(
                [r["node"].code for r in response.context["shown_blocks"]], [lowest["node"].code]
            )
            self.assertContains(response, "The 1 blocks with the lowest coverage, of 3.")
            self.assertContains(response, 'name="block" value=""')  # a typed block code, not a list
            deliver = self.client_for(self.w.coord).get(reverse("aid-deliver"))
            self.assertTrue(deliver.context["many_blocks"])
            self.assertContains(deliver, 'id="pick-block" name="block"')
        filtered = self.client_for(self.w.coord).get(reverse("aid-deliver"), {"block": "S01-M002"})
        self.assertEqual({e.node.code for e in filtered.context["rows"]}, {"S01-M002"})


# ------------------------------------------------------------------------------------------- public pages


class PublicPagesTests(AidPagesBase):
    def test_the_public_map_shows_public_sites_and_kitchens_without_personal_data(self):
        response = self.client_for(None).get(reverse("aid-public-map") + "?m=19021")
        self.assertContains(response, "Centro Comunitario S1")
        self.assertContains(response, "Comedor Vecinal S2")
        self.assertContains(response, "150 portions a day")
        self.assertNotContains(response, "Bodega Municipal")  # not public
        self.assertContains(response, reverse("aid-public-report", args=[self.a.campaign.uuid]))
        for text in PRIVATE:
            self.assertNotContains(response, text)

    def test_the_public_map_of_an_unknown_municipality_is_a_404(self):
        self.assertEqual(self.client_for(None).get(reverse("aid-public-map") + "?m=99999").status_code, 404)

    def test_the_public_map_without_a_municipality_lists_those_with_sites(self):
        response = self.client_for(None).get(reverse("aid-public-map"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "General Escobedo")

    def test_the_public_report_shows_blocks_with_small_counts_suppressed_and_no_personal_data(self):
        response = self.client_for(None).get(reverse("aid-public-report", args=[self.a.campaign.uuid]))
        self.assertEqual(response.status_code, 200)
        content = response.content.decode()
        for block in ("S01-M001", "S01-M002", "S02-M001"):
            self.assertIn(block, content)
        self.assertIn('class="suppressed"', content)  # every block here has fewer than 5 households
        self.assertIn("Abarrotes Lupita", content)  # the public name
        self.assertIn("1 anonymous donor", content)
        for text in PRIVATE:
            self.assertNotIn(text, content)
        for e in Entitlement.objects.filter(campaign=self.a.campaign):
            self.assertNotIn(e.code, content)
            self.assertNotIn(codes.display(e.code), content)

    def test_a_draft_campaign_has_no_public_report(self):
        draft = services.create_campaign(
            actor=self.w.coord, name="Borrador", template=self.a.template, node=self.w.esc_node
        )
        self.assertEqual(
            self.client_for(None).get(reverse("aid-public-report", args=[draft.uuid])).status_code, 404
        )


# ------------------------------------------------------------------------------------------ query counts


class QueryCountTests(AidPagesBase):
    def count(self, url, user=None):
        client = self.client_for(user or self.w.coord)
        client.get(url)  # warm up (session, grants, content types)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        self.assertEqual(response.status_code, 200, url)
        return len(ctx.captured_queries)

    def test_list_pages_do_not_grow_with_their_rows(self):
        w, a = self.w, self.a
        urls = [
            reverse("aid-home"),
            reverse("aid-donors"),
            reverse("aid-donations"),
            reverse("aid-sites"),
            reverse("aid-stock"),
            reverse("aid-templates"),
            reverse("aid-campaigns"),
            reverse("aid-campaign", args=[a.campaign.uuid]),
            reverse("aid-site", args=[a.stand.uuid]),
        ]
        before = {url: self.count(url) for url in urls}
        deliver_before = self.count(reverse("aid-deliver"), w.sector1)
        # More of everything.
        for i in range(4):
            donor = services.save_donor(actor=w.coord, municipality=w.esc, kind="cso", name=f"Donante {i}")
            services.receive_donation(
                actor=w.coord, donor=donor, site=a.stand, lines=[(a.rice, 1), (a.soap, 2)]
            )
            services.save_site(
                actor=w.coord, municipality=w.esc, node=w.s2, kind="collection", name=f"Acopio {i}"
            )
            services.save_template(
                actor=w.coord, municipality=w.esc, name=f"Paquete {i}", lines=[(a.rice, 1), (a.beans, 1)]
            )
            services.create_campaign(actor=w.coord, name=f"Campaña {i}", template=a.template, node=w.s1)
        for i in range(3):
            household = registry.create_household(w.b11, street="Otra", ext_number=str(i))
            registry.add_person(household, full_name=f"Ana Extra{i} Gómez", check_duplicates=False)
        for url in urls:
            with self.subTest(url=url):
                self.assertLessEqual(self.count(url), before[url] + 1)
        self.assertLessEqual(self.count(reverse("aid-deliver"), w.sector1), deliver_before + 1)
