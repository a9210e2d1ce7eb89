"""The demo's populated registry: households, persons, consents, visits, duplicates to review, ARCO requests.

``populate(municipality, n_persons, seed)`` fills a municipality's blocks with a synthetic, deterministic
population: the persons, their names, birth dates, CURPs and the likely duplicates (1–3 corruptions each) come
from ``registry.synthetic.generate_population``; this module places the households on the municipality's blocks
with addresses of the block's own streets, the colonia of its sector (or zone) and a postal code of the
municipality, a point inside the block polygon, phones (most with WhatsApp, some SMS only, some none) and the
declared vulnerability factors at plausible rates.

Writes:

* households and persons through the registry's bulk writer (``registry.bulk.write``: one transaction, name
  keys, priorities and per-block counts kept as the services keep them);
* the privacy notice, the express consents and the sensitive data of a few persons, and the open ARCO
  requests through ``registry.services`` (so sensitive data is encrypted by ``registry.crypto`` and never
  stored in the clear);
* the everyday consents, the visit history and the pairs found by the duplicate detector over the whole
  municipality (``registry.matching.find_duplicates``, the same scoring as on entry) in bulk, with
  ``core.db.copy_rows`` and one audit row per kind.

Same seed, same data: every draw goes through numpy's PCG64 and ``random.Random`` seeded from ``seed``; dates are
counted back from the day the demo is built.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.db import connections, transaction
from django.utils import timezone

from redes.audit.services import record
from redes.core.curp import curp_check_digit
from redes.core.db import copy_rows, reserve_ids
from redes.registry import bulk, services
from redes.registry.matching import MatchRecord, find_duplicates
from redes.registry.matching import address_key as match_address_key
from redes.registry.models import Consent, DataRequest, Person, Relation, Visit
from redes.registry.synthetic import generate_population
from redes.territories.models import Municipality, Node, NodeKind

#: Postal codes of General Escobedo, N.L. (SEPOMEX 660xx).
ESCOBEDO_POSTAL_CODES = (
    "66050", "66052", "66053", "66054", "66055", "66056", "66057", "66058", "66059", "66060", "66062", "66063",
    "66064", "66065", "66066", "66067", "66068", "66069", "66070", "66072", "66073", "66074", "66075", "66076",
    "66077", "66078", "66079", "66080", "66082", "66083", "66084", "66085", "66086", "66087", "66088", "66089",
    "66090", "66091", "66093", "66094", "66095", "66096",
)  # fmt: skip
#: Postal codes of Acapulco de Juárez, Gro. (SEPOMEX 393xx–399xx).
ACAPULCO_POSTAL_CODES = tuple(f"39{n:03d}" for n in range(300, 910, 5))
#: Colonias of Acapulco, used for its zones (the demo's sectors carry their own names).
ACAPULCO_COLONIAS = (
    "Progreso", "Hornos", "La Garita", "Costa Azul", "Icacos", "Mozimba", "Renacimiento", "Emiliano Zapata",
    "La Laja", "Vista Alegre", "Santa Cruz", "Las Cruces", "Cumbres de Llano Largo", "Ciudad Renacimiento",
    "Jardín Palmas", "Jardín Mangos", "Jardín Azteca", "Hogar Moderno", "Magallanes", "Club Deportivo",
    "Marroquín", "Farallón", "El Coloso", "La Sabana", "Llano Largo", "Pie de la Cuesta", "El Quemado",
    "Bella Vista", "Alta Progreso", "La Máquina", "Petaquillas", "Tres Palos", "Garita de Juárez", "Postal",
    "Morelos", "Centro", "Cuauhtémoc", "Libertad", "Palma Sola", "Simón Bolívar",
)  # fmt: skip
#: Street names for blocks whose name does not carry them.
STREETS = (
    "Hidalgo", "Benito Juárez", "Morelos", "5 de Mayo", "Independencia", "Reforma", "Allende", "Zaragoza",
    "Guerrero", "Madero", "Niños Héroes", "Aldama", "Emiliano Zapata", "Francisco Villa", "Constitución",
    "16 de Septiembre", "Insurgentes", "Revolución", "Lázaro Cárdenas", "Cuauhtémoc", "Matamoros", "Juan Escutia",
    "Pino Suárez", "Nicolás Bravo", "Galeana", "Abasolo", "Iturbide", "Ocampo", "Degollado", "Colón", "Mina",
    "Vicente Guerrero", "Miguel Alemán", "Las Flores", "Los Pinos", "La Paz", "El Carmen", "San Martín",
    "Las Palmas", "Del Río", "Peñasco", "Cañada", "Jacarandas", "Tulipanes", "Nardos", "Gardenias", "Olivos",
)  # fmt: skip
STREET_KINDS = ("Calle", "Calle", "Calle", "Avenida", "Privada", "Cerrada", "Andador")
REFERENCES = (
    "Casa azul con portón negro",
    "Frente a la tienda de la esquina",
    "Junto a la tortillería",
    "Casa de dos pisos, barda blanca",
    "A un lado de la iglesia",
    "Portón verde, tocar fuerte",
    "Enfrente del parque",
    "Casa con tejabán, al fondo del terreno",
    "Entre la farmacia y la papelería",
    "Casa amarilla, tiene perro",
)
NOTICE_VERSION = "2025-01"
NOTICE_TEXT = (
    "Aviso de privacidad integral de la Red Vecinal del municipio. El municipio es responsable del tratamiento "
    "de los datos personales que nos proporcione. Los usaremos para identificar necesidades y entregar apoyos "
    "(necesario), para que la red de enlaces vecinales se comunique con usted (necesario), para enviarle avisos "
    "y alertas por mensaje (opcional) y para elaborar estadísticas anónimas (opcional). Los datos de salud, "
    "discapacidad o riesgo de violencia son sensibles: solo se recaban con su consentimiento expreso, se guardan "
    "cifrados y solo los consulta el personal de atención de casos. Puede ejercer sus derechos de acceso, "
    "rectificación, cancelación y oposición (ARCO) ante la coordinación de la red o en la Unidad de "
    "Transparencia del municipio; le responderemos en un plazo máximo de 20 días hábiles."
)
SENSITIVE_NOTES = {
    "chronic_illness": ("Diabetes tipo 2, necesita insulina", "Hipertensión, toma medicamento diario", ""),
    "disability": ("Usa silla de ruedas", "Debilidad visual severa", ""),
    "pregnancy": ("Embarazo de 7 meses, control en el centro de salud", ""),
    "mental_health": ("Duelo reciente, pidió acompañamiento", ""),
    "violence_risk": ("No llamar al teléfono de la casa; contactar solo en persona", ""),
}

# Rates (share of persons or households).
CONSENT_RATE = 0.88
WHATSAPP_RATE = 0.78
SMS_ONLY_RATE = 0.12  # the rest (~10%) has no phone
VISITED_RATE = 0.42
JOB_LOSS_RATE = 0.07  # adults 18–64
NO_INCOME_RATE = 0.04  # adults 18–64
FOOD_INSECURITY_RATE = 0.05  # households (the head declares it)
SINGLE_CAREGIVER_RATE = 0.30  # heads with children and no spouse in the household


@dataclass
class Site:
    """A block where households live: its streets, colonia, postal code and corner points."""

    node_id: int
    code: str
    colonia: str
    postal_code: str
    streets: tuple[str, ...]
    #: Corners (lon, lat) p0, p1, p3 of a rectangle polygon; a point inside is p0 + u·(p1−p0) + v·(p3−p0).
    corners: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None = None
    number: int = 0  # the next house number


@dataclass
class Rows:
    households: list[bulk.HouseholdRow]
    persons: list[bulk.PersonRow]
    #: Index of each household's site (block) in ``sites``.
    sites: list[Site]
    #: Person rows (by index) to receive consent; ``sensitive`` ones get express consent and sensitive data.
    consent: np.ndarray
    sensitive: list[int]
    visits: list[tuple[int, dt.datetime, str]] = field(
        default_factory=list
    )  # (household index, when, outcome)
    true_pairs: set[tuple[int, int]] = field(default_factory=set)  # person indexes


@dataclass
class RegistryStats:
    households: int = 0
    persons: int = 0
    consents: int = 0
    sensitive: int = 0
    visits: int = 0
    duplicates: int = 0
    requests: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Sites


_STREETS_IN_NAME = re.compile(r"\((.+) y (.+)\)\s*$")
_SECTOR_NAME = re.compile(r"^Sector \d+ (.+)$")


def _corners(geometry: dict | None):
    if not geometry or geometry.get("type") != "Polygon":
        return None
    ring = geometry["coordinates"][0]
    if len(ring) != 5:  # only the demo's rectangles; imported shapes get no point
        return None
    return (tuple(ring[0]), tuple(ring[1]), tuple(ring[3]))


def block_sites(municipality: Municipality, seed: int, postal_codes: tuple[str, ...]) -> list[Site]:
    """The municipality's blocks (leaf units) with their streets, colonia and postal code, in code order."""
    rnd = random.Random(f"sites-{seed}-{municipality.code}")
    units = list(
        Node.objects.filter(municipality=municipality, kind=NodeKind.UNIT)
        .order_by("depth", "code")
        .values("pk", "code", "name", "depth", "parent_id", "geometry", "a3", "a4")
    )
    parents = {u["parent_id"] for u in units}
    names = {u["pk"]: u["name"] for u in units}
    groups: dict[int, tuple[str, str]] = {}  # colonia group node -> (colonia, postal code)
    colonias = list(ACAPULCO_COLONIAS)
    rnd.shuffle(colonias)
    codes = list(postal_codes)
    rnd.shuffle(codes)
    sites = []
    for u in units:
        if u["pk"] in parents:
            continue
        # The colonia is the sector's own name where it has one, else the zone's (or the sector's) turn in the pool.
        group = u["a4"] if u["depth"] >= 5 and u["a4"] else u["a3"] or u["parent_id"]
        if group not in groups:
            match = _SECTOR_NAME.match(names.get(group, "")) if u["depth"] == 4 else None
            n = len(groups)
            colonia = match.group(1) if match else colonias[n % len(colonias)]
            if not match and n >= len(colonias):
                colonia = f"{colonia} Sección {n // len(colonias) + 1}"
            groups[group] = (colonia, codes[n % len(codes)])
        colonia, postal_code = groups[group]
        found = _STREETS_IN_NAME.search(u["name"])
        if found:
            streets = (found.group(1), found.group(2))
        else:
            streets = tuple(f"{rnd.choice(STREET_KINDS)} {rnd.choice(STREETS)}" for _ in range(2))
        sites.append(
            Site(
                u["pk"],
                u["code"],
                colonia,
                postal_code,
                streets,
                _corners(u["geometry"]),
                number=rnd.randrange(100, 2400, 2) + 1,
            )
        )
    sites.sort(key=lambda s: s.code)
    return sites


# ---------------------------------------------------------------------------------------------------------
# Rows


def _local_phone(synthetic: str, area: str) -> str:
    """The synthetic +52744… number moved to the municipality's area code (same 7 last digits)."""
    if area == "744" or not synthetic:
        return synthetic
    digits = synthetic[-7:]
    return f"+52{area}{'8' * (10 - len(area) - 7)}{digits}"


def _local_curp(curp: str, home_state: str) -> str:
    """Move a CURP born in the synthetic home state (Guerrero) to ``home_state``; a wrong check digit stays
    wrong (a corruption of the duplicates)."""
    if not curp or home_state == "GR" or curp[11:13] != "GR":
        return curp
    first17 = curp[:11] + home_state + curp[13:17]
    right = curp_check_digit(curp[:17]) == curp[17]
    digit = curp_check_digit(first17)
    if not right:
        digit = str((int(digit) + 1 + int(curp[17]) % 9) % 10) if digit.isdigit() else "0"
        if digit == curp_check_digit(first17):
            digit = str((int(digit) + 1) % 10)
    return first17 + digit


def _relations(records: list[MatchRecord], originals: int) -> list[str]:
    """Relation to the head for the synthetic members (head first, spouse, children, a grandparent)."""
    out = [""] * len(records)
    head = None
    k = 0
    for i in range(originals):
        r = records[i]
        if head is None or r.household != head.household:
            head, k = r, 0
            out[i] = Relation.HEAD.value
            continue
        k += 1
        year = r.birth_date.year if r.birth_date else r.birth_year
        head_year = head.birth_date.year if head.birth_date else head.birth_year
        gap = (head_year or 0) - (year or 0)
        if gap >= 15:
            out[i] = Relation.PARENT.value
        elif gap <= -12:
            out[i] = Relation.CHILD.value
        elif k == 1:
            out[i] = Relation.SPOUSE.value
        else:
            out[i] = Relation.OTHER_RELATIVE.value
    return out


def generate_rows(
    sites: list[Site],
    n_persons: int,
    seed: int,
    *,
    area: str = "81",
    home_state: str = "NL",
    dup_rate: float = 0.02,
    focus: tuple[int, ...] = (),
    today: dt.date | None = None,
) -> Rows:
    """Household and person rows for ``n_persons`` persons (plus ``dup_rate`` likely duplicates) on ``sites``.

    ``focus``: node ids of blocks that get at least 16 households (the demo block liaison's block)."""
    today = today or timezone.localdate()
    rng = np.random.default_rng([seed, 7301])
    rnd = random.Random(f"registry-{seed}")
    pop = generate_population(n_persons, seed, dup_rate=dup_rate)
    H = len(pop.households)
    records = pop.records
    originals = n_persons

    # Households per block: uneven (gamma weights), focus blocks at least 16, contiguous numbering per block.
    weights = rng.gamma(2.0, 1.0, size=len(sites))
    counts = rng.multinomial(H, weights / weights.sum())
    for i, site in enumerate(sites):
        if site.node_id in focus and counts[i] < 16:
            need = 16 - counts[i]
            donor = int(np.argmax(counts))
            counts[donor] -= need
            counts[i] += need
    site_of = np.repeat(np.arange(len(sites)), counts)

    # Re-censused duplicates live in another household (id > H) at the same address as the original's.
    extra = sorted({r.household for r in records[originals:] if r.household > H})
    extra_of = {hid: records[hid - H - 1].household for hid in extra}  # extra id -> original household id
    hh_index = {hid: H + k for k, hid in enumerate(extra)}  # household id (1-based) -> row index

    u = rng.uniform(0.08, 0.92, size=(H, 2))
    phone_kind = rng.random(H)
    step = rng.integers(1, 4, size=H) * 2
    interior = rng.random(H)
    reference = rng.random(H)
    street_pick = rng.integers(0, 2, size=H)
    households: list[bulk.HouseholdRow] = []
    hh_sites: list[int] = []
    for h, ph in enumerate(pop.households):
        s = sites[int(site_of[h])]
        s.number += int(step[h])
        lat = lon = None
        if s.corners:
            (x0, y0), (x1, y1), (x3, y3) = s.corners
            a, b = u[h]
            lon = round(x0 + a * (x1 - x0) + b * (x3 - x0), 7)
            lat = round(y0 + a * (y1 - y0) + b * (y3 - y0), 7)
        if phone_kind[h] < WHATSAPP_RATE:
            phones, channel = [(_local_phone(ph.phone, area), True, True, True)], "whatsapp"
        elif phone_kind[h] < WHATSAPP_RATE + SMS_ONLY_RATE:
            phones, channel = [(_local_phone(ph.phone, area), False, True, True)], "sms"
        else:
            phones, channel = [], "visit"
        households.append(
            bulk.HouseholdRow(
                node_id=s.node_id,
                street=s.streets[int(street_pick[h]) % len(s.streets)],
                ext_number=str(s.number),
                int_number=rnd.choice("ABC") if interior[h] < 0.06 else "",
                colonia=s.colonia,
                postal_code=s.postal_code,
                reference=REFERENCES[int(reference[h] * 100) % len(REFERENCES)] if reference[h] < 0.2 else "",
                lat=lat,
                lon=lon,
                preferred_channel=channel,
                phones=phones,
            )
        )
        hh_sites.append(int(site_of[h]))
    for hid in extra:
        original = households[extra_of[hid] - 1]
        same_phone = rnd.random() < 0.5 and bool(original.phones)
        households.append(
            bulk.HouseholdRow(
                node_id=original.node_id,
                street=original.street,
                ext_number=original.ext_number,
                int_number=original.int_number,
                colonia=original.colonia,
                postal_code=original.postal_code,
                lat=original.lat,
                lon=original.lon,
                preferred_channel=original.preferred_channel if same_phone else "visit",
                phones=original.phones if same_phone else (),
            )
        )
        hh_sites.append(hh_sites[extra_of[hid] - 1])

    # Persons.
    relations = _relations(records, originals)
    hh_phone = {
        h: (households[h].phones[0][0] if households[h].phones else "") for h in range(len(households))
    }
    draws = rng.random((len(records), 3))
    ref_year = today.year
    persons: list[bulk.PersonRow] = []
    for j, r in enumerate(records):
        hidx = hh_index.get(r.household, r.household - 1)
        relation = relations[j] if j < originals else ""
        year = r.birth_date.year if r.birth_date else r.birth_year
        age = ref_year - year if year else None
        factors = []
        if age is not None and 18 <= age < 65:
            if draws[j, 0] < JOB_LOSS_RATE:
                factors.append("job_loss")
            elif draws[j, 0] < JOB_LOSS_RATE + NO_INCOME_RATE:
                factors.append("no_income")
        home = extra_of.get(r.household, r.household)
        phone = "" if r.phone == pop.households[home - 1].phone else _local_phone(r.phone, area)
        if relation == Relation.HEAD:
            if draws[j, 1] < FOOD_INSECURITY_RATE:
                factors.append("food_insecurity")
            if not hh_phone[hidx] and not phone:
                factors.append("no_phone")
        persons.append(
            bulk.PersonRow(
                household=hidx,
                full_name=" ".join(p for p in (r.given, r.surname1, r.surname2) if p),
                given_name=r.given,
                surname1=r.surname1,
                surname2=r.surname2,
                birth_date=r.birth_date,
                birth_year=r.birth_date.year if r.birth_date else r.birth_year,
                age_stated=r.birth_date is None and r.birth_year is not None,
                sex=r.sex,
                curp=_local_curp(r.curp, home_state),
                phone=phone,
                relation=relation,
                factors=factors,
            )
        )
    # Duplicates: the relation of the record they copy when in the same household, else head or not related.
    id_to_index = {r.id: j for j, r in enumerate(records)}
    true_pairs = set()
    for a, b in pop.true_pairs:
        ia, ib = id_to_index[a], id_to_index[b]
        true_pairs.add((ia, ib))
        pa, pb = persons[ia], persons[ib]
        if pb.household == pa.household:
            pb.relation = pa.relation if pa.relation != Relation.HEAD else Relation.OTHER_RELATIVE.value
        elif pb.household >= H:
            pb.relation = Relation.HEAD.value
        else:
            pb.relation = Relation.NON_RELATIVE.value
    # Single caregivers: heads living with children and no spouse.
    has_spouse = {p.household for p in persons if p.relation == Relation.SPOUSE}
    has_child = {p.household for p in persons if p.relation == Relation.CHILD}
    for j, p in enumerate(persons):
        if (
            p.relation == Relation.HEAD
            and p.household in has_child
            and p.household not in has_spouse
            and draws[j, 2] < SINGLE_CAREGIVER_RATE
        ):
            p.factors = [*p.factors, "single_caregiver"]

    consent = rng.random(len(persons)) < CONSENT_RATE
    # A few persons (adults with consent) hold sensitive data given with express consent.
    n_sensitive = min(40, max(4, len(persons) // 300))
    adults = [
        j
        for j, p in enumerate(persons)
        if consent[j] and p.birth_year and 18 <= ref_year - p.birth_year < 90 and j < originals
    ]
    sensitive = sorted(rnd.sample(adults, min(n_sensitive, len(adults))))
    focus_sites = {i for i, s in enumerate(sites) if s.node_id in focus}
    focus_people = [j for j in adults if hh_sites[persons[j].household] in focus_sites and j not in sensitive]
    sensitive = sorted(
        {*sensitive, *focus_people[:2]}
    )  # the liaison's block has a couple too (folded for them)

    # Visits: some households visited once or more in the last months (most recent sets last_visit_at).
    now = timezone.now()
    visits = []
    visited = rng.random(len(households)) < VISITED_RATE
    times = rng.integers(1, 4, size=len(households))
    outcomes = ("contacted",) * 14 + ("not_home",) * 4 + ("refused", "moved", "vacant")
    for h in np.flatnonzero(visited):
        whens = sorted(
            (
                now - dt.timedelta(days=d, minutes=rnd.randrange(600))
                for d in rnd.sample(range(1, 180), int(times[h]))
            ),
            reverse=True,
        )
        for when in whens:
            visits.append((int(h), when, rnd.choice(outcomes)))
        households[int(h)].last_visit_at = whens[0]
    return Rows(households, persons, sites, consent, sensitive, visits, true_pairs)


# ---------------------------------------------------------------------------------------------------------
# Writing


class _Adapt:
    """``core.db.adapt_uuid`` / ``adapt_datetime`` with the connection looked up once (millions of calls)."""

    def __init__(self, model):
        self.postgres = connections[model.objects.db].vendor == "postgresql"
        self.ops = connections[model.objects.db].ops

    def uuid(self) -> object:
        value = uuid.uuid4()
        return value if self.postgres else value.hex

    def datetime(self, value):
        return self.ops.adapt_datetimefield_value(value)


@contextmanager
def _sqlite_cache(megabytes: int):
    """A larger SQLite page cache while writing many rows: the random uuid and name indexes of a big table
    thrash the default 2 MB cache (measured: about twice as fast at 100k persons)."""
    conn = connections[Person.objects.db]
    if conn.vendor != "sqlite":
        yield
        return
    with conn.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{int(megabytes) * 1024}")
    try:
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before)}")


def _write_consents(municipality_id, rows: Rows, result: bulk.WriteResult, notice, *, captured_by, seed, now):
    rng = np.random.default_rng([seed, 4242])
    n = len(rows.persons)
    draw = rng.random((n, 3))
    days = rng.integers(1, 300, size=n)
    channels = ("in_person",) * 14 + ("paper",) * 3 + ("phone",) * 2 + ("whatsapp",)
    sensitive = set(rows.sensitive)
    adapt = _Adapt(Consent)
    data = []
    for j in np.flatnonzero(rows.consent):
        j = int(j)
        purposes = ["aid", "contact"]
        if draw[j, 0] < 0.75:
            purposes.append("messages")
        if draw[j, 1] < 0.6:
            purposes.append("statistics")
        household = rows.persons[j].household
        node_id = rows.households[household].node_id
        data.append(
            [
                adapt.uuid(),
                municipality_id,
                result.person_ids[j],
                node_id,
                notice.pk,
                json.dumps(purposes),
                j in sensitive,
                channels[int(draw[j, 2] * len(channels))],
                captured_by.get(node_id),
                adapt.datetime(now - dt.timedelta(days=int(days[j]))),
                "",
            ]
        )
    for row, pk in zip(data, reserve_ids(Consent, len(data)), strict=True):
        row.insert(0, pk)
    columns = (
        "id", "uuid", "municipality_id", "person_id", "node_id", "notice_id", "purposes", "sensitive", "channel",
        "captured_by_id", "captured_at", "revoke_reason",
    )  # fmt: skip
    for start in range(0, len(data), 20000):
        copy_rows(Consent, columns, data[start : start + 20000])
    return len(data)


def _write_visits(municipality_id, rows: Rows, result: bulk.WriteResult, *, visited_by):
    adapt = _Adapt(Visit)
    data = []
    for h, when, outcome in rows.visits:
        node_id = rows.households[h].node_id
        data.append(
            [
                adapt.uuid(),
                municipality_id,
                result.household_ids[h],
                node_id,
                adapt.datetime(when),
                visited_by.get(node_id),
                outcome,
                "",
            ]
        )
    for row, pk in zip(data, reserve_ids(Visit, len(data)), strict=True):
        row.insert(0, pk)
    columns = (
        "id", "uuid", "municipality_id", "household_id", "node_id", "visited_at", "visited_by_id", "outcome", "note",
    )  # fmt: skip
    for start in range(0, len(data), 20000):
        copy_rows(Visit, columns, data[start : start + 20000])
    return len(data)


def _match_record(j: int, p: bulk.PersonRow, rows: Rows, addresses: dict[int, str]) -> MatchRecord:
    h = rows.households[p.household]
    address = addresses.get(p.household)
    if address is None:
        address = addresses[p.household] = match_address_key(h.street, h.ext_number, h.postal_code)
    return MatchRecord(
        id=j,
        given=p.given_name,
        surname1=p.surname1,
        surname2=p.surname2,
        birth_date=p.birth_date,
        birth_year=p.birth_year if p.birth_date is None else None,
        sex=p.sex,
        curp=p.curp,
        address=address,
        phone=p.phone or (h.phones[0][0] if h.phones else ""),
        household=p.household,
    )


#: Above this many persons, the detector runs over the records of the known duplicates only (seconds, not minutes).
FULL_DEDUPE_UP_TO = 200_000


def _write_duplicates(municipality_id, rows: Rows, result: bulk.WriteResult) -> int:
    """Run the duplicate detector over the municipality and queue every pair it finds for review.

    Up to ``FULL_DEDUPE_UP_TO`` persons it compares everyone (as an import does), so family members that look
    alike show up too; above, only the records involved in the generated duplicates."""
    addresses: dict[int, str] = {}
    if len(rows.persons) <= FULL_DEDUPE_UP_TO:
        chosen = range(len(rows.persons))
    else:
        chosen = sorted({j for pair in rows.true_pairs for j in pair})
    pairs = find_duplicates([_match_record(j, rows.persons[j], rows, addresses) for j in chosen])
    fresh = {}
    for pair in pairs:
        a, b = sorted((int(pair.id_a), int(pair.id_b)))
        ids = (result.person_ids[a], result.person_ids[b])
        if ids not in fresh:
            node_id = rows.households[rows.persons[b].household].node_id
            fresh[ids] = (*ids, node_id, pair.score, pair.reasons)
    return bulk.add_duplicate_candidates(municipality_id, list(fresh.values()), source="import")


def _received_for(today: dt.date, *, due_in: int) -> dt.date:
    """The day a request must have been received for its 20-business-day deadline to fall ``due_in`` days
    from ``today`` (negative: overdue), the nearest business day that gives it."""
    for back in range(0, 80):
        day = today - dt.timedelta(days=back)
        due = services.add_business_days(day, services.ARCO_BUSINESS_DAYS)
        if (due - today).days <= due_in:
            return day
    return today


def _open_requests(rows: Rows, result: bulk.WriteResult, rnd: random.Random, *, actor, today) -> int:
    candidates = [j for j in np.flatnonzero(rows.consent) if int(j) not in set(rows.sensitive)]
    picks = rnd.sample(candidates, 2)
    soon = Person.objects.get(pk=result.person_ids[int(picks[0])])
    overdue = Person.objects.get(pk=result.person_ids[int(picks[1])])
    tz = timezone.get_current_timezone()

    def at(day):
        return dt.datetime.combine(day, dt.time(11, 30), tzinfo=tz)

    services.open_data_request(
        soon,
        DataRequest.Kind.ACCESS,
        actor=actor,
        details="Pide por escrito una copia de los datos que tiene la red sobre ella y su familia.",
        when=at(_received_for(today, due_in=3)),
    )
    services.open_data_request(
        overdue,
        DataRequest.Kind.OBJECTION,
        actor=actor,
        purpose="messages",
        details="Ya no quiere recibir avisos por WhatsApp.",
        when=at(_received_for(today, due_in=-4)),
    )
    return 2


def populate(
    municipality: Municipality,
    n_persons: int,
    seed: int = 1,
    *,
    area: str = "81",
    home_state: str = "NL",
    postal_codes: tuple[str, ...] = ESCOBEDO_POSTAL_CODES,
    dup_rate: float = 0.02,
    focus_block: Node | None = None,
    liaison=None,
    case_officer=None,
    coordinator=None,
    actor=None,
    progress: Callable[[int], None] | None = None,
    duplicates: bool = True,
) -> RegistryStats:
    """Fill ``municipality`` with ``n_persons`` persons (see the module docstring). Returns what was written.

    ``focus_block`` (the demo block liaison's block) gets at least 16 households, and ``liaison`` is recorded as
    the one who captured their consents and visited them. ``case_officer`` records the sensitive data (express
    consent first), ``coordinator`` registers the ARCO requests. ``progress`` is called with row counts."""
    import time

    stats = RegistryStats()
    clock = time.perf_counter()
    today = timezone.localdate()
    now = timezone.now()
    sites = block_sites(municipality, seed, postal_codes)
    if not sites:
        return stats
    focus = (focus_block.pk,) if focus_block is not None else ()
    rows = generate_rows(
        sites, n_persons, seed, area=area, home_state=home_state, dup_rate=dup_rate, focus=focus
    )
    stats.seconds["generate"] = time.perf_counter() - clock
    rnd = random.Random(f"registry-write-{seed}")
    liaison_of = {focus_block.pk: liaison.pk} if focus_block is not None and liaison is not None else {}

    with transaction.atomic(), _sqlite_cache(512 if n_persons > 50_000 else 64):
        clock = time.perf_counter()
        notice = services.current_notice(municipality) or services.publish_notice(
            municipality, version=NOTICE_VERSION, text=NOTICE_TEXT, actor=coordinator or actor
        )
        result = bulk.write(municipality.pk, rows.households, rows.persons, actor=actor, progress=progress)
        stats.households, stats.persons = len(result.household_ids), len(result.person_ids)
        stats.seconds["households_persons"] = time.perf_counter() - clock

        clock = time.perf_counter()
        stats.consents = _write_consents(
            municipality.pk, rows, result, notice, captured_by=liaison_of, seed=seed, now=now
        )
        record(
            "registry.consent.bulk_create",
            actor=actor,
            municipality=municipality,
            summary=notice.version,
            changes={"consents": stats.consents},
        )
        stats.visits = _write_visits(municipality.pk, rows, result, visited_by=liaison_of)
        record(
            "registry.visit.bulk_create",
            actor=actor,
            municipality=municipality,
            changes={"visits": stats.visits},
        )
        stats.seconds["consents_visits"] = time.perf_counter() - clock
        if progress:
            progress(stats.consents + stats.visits)

        clock = time.perf_counter()
        if duplicates:
            stats.duplicates = _write_duplicates(municipality.pk, rows, result)
            record(
                "registry.duplicate.flag",
                actor=actor,
                municipality=municipality,
                summary="import",
                changes={"pairs": stats.duplicates},
            )
        stats.seconds["duplicates"] = time.perf_counter() - clock

        # The few sensitive records and the ARCO requests go through the services, one by one.
        clock = time.perf_counter()
        sensitive_rnd = random.Random(f"sensitive-{seed}")
        for j in rows.sensitive:
            person = Person.objects.get(pk=result.person_ids[j])
            p = rows.persons[j]
            codes = ["chronic_illness", "chronic_illness", "disability", "mental_health", "violence_risk"]
            if p.sex == "M" and p.birth_year and today.year - p.birth_year < 40:
                codes.append("pregnancy")
            factor = sensitive_rnd.choice(codes)
            factors = [factor]
            if factor == "chronic_illness" and sensitive_rnd.random() < 0.25:
                factors.append("disability")
            services.set_sensitive(
                person,
                actor=case_officer,
                factors=factors,
                notes=sensitive_rnd.choice(SENSITIVE_NOTES[factor]),
            )
        stats.sensitive = len(rows.sensitive)
        stats.requests = _open_requests(rows, result, rnd, actor=coordinator or actor, today=today)
        stats.seconds["services"] = time.perf_counter() - clock
    return stats
