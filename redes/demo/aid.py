"""The demo's aid: a catalogue, donors of every kind, donations into two warehouses and some stands, community
kitchens, food packages checked against Sphere, one finished and one running distribution campaign.

Deterministic for a seed (names, quantities, who is selected and who got the package); entitlement codes are
random by design, and the ledger's own timestamps are the build time. Every write goes through ``aid.services``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from redes.accounts.models import Membership
from redes.accounts.roles import Role
from redes.aid import campaigns, services
from redes.aid.delivery import confirm_delivery, finish_campaign
from redes.aid.models import (
    Campaign,
    DeliveryMode,
    Donation,
    DonationKind,
    DonorKind,
    Entitlement,
    EntitlementStatus,
    SiteKind,
    Unit,
)
from redes.territories.models import Node, NodeKind

# code, name, unit, whole units, kcal, protein g, fat g (per unit; None for non-food)
CATALOGUE = [
    ("ARROZ", "Arroz", Unit.KG, False, 3600, 70, 6),
    ("FRIJOL", "Frijol", Unit.KG, False, 3410, 215, 12),
    ("HARINA", "Harina de maíz", Unit.KG, False, 3650, 80, 38),
    ("ACEITE", "Aceite vegetal", Unit.LITRE, False, 8200, 0, 920),
    ("AZUCAR", "Azúcar", Unit.KG, False, 3870, 0, 0),
    ("ATUN", "Atún en lata (140 g)", Unit.PIECE, True, 180, 26, 3),
    ("LENTEJA", "Lentejas", Unit.KG, False, 3530, 250, 10),
    ("AVENA", "Avena", Unit.KG, False, 3890, 130, 65),
    ("LECHE", "Leche en polvo", Unit.KG, False, 4960, 260, 270),
    ("PASTA", "Pasta para sopa", Unit.KG, False, 3710, 130, 15),
    ("JABON", "Jabón de barra", Unit.PIECE, True, None, None, None),
    ("PAPEL", "Papel higiénico (4 rollos)", Unit.PACKAGE, True, None, None, None),
    ("GEL", "Gel antibacterial (500 ml)", Unit.PIECE, True, None, None, None),
    ("CUBREBOCAS", "Cubrebocas (caja de 50)", Unit.PACKAGE, True, None, None, None),
]
FOOD = [row[0] for row in CATALOGUE if row[4] is not None]
HYGIENE = [row[0] for row in CATALOGUE if row[4] is None]

#: 4 persons × 7 days: ≈ 2,260 kcal per person-day, ~12 % protein, ~23 % fat (Sphere: 2,100 / 10 % / 17 %).
FAMILY_PACKAGE = [
    ("ARROZ", 5),
    ("FRIJOL", 4),
    ("HARINA", 3),
    ("ACEITE", Decimal("1.5")),
    ("AZUCAR", 1),
    ("ATUN", 6),
    ("LENTEJA", 1),
]
#: A lighter package, below the reference: the template page shows its warnings.
LIGHT_PACKAGE = [("ARROZ", 3), ("FRIJOL", 2), ("ATUN", 4), ("AZUCAR", 1)]
HYGIENE_PACKAGE = [("JABON", 4), ("PAPEL", 2), ("GEL", 1), ("CUBREBOCAS", 1)]

DONOR_NAMES = {
    DonorKind.BUSINESS: [
        "Abarrotes {s}",
        "Tortillería {s}",
        "Farmacia {s}",
        "Ferretería {s}",
        "Panadería {s}",
    ],
    DonorKind.CSO: ["Fundación {s}", "Asociación Civil {s}", "Red Vecinal {s}", "Banco de Alimentos {s}"],
    DonorKind.CHURCH: ["Parroquia {s}", "Templo {s}", "Iglesia {s}"],
    DonorKind.NEIGHBOUR: ["{s}"],
    DonorKind.GOVERNMENT: ["Programa estatal {s}", "DIF {s}", "Secretaría de Bienestar {s}"],
    DonorKind.OTHER: ["Colecta {s}", "Club deportivo {s}", "Escuela {s}"],
}
WORDS = [
    "San José", "La Esperanza", "El Roble", "Santa Lucía", "Los Pinos", "Anáhuac", "Del Norte", "La Unión",
    "San Nicolás", "Monterrey", "Las Palmas", "Cumbres", "Valle Verde", "El Carmen", "Nuevo León", "Guadalupe",
]  # fmt: skip
GIVEN = [
    "María",
    "José",
    "Guadalupe",
    "Juan",
    "Rosa",
    "Luis",
    "Ana",
    "Carlos",
    "Laura",
    "Miguel",
    "Sofía",
    "Jorge",
]
SURNAMES = [
    "García",
    "Martínez",
    "López",
    "Hernández",
    "González",
    "Rodríguez",
    "Pérez",
    "Sánchez",
    "Ramírez",
]
SCHEDULES = [
    "Lunes a viernes, 13:00 a 16:00",
    "Lunes a sábado, 12:30 a 15:30",
    "Martes, jueves y sábado, 13:00 a 15:00",
    "Todos los días, 14:00 a 17:00",
]


@dataclass
class AidStats:
    items: int = 0
    donors: int = 0
    donations: int = 0
    pledged_mxn: Decimal = Decimal(0)
    sites: int = 0
    kitchens: int = 0
    templates: int = 0
    finished: dict = field(default_factory=dict)
    running: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            _(
                "Aid: %(items)s catalogue items, %(donors)s donors, %(donations)s donations (%(pledged)s MXN pledged), "
                "%(sites)s sites of which %(kitchens)s community kitchens, %(templates)s package templates."
            )
            % {
                "items": self.items,
                "donors": self.donors,
                "donations": self.donations,
                "pledged": f"{self.pledged_mxn:,.0f}",
                "sites": self.sites,
                "kitchens": self.kitchens,
                "templates": self.templates,
            }
        ]
        if self.finished:
            out.append(
                _(
                    "Finished campaign “%(name)s”: %(allocated)s packages, %(delivered)s delivered, %(returned)s "
                    "returned to stock."
                )
                % self.finished
            )
        if self.running:
            out.append(
                _(
                    "Running campaign “%(name)s”: %(allocated)s packages, %(delivered)s delivered, %(pending)s to "
                    "deliver (%(block_pending)s in the block of manzana1)."
                )
                % self.running
            )
        return out


def _sectors(municipality) -> list[Node]:
    return list(
        Node.objects.filter(
            municipality=municipality, kind=NodeKind.UNIT, depth=municipality.node.depth + 1
        ).order_by("code", "pk")
    )


def _point(node: Node, rng: random.Random) -> tuple[float | None, float | None]:
    if node.centroid_lat is None or node.centroid_lon is None:
        return None, None
    return (
        round(node.centroid_lat + rng.uniform(-0.002, 0.002), 6),
        round(node.centroid_lon + rng.uniform(-0.002, 0.002), 6),
    )


def _block_of(user) -> Node | None:
    membership = (
        Membership.objects.filter(user=user, role=Role.BLOCK_LIAISON)
        .select_related("node")
        .order_by("pk")
        .first()
    )
    return membership.node if membership else None


def _need(template_lines, items, packages: int) -> list:
    return [(items[code], Decimal(qty) * packages) for code, qty in template_lines]


def populate(municipality, seed: int, *, people: dict, actor=None) -> AidStats:
    rng = random.Random(f"aid-demo-{seed}")
    stats = AidStats()
    now = timezone.now()
    sectors = _sectors(municipality)
    if not sectors:
        return stats

    # --- catalogue -----------------------------------------------------------------------------------------------
    items = {}
    for code, name, unit, whole, kcal, protein, fat in CATALOGUE:
        items[code] = services.save_item(
            actor=actor,
            municipality=municipality,
            code=code,
            name=name,
            unit=unit,
            whole_units=whole,
            kcal=None if kcal is None else Decimal(kcal),
            protein_g=None if protein is None else Decimal(protein),
            fat_g=None if fat is None else Decimal(fat),
        )
    stats.items = len(items)

    # --- donors: ten of each kind ----------------------------------------------------------------------------------
    donors = {kind: [] for kind in DonorKind.values}
    for kind in DonorKind.values:
        for i in range(10):
            if kind == DonorKind.NEIGHBOUR:
                name = f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)} {rng.choice(SURNAMES)}"
            else:
                name = rng.choice(DONOR_NAMES[kind]).format(s=rng.choice(WORDS))
                name = f"{name} {i + 1}" if any(d.name == name for d in donors[kind]) else name
            public = rng.random() < 0.7 and kind != DonorKind.NEIGHBOUR or rng.random() < 0.3
            contact = f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"
            donors[kind].append(
                services.save_donor(
                    actor=actor,
                    municipality=municipality,
                    kind=kind,
                    name=name,
                    public_name=name if public else "",
                    contact_name=contact if kind != DonorKind.NEIGHBOUR else "",
                    phone=f"81{rng.randrange(10**7, 10**8)}" if rng.random() < 0.8 else "",
                    email=f"contacto{kind}{i + 1}@example.org" if kind != DonorKind.NEIGHBOUR else "",
                )
            )
    all_donors = [d for kind in DonorKind.values for d in donors[kind]]
    stats.donors = len(all_donors)

    # --- sites -----------------------------------------------------------------------------------------------------
    top = municipality.node
    lat0, lon0 = _point(sectors[0], rng)
    north = services.save_site(
        actor=actor, municipality=municipality, node=top, kind=SiteKind.WAREHOUSE, name="Bodega Municipal Norte",
        address="Av. Raúl Caballero 500", lat=lat0, lon=lon0, schedule="Lunes a sábado, 8:00 a 18:00",
    )  # fmt: skip
    lat1, lon1 = _point(sectors[-1], rng)
    south = services.save_site(
        actor=actor, municipality=municipality, node=top, kind=SiteKind.WAREHOUSE, name="Bodega DIF Sur",
        address="Calle Juárez 210", lat=lat1, lon=lon1, schedule="Lunes a viernes, 9:00 a 17:00",
    )  # fmt: skip
    stands = []
    for sector in sectors[:6]:
        lat, lon = _point(sector, rng)
        stands.append(
            services.save_site(
                actor=actor,
                municipality=municipality,
                node=sector,
                kind=SiteKind.STAND,
                name=f"Puesto de ayuda {sector.name}",
                address=f"Plaza de {sector.name}",
                lat=lat,
                lon=lon,
                schedule="Martes y jueves, 10:00 a 14:00",
            )  # fmt: skip
        )
    collection = []
    for i, sector in enumerate(sectors[6:8]):
        lat, lon = _point(sector, rng)
        collection.append(
            services.save_site(
                actor=actor,
                municipality=municipality,
                node=sector,
                kind=SiteKind.COLLECTION,
                name=f"Centro de acopio {rng.choice(WORDS)} {i + 1}",
                lat=lat,
                lon=lon,
                schedule="Sábados, 9:00 a 13:00",
            )  # fmt: skip
        )
    kitchens = []
    for i, sector in enumerate(sectors[1::3][:4]):
        lat, lon = _point(sector, rng)
        kitchens.append(
            services.save_site(
                actor=actor,
                municipality=municipality,
                node=sector,
                kind=SiteKind.KITCHEN,
                name=f"Comedor comunitario {rng.choice(WORDS)}",
                address=f"Salón de usos múltiples, {sector.name}",
                lat=lat,
                lon=lon,
                schedule=SCHEDULES[i % len(SCHEDULES)],
                portions_per_day=rng.randrange(80, 260, 10),
            )  # fmt: skip
        )
    stats.sites = 2 + len(stands) + len(collection) + len(kitchens)
    stats.kitchens = len(kitchens)

    # --- donations -------------------------------------------------------------------------------------------------
    donation_count = 0
    receiving = [north, south, north, south, *stands, *collection]
    for i in range(60):
        donor = rng.choice(all_donors)
        site = rng.choice(receiving)
        codes = rng.sample(FOOD, rng.randint(2, 5)) + (rng.sample(HYGIENE, 1) if rng.random() < 0.3 else [])
        lines = []
        for code in codes:
            item = items[code]
            qty = rng.randint(5, 60) if item.whole_units else Decimal(rng.randint(10, 200)) / 2
            lines.append((item, qty))
        services.receive_donation(
            actor=actor, donor=donor, site=site, lines=lines, received_at=now - dt.timedelta(days=60 - i // 2)
        )
        donation_count += 1
    for i in range(8):
        services.receive_donation(
            actor=actor,
            donor=rng.choice(donors[DonorKind.BUSINESS] + donors[DonorKind.CSO]),
            kind=DonationKind.MONEY_PLEDGE,
            pledge_mxn=Decimal(rng.choice([2500, 5000, 10000, 15000, 25000, 50000])),
            note="Promesa de donativo",
            received_at=now - dt.timedelta(days=50 - 5 * i),
        )
        donation_count += 1

    # --- packages --------------------------------------------------------------------------------------------------
    family = services.save_template(
        actor=actor, municipality=municipality, name="Despensa familiar (4 personas, 7 días)", persons=4, days=7,
        lines=[(items[c], q) for c, q in FAMILY_PACKAGE],
    )  # fmt: skip
    services.save_template(
        actor=actor, municipality=municipality, name="Despensa ligera (4 personas, 7 días)", persons=4, days=7,
        lines=[(items[c], q) for c, q in LIGHT_PACKAGE],
    )  # fmt: skip
    services.save_template(
        actor=actor, municipality=municipality, name="Paquete de higiene", persons=4, days=14,
        lines=[(items[c], q) for c, q in HYGIENE_PACKAGE],
    )  # fmt: skip
    stats.templates = 3

    # The state programme brings the bulk of the packages' food to the north warehouse; part goes to the stands.
    programme = donors[DonorKind.GOVERNMENT][0]
    services.receive_donation(
        actor=actor, donor=programme, site=north, lines=_need(FAMILY_PACKAGE, items, 600),
        note="Entrega del programa estatal", received_at=now - dt.timedelta(days=45),
    )  # fmt: skip
    donation_count += 1
    stats.donations = donation_count
    stats.pledged_mxn = Donation.objects.filter(
        municipality=municipality, kind=DonationKind.MONEY_PLEDGE
    ).aggregate(s=Sum("pledge_mxn"))["s"] or Decimal(0)
    first_stand = stands[0]
    for item, qty in _need(FAMILY_PACKAGE, items, 90):
        services.transfer_stock(actor=actor, from_site=north, to_site=first_stand, item=item, quantity=qty)
    for stand in stands[1:]:
        packages = rng.randint(25, 45)
        for item, qty in _need(FAMILY_PACKAGE, items, packages):
            services.transfer_stock(actor=actor, from_site=north, to_site=stand, item=item, quantity=qty)

    # --- the finished campaign: the first sector, a month ago ------------------------------------------------------
    coordinacion = people.get("coordinacion") or actor
    sector1 = people.get("sector1")
    manzana1 = people.get("manzana1")
    voluntario = people.get("voluntario")
    focus_block = _block_of(manzana1) if manzana1 else None

    april = campaigns.create_campaign(
        actor=coordinacion, name="Despensas de abril — " + sectors[0].name, template=family, node=sectors[0],
        seed=rng.randrange(2**31),
    )  # fmt: skip
    campaigns.allocate_campaign(april, actor=coordinacion)
    campaigns.start_campaign(april, actor=coordinacion)
    selected = list(
        Entitlement.objects.filter(campaign=april, status=EntitlementStatus.SELECTED)
        .select_related("zone__site")
        .order_by("household_id")
    )
    delivered_april = _deliver(
        selected, 0.85, rng, people=people, focus_block=focus_block, coordinacion=coordinacion
    )
    outcome = finish_campaign(april, actor=coordinacion)
    _backdate(april, now - dt.timedelta(days=40), now - dt.timedelta(days=38), now - dt.timedelta(days=25))
    _spread(delivered_april, now - dt.timedelta(days=38), days=12, rng=rng)
    stats.finished = {
        "name": april.name,
        "allocated": len(selected),
        "delivered": outcome["delivered"],
        "returned": outcome["returned"],
    }

    # --- the running campaign: the whole municipality, the more vulnerable households --------------------------------
    for item, qty in _need(FAMILY_PACKAGE, items, 100):
        services.transfer_stock(actor=actor, from_site=north, to_site=first_stand, item=item, quantity=qty)
    may = campaigns.create_campaign(
        actor=coordinacion, name="Despensas de mayo", template=family, node=municipality.node, min_priority=10,
        seed=rng.randrange(2**31),
    )  # fmt: skip
    campaigns.allocate_campaign(may, actor=coordinacion)
    campaigns.start_campaign(may, actor=coordinacion)
    selected = list(
        Entitlement.objects.filter(campaign=may, status=EntitlementStatus.SELECTED)
        .select_related("zone__site")
        .order_by("household_id")
    )
    in_focus = [e for e in selected if focus_block is not None and e.node_id == focus_block.pk]
    others = [e for e in selected if focus_block is None or e.node_id != focus_block.pk]
    # manzana1's block: a third delivered, the rest waits for manzana1 or voluntario.
    first_third = in_focus[: len(in_focus) // 3]
    delivered_may = _deliver(
        first_third, 1.0, rng, people=people, focus_block=focus_block, coordinacion=coordinacion
    )
    delivered_may += _deliver(
        others, 0.3, rng, people=people, focus_block=focus_block, coordinacion=coordinacion
    )
    _backdate(may, now - dt.timedelta(days=6), now - dt.timedelta(days=5), None)
    _spread(delivered_may, now - dt.timedelta(days=5), days=5, rng=rng)
    del sector1, voluntario
    stats.running = {
        "name": may.name,
        "allocated": len(selected),
        "delivered": len(delivered_may),
        "pending": len(selected) - len(delivered_may),
        "block_pending": len(in_focus) - len(first_third),
    }
    return stats


def _deliverer(entitlement, people: dict, focus_block, coordinacion, rng):
    """Who hands the package over: the block's liaison or the sector's volunteer in the first sector, the sector
    liaison there too; elsewhere the coordination team at the site."""
    candidates = []
    if focus_block is not None and entitlement.node_id == focus_block.pk and people.get("manzana1"):
        candidates.append((people["manzana1"], DeliveryMode.HOME))
    for key in ("voluntario", "sector1"):
        user = people.get(key)
        if user is not None and services.can_deliver(user, entitlement.node):
            candidates.append((user, DeliveryMode.HOME if key == "voluntario" else DeliveryMode.SITE))
    if not candidates:
        return coordinacion, DeliveryMode.SITE
    return rng.choice(candidates)


def _deliver(rows, share: float, rng: random.Random, *, people, focus_block, coordinacion) -> list:
    chosen = [row for row in rows if rng.random() < share]
    done = []
    for row in chosen:
        user, mode = _deliverer(row, people, focus_block, coordinacion, rng)
        site = row.zone.site if mode == DeliveryMode.SITE else None
        done.append(confirm_delivery(row, actor=user, mode=mode, site=site))
    return done


def _backdate(campaign: Campaign, allocated_at, started_at, finished_at) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        allocated_at=allocated_at, started_at=started_at, finished_at=finished_at, created_at=allocated_at
    )


def _spread(rows, start, *, days: int, rng: random.Random) -> None:
    for row in rows:
        when = start + dt.timedelta(minutes=rng.randrange(0, days * 24 * 60))
        Entitlement.objects.filter(pk=row.pk).update(delivered_at=when)
