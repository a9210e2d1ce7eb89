"""The demo's needs: about 300 needs over the last weeks of the demo municipality, in every state of the flow.

The last ``DAYS`` days are replayed in order with the movable clock (``core.clock``): needs are registered,
acknowledged, assigned, worked on, referred, resolved and closed at their own instants, and the escalation
sweep runs every ``SWEEP_HOURS`` hours in between, so overdue needs climb block → sector → coordinators and their
timelines show it. Every write goes through ``needs.services``. Deterministic with the seed (times are relative
to the moment the demo is built).

The story of the issue is in it: the block liaison (``manzana1``) registered a food need for the most vulnerable
household of the block three days ago; nobody acknowledged it, so it went to the sector liaison (``sector1``) and
then to the coordinators. The hotline operator (``operador``) took violence reports that only the case officer
(``caso``) sees.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from redes.core import clock
from redes.needs import services
from redes.needs.models import OPEN_STATUSES, Need, NeedCategory, NeedEvent, Referral
from redes.registry.models import Household
from redes.territories.models import Node, NodeKind

DAYS = 18
SWEEP_HOURS = 6
N_NEEDS = 300

CATEGORY_WEIGHTS = {
    "alimentacion": 30,
    "salud": 20,
    "emocional": 10,
    "seguridad": 10,
    "economia": 12,
    "informacion": 10,
    "otro": 8,
}
URGENCY_WEIGHTS = {"low": 15, "normal": 50, "high": 25, "critical": 10}
CHANNEL_WEIGHTS = {"field": 55, "hotline": 25, "public": 10, "whatsapp": 10}
#: What becomes of each need: fate → weight.
FATES = {
    "closed": 28,
    "resolved": 14,
    "in_progress": 14,
    "assigned": 10,
    "triaged": 8,
    "untouched": 16,
    "cancelled": 4,
    "duplicate": 3,
    "reopened": 3,
}
#: Needs older than a week have mostly been dealt with.
OLD_FATES = {
    "closed": 52,
    "resolved": 18,
    "in_progress": 8,
    "assigned": 3,
    "untouched": 5,
    "cancelled": 6,
    "duplicate": 4,
    "reopened": 4,
}
DESCRIPTIONS = {
    "alimentacion": [
        "Sin despensa esta semana",
        "Adulta mayor que vive sola, sin alimentos",
        "Familia con cuatro niños sin comida",
    ],
    "salud": [
        "Necesita insulina",
        "Medicamento para la presión",
        "Silla de ruedas para su mamá",
        "Consulta de seguimiento",
    ],
    "emocional": ["Duelo reciente, pide acompañamiento", "Ansiedad por la pérdida del empleo"],
    "seguridad": [
        "Luminaria fundida en la esquina",
        "Robos frecuentes en la cuadra",
        "Perros agresivos sueltos",
    ],
    "economia": ["Perdió el trabajo, busca empleo", "No puede pagar la luz", "Apoyo para un pequeño negocio"],
    "informacion": ["Cómo inscribirse a la pensión de adultos mayores", "Horarios del centro comunitario"],
    "otro": ["Fuga de agua en la calle", "Pide ayuda para un trámite"],
}
VIOLENCE = [
    "Vecina reporta gritos y golpes frecuentes en el domicilio",
    "Mujer pide orientación: su pareja la amenaza",
    "Adolescente relata maltrato en casa",
]


@dataclass
class NeedsStats:
    needs: int = 0
    by_status: dict = field(default_factory=dict)
    open: int = 0
    overdue: int = 0
    escalated: int = 0
    escalations: int = 0
    referrals: int = 0
    sensitive: int = 0
    offices: int = 0
    groups: int = 0
    rules: int = 0
    story: str = ""  # uuid of the escalated food need of the story

    def lines(self) -> list[str]:
        return [
            ngettext(
                "Needs: %(count)s (%(open)s open, %(overdue)s overdue, %(escalated)s escalated up the tree).",
                "Needs: %(count)s (%(open)s open, %(overdue)s overdue, %(escalated)s escalated up the tree).",
                self.needs,
            )
            % {"count": self.needs, "open": self.open, "overdue": self.overdue, "escalated": self.escalated},
            _(
                "Needs: %(referrals)s referrals to %(offices)s offices and hotlines, %(groups)s working groups, "
                "%(rules)s routing rules; %(sensitive)s violence reports only the case officer (caso) sees."
            )
            % {
                "referrals": self.referrals,
                "offices": self.offices,
                "groups": self.groups,
                "rules": self.rules,
                "sensitive": self.sensitive,
            },
        ]


def _pick(rnd: random.Random, weights: dict) -> str:
    return rnd.choices(list(weights), weights=list(weights.values()))[0]


class _Replay:
    """Actions at instants, run in time order, with sweeps in between."""

    def __init__(self):
        self.actions: list[tuple[dt.datetime, int, object]] = []

    def at(self, when: dt.datetime, fn) -> None:
        self.actions.append((when, len(self.actions), fn))

    def run(self, start: dt.datetime, end: dt.datetime, municipality) -> None:
        t = start
        while t <= end:
            self.at(t, lambda t=t: services.escalate_overdue(now=t, municipality=municipality))
            t += dt.timedelta(hours=SWEEP_HOURS)
        for when, _order, fn in sorted(self.actions, key=lambda a: (a[0], a[1])):
            with clock.travel(when):
                fn()


def populate(municipality, seed: int, *, people: dict, actor=None) -> NeedsStats:
    rnd = random.Random(f"needs-{seed}-{municipality.code}")
    services.ensure_defaults(municipality)
    coord, sector1, manzana1 = people["coordinacion"], people["sector1"], people["manzana1"]
    operador, caso, voluntario = people["operador"], people["caso"], people["voluntario"]
    cats = {c.code: c for c in NeedCategory.objects.filter(municipality=municipality)}

    # --- offices, hotlines, groups, rules -----------------------------------------------------------------
    def office(name, kind, phone, hours, codes):
        return services.save_office(
            municipality,
            actor=actor,
            name=name,
            kind=kind,
            phone=phone,
            hours=hours,
            categories=[cats[c] for c in codes],
        )

    dif = office(
        "DIF municipal",
        "office",
        "81 8220 6100",
        "Lunes a viernes, 8 a 16 h",
        ["alimentacion", "economia", "emocional"],
    )
    salud = office(
        "Secretaría de Salud municipal", "office", "81 8220 6150", "Lunes a sábado, 8 a 20 h", ["salud"]
    )
    seguridad = office("Seguridad Pública municipal", "office", "911", "24 h", ["seguridad"])
    mujeres = office(
        "Instituto Municipal de las Mujeres",
        "office",
        "81 8220 6190",
        "Lunes a viernes, 9 a 17 h",
        ["violencia"],
    )
    vida = office(
        "Línea de la Vida (atención médica y psicológica)",
        "hotline",
        "800 911 2000",
        "24 h",
        ["salud", "emocional"],
    )
    linea_mujeres = office(
        "Línea de atención a mujeres en situación de violencia",
        "hotline",
        "800 108 4053",
        "24 h",
        ["violencia"],
    )
    offices = [dif, salud, seguridad, mujeres, vida, linea_mujeres]

    sectors = list(
        Node.objects.filter(
            municipality=municipality, kind=NodeKind.UNIT, depth=municipality.node.depth + 1
        ).order_by("code")
    )
    first_sector = sectors[0]
    first_block = (
        Node.objects.filter(liaison_assignments__user=manzana1).first()
        or Node.objects.filter(parent=first_sector).order_by("code").first()
    )
    brigada = services.save_working_group(
        municipality,
        actor=actor,
        name="Brigada de despensas del sector 1",
        node=first_sector,
        theme=cats["alimentacion"],
        members=[voluntario, sector1],
    )
    acompanamiento = services.save_working_group(
        municipality,
        actor=actor,
        name="Acompañamiento emocional",
        node=municipality.node,
        theme=cats["emocional"],
        members=[operador],
    )
    rules = [
        services.save_routing_rule(
            municipality, actor=actor, category="economia", target="office", office=dif
        ),
        services.save_routing_rule(
            municipality, actor=actor, category="emocional", target="group", group=acompanamiento
        ),
        services.save_routing_rule(
            municipality, actor=actor, category="informacion", target="user", user=operador
        ),
    ]

    # --- who acts where -------------------------------------------------------------------------------------
    def handler(node: Node):
        if node.pk == first_block.pk:
            return manzana1
        if (
            node.depth > municipality.node.depth
            and node.ancestor_ids[municipality.node.depth + 1] == first_sector.pk
        ):
            return sector1
        return coord

    households = list(
        Household.objects.filter(municipality=municipality)
        .order_by("pk")
        .values_list("pk", "node_id", "priority")
    )
    blocks = list(
        Node.objects.filter(
            municipality=municipality, kind=NodeKind.UNIT, depth=municipality.leaf_depth
        ).order_by("code")
    )
    nodes = {n.pk: n for n in blocks}
    now = clock.now().replace(microsecond=0)
    start = now - dt.timedelta(days=DAYS)
    replay = _Replay()
    created: list[Need] = []
    skipped: list[str] = []

    def later(base: dt.datetime, hours_low: float, hours_high: float) -> dt.datetime | None:
        when = base + dt.timedelta(hours=rnd.uniform(hours_low, hours_high))
        return when if when < now else None

    def schedule_fate(need_box: list, fate: str, t: dt.datetime, category: str):
        """Plan what happens to a need after it is registered (at ``t``)."""
        steps = []

        def need():
            return Need.objects.get(pk=need_box[0].pk)

        def do(fn):
            def run():
                n = need()
                try:
                    fn(n)
                except (ValidationError, PermissionDenied):  # a step that no longer fits is skipped
                    skipped.append(fn.__name__)

            return run

        on_time = rnd.random() < 0.8
        window = (2, 20) if on_time else (26, 60)
        if fate in ("untouched",):
            return
        t_ack = later(t, *window)
        if t_ack is None:
            return

        def acting(n):
            return (
                caso
                if n.sensitive
                else handler(n.holder_node if n.holder_node.depth > municipality.node.depth else n.node)
            )

        def triage(n):
            services.triage_need(n, actor=acting(n), urgency=n.urgency, note=_pick_note(rnd, "triage"))

        if fate == "triaged":
            steps.append((t_ack, triage))
        elif fate in ("cancelled",):
            steps.append(
                (t_ack, lambda n: services.cancel_need(n, actor=acting(n), reason="Registrada por error"))
            )
        elif fate == "duplicate":

            def dup(n):
                others = [
                    o
                    for o in created
                    if o.pk != n.pk and o.node_id == n.node_id and o.created_at < n.created_at
                ]
                if others:
                    services.mark_duplicate(n, actor=acting(n), of=others[-1])
                else:
                    services.cancel_need(n, actor=acting(n), reason="Duplicada")

            steps.append((t_ack, dup))
        else:

            def assign(n):
                who = acting(n)
                if (
                    n.status not in OPEN_STATUSES
                    or n.assigned_user_id
                    or n.assigned_group_id
                    or n.assigned_office_id
                ):
                    if n.acknowledged_at is None:
                        services.acknowledge_need(n, actor=who)
                    return
                if n.node.pk in first_sector_blocks and category in ("alimentacion", "salud", "otro"):
                    services.assign_need(n, actor=who, user=voluntario)
                elif n.node.pk in first_sector_blocks and category == "alimentacion":
                    services.assign_need(n, actor=who, group=brigada)
                elif category in ("salud", "seguridad"):
                    services.assign_need(
                        n, actor=who, office={"salud": salud, "seguridad": seguridad}[category]
                    )
                else:
                    services.assign_need(n, actor=who, user=who)

            steps.append((t_ack, assign))
            if fate != "assigned":
                t_start = later(t_ack, 1, 24)
                if t_start:

                    def start_(n):
                        worker = voluntario if n.assigned_user_id == voluntario.pk else acting(n)
                        services.start_need(n, actor=worker)

                    steps.append((t_start, start_))
                    if rnd.random() < 0.2 and category in ("salud", "seguridad", "emocional", "alimentacion"):
                        target = {
                            "salud": vida,
                            "seguridad": seguridad,
                            "emocional": vida,
                            "alimentacion": dif,
                        }[category]
                        box = []

                        def refer(n, target=target, box=box):
                            box.append(
                                services.refer_need(n, actor=acting(n), office=target, note="Se canalizó")
                            )

                        steps.append((t_start + dt.timedelta(minutes=30), refer))
                        t_answer = later(t_start, 24, 72)
                        if t_answer:

                            def answer(n, box=box):
                                if box:
                                    status = rnd.choice(["accepted", "resolved", "resolved", "no_answer"])
                                    services.update_referral(
                                        box[0], actor=acting(n), status=status, note="Respuesta de la oficina"
                                    )

                            steps.append((t_answer, answer))
                    if fate in ("resolved", "closed", "reopened"):
                        t_res = later(t_start, 6, 96)
                        if t_res:
                            outcome = rnd.choices(
                                ["solved", "partly_solved", "referred", "not_solved", "unreachable"],
                                [60, 15, 10, 10, 5],
                            )[0]

                            def resolve(n, outcome=outcome):
                                worker = voluntario if n.assigned_user_id == voluntario.pk else acting(n)
                                services.resolve_need(n, actor=worker, outcome=outcome, note="Atendida")

                            steps.append((t_res, resolve))
                            if fate in ("closed", "reopened"):
                                t_close = later(t_res, 2, 48)
                                if t_close:
                                    sat = rnd.choice([None, 3, 4, 4, 5, 5, 5, 2])

                                    def close(n, sat=sat):
                                        services.close_need(
                                            n,
                                            actor=acting(n),
                                            satisfaction=sat,
                                            note="Cerrada con la familia",
                                        )

                                    steps.append((t_close, close))
                                    if fate == "reopened":
                                        t_re = later(t_close, 12, 72)
                                        if t_re:
                                            steps.append(
                                                (
                                                    t_re,
                                                    lambda n: services.reopen_need(
                                                        n, actor=acting(n), note="Volvió a necesitar apoyo"
                                                    ),
                                                )
                                            )
        for when, fn in steps:
            replay.at(when, do(fn))

    first_sector_blocks = {b.pk for b in blocks if b.parent_id == first_sector.pk}

    # --- the story: a food need left unacknowledged climbs block → sector → coordinators ------------------
    focus = sorted((h for h in households if h[1] == first_block.pk), key=lambda h: (-h[2], h[0]))
    story_box: list = []

    def story():
        story_box.append(
            services.register_need(
                actor=manzana1,
                municipality=municipality,
                category="alimentacion",
                description="Adulta mayor sola, sin despensa ni ingresos esta semana",
                urgency="normal",
                channel="field",
                household=Household.objects.get(pk=focus[0][0]) if focus else None,
                node=first_block,
            )
        )
        created.append(story_box[0])

    replay.at(now - dt.timedelta(days=2, hours=20), story)

    # --- violence reports by the hotline, held by the case officer ---------------------------------------
    for i, text in enumerate(VIOLENCE):
        t = now - dt.timedelta(days=rnd.uniform(2, DAYS - 2))
        block = rnd.choice(blocks)
        box: list = []

        def report(text=text, block=block, box=box):
            box.append(
                services.register_need(
                    actor=operador,
                    municipality=municipality,
                    category="violencia",
                    description=text,
                    urgency="high",
                    channel="hotline",
                    node=block,
                )
            )
            created.append(box[0])

        replay.at(t, report)

        def take(box=box):
            services.assign_need(
                Need.objects.get(pk=box[0].pk), actor=caso, user=caso, note="Contacto inicial realizado"
            )

        replay.at(t + dt.timedelta(hours=2), take)

        def refer_violence(box=box):
            services.refer_need(
                Need.objects.get(pk=box[0].pk), actor=caso, office=mujeres, note="Canalizada con cita"
            )

        replay.at(t + dt.timedelta(hours=5), refer_violence)
        if i == 0:

            def resolve_violence(box=box):
                need = Need.objects.get(pk=box[0].pk)
                services.resolve_need(need, actor=caso, outcome="referred", note="Atendida por el instituto")

            replay.at(t + dt.timedelta(days=1, hours=2), resolve_violence)

    # --- the rest -------------------------------------------------------------------------------------------
    for _i in range(N_NEEDS - 1 - len(VIOLENCE)):
        t = start + dt.timedelta(seconds=rnd.uniform(0, DAYS * 86400 - 3600))
        category = _pick(rnd, CATEGORY_WEIGHTS)
        urgency = _pick(rnd, URGENCY_WEIGHTS)
        channel = _pick(rnd, CHANNEL_WEIGHTS)
        fate = _pick(rnd, FATES if t > now - dt.timedelta(days=7) else OLD_FATES)
        use_household = households and rnd.random() < 0.6
        if use_household:
            household_id, node_id, _priority = rnd.choice(households)
            node = nodes.get(node_id) or rnd.choice(blocks)
        else:
            household_id, node = None, rnd.choice(blocks)
        description = rnd.choice(DESCRIPTIONS[category])
        box: list = []

        def register(
            category=category,
            urgency=urgency,
            channel=channel,
            node=node,
            household_id=household_id,
            description=description,
            box=box,
        ):
            reporter = {"hotline": operador, "public": None, "whatsapp": None}.get(channel, handler(node))
            box.append(
                services.register_need(
                    actor=reporter,
                    municipality=municipality,
                    category=category,
                    description=description,
                    urgency=urgency,
                    channel=channel,
                    node=node,
                    household=Household.objects.get(pk=household_id) if household_id else None,
                    contact_phone="81 1234 5678"
                    if channel in ("public", "whatsapp") and rnd.random() < 0.5
                    else "",
                )
            )
            created.append(box[0])

        replay.at(t, register)
        schedule_fate(box, fate, t, category)

    replay.run(start, now, municipality)

    # --- stats ----------------------------------------------------------------------------------------------
    qs = Need.objects.filter(municipality=municipality)
    stats = NeedsStats(
        needs=qs.count(),
        by_status=dict(qs.values_list("status").annotate(n=Count("id")).values_list("status", "n")),
        open=qs.filter(status__in=OPEN_STATUSES).count(),
        overdue=qs.filter(status__in=OPEN_STATUSES, due_at__lte=now).count(),
        escalated=qs.filter(escalation_level__gt=0).count(),
        escalations=NeedEvent.objects.filter(need__municipality=municipality, kind="escalated").count(),
        referrals=Referral.objects.filter(need__municipality=municipality).count(),
        sensitive=qs.filter(sensitive=True).count(),
        offices=len(offices),
        groups=2,
        rules=len(rules),
        story=str(story_box[0].uuid) if story_box else "",
    )
    return stats


def _pick_note(rnd: random.Random, kind: str) -> str:
    return rnd.choice(["Confirmado con la familia", "Visitado hoy", "Se llamó por teléfono", ""])
