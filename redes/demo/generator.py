"""Synthetic, deterministic demo data: territories, liaisons and demo logins.

Everything here writes through the services (``territories.services``, ``liaisons.services``,
``accounts.services``), so the demo exercises the same paths as real use and every write is audited (channel
``system`` when called from ``redes demo``). The benchmarks in ``bench/`` import the scale builders.

Determinism: ``DemoRandom(seed)`` seeds Faker (es_MX) and a ``random.Random``; every choice goes through those
two, so the same seed gives the same codes, names, phones and liaison history (dates are counted back from the
day the demo is built), and another seed gives other data.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from faker import Faker

from redes.accounts.roles import Role
from redes.accounts.services import create_user, grant_membership
from redes.liaisons.services import assign_liaison, end_liaison
from redes.territories.models import Municipality, Node, NodeKind
from redes.territories.services import UnitSpec, bulk_create_units, create_municipality, ensure_nation

DEMO_PASSWORD = "redes-demo"  # noqa: S105 (the published demo password)

ESCOBEDO = ("19021", "General Escobedo", "Nuevo León")
ACAPULCO = ("12001", "Acapulco de Juárez", "Guerrero")
ESCOBEDO_CENTRE = (25.7905, -100.3190)  # lat, lon
ACAPULCO_CENTRE = (16.8630, -99.8840)

#: INEGI state keys, names and (approximate, 2020s) number of municipalities: 2,478 in all.
STATES: tuple[tuple[str, str, int], ...] = (
    ("01", "Aguascalientes", 11),
    ("02", "Baja California", 7),
    ("03", "Baja California Sur", 5),
    ("04", "Campeche", 13),
    ("05", "Coahuila de Zaragoza", 38),
    ("06", "Colima", 10),
    ("07", "Chiapas", 124),
    ("08", "Chihuahua", 67),
    ("09", "Ciudad de México", 16),
    ("10", "Durango", 39),
    ("11", "Guanajuato", 46),
    ("12", "Guerrero", 85),
    ("13", "Hidalgo", 84),
    ("14", "Jalisco", 125),
    ("15", "México", 125),
    ("16", "Michoacán de Ocampo", 113),
    ("17", "Morelos", 36),
    ("18", "Nayarit", 20),
    ("19", "Nuevo León", 51),
    ("20", "Oaxaca", 570),
    ("21", "Puebla", 217),
    ("22", "Querétaro", 18),
    ("23", "Quintana Roo", 11),
    ("24", "San Luis Potosí", 59),
    ("25", "Sinaloa", 20),
    ("26", "Sonora", 72),
    ("27", "Tabasco", 17),
    ("28", "Tamaulipas", 43),
    ("29", "Tlaxcala", 60),
    ("30", "Veracruz de Ignacio de la Llave", 212),
    ("31", "Yucatán", 106),
    ("32", "Zacatecas", 58),
)

# Neighbourhood names used for the demo's sectors (synthetic: a plausible mix, not the real sector map).
ESCOBEDO_COLONIAS = (
    "Centro",
    "Girasoles",
    "Monte Kristal",
    "Pedregal de Escobedo",
    "Hacienda El Canadá",
    "Los Altos",
    "Andrés Caballero",
    "Valle del Canadá",
    "Felipe Carrillo Puerto",
    "Santa Lucía",
    "Alianza Real",
    "Cerradas de Anáhuac",
    "Villas de San Francisco",
    "Nueva Castilla",
    "Praderas de San Francisco",
    "Jardines de Escobedo",
    "Las Torres",
    "Fomerrey 9",
)
ACAPULCO_SECTORS = (
    "Centro",
    "Costera",
    "Renacimiento",
    "Diamante",
    "Pie de la Cuesta",
    "Coloso",
    "Emiliano Zapata",
)
MUNICIPALITY_PREFIXES = ("San", "Santa María", "Santiago", "Villa de", "San Juan", "Heroica", "Santo Domingo")
END_REASONS = (
    "Cambio de domicilio",
    "Renuncia voluntaria",
    "Motivos de salud",
    "Falta de tiempo",
    "Rotación acordada en asamblea",
)


class DemoRandom:
    """The two sources of randomness of a build: Faker (es_MX) and ``random.Random``, both seeded."""

    def __init__(self, seed: int):
        self.seed = seed
        random.seed(seed)  # for any library that draws from the global generator
        self.rng = random.Random(seed)
        self.fake = Faker("es_MX")
        self.fake.seed_instance(seed)

    def person_name(self) -> str:
        """A Mexican full name: given name and two surnames."""
        return f"{self.fake.first_name()} {self.fake.last_name()} {self.fake.last_name()}"

    def mobile_phone(self, area: str = "81") -> str:
        """A Mexican number written the way people write it (the services normalise it to E.164)."""
        rest = self.fake.numerify("%" + "#" * (9 - len(area)))
        digits = area + rest
        style = self.rng.randrange(5)
        if style == 0:
            return f"{digits[:2]} {digits[2:6]} {digits[6:]}"
        if style == 1:
            return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        if style == 2:
            return f"+52 1 {digits[:2]} {digits[2:6]} {digits[6:]}"
        if style == 3:
            return f"({digits[:2]}) {digits[2:6]}-{digits[6:]}"
        return digits


# ---------------------------------------------------------------------------------------------------------
# Geometry: a nested street grid in local metres, turned into WGS84 rectangles.


@dataclass
class Plot:
    """A rectangle in local metres that holds its children in a grid, with streets between them."""

    code: str
    name: str
    width: float = 0.0
    height: float = 0.0
    gap: float = 0.0  # street width between the children
    pad: float = 0.0  # margin between the children and this plot's outline
    children: list[Plot] = field(default_factory=list)
    cols: int = 0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x0, y0, x1, y1 (y grows northwards)

    def measure(self) -> tuple[float, float]:
        if self.children:
            sizes = [c.measure() for c in self.children]
            self.cols = self.cols or math.ceil(math.sqrt(len(self.children)))
            rows = math.ceil(len(self.children) / self.cols)
            cell_w = max(s[0] for s in sizes)
            cell_h = max(s[1] for s in sizes)
            self.width = self.cols * cell_w + (self.cols - 1) * self.gap + 2 * self.pad
            self.height = rows * cell_h + (rows - 1) * self.gap + 2 * self.pad
            self._cell = (cell_w, cell_h)
        return self.width, self.height

    def place(self, x0: float, y1: float) -> None:
        """Put the top-left (north-west) corner at (x0, y1); children fill rows from north-west."""
        self.box = (x0, y1 - self.height, x0 + self.width, y1)
        if self.children:
            cell_w, cell_h = self._cell
            for i, child in enumerate(self.children):
                row, col = divmod(i, self.cols)
                cx = x0 + self.pad + col * (cell_w + self.gap)
                cy = y1 - self.pad - row * (cell_h + self.gap)
                child.place(cx, cy)

    def walk(self) -> Iterable[Plot]:
        yield self
        for child in self.children:
            yield from child.walk()


class Projection:
    """Local metres (centred on the layout) to lon/lat, with the street grid turned by ``angle`` degrees."""

    def __init__(self, lat0: float, lon0: float, width: float, height: float, angle: float = 0.0):
        self.lat0, self.lon0 = lat0, lon0
        self.cx, self.cy = width / 2, -height / 2
        self.cos, self.sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        self.m_per_deg_lat = 111_320.0
        self.m_per_deg_lon = 111_320.0 * math.cos(math.radians(lat0))

    def lonlat(self, x: float, y: float) -> list[float]:
        x, y = x - self.cx, y - self.cy
        x, y = x * self.cos - y * self.sin, x * self.sin + y * self.cos
        return [round(self.lon0 + x / self.m_per_deg_lon, 7), round(self.lat0 + y / self.m_per_deg_lat, 7)]

    def polygon(self, box: tuple[float, float, float, float]) -> tuple[dict, float, float]:
        x0, y0, x1, y1 = box
        ring = [self.lonlat(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
        lon, lat = self.lonlat((x0 + x1) / 2, (y0 + y1) / 2)
        return {"type": "Polygon", "coordinates": [ring]}, lat, lon


def ageb_key(number: int) -> str:
    """An INEGI-style AGEB key: three digits and a check character (0-9 or A)."""
    digits = f"{number:03d}"
    check = sum(int(d) * w for d, w in zip(digits, (7, 3, 1), strict=True)) % 11
    return digits + ("A" if check == 10 else str(check))


def block_cvegeo(municipality_code: str, ageb: str, block: int, locality: int = 1) -> str:
    """A 16-character INEGI CVEGEO for a block: state(2) municipality(3) locality(4) AGEB(4) block(3)."""
    return f"{municipality_code}{locality:04d}{ageb}{block:03d}"


def _street_names(dr: DemoRandom, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = dr.fake.street_name()
        if name not in names:
            names.append(name)
    return names


def escobedo_plan(dr: DemoRandom, sectors: int = 14) -> Plot:
    """General Escobedo: ``sectors`` sectors of 10–25 blocks each on a street grid, INEGI-style block keys."""
    root = Plot(ESCOBEDO[0], ESCOBEDO[1], gap=45.0, pad=60.0, cols=4)
    colonias = list(ESCOBEDO_COLONIAS)
    dr.rng.shuffle(colonias)
    agebs = sorted(dr.rng.sample(range(10, 400), sectors))
    for s in range(sectors):
        count = dr.rng.randint(10, 25)
        cols = dr.rng.choice((4, 5)) if count > 12 else 4
        block_w, block_h = dr.rng.uniform(95, 130), dr.rng.uniform(60, 85)
        rows = math.ceil(count / cols)
        streets_ew = _street_names(dr, rows)  # east-west streets, one north of each row
        streets_ns = _street_names(dr, cols)  # north-south streets, one west of each column
        colonia = colonias[s % len(colonias)]
        sector = Plot(f"S{s + 1:02d}", f"Sector {s + 1} {colonia}", gap=14.0, pad=7.0, cols=cols)
        ageb = ageb_key(agebs[s])
        number = 0
        for b in range(count):
            number += 1 + (dr.rng.random() < 0.08)  # INEGI block numbers are not always consecutive
            row, col = divmod(b, cols)
            sector.children.append(
                Plot(
                    block_cvegeo(ESCOBEDO[0], ageb, number),
                    f"Manzana {number:03d} ({streets_ew[row]} y {streets_ns[col]})",
                    width=block_w,
                    height=block_h,
                )
            )
        root.children.append(sector)
    return root


def nested_plan(
    code: str,
    name: str,
    fanouts: list[list[int]] | list[int],
    level_names: list[str],
    sector_names: Iterable[str] = (),
    *,
    block_size: tuple[float, float] = (90.0, 70.0),
) -> Plot:
    """A municipality with nested levels, e.g. Sector / Zona / Grupo / Manzana, with hierarchical codes.

    ``fanouts[i]`` is the number of children of each node at level ``i`` (the municipality is level 0); an int
    means the same count everywhere, a list gives the count of each node of that level in order.
    """
    root = Plot(code, name, gap=60.0, pad=80.0)
    sector_names = list(sector_names)
    counters = [0] * len(fanouts)
    prefixes = ["S", "Z", "G", "M", "U"]
    gaps = [45.0, 30.0, 20.0, 14.0, 10.0]

    def fill(plot: Plot, level: int) -> None:
        fan = fanouts[level]
        count = fan if isinstance(fan, int) else fan[counters[level]]
        counters[level] += 1
        leaf = level == len(fanouts) - 1
        for i in range(count):
            child_code = f"S{i + 1}" if level == 0 else f"{plot.code}-{prefixes[level]}{i + 1:02d}"
            label = level_names[level]
            if level == 0 and i < len(sector_names):
                child_name = f"{label} {i + 1} {sector_names[i]}"
            else:
                child_name = f"{label} {i + 1}"
            child = Plot(child_code, child_name, gap=gaps[min(level + 1, 4)], pad=gaps[min(level + 1, 4)] / 2)
            if leaf:
                child.width, child.height = block_size
            else:
                fill(child, level + 1)
            plot.children.append(child)

    fill(root, 0)
    return root


def plan_specs(
    root: Plot, *, centre: tuple[float, float] | None, angle: float = 0.0
) -> tuple[list[UnitSpec], dict | None]:
    """UnitSpecs for every plot below ``root`` (parents first), with polygons when ``centre`` is given."""
    projection = None
    if centre is not None:
        width, height = root.measure()
        root.place(0.0, 0.0)
        projection = Projection(centre[0], centre[1], width, height, angle)
    specs: list[UnitSpec] = []

    def visit(plot: Plot, parent_code: str | None, depth: int) -> None:
        geometry = lat = lon = None
        if projection is not None:
            geometry, lat, lon = projection.polygon(plot.box)
        specs.append(UnitSpec(plot.code, plot.name, depth, parent_code, geometry, lat, lon))
        for child in plot.children:
            visit(child, plot.code, depth + 1)

    for child in root.children:
        visit(child, None, 3)
    specs.sort(key=lambda s: s.depth)  # stable: parents before children, siblings in plan order
    root_geometry = projection.polygon(root.box)[0] if projection is not None else None
    return specs, root_geometry


def build_municipality(
    code: str,
    name: str,
    state_name: str,
    levels: list[str],
    plan: Plot,
    *,
    centre: tuple[float, float] | None = None,
    angle: float = 0.0,
    actor=None,
    progress: Callable[[int], None] | None = None,
) -> Municipality:
    """Create a municipality and its whole tree from a plan (one bulk insert per level)."""
    specs, outline = plan_specs(plan, centre=centre, angle=angle)
    municipality = create_municipality(
        code, name, levels, actor=actor, state_name=state_name, geometry=outline
    )
    bulk_create_units(municipality, specs, actor=actor, progress=progress)
    return municipality


# ---------------------------------------------------------------------------------------------------------
# Liaisons


@dataclass
class Holder:
    """A liaison post reserved for a demo login."""

    full_name: str
    phone: str
    user: object | None = None


def staff_posts(
    dr: DemoRandom,
    nodes: list[Node],
    *,
    area: str,
    vacancy: tuple[float, float] = (0.15, 0.20),
    history: float = 0.25,
    reserved: dict[int, Holder] | None = None,
    today: dt.date | None = None,
    actor=None,
) -> dict[str, int]:
    """Appoint liaisons to ``nodes``: a share left vacant, some posts with a past holder (history)."""
    reserved = reserved or {}
    today = today or timezone.localdate()
    free = [n for n in nodes if n.pk not in reserved]
    share = dr.rng.uniform(*vacancy)
    vacant = {n.pk for n in dr.rng.sample(free, min(len(free), round(share * len(nodes))))}
    counts = {"held": 0, "vacant": 0, "past": 0}
    for node in nodes:
        had_before = dr.rng.random() < (history if node.pk not in vacant else 0.4)
        current_start = today - dt.timedelta(days=dr.rng.randint(20, 700))
        if had_before:
            past_start = current_start - dt.timedelta(days=dr.rng.randint(120, 900))
            past = assign_liaison(
                node,
                full_name=dr.person_name(),
                phone=dr.mobile_phone(area),
                start_date=past_start,
                actor=actor,
            )
            counts["past"] += 1
        if node.pk in vacant:
            if had_before:
                end_liaison(past, end_date=current_start, reason=dr.rng.choice(END_REASONS), actor=actor)
            counts["vacant"] += 1
            continue
        holder = reserved.get(node.pk) or Holder(dr.person_name(), dr.mobile_phone(area))
        assign_liaison(
            node,
            full_name=holder.full_name,
            phone=holder.phone,
            user=holder.user,
            start_date=current_start,
            actor=actor,
            reason=dr.rng.choice(END_REASONS) if had_before else "",
        )
        counts["held"] += 1
    return counts


# ---------------------------------------------------------------------------------------------------------
# Scale builders (also used by bench/)


def acapulco_size_plan(with_names: bool = True) -> Plot:
    """Acapulco's liaison tree at full size: 7 sectors, 439 zones, 1,317 groups, 13,170 blocks."""
    zones = [63] * 5 + [62] * 2  # 439
    return nested_plan(
        ACAPULCO[0],
        ACAPULCO[1],
        [7, zones, 3, 10],
        ["Sector", "Zona", "Grupo", "Manzana"],
        ACAPULCO_SECTORS if with_names else (),
    )


def two_level_plan(code: str, name: str, sectors: int, blocks: int) -> Plot:
    """Sectors and blocks (``blocks`` in all, spread evenly), blocks keyed INEGI-style by sector AGEB."""
    root = Plot(code, name)
    base, extra = divmod(blocks, sectors)
    for s in range(sectors):
        sector = Plot(f"S{s + 1:02d}", f"Sector {s + 1}")
        ageb = ageb_key(10 + s * 7)
        for b in range(base + (s < extra)):
            sector.children.append(Plot(block_cvegeo(code, ageb, b + 1), f"Manzana {b + 1:03d}"))
        root.children.append(sector)
    return root


def national_municipalities(dr: DemoRandom, skip: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(code, name, state name) for every municipality of the synthetic country, minus ``skip``."""
    skip = set(skip)
    rows = []
    for state_code, state_name, count in STATES:
        for m in range(1, count + 1):
            code = f"{state_code}{m:03d}"
            name = f"{dr.rng.choice(MUNICIPALITY_PREFIXES)} {dr.fake.last_name()}"
            if code not in skip:
                rows.append((code, name, state_name))
    return rows


def build_national(
    dr: DemoRandom,
    *,
    sectors: int = 10,
    blocks: int = 200,
    skip: Iterable[str] = (),
    actor=None,
    progress: bool = True,
) -> int:
    """Every municipality of the country with ``sectors`` sectors and ``blocks`` blocks each; one transaction
    per state. Returns the number of municipalities created. A tqdm bar (on stderr) counts the nodes."""
    from tqdm import tqdm

    ensure_nation(actor=actor)
    rows = national_municipalities(dr, skip=skip)
    bar = tqdm(
        total=len(rows) * (sectors + blocks),
        unit="nodes",
        unit_scale=True,
        desc="national tree",
        disable=not progress,
        mininterval=0.5,
    )
    by_state: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        by_state.setdefault(row[0][:2], []).append(row)
    try:
        for state_rows in by_state.values():
            with transaction.atomic():
                for code, name, state_name in state_rows:
                    build_municipality(
                        code,
                        name,
                        state_name,
                        ["Sector", "Manzana"],
                        two_level_plan(code, name, sectors, blocks),
                        actor=actor,
                        progress=bar.update,
                    )
    finally:
        bar.close()
    return len(rows)


# ---------------------------------------------------------------------------------------------------------
# The demo


@dataclass
class DemoLogin:
    username: str
    role: str
    where: str


@dataclass
class DemoResult:
    seed: int
    scale: str
    escobedo: Municipality
    acapulco: Municipality
    logins: list[DemoLogin]
    posts: dict[str, int]
    municipalities: int = 2
    #: ``demo.registry.RegistryStats`` of Escobedo's registry and of the ``persons`` added to Acapulco.
    registry: object | None = None
    scale_registry: object | None = None
    #: ``demo.needs.NeedsStats`` and ``demo.aid.AidStats``: each has ``lines()``, printed by ``redes demo``.
    needs: object | None = None
    aid: object | None = None
    #: ``demo.messaging.MessagingStats`` (``lines()`` too).
    messaging: object | None = None


SCALES = ("small", "acapulco", "national")
#: Persons in the demo municipality's registry (~2,900 households).
DEMO_PERSONS = 10_000


def _units(municipality: Municipality, depth: int | None = None) -> list[Node]:
    qs = Node.objects.filter(municipality=municipality, kind=NodeKind.UNIT)
    if depth is not None:
        qs = qs.filter(depth=depth)
    return list(qs.order_by("depth", "code"))


def build_demo(
    seed: int = 1,
    scale: str = "small",
    *,
    actor=None,
    progress: bool = False,
    persons: int = 0,
    demo_persons: int = DEMO_PERSONS,
) -> DemoResult:
    """The whole demo: Escobedo with liaisons, logins and a populated registry (``demo_persons``), Acapulco
    (small, or full size) with ``persons`` more persons in its registry (for benchmarks), maybe the country."""
    from redes.demo import aid as aid_demo
    from redes.demo import messaging as messaging_demo
    from redes.demo import needs as needs_demo
    from redes.demo import registry

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}")
    if persons < 0 or demo_persons < 0:
        raise ValueError("the number of persons cannot be negative")
    dr = DemoRandom(seed)
    with transaction.atomic():
        ensure_nation(actor=actor)
        escobedo = build_municipality(
            *ESCOBEDO,
            ["Sector", "Manzana"],
            escobedo_plan(dr),
            centre=ESCOBEDO_CENTRE,
            angle=dr.rng.uniform(-14, -8),
            actor=actor,
        )
        if scale == "acapulco":
            aca_plan = acapulco_size_plan()
        else:
            aca_plan = nested_plan(
                ACAPULCO[0],
                ACAPULCO[1],
                [2, 2, 2, [dr.rng.randint(6, 10) for _ in range(8)]],
                ["Sector", "Zona", "Grupo", "Manzana"],
                ACAPULCO_SECTORS,
            )
        acapulco = build_municipality(
            *ACAPULCO,
            ["Sector", "Zona", "Grupo", "Manzana"],
            aca_plan,
            centre=ACAPULCO_CENTRE,
            angle=dr.rng.uniform(20, 30),
            actor=actor,
        )

        sectors = _units(escobedo, 3)
        blocks = _units(escobedo, 4)
        first_sector = sectors[0]
        first_block = next(b for b in blocks if b.parent_id == first_sector.pk)
        esc_node, nation = escobedo.node, escobedo.node.parent.parent

        def login(username: str, phone_area: str | None = None):
            return create_user(
                username,
                password=DEMO_PASSWORD,
                full_name=dr.person_name(),
                phone=dr.mobile_phone(phone_area) if phone_area else "",
                actor=actor,
                check_password=False,
            )

        coordinacion = login("coordinacion", "81")
        sector1 = login("sector1", "81")
        manzana1 = login("manzana1", "81")
        observador = login("observador")
        operador = login("operador")
        caso = login("caso")
        voluntario = login("voluntario", "81")
        grant_membership(coordinacion, esc_node, Role.COORDINATOR, actor=actor)
        grant_membership(sector1, first_sector, Role.SECTOR_LIAISON, actor=actor)
        grant_membership(manzana1, first_block, Role.BLOCK_LIAISON, actor=actor)
        grant_membership(observador, nation, Role.NATIONAL_OBSERVER, actor=actor)
        grant_membership(operador, esc_node, Role.HOTLINE_OPERATOR, actor=actor)
        grant_membership(caso, esc_node, Role.CASE_OFFICER, actor=actor)
        grant_membership(voluntario, first_sector, Role.VOLUNTEER, actor=actor)
        reserved = {
            first_sector.pk: Holder(sector1.full_name, sector1.phone, sector1),
            first_block.pk: Holder(manzana1.full_name, manzana1.phone, manzana1),
        }
        posts = staff_posts(dr, sectors + blocks, area="81", reserved=reserved, actor=actor)
        aca_posts = _units(acapulco) if scale != "acapulco" else _units(acapulco, 3) + _units(acapulco, 4)
        aca_counts = staff_posts(dr, aca_posts, area="744", actor=actor)
        for key, value in aca_counts.items():
            posts[key] += value
        registry_stats = needs_stats = aid_stats = messaging_stats = None
        if demo_persons:
            registry_stats = registry.populate(
                escobedo,
                demo_persons,
                seed,
                focus_block=first_block,
                liaison=manzana1,
                case_officer=caso,
                coordinator=coordinacion,
                actor=actor,
            )
            people = {
                "coordinacion": coordinacion,
                "sector1": sector1,
                "manzana1": manzana1,
                "observador": observador,
                "operador": operador,
                "caso": caso,
                "voluntario": voluntario,
            }
            # Needs first: aid campaigns may take needs into account.
            needs_stats = needs_demo.populate(escobedo, seed, people=people, actor=actor)
            aid_stats = aid_demo.populate(escobedo, seed, people=people, actor=actor)
            # Messaging last: its conversation reports a need, its groups follow the needs' working groups.
            messaging_stats = messaging_demo.populate(escobedo, seed, people=people, actor=actor)

    scale_stats = None
    if persons:
        scale_stats = populate_at_scale(acapulco, persons, seed, actor=actor, progress=progress)

    municipalities = 2
    if scale == "national":
        municipalities += build_national(dr, skip={ESCOBEDO[0], ACAPULCO[0]}, actor=actor, progress=progress)

    logins = [
        DemoLogin("coordinacion", Role.COORDINATOR, str(escobedo.name)),
        DemoLogin("sector1", Role.SECTOR_LIAISON, f"{first_sector.name} ({first_sector.code})"),
        DemoLogin("manzana1", Role.BLOCK_LIAISON, f"{first_block.name} ({first_block.code})"),
        DemoLogin("observador", Role.NATIONAL_OBSERVER, str(nation.name)),
        DemoLogin("operador", Role.HOTLINE_OPERATOR, str(escobedo.name)),
        DemoLogin("caso", Role.CASE_OFFICER, str(escobedo.name)),
        DemoLogin("voluntario", Role.VOLUNTEER, f"{first_sector.name} ({first_sector.code})"),
    ]
    return DemoResult(
        seed,
        scale,
        escobedo,
        acapulco,
        logins,
        posts,
        municipalities,
        registry_stats,
        scale_stats,
        needs=needs_stats,
        aid=aid_stats,
        messaging=messaging_stats,
    )


def populate_at_scale(
    municipality: Municipality, persons: int, seed: int, *, actor=None, progress: bool = True
):
    """``persons`` persons (plus 2% likely duplicates) in an Acapulco municipality's registry, with a tqdm bar
    (on stderr) of the rows written. Returns ``demo.registry.RegistryStats``."""
    from tqdm import tqdm

    from redes.demo import registry

    # households + persons + consents + visits, roughly
    total = int(persons * 1.02 / 3.5 + persons * 1.02 + persons * 0.9 + persons / 3.5 * 0.8)
    with tqdm(
        total=total, unit="rows", unit_scale=True, desc="registry", disable=not progress, mininterval=0.5
    ) as bar:
        return registry.populate(
            municipality,
            persons,
            seed,
            area="744",
            home_state="GR",
            postal_codes=registry.ACAPULCO_POSTAL_CODES,
            actor=actor,
            progress=bar.update,
        )
