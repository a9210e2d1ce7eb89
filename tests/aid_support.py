"""Shared set-up for the aid tests: a catalogue, sites, a donor, a package and households on the world's blocks."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from redes.aid import services
from redes.aid.models import DonorKind, SiteKind, Unit
from redes.registry.models import Household


def build_aid(w) -> SimpleNamespace:
    """Items, a warehouse (whole municipality), a stand per sector, a donor, a package (≥ 2,100 kcal)."""
    a = SimpleNamespace()
    esc = w.esc
    a.rice = services.save_item(
        actor=None,
        municipality=esc,
        code="ARROZ",
        name="Rice",
        unit=Unit.KG,
        whole_units=False,
        kcal=Decimal(3600),
        protein_g=Decimal(70),
        fat_g=Decimal(6),
    )
    a.beans = services.save_item(
        actor=None,
        municipality=esc,
        code="FRIJOL",
        name="Beans",
        unit=Unit.KG,
        whole_units=False,
        kcal=Decimal(3400),
        protein_g=Decimal(220),
        fat_g=Decimal(15),
    )
    a.oil = services.save_item(
        actor=None,
        municipality=esc,
        code="ACEITE",
        name="Oil",
        unit=Unit.LITRE,
        whole_units=False,
        kcal=Decimal(8200),
        protein_g=Decimal(0),
        fat_g=Decimal(920),
    )
    a.tuna = services.save_item(
        actor=None,
        municipality=esc,
        code="ATUN",
        name="Tuna can",
        unit=Unit.PIECE,
        whole_units=True,
        kcal=Decimal(180),
        protein_g=Decimal(35),
        fat_g=Decimal(4),
    )
    a.soap = services.save_item(
        actor=None,
        municipality=esc,
        code="JABON",
        name="Soap",
        unit=Unit.PIECE,
        whole_units=True,
    )
    a.warehouse = services.save_site(
        actor=None,
        municipality=esc,
        node=w.esc_node,
        kind=SiteKind.WAREHOUSE,
        name="Central warehouse",
        address="Av. Juárez 100",
        lat=25.79,
        lon=-100.32,
    )
    a.stand1 = services.save_site(
        actor=None,
        municipality=esc,
        node=w.s1,
        kind=SiteKind.STAND,
        name="Stand S1",
        lat=25.795,
        lon=-100.325,
    )
    a.stand2 = services.save_site(
        actor=None,
        municipality=esc,
        node=w.s2,
        kind=SiteKind.STAND,
        name="Stand S2",
        public=False,
    )
    a.donor = services.save_donor(
        actor=None,
        municipality=esc,
        kind=DonorKind.BUSINESS,
        name="Abarrotes López SA",
        public_name="Abarrotes López",
        contact_name="Luis López",
        phone="8112345000",
        email="luis@example.org",
    )
    # 4 persons × 7 days: (7 × 3600 + 5 × 3400 + 2 × 8200 + 10 × 180) / 28 ≈ 2,157 kcal per person-day.
    a.package = services.save_template(
        actor=None,
        municipality=esc,
        name="Despensa básica",
        persons=4,
        days=7,
        lines=[(a.rice, 7), (a.beans, 5), (a.oil, 2), (a.tuna, 10)],
    )
    return a


def stock_site(site, a, packages: int, *, donor=None) -> None:
    """Receive exactly ``packages`` packages' worth of the package's items at ``site``."""
    lines = [(line.item, line.quantity * packages) for line in a.package.lines.select_related("item")]
    services.receive_donation(actor=None, donor=donor or a.donor, site=site, lines=lines)


def households(block, priorities, *, start=0) -> list[Household]:
    """Households on ``block`` with the given registry priorities (direct rows: aid tests need no persons)."""
    rows = [
        Household(municipality_id=block.municipality_id, node=block, street=f"Calle {start + i}", priority=p)
        for i, p in enumerate(priorities)
    ]
    return Household.objects.bulk_create(rows)
