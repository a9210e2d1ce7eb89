# ruff: noqa: S608  (raw SQL built only from model table names and status constants; values are parameters)
"""The escalation sweep: overdue needs climb to the next held liaison post, up to the coordinators.

Set-based, so that a sweep over a million open needs stays within seconds:

1. From the tree, the open liaison posts (with an account) and nothing else, compute in Python for every node
   its *next holder*: the nearest strict ancestor whose post is held, or the municipality node (held by the
   municipal coordinators). Vacant posts are skipped, never dead ends.
2. One ``UPDATE … FROM (node → next holder) … RETURNING`` moves every non-sensitive open need whose
   ``escalate_at`` has passed (``need_sweep`` partial index) one step up: ``escalation_level + 1``,
   acknowledgement cleared, ``escalate_at = now + its acknowledgement window``. On PostgreSQL the escalation
   events are inserted by the same statement (a data-modifying CTE); on SQLite they are written in bulk.
3. Needs already held at the municipality node do not climb: their ``escalate_at`` is cleared (they stay on
   the coordinators' overdue list).
4. Sensitive needs never climb the liaison chain: the municipality's case officers are notified instead.
5. Notifications: one per need and new holder; when a holder receives more than ``NOTIFY_EACH`` needs in one
   sweep, one summary notification with the count instead.

PostgreSQL: a transaction-level advisory try-lock makes concurrent sweeps (several worker processes) skip, and
the sweep's commit does not wait for the WAL flush (a crash loses at most that sweep; the next one redoes it).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from redes.accounts.models import Membership
from redes.accounts.roles import Role
from redes.core import clock
from redes.core.db import adapt_datetime, copy_rows
from redes.territories.models import MUNICIPALITY_DEPTH, Municipality, Node

from .models import OPEN_STATUSES, Need, NeedEvent, Notification

#: Above this many needs escalated to one holder in one sweep, the holder gets one summary notification.
NOTIFY_EACH = 20
_LOCK_KEY = (7302, 1)


@dataclass
class SweepResult:
    at: dt.datetime
    escalated: int = 0
    to_coordinators: int = 0
    at_top: int = 0
    sensitive: int = 0
    notifications: int = 0
    seconds: float = 0.0
    skipped: bool = False  # another sweep held the lock
    per_node: dict = field(default_factory=dict)  # destination node id → needs escalated to it

    def lines(self) -> list[str]:
        if self.skipped:
            return [_("Another sweep is running; nothing done.")]
        return [
            ngettext(
                "%(count)s overdue need escalated (%(top)s to the coordinators).",
                "%(count)s overdue needs escalated (%(top)s to the coordinators).",
                self.escalated,
            )
            % {"count": self.escalated, "top": self.to_coordinators},
            ngettext(
                "%(count)s need already at the coordinators stays on their overdue list.",
                "%(count)s needs already at the coordinators stay on their overdue list.",
                self.at_top,
            )
            % {"count": self.at_top},
            ngettext(
                "%(count)s sensitive report overdue: case officers notified.",
                "%(count)s sensitive reports overdue: case officers notified.",
                self.sensitive,
            )
            % {"count": self.sensitive},
            ngettext(
                "%(count)s notification written in %(seconds).2f s.",
                "%(count)s notifications written in %(seconds).2f s.",
                self.notifications,
            )
            % {"count": self.notifications, "seconds": self.seconds},
        ]


@dataclass
class Paths:
    """Per node, the node that receives its overdue needs; and who holds each receiving node."""

    next_holder: dict[int, int]
    top_nodes: list[int]
    municipalities: list[int]
    holders: dict[int, list[int]]
    case_officers: dict[int, list[int]]


def escalation_paths(municipality: Municipality | None = None, on: dt.date | None = None) -> Paths:
    """Compute every node's next holder from the tree, the held posts and the coordinators' memberships."""
    from redes.liaisons.models import LiaisonAssignment

    on = on or clock.now().date()
    if municipality is not None:
        munis = [municipality.pk]
    else:
        # Only municipalities with open needs (one probe of ``need_muni_open`` each): the tree of a whole
        # country is not read every minute for nothing.
        munis = list(
            Municipality.objects.filter(
                Exists(Need.objects.filter(municipality=OuterRef("pk"), status__in=OPEN_STATUSES))
            ).values_list("pk", flat=True)
        )
    nodes = Node.objects.filter(municipality__in=munis)
    posts = LiaisonAssignment.objects.active(on).filter(
        municipality__in=munis, user__isnull=False, user__is_active=True
    )
    members = Membership.objects.active().filter(user__is_active=True, municipality__in=munis)
    rows = sorted(nodes.values_list("id", "parent_id", "depth"), key=lambda r: r[2])
    holders: dict[int, list[int]] = defaultdict(list)
    for node_id, user_id in posts.values_list("node_id", "user_id"):
        holders[node_id].append(user_id)
    case_officers: dict[int, list[int]] = defaultdict(list)
    for node_id, municipality_id, role, user_id in members.filter(
        role__in=[Role.COORDINATOR, Role.CASE_OFFICER]
    ).values_list("node_id", "municipality_id", "role", "user_id"):
        if role == Role.COORDINATOR:
            holders[node_id].append(user_id)
        else:
            case_officers[municipality_id].append(user_id)
    next_holder: dict[int, int] = {}
    top_nodes = []
    for node_id, parent_id, depth in rows:
        if depth <= MUNICIPALITY_DEPTH:
            top_nodes.append(node_id)
            continue
        parent_depth_is_top = parent_id not in next_holder  # the parent is the municipality node
        if parent_depth_is_top or parent_id in holders:
            next_holder[node_id] = parent_id
        else:
            next_holder[node_id] = next_holder[parent_id]
    return Paths(next_holder, top_nodes, munis, dict(holders), dict(case_officers))


def escalate_overdue(now: dt.datetime | None = None, municipality: Municipality | None = None) -> SweepResult:
    """Escalate every open need whose deadline has passed (see the module docstring)."""
    started = time.perf_counter()
    now = now or clock.now()
    result = SweepResult(at=now)
    paths = escalation_paths(municipality, now.date())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", list(_LOCK_KEY))
                if not cursor.fetchone()[0]:
                    result.skipped = True
                    return result
                # Like the registry import: the commit does not wait for the WAL flush. A crash right after
                # it loses at most this sweep, which the next one redoes (its candidates are still due).
                cursor.execute("SET LOCAL synchronous_commit = off")
            moved, sensitive = _sweep_postgresql(now, municipality, paths, result)
        else:
            moved, sensitive = _sweep_sqlite(now, municipality, paths, result)
        result.notifications = _notify(now, moved, sensitive, paths)
    result.seconds = time.perf_counter() - started
    return result


_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"
#: Due needs, found through ``need_muni_open`` (municipality, due_at): ``due_at <= escalate_at`` always holds
#: for open needs, so the index range holds every candidate.
_DUE_PG = (
    f"n.municipality_id = ANY(%(munis)s::bigint[]) AND n.status IN {_OPEN_SQL} AND n.due_at <= %(now)s"
    " AND n.escalate_at <= %(now)s"
)


def _tables():
    q = connection.ops.quote_name
    return q(Need._meta.db_table), q(NeedEvent._meta.db_table)


def _sweep_postgresql(now, municipality, paths: Paths, result: SweepResult):
    need_t, event_t = _tables()
    params = {
        "munis": paths.municipalities,
        "now": now,
        "from": list(paths.next_holder),
        "to": list(paths.next_holder.values()),
        "top": paths.top_nodes,
        "municipality": getattr(municipality, "pk", None),
        "each": NOTIFY_EACH,
    }
    moved_cte = f"""
        UPDATE {need_t} n
           SET holder_node_id = m.next_id, escalation_level = n.escalation_level + 1, acknowledged_at = NULL,
               escalate_at = %(now)s + make_interval(mins => n.ack_minutes), updated_at = %(now)s
          FROM unnest(%(from)s::bigint[], %(to)s::bigint[]) AS m(node_id, next_id)
         WHERE {_DUE_PG} AND n.holder_node_id = m.node_id AND NOT n.sensitive
     RETURNING n.id, n.holder_node_id, n.escalation_level, n.status"""
    sensitive_cte = f"""
        UPDATE {need_t} n
           SET escalation_level = n.escalation_level + 1, acknowledged_at = NULL,
               escalate_at = %(now)s + make_interval(mins => n.ack_minutes), updated_at = %(now)s
         WHERE {_DUE_PG} AND n.sensitive
     RETURNING n.id, n.municipality_id AS holder_node_id, n.escalation_level, n.status, n.holder_node_id AS at_node"""
    events = f"""
        INSERT INTO {event_t} (need_id, at, kind, from_status, to_status, node_id, data)
        SELECT id, %(now)s, 'escalated', status, status, {{node}}, jsonb_build_object('level', escalation_level)
          FROM moved"""
    summary = """
        SELECT holder_node_id, count(*), (array_agg(id ORDER BY id))[1:%(each)s] FROM moved GROUP BY 1"""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH moved AS ({moved_cte}), ev AS ({events.format(node='holder_node_id')}) {summary}", params
        )
        moved = cursor.fetchall()
        cursor.execute(
            f"WITH moved AS ({sensitive_cte}), ev AS ({events.format(node='at_node')}) {summary}", params
        )
        sensitive = cursor.fetchall()
        cursor.execute(
            f"""UPDATE {need_t} n SET escalate_at = NULL, updated_at = %(now)s
                 WHERE {_DUE_PG} AND n.holder_node_id = ANY(%(top)s::bigint[]) AND NOT n.sensitive""",
            params,
        )
        result.at_top = cursor.rowcount
    _tally(result, moved, sensitive)
    return moved, sensitive


def _sweep_sqlite(now, municipality, paths: Paths, result: SweepResult):
    need_t, event_t = _tables()
    at = adapt_datetime(now)
    muni_sql = "AND municipality_id = %s" if municipality is not None else ""
    muni_params = [municipality.pk] if municipality is not None else []
    due = f"status IN {_OPEN_SQL} AND due_at <= %s AND escalate_at <= %s {muni_sql}"
    moved_rows: list[tuple] = []
    sensitive_rows: list[tuple] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS needs_sweep_path (node_id INTEGER PRIMARY KEY, next_id INTEGER)"
        )
        cursor.execute("DELETE FROM needs_sweep_path")
        cursor.executemany("INSERT INTO needs_sweep_path VALUES (%s, %s)", list(paths.next_holder.items()))
        cursor.execute(f"SELECT DISTINCT ack_minutes FROM {need_t} WHERE {due}", [at, at, *muni_params])
        windows = [row[0] for row in cursor.fetchall()]
        for minutes in windows:
            later = adapt_datetime(now + dt.timedelta(minutes=minutes))
            cursor.execute(
                f"""UPDATE {need_t} SET holder_node_id = p.next_id, escalation_level = escalation_level + 1,
                           acknowledged_at = NULL, escalate_at = %s, updated_at = %s
                      FROM needs_sweep_path p
                     WHERE p.node_id = {need_t}.holder_node_id AND sensitive = 0 AND ack_minutes = %s AND {due}
                 RETURNING id, holder_node_id, escalation_level, status""",
                [later, at, minutes, at, at, *muni_params],
            )
            moved_rows += cursor.fetchall()
            cursor.execute(
                f"""UPDATE {need_t} SET escalation_level = escalation_level + 1, acknowledged_at = NULL,
                           escalate_at = %s, updated_at = %s
                     WHERE sensitive = 1 AND ack_minutes = %s AND {due}
                 RETURNING id, municipality_id, escalation_level, status, holder_node_id""",
                [later, at, minutes, at, at, *muni_params],
            )
            sensitive_rows += cursor.fetchall()
        top_marks = ", ".join(["%s"] * len(paths.top_nodes)) or "NULL"
        cursor.execute(
            f"""UPDATE {need_t} SET escalate_at = NULL, updated_at = %s
                 WHERE holder_node_id IN ({top_marks}) AND sensitive = 0 AND {due}""",
            [at, *paths.top_nodes, at, at, *muni_params],
        )
        result.at_top = cursor.rowcount
    copy_rows(
        NeedEvent,
        ["need_id", "at", "kind", "from_status", "to_status", "node_id", "data"],
        [
            (
                row[0],
                at,
                NeedEvent.Kind.ESCALATED,
                row[3],
                row[3],
                row[4] if len(row) > 4 else row[1],
                json.dumps({"level": row[2]}),
            )
            for row in (*moved_rows, *sensitive_rows)
        ],
    )
    moved = _group(moved_rows)
    sensitive = _group(sensitive_rows)
    _tally(result, moved, sensitive)
    return moved, sensitive


def _group(rows) -> list[tuple[int, int, list[int]]]:
    by_key: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_key[row[1]].append(row[0])
    return [(key, len(ids), sorted(ids)[:NOTIFY_EACH]) for key, ids in by_key.items()]


def _tally(result: SweepResult, moved, sensitive) -> None:
    tops = set(
        Node.objects.filter(pk__in=[m[0] for m in moved], depth=MUNICIPALITY_DEPTH).values_list(
            "id", flat=True
        )
    )
    for node_id, count, _ids in moved:
        result.escalated += count
        result.per_node[node_id] = count
        if node_id in tops:
            result.to_coordinators += count
    result.sensitive = sum(count for _key, count, _ids in sensitive)


def _notify(now, moved, sensitive, paths: Paths) -> int:
    """One notification per need and new holder (a summary beyond ``NOTIFY_EACH``); case officers for
    sensitive needs."""
    node_uuids = dict(Node.objects.filter(pk__in=[m[0] for m in moved]).values_list("id", "uuid"))
    rows = []

    def add(users, count, ids, kind, data):
        for user_id in dict.fromkeys(users):
            if count <= NOTIFY_EACH:
                rows.extend(
                    Notification(user_id=user_id, need_id=i, kind=kind, data=data, created_at=now)
                    for i in ids
                )
            else:
                rows.append(
                    Notification(
                        user_id=user_id, need=None, kind=kind, data={**data, "count": count}, created_at=now
                    )
                )

    for node_id, count, ids in moved:
        add(
            paths.holders.get(node_id, []),
            count,
            ids,
            Notification.Kind.ESCALATED,
            {"node": str(node_uuids[node_id])},
        )
    for municipality_id, count, ids in sensitive:
        add(
            paths.case_officers.get(municipality_id, []),
            count,
            ids,
            Notification.Kind.SENSITIVE,
            {"overdue": True},
        )
    Notification.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
