# ruff: noqa: S608  (raw SQL built only from model table names, depths and constants; values are parameters)
"""Broadcasts: a message to a territory subtree, the holders of roles, a group or a segment of households, and
the cascade down the liaison tree with acknowledgements, reminders and escalation.

Building is set-based, so that a broadcast to half a million households is a handful of statements:

- ``sync_household_contacts`` creates the missing contacts of the households' phones with one
  ``INSERT … SELECT``;
- ``build_outbox`` writes one narrow outbox row per household (no body: the text is rendered from the broadcast
  when sent) with one ``INSERT … SELECT``. A household is reached through one contact: the first of its phones
  that may receive messages. Household contacts need a current registry consent to messages by an active person
  of the household, or their own opt-in by message; contacts that opted out or have no consent get a row marked
  ``skipped`` (``error_code`` says why), so the broadcast's figures count them as excluded.

Cascade mode writes one ``CascadeNode`` per node of the subtree (one statement, then one to link parents), and
sends the ``cascade_prompt`` to the liaisons of the first level. A liaison's acknowledgement (web button, or a
reply "OK" handled by ``acknowledge_contact``) releases the level below: its liaisons get their prompt; a node
without a liaison passes the message on at once (VACANT); at the last level the block's households get the
broadcast when ``reach_households``. ``tick`` (the dispatcher calls it) sends one reminder after
``remind_minutes``, marks nodes OVERDUE after ``ack_minutes`` (escalating to the liaison of the level above, or
the coordinators) and releases their children so the cascade never stalls, and closes finished broadcasts.
"""

from __future__ import annotations

import datetime as dt
import functools

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, F, Q
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.models import Membership
from redes.accounts.roles import Perm, Role
from redes.audit.models import Outcome
from redes.audit.services import record, record_denied
from redes.core import clock
from redes.liaisons.models import LiaisonAssignment
from redes.registry.models import Consent, Household, Person, Phone, RecordStatus, RegistryPolicy
from redes.territories.models import MUNICIPALITY_DEPTH, Node

from . import accounts, contacts
from .models import Broadcast, CascadeNode, Contact, Group, Medium, MessageTemplate, Outbound

BROADCAST_PRIORITY = 5
MAX_TITLE = 120
MAX_BODY = 4096
MAX_MINUTES = 7 * 24 * 60
#: Why an outbox row of a broadcast was not sent (``Outbound.error_code`` of ``skipped`` rows).
OPTED_OUT = "opted_out"
NO_CONSENT = "no_consent"
#: Outbox statuses still to be worked by the dispatcher.
PENDING = (Outbound.Status.QUEUED, Outbound.Status.SENDING)
_WAITING = (CascadeNode.Status.WAITING, CascadeNode.Status.SENT)


# --- refusals -------------------------------------------------------------------------------------------------


def _invalid(message: str, code: str, field: str | None = None) -> ValidationError:
    if field:
        return ValidationError({field: ValidationError(message, code=code)})
    return ValidationError(message, code=code)


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def audited(action: str):
    """Record a refused call under ``action`` (after its transaction rolled back); the error propagates."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            obj = args[0] if args and isinstance(args[0], models.Model) else kwargs.get("node")
            try:
                return fn(*args, **kwargs)
            except PermissionDenied as exc:
                record_denied(action, actor=_user(kwargs.get("actor")), obj=obj, reason="forbidden")
                exc.audited = True
                raise
            except ValidationError as exc:
                codes = (
                    sorted({e.code or "invalid" for e in exc.error_list})
                    if hasattr(exc, "error_list")
                    else []
                )
                if hasattr(exc, "error_dict"):
                    codes = sorted({e.code or "invalid" for errs in exc.error_dict.values() for e in errs})
                record_denied(
                    action,
                    actor=_user(kwargs.get("actor")),
                    obj=obj,
                    reason=f"invalid input: {','.join(codes) or 'invalid'}",
                    outcome=Outcome.REJECTED,
                )
                exc.audited = True
                raise

        return wrapper

    return decorate


def can_broadcast(actor, node: Node) -> bool:
    return actor is None or scoping.can(actor, Perm.BROADCAST, node)


def _require_broadcast(actor, node: Node) -> None:
    if not can_broadcast(actor, node):
        raise PermissionDenied(_("Your role does not allow sending broadcasts here."))


# --- creating -------------------------------------------------------------------------------------------------


def _clean_minutes(value, field: str, *, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not minimum <= number <= MAX_MINUTES:
        raise _invalid(
            _("Minutes must be a whole number from %(min)s to %(max)s.")
            % {"min": minimum, "max": MAX_MINUTES},
            "minutes",
            field,
        )
    return number


def _clean_segment(municipality_id: int, segment) -> dict:
    from redes.needs.models import NeedCategory

    segment = segment or {}
    if not isinstance(segment, dict):
        raise _invalid(_("The segment must be an object of filters."), "segment", "segment")
    unknown = set(segment) - {"min_priority", "categories", "vulnerable"}
    if unknown:
        raise _invalid(
            _("Unknown segment filters: %(names)s.") % {"names": ", ".join(sorted(map(str, unknown)))},
            "segment",
            "segment",
        )
    clean: dict = {}
    if segment.get("min_priority") not in (None, ""):
        value = segment["min_priority"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise _invalid(
                _("The minimum priority must be a whole number from 0 to 100."), "priority", "segment"
            )
        clean["min_priority"] = value
    categories = segment.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise _invalid(_("Need categories must be a list of category codes."), "categories", "segment")
    if categories:
        known = set(
            NeedCategory.objects.filter(municipality_id=municipality_id, code__in=categories).values_list(
                "code", flat=True
            )
        )
        missing = [c for c in categories if c not in known]
        if missing:
            raise _invalid(
                _("Unknown need categories: %(codes)s.") % {"codes": ", ".join(missing)},
                "categories",
                "segment",
            )
        clean["categories"] = list(dict.fromkeys(categories))
    if segment.get("vulnerable"):
        clean["vulnerable"] = True
    if not clean:
        raise _invalid(_("A segment needs at least one filter."), "segment", "segment")
    return clean


@audited("messaging.broadcast.create")
def create_broadcast(
    *,
    actor,
    municipality,
    node: Node,
    title: str,
    body: str,
    target: str = Broadcast.Target.SUBTREE,
    roles=(),
    group: Group | None = None,
    segment: dict | None = None,
    cascade: bool = False,
    reach_households: bool = False,
    ack_minutes: int = 60,
    remind_minutes: int = 30,
    template: MessageTemplate | None = None,
) -> Broadcast:
    """A draft broadcast (``start_broadcast`` sends it). Needs ``BROADCAST`` over ``node``."""
    municipality_id = getattr(municipality, "pk", municipality)
    if node is None or node.municipality_id != municipality_id:
        raise _invalid(_("Choose a territory of this municipality."), "node", "node")
    _require_broadcast(actor, node)
    title = (title or "").strip()
    body = (body or "").strip()
    if not title:
        raise _invalid(_("Give the broadcast a title."), "required", "title")
    if len(title) > MAX_TITLE:
        raise _invalid(
            _("The title is too long (at most %(n)s characters).") % {"n": MAX_TITLE}, "long", "title"
        )
    if not body:
        raise _invalid(_("Write the message."), "required", "body")
    if len(body) > MAX_BODY:
        raise _invalid(
            _("The message is too long (at most %(n)s characters).") % {"n": MAX_BODY}, "long", "body"
        )
    if target not in Broadcast.Target.values:
        raise _invalid(_("Unknown target “%(t)s”.") % {"t": target}, "target", "target")
    roles = list(dict.fromkeys(roles or ()))
    if target == Broadcast.Target.ROLE:
        bad = [r for r in roles if r not in Role.values]
        if not roles or bad:
            raise _invalid(_("Choose one or more roles."), "roles", "roles")
    else:
        roles = []
    if target == Broadcast.Target.GROUP:
        if group is None or group.municipality_id != municipality_id:
            raise _invalid(_("Choose a group of this municipality."), "group", "group")
    else:
        group = None
    segment = _clean_segment(municipality_id, segment) if target == Broadcast.Target.SEGMENT else {}
    cascade = bool(cascade)
    if cascade and target != Broadcast.Target.SUBTREE:
        raise _invalid(
            _("A cascade goes down a territory: choose “everyone in a territory”."), "cascade", "cascade"
        )
    if cascade and node.depth >= node.municipality.leaf_depth:
        raise _invalid(_("A cascade needs a territory with levels below it."), "cascade", "node")
    ack = _clean_minutes(ack_minutes, "ack_minutes", minimum=1)
    remind = _clean_minutes(remind_minutes, "remind_minutes", minimum=0)
    if cascade and remind and remind >= ack:
        raise _invalid(
            _("The reminder must come before the deadline to acknowledge."), "minutes", "remind_minutes"
        )
    if template is not None and template.municipality_id != municipality_id:
        raise _invalid(_("Choose a template of this municipality."), "template", "template")
    broadcast = Broadcast.objects.create(
        municipality_id=municipality_id,
        node=node,
        title=title,
        body=body,
        template=template,
        target=target,
        roles=roles,
        group=group,
        segment=segment,
        cascade=cascade,
        reach_households=bool(reach_households) and cascade,
        ack_minutes=ack,
        remind_minutes=remind,
        created_at=clock.now(),
        created_by=_user(actor),
    )
    record(
        "messaging.broadcast.create",
        actor=actor,
        obj=broadcast,
        node=node,
        changes={"target": target, "cascade": cascade},
    )
    return broadcast


# --- SQL helpers ----------------------------------------------------------------------------------------------


def _t(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _dt(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _empty_json() -> str:
    return "CAST('{}' AS jsonb)" if connection.vendor == "postgresql" else "'{}'"


def _new_uuid() -> str:
    return "gen_random_uuid()" if connection.vendor == "postgresql" else "lower(hex(randomblob(16)))"


def _purpose_messages(alias: str) -> str:
    """SQL: the consent row ``alias`` includes the purpose "messages"."""
    if connection.vendor == "postgresql":
        return f"{alias}.purposes @> '[\"messages\"]'::jsonb"
    # SQLite: the list's JSON text holds the quoted code (purposes are codes from a fixed list), ~4x faster than
    # json_each over half a million consents; the same test as ``_eligible_contacts``' ``icontains``.
    return f"instr({alias}.purposes, '\"messages\"') > 0"


def _routes(municipality_id: int) -> dict[str, int]:
    return {m: accounts.route(municipality_id, m).pk for m in Medium.values}


def _account_case(alias: str, routes: dict[str, int]) -> tuple[str, list]:
    """SQL choosing the account of contact ``alias`` like ``outbox.medium_for`` + ``accounts.route``."""
    sql = (
        f"CASE WHEN {alias}.preferred = 'whatsapp' AND {alias}.whatsapp THEN %s "
        f"WHEN {alias}.preferred = 'telegram' AND {alias}.address LIKE 'telegram:%%' THEN %s "
        f"WHEN {alias}.preferred = 'console' THEN %s ELSE %s END"
    )
    return sql, [routes[Medium.WHATSAPP], routes[Medium.TELEGRAM], routes[Medium.CONSOLE], routes[Medium.SMS]]


_OUT_COLUMNS = (
    "municipality_id, contact_id, account_id, broadcast_id, kind, priority, body, template, variables, status, "
    "attempts, next_attempt_at, lease_until, worker, provider_id, error_code, error, fallback_of_id, created_at, "
    "sent_at, delivered_at, read_at"
)


def _consent_exists(household: str) -> str:
    """SQL: household ``household`` has a current consent to messages (correlated: for a few households)."""
    return (
        f"EXISTS (SELECT 1 FROM {_t(Consent)} k JOIN {_t(Person)} pe ON pe.id = k.person_id "
        f"WHERE pe.household_id = {household}.id AND pe.status = 'active' AND k.revoked_at IS NULL "
        f"AND {_purpose_messages('k')})"
    )


def _consenting_households() -> str:
    """SQL (one parameter: the municipality): the households with a current consent to messages (read in one
    pass; PostgreSQL hashes it once as a "hashed SubPlan" of ``h.id IN (…)``: for many households)."""
    return (
        f"SELECT pe.household_id FROM {_t(Consent)} k JOIN {_t(Person)} pe ON pe.id = k.person_id "
        f"WHERE pe.municipality_id = %s AND pe.status = 'active' AND k.revoked_at IS NULL "
        f"AND {_purpose_messages('k')}"
    )


def _household_filter(broadcast: Broadcast) -> tuple[str, list]:
    """SQL conditions on households ``h`` (and their block ``n``) of a subtree or segment broadcast."""
    node = broadcast.node
    sql = [f"n.a{node.depth} = %s"]
    params: list = [node.pk]
    segment = broadcast.segment or {} if broadcast.target == Broadcast.Target.SEGMENT else {}
    minimum = segment.get("min_priority")
    if segment.get("vulnerable"):
        policy = RegistryPolicy.objects.filter(municipality_id=broadcast.municipality_id).first()
        threshold = (
            policy.priority_threshold
            if policy
            else RegistryPolicy._meta.get_field("priority_threshold").default
        )
        minimum = max(minimum or 0, threshold)
    if minimum:
        sql.append("h.priority >= %s")
        params.append(minimum)
    if segment.get("categories"):
        from redes.needs.models import OPEN_STATUSES, Need, NeedCategory

        ids = list(
            NeedCategory.objects.filter(
                municipality_id=broadcast.municipality_id, code__in=segment["categories"]
            ).values_list("pk", flat=True)
        ) or [0]
        sql.append(
            f"EXISTS (SELECT 1 FROM {_t(Need)} nd WHERE nd.household_id = h.id "
            f"AND nd.status IN ({', '.join(['%s'] * len(OPEN_STATUSES))}) "
            f"AND nd.category_id IN ({', '.join(['%s'] * len(ids))}))"
        )
        params += [*OPEN_STATUSES, *ids]
    return " AND ".join(sql), params


#: Above this many blocks the cascade's release of households reads the consents in one pass (hash join).
BULK_BLOCKS = 100


def _bulk_settings() -> None:
    """PostgreSQL, for one large statement in the current transaction: no JIT (compiling the plan costs
    ~1 s and saves nothing here) and memory to sort half a million contacts and keep the consenting households
    in one hash table (the plan needs it to fit: 128 MB × 2 holds millions; without it PostgreSQL would rescan
    the list per contact). Callers run it inside ``transaction.atomic`` (``SET LOCAL``)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '128MB'")
            cursor.execute("SET LOCAL hash_mem_multiplier = 2")


def _lock_parents(broadcast: Broadcast, account_ids: list[int]) -> None:
    """The outbox's foreign keys to the municipality, the accounts and the broadcast are not database
    constraints (checking them row by row at commit cost seconds at 500k rows): lock the parent rows once,
    the way each row's constraint check would have, so that none can be deleted while the rows are written."""
    if connection.vendor != "postgresql":
        return  # SQLite: writers are serialised (IMMEDIATE transactions)
    from redes.territories.models import Municipality

    from .models import ChannelAccount

    with connection.cursor() as cursor:
        for model, ids in (
            (Municipality, [broadcast.municipality_id]),
            (ChannelAccount, sorted(set(account_ids))),
            (Broadcast, [broadcast.pk]),
        ):
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(f"SELECT id FROM {_t(model)} WHERE id IN ({marks}) FOR KEY SHARE", ids)
            if len(cursor.fetchall()) != len(ids):
                raise _invalid(_("This broadcast or its channel account no longer exists."), "gone")


def _insert_households(
    broadcast: Broadcast, where: str, where_params: list, now, *, bulk: bool = False, fresh: bool = False
) -> int:
    """One outbox row per household matched by ``where`` (on ``h`` and its block ``n``) that has a contact.

    The row goes to the household's first contact (``sync_household_contacts`` links them, in phone order) that
    may receive messages (queued), else to its first contact, marked skipped with the reason. Returns the rows
    written.

    ``bulk``: many households (a whole subtree): the consents are read once into a hash table instead of looked up
    per household. ``fresh``: the broadcast has no row yet (its row is locked by the caller), so rows are
    inserted plainly; otherwise ``ON CONFLICT DO NOTHING`` skips the households already reached."""
    routes = _routes(broadcast.municipality_id)
    account_sql, account_params = _account_case("q", routes)
    now_db = _dt(now)
    if bulk:
        consented, consent_params = f"h.id IN ({_consenting_households()})", [broadcast.municipality_id]
    else:
        consented, consent_params = _consent_exists("h"), []
    # Each contact's eligibility is computed once; the window keeps one contact per household: the first
    # eligible one, else the first one (its row is then marked skipped with the reason).
    sql = (
        f"INSERT INTO {_t(Outbound)} ({_OUT_COLUMNS}) "
        f"SELECT %s, q.id, {account_sql}, %s, %s, %s, '', 'broadcast', {_empty_json()}, "
        "CASE WHEN q.ok = 1 THEN 'queued' ELSE 'skipped' END, 0, %s, NULL, '', '', "
        f"CASE WHEN q.ok = 1 THEN '' WHEN q.opted_out_at IS NOT NULL THEN '{OPTED_OUT}' ELSE '{NO_CONSENT}' END, "
        "'', NULL, %s, NULL, NULL, NULL "
        "FROM (SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.household_id ORDER BY e.ok DESC, e.id) AS rn FROM ("
        "SELECT c.id, c.household_id, c.preferred, c.whatsapp, c.address, c.opted_out_at, "
        f"CASE WHEN c.opted_out_at IS NULL AND (c.opted_in_at IS NOT NULL OR {consented}) THEN 1 ELSE 0 END AS ok "
        f"FROM {_t(Household)} h JOIN {_t(Node)} n ON n.id = h.node_id "
        f"JOIN {_t(Contact)} c ON c.household_id = h.id "
        f"WHERE h.municipality_id = %s AND h.status = 'active' AND {where}"
        ") e) q WHERE q.rn = 1" + ("" if fresh else " ON CONFLICT DO NOTHING")
    )
    params = [
        broadcast.municipality_id,
        *account_params,
        broadcast.pk,
        Outbound.Kind.BROADCAST,
        BROADCAST_PRIORITY,
        now_db,
        now_db,
        *consent_params,
        broadcast.municipality_id,
        *where_params,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_parents(broadcast, list(routes.values()))
        if bulk:
            _bulk_settings()
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def sync_household_contacts(municipality, node: Node) -> int:
    """Create, in one statement, the contacts of the phones of the active households under ``node`` that have
    none yet (linked to the household and its block; preferred channel from the household and the phone), and
    link to their household the contacts that wrote in before it was registered. Returns how many were
    created."""
    municipality_id = getattr(municipality, "pk", municipality)
    now = _dt(clock.now())
    sql = (
        f"INSERT INTO {_t(Contact)} (uuid, municipality_id, address, whatsapp, preferred, household_id, "
        "person_id, user_id, node_id, language, opted_in_at, opted_out_at, last_inbound_at, "
        "last_inbound_medium, state, flood_count, flood_started_at, created_at) "
        f"SELECT {_new_uuid()}, p.municipality_id, p.number, p.whatsapp, "
        "CASE WHEN h.preferred_channel = 'whatsapp' AND p.whatsapp THEN 'whatsapp' ELSE 'sms' END, "
        f"h.id, NULL, NULL, h.node_id, 'es-mx', NULL, NULL, NULL, '', {_empty_json()}, 0, NULL, %s "
        f"FROM {_t(Phone)} p JOIN {_t(Household)} h ON h.id = p.household_id "
        f"JOIN {_t(Node)} n ON n.id = h.node_id "
        "WHERE p.id IN ("
        f"SELECT MIN(p2.id) FROM {_t(Phone)} p2 JOIN {_t(Household)} h2 ON h2.id = p2.household_id "
        f"JOIN {_t(Node)} n2 ON n2.id = h2.node_id "
        f"WHERE h2.municipality_id = %s AND h2.status = 'active' AND n2.a{node.depth} = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {_t(Contact)} c WHERE c.municipality_id = %s "
        "AND c.address = p2.number) "
        "GROUP BY p2.number) "
        "ORDER BY p.id "
        "ON CONFLICT DO NOTHING"
    )
    # Contacts that wrote in before their household was registered: linked to it (and its block).
    link = (
        f"UPDATE {_t(Contact)} SET household_id = (SELECT MIN(p.household_id) FROM {_t(Phone)} p "
        f"JOIN {_t(Household)} h ON h.id = p.household_id WHERE p.number = {_t(Contact)}.address "
        "AND h.municipality_id = %s AND h.status = 'active'), "
        f"node_id = (SELECT h.node_id FROM {_t(Phone)} p JOIN {_t(Household)} h ON h.id = p.household_id "
        f"WHERE p.number = {_t(Contact)}.address AND h.municipality_id = %s AND h.status = 'active' "
        "ORDER BY p.household_id LIMIT 1) "
        "WHERE municipality_id = %s AND household_id IS NULL AND user_id IS NULL AND address IN ("
        f"SELECT p.number FROM {_t(Phone)} p JOIN {_t(Household)} h ON h.id = p.household_id "
        f"JOIN {_t(Node)} n ON n.id = h.node_id WHERE h.municipality_id = %s AND h.status = 'active' "
        f"AND n.a{node.depth} = %s)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _bulk_settings()
        cursor.execute(sql, [now, municipality_id, node.pk, municipality_id])
        created = max(cursor.rowcount, 0)
        cursor.execute(link, [municipality_id, municipality_id, municipality_id, municipality_id, node.pk])
    return created


def _recount(broadcast: Broadcast) -> int:
    """Store the number of distinct contacts the broadcast's messages go to (skipped rows excluded)."""
    count = (
        Outbound.objects.filter(
            broadcast=broadcast, kind__in=(Outbound.Kind.BROADCAST, Outbound.Kind.CASCADE)
        )
        .exclude(status__in=(Outbound.Status.SKIPPED, Outbound.Status.CANCELLED))
        .values("contact_id")
        .distinct()
        .count()
    )
    Broadcast.objects.filter(pk=broadcast.pk).update(recipients=count)
    broadcast.recipients = count
    return count


def _eligible_contacts(contact_ids: set[int]) -> dict[int, str]:
    """For a small set of contacts: id → "" (may receive) or the reason they may not (opt-out, no consent)."""
    rows = Contact.objects.filter(pk__in=contact_ids).values_list(
        "pk", "opted_out_at", "opted_in_at", "household_id", "user_id"
    )
    consenting = set(
        Consent.objects.filter(
            person__household_id__in=[r[3] for r in rows if r[3]],
            person__status=RecordStatus.ACTIVE,
            revoked_at__isnull=True,
        )
        .filter(purposes__icontains='"messages"')
        .values_list("person__household_id", flat=True)
    )
    out = {}
    for pk, opted_out, opted_in, household, user in rows:
        if opted_out:
            out[pk] = OPTED_OUT
        elif household and not user and not opted_in and household not in consenting:
            out[pk] = NO_CONSENT
        else:
            out[pk] = ""
    return out


def _insert_contacts(broadcast: Broadcast, contact_ids: set[int], now) -> int:
    """Outbox rows of a role or group broadcast (hundreds of contacts at most): one bulk insert."""
    if not contact_ids:
        return 0
    reasons = _eligible_contacts(contact_ids)
    from .outbox import medium_for

    routes: dict[str, int] = {}
    rows = []
    for contact in Contact.objects.filter(pk__in=reasons).only("pk", "preferred", "whatsapp", "address"):
        medium = medium_for(contact)
        if medium not in routes:
            routes[medium] = accounts.route(broadcast.municipality_id, medium).pk
        reason = reasons[contact.pk]
        rows.append(
            Outbound(
                municipality_id=broadcast.municipality_id,
                contact_id=contact.pk,
                account_id=routes[medium],
                broadcast=broadcast,
                kind=Outbound.Kind.BROADCAST,
                priority=BROADCAST_PRIORITY,
                template="broadcast",
                status=Outbound.Status.SKIPPED if reason else Outbound.Status.QUEUED,
                error_code=reason,
                next_attempt_at=now,
                created_at=now,
            )
        )
    Outbound.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def _role_contacts(broadcast: Broadcast) -> set[int]:
    node = broadcast.node
    users = (
        Membership.objects.active()
        .filter(role__in=broadcast.roles, municipality_id=broadcast.municipality_id, user__is_active=True)
        .filter(**{f"node__a{node.depth}": node.pk})
        .select_related("user")
    )
    ids = set()
    for user in {m.user for m in users}:
        contact = _user_contact(user, broadcast.municipality_id)
        if contact is not None:
            ids.add(contact.pk)
    return ids


def _group_contacts(broadcast: Broadcast) -> set[int]:
    group = broadcast.group
    if group is None:
        return set()
    ids = set(group.members.values_list("pk", flat=True))
    for user in group.moderators.filter(is_active=True):
        contact = _user_contact(user, broadcast.municipality_id)
        if contact is not None:
            ids.add(contact.pk)
    return ids


def build_outbox(broadcast: Broadcast) -> int:
    """Write the outbox of a (non-cascade) broadcast set-based; returns the rows written (skipped included)."""
    now = clock.now()
    if broadcast.target in (Broadcast.Target.SUBTREE, Broadcast.Target.SEGMENT):
        where, params = _household_filter(broadcast)
        with transaction.atomic():
            fresh = not Outbound.objects.filter(broadcast=broadcast).exists()
            return _insert_households(broadcast, where, params, now, bulk=True, fresh=fresh)
    if broadcast.target == Broadcast.Target.ROLE:
        return _insert_contacts(broadcast, _role_contacts(broadcast), now)
    return _insert_contacts(broadcast, _group_contacts(broadcast), now)


# --- starting -------------------------------------------------------------------------------------------------


@audited("messaging.broadcast.start")
def start_broadcast(broadcast: Broadcast, *, actor) -> Broadcast:
    """Send a draft: DRAFT → SENDING exactly once (a second start, even concurrent, is refused)."""
    _require_broadcast(actor, broadcast.node)
    with transaction.atomic():
        current = (
            Broadcast.objects.select_for_update(of=("self",))
            .select_related("node__municipality")
            .get(pk=broadcast.pk)
        )
        if current.status != Broadcast.Status.DRAFT:
            raise _invalid(
                _("This broadcast was already started (it is “%(status)s”).")
                % {"status": current.get_status_display()},
                "started",
            )
        now = clock.now()
        current.status = Broadcast.Status.SENDING
        current.started_at = now
        current.save(update_fields=["status", "started_at"])
        if current.target in (Broadcast.Target.SUBTREE, Broadcast.Target.SEGMENT) and (
            not current.cascade or current.reach_households
        ):
            sync_household_contacts(current.municipality_id, current.node)
        written = _start_cascade(current, actor, now) if current.cascade else build_outbox(current)
        _recount(current)
        record(
            "messaging.broadcast.start",
            actor=actor,
            obj=current,
            node=current.node,
            changes={"rows": written, "recipients": current.recipients},
        )
    for field in ("status", "started_at", "recipients"):
        setattr(broadcast, field, getattr(current, field))
    return broadcast


# --- the cascade ----------------------------------------------------------------------------------------------


def _start_cascade(broadcast: Broadcast, actor, now) -> int:
    """Write the cascade rows of the subtree (set-based), then release the first level."""
    root = broadcast.node
    today = now.date()
    t_cascade, t_node, t_post = _t(CascadeNode), _t(Node), _t(LiaisonAssignment)
    liaison = (
        f"(SELECT la.user_id FROM {t_post} la WHERE la.node_id = n.id AND la.user_id IS NOT NULL "
        "AND la.start_date <= %s AND (la.end_date IS NULL OR la.end_date > %s) "
        "ORDER BY la.start_date DESC, la.id DESC LIMIT 1)"
    )
    leaf = root.municipality.leaf_depth
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {t_cascade} (broadcast_id, node_id, parent_id, depth, contact_id, user_id, status, "
            "sent_at, due_at, acked_at, ack_via, reminders, reminded_at, escalated_at) "
            f"SELECT %s, n.id, NULL, n.depth, NULL, CASE WHEN n.id = %s THEN %s ELSE {liaison} END, "
            "CASE WHEN n.id = %s THEN 'acked' ELSE 'waiting' END, "
            "CASE WHEN n.id = %s THEN %s END, NULL, CASE WHEN n.id = %s THEN %s END, "
            "CASE WHEN n.id = %s THEN 'start' ELSE '' END, 0, NULL, NULL "
            f"FROM {t_node} n WHERE n.a{root.depth} = %s AND n.depth <= %s",
            [
                broadcast.pk,
                root.pk,
                getattr(_user(actor), "pk", None),
                connection.ops.adapt_datefield_value(today),
                connection.ops.adapt_datefield_value(today),
                root.pk,
                root.pk,
                _dt(now),
                root.pk,
                _dt(now),
                root.pk,
                root.pk,
                leaf,
            ],
        )
        cursor.execute(
            f"UPDATE {t_cascade} SET parent_id = (SELECT p.id FROM {t_cascade} p JOIN {t_node} n "
            f"ON n.parent_id = p.node_id WHERE p.broadcast_id = %s AND n.id = {t_cascade}.node_id) "
            f"WHERE broadcast_id = %s AND depth > %s",
            [broadcast.pk, broadcast.pk, root.depth],
        )
        # Liaisons already reachable: their contact, in one statement.
        cursor.execute(
            f"UPDATE {t_cascade} SET contact_id = (SELECT MIN(c.id) FROM {_t(Contact)} c "
            f"WHERE c.municipality_id = %s AND c.user_id = {t_cascade}.user_id) "
            f"WHERE broadcast_id = %s AND user_id IS NOT NULL AND depth > %s",
            [broadcast.municipality_id, broadcast.pk, root.depth],
        )
    _link_missing_contacts(broadcast, today)
    root_row = CascadeNode.objects.get(broadcast=broadcast, node=root)
    return _release(broadcast, [root_row.pk], now)


def _link_missing_contacts(broadcast: Broadcast, today) -> None:
    """Liaisons without a contact yet: through their account's phone, else their post's phone."""
    from redes.accounts.models import User

    missing = list(
        CascadeNode.objects.filter(broadcast=broadcast, user__isnull=False, contact__isnull=True)
        .exclude(node_id=broadcast.node_id)
        .values_list("pk", "user_id", "node_id")
    )
    if not missing:
        return
    users = User.objects.in_bulk({u for _pk, u, _n in missing})
    posts = dict(
        LiaisonAssignment.objects.active(today)
        .filter(node_id__in={n for _pk, _u, n in missing}, user__isnull=False)
        .exclude(phone="")
        .values_list("node_id", "phone")
    )
    found: dict[int, int | None] = {}
    for pk, user_id, node_id in missing:
        if user_id not in found:
            contact = _user_contact(users[user_id], broadcast.municipality_id, posts.get(node_id, ""))
            found[user_id] = contact.pk if contact else None
        if found[user_id]:
            CascadeNode.objects.filter(pk=pk).update(contact_id=found[user_id])


def _user_contact(user, municipality_id: int, post_phone: str = "") -> Contact | None:
    """The contact of a user account (``contacts.contact_for_user``), else through the phone of their liaison
    post (the free-form phone kept with the appointment)."""
    contact = contacts.contact_for_user(user, municipality_id)
    if contact is None and not post_phone:
        post_phone = (
            LiaisonAssignment.objects.active(clock.now().date())
            .filter(municipality_id=municipality_id, user=user)
            .exclude(phone="")
            .values_list("phone", flat=True)
            .first()
        ) or ""
    if contact is None and post_phone:
        try:
            contact, _created = contacts.contact_for(municipality_id, post_phone, Medium.SMS)
        except ValidationError:
            return None
        if contact.user_id is None:
            Contact.objects.filter(pk=contact.pk).update(user_id=user.pk)
            contact.user_id = user.pk
    return contact


def _variables(broadcast: Broadcast, node_name: str) -> dict:
    return {"title": broadcast.title, "body": broadcast.body, "node": node_name}


def _prompt_rows(broadcast: Broadcast, rows, kind: str, template: str, now) -> list[Outbound]:
    """Outbox rows to the contacts of cascade ``rows`` (with ``node__name`` loaded)."""
    from .outbox import medium_for

    routes: dict[str, int] = {}
    out = []
    for row in rows:
        contact = row.contact
        if contact is None:
            continue
        medium = medium_for(contact)
        if medium not in routes:
            routes[medium] = accounts.route(broadcast.municipality_id, medium).pk
        out.append(
            Outbound(
                municipality_id=broadcast.municipality_id,
                contact=contact,
                account_id=routes[medium],
                broadcast=broadcast,
                kind=kind,
                priority=1,
                template=template,
                variables=_variables(broadcast, row.node.name),
                status=Outbound.Status.SKIPPED if contact.opted_out_at else Outbound.Status.QUEUED,
                error_code=OPTED_OUT if contact.opted_out_at else "",
                next_attempt_at=now,
                created_at=now,
            )
        )
    return out


def _release(broadcast: Broadcast, parent_ids: list[int], now) -> int:
    """Pass the message below the cascade rows ``parent_ids`` (acknowledged, overdue or vacant): their children's
    liaisons get the prompt, vacant children pass it on at once, blocks reach their households."""
    written = 0
    leaf = broadcast.node.municipality.leaf_depth
    due = now + dt.timedelta(minutes=broadcast.ack_minutes)
    frontier = list(parent_ids)
    while frontier:
        released = list(CascadeNode.objects.filter(pk__in=frontier).values_list("pk", "node_id", "depth"))
        blocks = [node_id for _pk, node_id, depth in released if depth >= leaf]
        if blocks and broadcast.reach_households:
            placeholders = ", ".join(["%s"] * len(blocks))
            written += _insert_households(
                broadcast, f"h.node_id IN ({placeholders})", blocks, now, bulk=len(blocks) > BULK_BLOCKS
            )
        children = CascadeNode.objects.filter(
            broadcast=broadcast, parent_id__in=frontier, status=CascadeNode.Status.WAITING
        )
        vacant = list(children.filter(user__isnull=True).values_list("pk", flat=True))
        if vacant:
            CascadeNode.objects.filter(pk__in=vacant, status=CascadeNode.Status.WAITING).update(
                status=CascadeNode.Status.VACANT, sent_at=now
            )
        held = list(children.filter(user__isnull=False).select_related("contact", "node"))
        if held:
            CascadeNode.objects.filter(pk__in=[r.pk for r in held], status=CascadeNode.Status.WAITING).update(
                status=CascadeNode.Status.SENT, sent_at=now, due_at=due
            )
            rows = _prompt_rows(broadcast, held, Outbound.Kind.CASCADE, "cascade_prompt", now)
            Outbound.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
            written += len(rows)
        frontier = vacant
    return written


def _refresh_status(broadcast: Broadcast, current: Broadcast) -> None:
    for field in ("status", "recipients", "finished_at"):
        setattr(broadcast, field, getattr(current, field))


@audited("messaging.cascade.ack")
def acknowledge(node_row: CascadeNode, *, actor=None, via: str = "web") -> CascadeNode:
    """The liaison of ``node_row`` acknowledges the message; the level below gets it. ``actor=None`` is the
    system acting for a contact's reply; a person may acknowledge only a node whose liaison they are."""
    if actor is not None and node_row.user_id != getattr(actor, "pk", None):
        raise PermissionDenied(_("Only the liaison of this place can acknowledge its message."))
    via = (via or "web")[:10]
    with transaction.atomic():
        row = (
            CascadeNode.objects.select_for_update(of=("self",))
            .select_related("broadcast__node__municipality", "node")
            .get(pk=node_row.pk)
        )
        broadcast = row.broadcast
        if broadcast.status != Broadcast.Status.SENDING:
            raise _invalid(_("This broadcast is no longer being sent."), "closed")
        if row.status not in (CascadeNode.Status.SENT, CascadeNode.Status.OVERDUE):
            if row.status == CascadeNode.Status.ACKED:
                raise _invalid(_("This message was already acknowledged."), "acked")
            raise _invalid(_("This message has not reached this place yet."), "waiting")
        now = clock.now()
        was_overdue = row.status == CascadeNode.Status.OVERDUE
        row.status = CascadeNode.Status.ACKED
        row.acked_at = now
        row.ack_via = via
        row.save(update_fields=["status", "acked_at", "ack_via"])
        if not was_overdue:  # an overdue node's level below was released already
            _release(broadcast, [row.pk], now)
            _recount(broadcast)
        record(
            "messaging.cascade.ack",
            actor=actor,
            obj=broadcast,
            node=row.node,
            changes={"via": via, "late": was_overdue},
        )
    for field in ("status", "acked_at", "ack_via"):
        setattr(node_row, field, getattr(row, field))
    return node_row


def waiting_for(contact: Contact):
    """The cascade rows waiting for this contact's acknowledgement, oldest first."""
    q = Q(contact=contact)
    if contact.user_id:
        q |= Q(user_id=contact.user_id, broadcast__municipality_id=contact.municipality_id)
    return (
        CascadeNode.objects.filter(q, status__in=(CascadeNode.Status.SENT, CascadeNode.Status.OVERDUE))
        .filter(broadcast__status=Broadcast.Status.SENDING)
        .order_by("sent_at", "id")
    )


def acknowledge_contact(contact: Contact, via: str) -> CascadeNode | None:
    """A reply "OK"/"RECIBIDO": acknowledge the oldest cascade message waiting for the contact (None if none)."""
    row = waiting_for(contact).first()
    if row is None:
        return None
    try:
        return acknowledge(row, actor=None, via=via)
    except ValidationError:  # acknowledged meanwhile (web button, another reply)
        return None


# --- the clock ------------------------------------------------------------------------------------------------


def _escalation_contacts(broadcast: Broadcast, parent: CascadeNode | None) -> list[Contact]:
    """Who hears that a node is overdue: the liaison of the level above, else the coordinators (and sender)."""
    if parent is not None and parent.node_id != broadcast.node_id and parent.contact_id:
        return [parent.contact]
    from redes.needs.services import holder_ids

    users = set(holder_ids(broadcast.node))
    if broadcast.node.depth != MUNICIPALITY_DEPTH:
        users |= set(holder_ids(broadcast.node.municipality.node))
    if broadcast.created_by_id:
        users.add(broadcast.created_by_id)
    from redes.accounts.models import User

    found = []
    for user in User.objects.filter(pk__in=users, is_active=True):
        contact = _user_contact(user, broadcast.municipality_id)
        if contact is not None and contact not in found:
            found.append(contact)
    return found


def _escalate(broadcast: Broadcast, rows: list[CascadeNode], now) -> int:
    """Tell the level above about its overdue nodes: one message per node (plain, not tied to the broadcast:
    the same liaison may be told about several nodes)."""
    from .outbox import enqueue

    sent = 0
    for row in rows:
        for contact in _escalation_contacts(broadcast, row.parent):
            if contact.opted_out_at:
                continue
            enqueue(
                contact,
                kind=Outbound.Kind.NOTIFICATION,
                template="cascade_escalated",
                variables=_variables(broadcast, row.node.name),
            )
            sent += 1
    return sent


def _close_if_done(broadcast: Broadcast, now) -> bool:
    if broadcast.cascade and CascadeNode.objects.filter(broadcast=broadcast, status__in=_WAITING).exists():
        return False
    if Outbound.objects.filter(broadcast=broadcast, status__in=PENDING).exists():
        return False
    return bool(
        Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.SENDING).update(
            status=Broadcast.Status.DONE, finished_at=now
        )
    )


def tick(now=None) -> dict:
    """Reminders, overdue escalation and closing of finished broadcasts (the dispatcher calls it often)."""
    now = now or clock.now()
    counts = {"reminded": 0, "overdue": 0, "escalations": 0, "done": 0}
    sending = list(
        Broadcast.objects.filter(status=Broadcast.Status.SENDING).select_related("node__municipality")
    )
    for broadcast in sending:
        if broadcast.cascade:
            _tick_cascade(broadcast, now, counts)
        if _close_if_done(broadcast, now):
            counts["done"] += 1
    return counts


def _tick_cascade(broadcast: Broadcast, now, counts: dict) -> None:
    with transaction.atomic():
        overdue = list(
            CascadeNode.objects.select_for_update(of=("self",))
            .filter(broadcast=broadcast, status=CascadeNode.Status.SENT, due_at__lte=now)
            .select_related("node", "parent__contact")
        )
        if overdue:
            CascadeNode.objects.filter(pk__in=[r.pk for r in overdue], status=CascadeNode.Status.SENT).update(
                status=CascadeNode.Status.OVERDUE, escalated_at=now
            )
            counts["overdue"] += len(overdue)
            counts["escalations"] += _escalate(broadcast, overdue, now)
            _release(broadcast, [r.pk for r in overdue], now)
            _recount(broadcast)
            record(
                "messaging.cascade.overdue",
                obj=broadcast,
                node=broadcast.node,
                changes={"nodes": len(overdue)},
            )
    if not broadcast.remind_minutes:
        return
    with transaction.atomic():
        late = list(
            CascadeNode.objects.select_for_update(of=("self",))
            .filter(
                broadcast=broadcast,
                status=CascadeNode.Status.SENT,
                reminders=0,
                sent_at__lte=now - dt.timedelta(minutes=broadcast.remind_minutes),
            )
            .select_related("node", "contact")
        )
        if late:
            CascadeNode.objects.filter(pk__in=[r.pk for r in late], reminders=0).update(
                reminders=F("reminders") + 1, reminded_at=now
            )
            rows = _prompt_rows(broadcast, late, Outbound.Kind.REMINDER, "cascade_reminder", now)
            Outbound.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
            counts["reminded"] += len(late)


# --- cancelling and progress ----------------------------------------------------------------------------------


@audited("messaging.broadcast.cancel")
def cancel(broadcast: Broadcast, *, actor) -> Broadcast:
    """Stop a draft or a broadcast being sent: messages not yet taken by a worker are cancelled."""
    _require_broadcast(actor, broadcast.node)
    with transaction.atomic():
        current = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
        if current.status not in (Broadcast.Status.DRAFT, Broadcast.Status.SENDING):
            raise _invalid(
                _("This broadcast is “%(status)s”: it can no longer be cancelled.")
                % {"status": current.get_status_display()},
                "closed",
            )
        now = clock.now()
        cancelled = Outbound.objects.filter(broadcast=current, status=Outbound.Status.QUEUED).update(
            status=Outbound.Status.CANCELLED, lease_until=None
        )
        current.status = Broadcast.Status.CANCELLED
        current.finished_at = now
        current.save(update_fields=["status", "finished_at"])
        record(
            "messaging.broadcast.cancel",
            actor=actor,
            obj=current,
            node=broadcast.node,
            changes={"cancelled": cancelled},
        )
    _refresh_status(broadcast, current)
    return broadcast


def progress(broadcast: Broadcast, *, nodes: bool = True, personal: bool = True) -> dict:
    """The live view: cascade counts per depth and status, totals, outbox counts per status and kind, and (when
    ``nodes``) one entry per cascade node (liaison names only when ``personal``). Four queries."""
    statuses = CascadeNode.Status.values
    by_depth: dict[int, dict[str, int]] = {}
    for depth, status, n in (
        CascadeNode.objects.filter(broadcast=broadcast)
        .values_list("depth", "status")
        .annotate(n=Count("id"))
        .order_by("depth")
    ):
        by_depth.setdefault(depth, dict.fromkeys(statuses, 0))[status] = n
    totals = dict.fromkeys(statuses, 0)
    for counts in by_depth.values():
        for status, n in counts.items():
            totals[status] += n
    outbound: dict[str, int] = dict.fromkeys(Outbound.Status.values, 0)
    by_kind: dict[str, dict[str, int]] = {}
    for kind, status, n in (
        Outbound.objects.filter(broadcast=broadcast)
        .values_list("kind", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        outbound[status] += n
        by_kind.setdefault(kind, dict.fromkeys(Outbound.Status.values, 0))[status] = n
    result = {
        "status": broadcast.status,
        "cascade": broadcast.cascade,
        "recipients": broadcast.recipients,
        "excluded": outbound[Outbound.Status.SKIPPED],
        "totals": totals,
        "depths": [{"depth": d, **counts} for d, counts in sorted(by_depth.items())],
        "outbound": outbound,
        "outbound_by_kind": by_kind,
        "nodes": [],
    }
    if nodes and broadcast.cascade:
        fields = [
            "node__uuid",
            "node__name",
            "node__code",
            "node__parent__uuid",
            "depth",
            "status",
            "sent_at",
            "due_at",
            "acked_at",
            "ack_via",
            "reminders",
            "escalated_at",
            "node__centroid_lat",
            "node__centroid_lon",
        ]
        if personal:
            fields += ["user__full_name", "user__username"]
        for row in (
            CascadeNode.objects.filter(broadcast=broadcast)
            .order_by("depth", "node__code")
            .values(*fields)
            .iterator(chunk_size=5000)
        ):
            liaison = ""
            if personal:
                liaison = row.pop("user__full_name") or row.pop("user__username") or ""
                row.pop("user__username", None)
            result["nodes"].append(
                {
                    "uuid": row["node__uuid"],
                    "name": row["node__name"],
                    "code": row["node__code"],
                    "parent": row["node__parent__uuid"],
                    "depth": row["depth"],
                    "status": row["status"],
                    "liaison": liaison,
                    "sent_at": row["sent_at"],
                    "due_at": row["due_at"],
                    "acked_at": row["acked_at"],
                    "ack_via": row["ack_via"],
                    "reminders": row["reminders"],
                    "escalated_at": row["escalated_at"],
                    "lat": row["node__centroid_lat"],
                    "lon": row["node__centroid_lon"],
                }
            )
    return result


# --- opt-outs recorded by the network -------------------------------------------------------------------------


@audited("messaging.contact.opt")
def set_opted_out(contact: Contact, *, actor, opted_out: bool) -> Contact:
    """Record that a person asked (by phone, in person) to receive no more messages, or to receive them again.

    Needs ``EDIT_REGISTRY`` over the contact's node (``MANAGE_MESSAGING`` over the municipality for a contact
    with no node). Opting back in only lifts the opt-out: it records no consent on the person's behalf (that is
    the registry consent, or the person's own "ALTA")."""
    from redes.territories.models import Municipality

    node = contact.node or Municipality.objects.select_related("node").get(pk=contact.municipality_id).node
    perm = Perm.EDIT_REGISTRY if contact.node_id else Perm.MANAGE_MESSAGING
    if actor is not None and not scoping.can(actor, perm, node):
        raise PermissionDenied(_("You may not change this contact's messages."))
    now = clock.now()
    value = now if opted_out else None
    if (contact.opted_out_at is None) == (value is None):
        return contact  # nothing changes
    Contact.objects.filter(pk=contact.pk).update(opted_out_at=value)
    contact.opted_out_at = value
    if opted_out:  # nothing queued for them goes out any more
        Outbound.objects.filter(
            contact=contact, status=Outbound.Status.QUEUED, kind__in=(Outbound.Kind.BROADCAST,)
        ).update(status=Outbound.Status.SKIPPED, error_code=OPTED_OUT)
    record(
        "messaging.contact.opt_out" if opted_out else "messaging.contact.opt_in",
        actor=_user(actor),
        obj=contact,
        municipality=contact.municipality_id,
        node=contact.node,
        summary="Recorded by the network",
    )
    return contact
