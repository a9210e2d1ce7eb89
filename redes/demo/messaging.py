"""The demo's messaging: the console channel, the default texts and menus, the network's groups, a neighbour's
conversation, a cascade broadcast mid-way and a finished ordinary broadcast.

Every write goes through the messaging services (``accounts``, ``defaults``, ``groups``, ``ingest``,
``broadcasts``) and the dispatcher's one pass (``dispatcher.run_once``: intake, notifications, cascade tick,
outbox), the same path as real use. Times are relative to the moment the demo is built (``core.clock``).

The story of the issue is in it:

- a neighbour of manzana1's block "texts" the menu through the console from the household's registered phone,
  reports a need (food) and gets its folio, then asks the status of their reports and gets it back;
- the coordinator's cascade "Entrega de despensas mañana…" started an hour ago: most sector liaisons
  acknowledged and relayed it, blocks are acknowledging; sector1's liaison did not answer, got a reminder, went
  overdue and was escalated to the coordinator, and the message passed on to the blocks below (manzana1's block
  waits for its "Recibido"); a few blocks will go overdue within minutes, live;
- a broadcast to the first sector's households three days ago, sent and delivered.

Liaison accounts: posts held in the demo have a name and a phone but, except for sector1 and manzana1, no user
account; a cascade reaches liaisons with an account, so the liaisons of the sectors and of the first sectors'
blocks get one here (no password: they answer by message).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from redes.accounts.models import User
from redes.accounts.roles import Role
from redes.accounts.services import create_user, grant_membership
from redes.core import clock
from redes.liaisons.models import LiaisonAssignment
from redes.needs.models import reference_of
from redes.territories.models import Node, NodeKind

CASCADE_TITLE = "Entrega de despensas mañana"
CASCADE_BODY = (
    "Entrega de despensas mañana de 9 a 13 h en el centro comunitario de cada sector. Avise a las familias "
    "de su manzana y confirme con OK."
)
BROADCAST_TITLE = "Jornada de vacunación"
BROADCAST_BODY = (
    "Jornada de vacunación el sábado de 9 a 14 h en el centro de salud. Lleve su cartilla. Para dejar de "
    "recibir avisos responda BAJA."
)
GROUP_RULES = (
    "1. Solo temas de la red vecinal.\n2. Respeto: sin insultos ni política partidista.\n"
    "3. No comparta datos personales de otras familias.\n4. Las necesidades se reportan al enlace o al menú."
)
#: Sectors whose blocks' liaisons get an account (and so appear in the cascade).
SECTORS_WITH_BLOCKS = 3
#: Minutes since the cascade began when the demo is built.
CASCADE_AGE = 65


@dataclass
class MessagingStats:
    accounts: int = 0
    templates: int = 0
    flows: int = 0
    groups: dict = field(default_factory=dict)
    conversation: dict = field(default_factory=dict)
    cascade: dict = field(default_factory=dict)
    broadcast: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            _(
                "Messages: %(accounts)s channel account (the console), %(templates)s texts, %(flows)s menus, "
                "%(groups)s groups (%(sector)s of sectors, %(block)s of blocks, %(theme)s by theme)."
            )
            % {
                "accounts": self.accounts,
                "templates": self.templates,
                "flows": self.flows,
                "groups": sum(self.groups.values()),
                "sector": self.groups.get("sector", 0),
                "block": self.groups.get("block", 0),
                "theme": self.groups.get("theme", 0),
            }
        ]
        if self.conversation:
            out.append(
                _(
                    "Console: a neighbour of %(block)s reported a need by message (folio %(reference)s) and "
                    "asked its status (%(messages)s messages)."
                )
                % self.conversation
            )
        if self.cascade:
            out.append(
                _(
                    "Cascade “%(title)s”: %(acked)s of %(nodes)s liaisons acknowledged, %(waiting)s waiting, "
                    "%(overdue)s overdue and escalated, %(reminders)s reminders sent."
                )
                % self.cascade
            )
        if self.broadcast:
            out.append(
                ngettext(
                    "Broadcast “%(title)s”: %(count)s message, %(delivered)s delivered, %(skipped)s not sent "
                    "(no consent or opted out).",
                    "Broadcast “%(title)s”: %(count)s messages, %(delivered)s delivered, %(skipped)s not sent "
                    "(no consent or opted out).",
                    self.broadcast["count"],
                )
                % self.broadcast
            )
        return out


def _units(municipality, depth: int) -> list[Node]:
    return list(
        Node.objects.filter(municipality=municipality, kind=NodeKind.UNIT, depth=depth).order_by("code", "pk")
    )


def _liaison_accounts(municipality, sectors: list[Node], blocks: list[Node], *, actor=None) -> int:
    """Give the held posts of ``sectors`` and ``blocks`` a user account (no password) where they have none."""
    posts = (
        LiaisonAssignment.objects.active()
        .filter(node__in=[*sectors, *blocks], user__isnull=True)
        .exclude(phone="")
        .select_related("node")
        .order_by("node__depth", "node__code", "pk")
    )
    made = 0
    for post in posts:
        username = f"enlace-{post.node.code.lower()}"
        if User.objects.filter(username=username).exists():
            continue
        user = create_user(
            username,
            password=None,
            full_name=post.full_name,
            phone=post.phone,
            actor=actor,
            check_password=False,
            municipality=municipality,
        )
        role = Role.SECTOR_LIAISON if post.node in sectors else Role.BLOCK_LIAISON
        grant_membership(user, post.node, role, actor=actor)
        LiaisonAssignment.objects.filter(pk=post.pk).update(user=user)
        made += 1
    return made


def _groups(municipality, sectors, blocks, coordinator, rng, *, actor) -> dict:
    from redes.messaging import groups
    from redes.needs.models import WorkingGroup

    liaisons = {
        post.node_id: post.user
        for post in LiaisonAssignment.objects.active()
        .filter(node__in=[*sectors, *blocks], user__isnull=False)
        .select_related("user")
    }
    counts = {"sector": 0, "block": 0, "theme": 0}

    def save(name, kind, node, moderators, working_group=None):
        token = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10))
        groups.save_group(
            municipality,
            actor=actor or coordinator,
            name=name,
            kind=kind,
            node=node,
            working_group=working_group,
            invite_link=f"https://chat.whatsapp.com/{token}",
            rules=GROUP_RULES,
            moderators=[m for m in moderators if m is not None],
        )
        counts[kind] += 1

    for sector in sectors:
        save(
            f"Red Vecinal {sector.name} ({sector.code})",
            "sector",
            sector,
            [liaisons.get(sector.pk), coordinator],
        )
    for block in blocks:
        if block.pk in liaisons and rng.random() < 0.5:
            save(f"Manzana {block.code}", "block", block, [liaisons[block.pk]])
    for wg in WorkingGroup.objects.filter(municipality=municipality, active=True).order_by("name")[:6]:
        members = list(wg.members.all()[:2])
        save(f"Tema: {wg.name}"[:120], "theme", wg.node, members or [coordinator], working_group=wg)
    return counts


def _text(account, number: str, text: str) -> None:
    from redes.messaging import dispatcher, ingest

    ingest.store_console(account, number, text=text)
    dispatcher.run_once()


def _conversation(municipality, account, block: Node) -> dict:
    """A neighbour of ``block`` reports a food need through the menu, then asks its status."""
    from redes.messaging import contacts
    from redes.messaging.models import Inbound, Medium
    from redes.needs.models import Need
    from redes.registry.models import Phone

    phone = (
        Phone.objects.filter(municipality=municipality, household__node=block, household__status="active")
        .order_by("household__pk", "pk")
        .first()
    )
    if phone is None:
        return {}
    number = phone.number
    before = set(Need.objects.filter(household=phone.household).values_list("pk", flat=True))
    for text in ("Hola", "1", "1", "Nos quedamos sin despensa esta semana, somos 5 en casa", "1"):
        _text(account, number, text)
    need = Need.objects.filter(household=phone.household).exclude(pk__in=before).order_by("-pk").first()
    for text in ("MENU", "2"):
        _text(account, number, text)
    address = contacts.address_of(number, Medium.CONSOLE)
    return {
        "block": block.code,
        "reference": reference_of(need) if need else "—",
        "messages": Inbound.objects.filter(account=account, sender=address).count(),
        "number": address,
    }


def _cascade(municipality, coordinator, rng) -> dict:
    """The coordinator's cascade, started ``CASCADE_AGE`` minutes ago, replayed minute by minute."""
    from redes.messaging import broadcasts, dispatcher
    from redes.messaging.models import CascadeNode

    now = clock.now()
    t0 = now - dt.timedelta(minutes=CASCADE_AGE)
    root = municipality.node
    with clock.travel(t0):
        broadcast = broadcasts.create_broadcast(
            actor=coordinator,
            municipality=municipality,
            node=root,
            title=CASCADE_TITLE,
            body=CASCADE_BODY,
            cascade=True,
            ack_minutes=60,
            remind_minutes=30,
        )
        broadcasts.start_broadcast(broadcast, actor=coordinator)
        dispatcher.run_once()
    first_sector = _units(municipality, root.depth + 1)[0]

    def waiting(depth: int):
        return list(
            CascadeNode.objects.filter(
                broadcast=broadcast, depth=depth, status=CascadeNode.Status.SENT
            ).order_by("node__code")
        )

    def ack(rows, share: float, minute: int, skip=()):
        with clock.travel(t0 + dt.timedelta(minutes=minute)):
            for row in rows:
                if row.node_id in skip or rng.random() >= share:
                    continue
                broadcasts.acknowledge(row, actor=None, via=rng.choice(["whatsapp", "whatsapp", "sms"]))
            dispatcher.run_once()

    # Sector liaisons answer within minutes, except sector1's (the story's overdue one).
    ack(waiting(root.depth + 1), 0.85, 6, skip={first_sector.pk})
    # Block liaisons of the sectors that relayed.
    ack(waiting(root.depth + 2), 0.6, 18)
    for minute in (34, 45, 62):  # reminders after 30 minutes; overdue and escalated after 60
        with clock.travel(t0 + dt.timedelta(minutes=minute)):
            dispatcher.run_once()
    ack(waiting(root.depth + 2), 0.3, 63)
    dispatcher.run_once()
    rows = CascadeNode.objects.filter(broadcast=broadcast).exclude(node=root)
    by_status = {s: rows.filter(status=s).count() for s in CascadeNode.Status.values}
    return {
        "title": CASCADE_TITLE,
        "uuid": str(broadcast.uuid),
        "nodes": sum(by_status.values()) - by_status["vacant"],
        "acked": by_status["acked"],
        "waiting": by_status["sent"],
        "overdue": by_status["overdue"],
        "vacant": by_status["vacant"],
        "reminders": sum(rows.values_list("reminders", flat=True)),
    }


def _ordinary(municipality, coordinator) -> dict:
    """A broadcast to the first sector's households three days ago, sent through the console."""
    from redes.messaging import broadcasts, dispatcher
    from redes.messaging.models import Outbound

    sector = _units(municipality, municipality.node.depth + 1)[0]
    with clock.travel(clock.now() - dt.timedelta(days=3)):
        broadcast = broadcasts.create_broadcast(
            actor=coordinator,
            municipality=municipality,
            node=sector,
            title=BROADCAST_TITLE,
            body=BROADCAST_BODY,
        )
        broadcasts.start_broadcast(broadcast, actor=coordinator)
        for _ in range(20):  # a few passes: each sends what the rate limit allows
            dispatcher.run_once()
            if not Outbound.objects.filter(broadcast=broadcast, status__in=["queued", "sending"]).exists():
                break
        for _ in range(20):  # the console's delivery reports (status events) are read in the next passes
            if not Outbound.objects.filter(broadcast=broadcast, status="sent").exists():
                break
            dispatcher.run_once()
    rows = Outbound.objects.filter(broadcast=broadcast)
    return {
        "title": BROADCAST_TITLE,
        "count": rows.count(),
        "delivered": rows.filter(status__in=["delivered", "read"]).count(),
        "skipped": rows.filter(status="skipped").count(),
    }


def populate(municipality, seed: int, *, people: dict, actor=None) -> MessagingStats:
    from redes.messaging import accounts, defaults
    from redes.messaging.models import ChannelAccount, Flow, MessageTemplate

    rng = random.Random(f"messaging-demo-{seed}")
    coordinator = people["coordinacion"]
    stats = MessagingStats()
    defaults.ensure_defaults(municipality)
    account = accounts.console_account(municipality)
    sectors = _units(municipality, municipality.node.depth + 1)
    blocks = [
        b
        for b in _units(municipality, municipality.node.depth + 2)
        if b.parent_id in {s.pk for s in sectors[:SECTORS_WITH_BLOCKS]}
    ]
    _liaison_accounts(municipality, sectors, blocks, actor=actor)
    stats.groups = _groups(municipality, sectors, blocks, coordinator, rng, actor=actor)
    stats.broadcast = _ordinary(municipality, coordinator)
    stats.cascade = _cascade(municipality, coordinator, rng)
    focus = next((b for b in blocks if b.parent_id == sectors[0].pk), None)
    manzana1 = people.get("manzana1")
    if manzana1 is not None:
        post = LiaisonAssignment.objects.active().filter(user=manzana1).select_related("node").first()
        focus = post.node if post else focus
    if focus is not None:
        stats.conversation = _conversation(municipality, account, focus)
    stats.accounts = ChannelAccount.objects.filter(municipality=municipality).count()
    stats.templates = MessageTemplate.objects.filter(municipality=municipality).count()
    stats.flows = Flow.objects.filter(municipality=municipality).count()
    return stats
