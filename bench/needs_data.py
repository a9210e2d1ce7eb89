"""What the needs benchmarks share: the Acapulco-size tree (13,170 blocks, posts at sectors and zones only, so
vacant levels are skipped), users with real memberships, and a million needs written in bulk (COPY on
PostgreSQL, executemany on SQLite, through ``redes.core.db.copy_rows``)."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
import uuid

CHUNK = 50_000


def percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {
        "p50_ms": statistics.median(samples),
        "p95_ms": samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))],
        "max_ms": samples[-1],
        "runs": len(samples),
    }


def build_tree(seed: int) -> dict:
    """Migrate and build the demo's Acapulco-size tree (no registry). Returns timings."""
    from django.core.management import call_command

    from redes.audit.context import Channel, using_channel
    from redes.demo.generator import build_demo

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    t1 = time.perf_counter()
    with using_channel(Channel.SYSTEM):
        build_demo(seed=seed, scale="acapulco", demo_persons=0)
    t2 = time.perf_counter()
    staff = staff_accounts()
    print(f"migrated in {t1 - t0:.1f} s, tree built in {t2 - t1:.1f} s, {staff}", file=sys.stderr)
    return {"migrate_s": t1 - t0, "tree_s": t2 - t1, **staff}


def staff_accounts() -> dict:
    """Accounts for Acapulco's held liaison posts (so escalations notify someone), a coordinator and a case
    officer."""
    from django.contrib.auth.hashers import make_password

    from redes.accounts.models import User
    from redes.accounts.roles import Role
    from redes.accounts.services import grant_membership
    from redes.liaisons.models import LiaisonAssignment
    from redes.territories.models import Municipality

    aca = Municipality.objects.get(code="12001")
    posts = list(
        LiaisonAssignment.objects.active().filter(municipality=aca, user__isnull=True).order_by("pk")
    )
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"aca-enlace-{p.pk}", full_name=p.full_name, password=password) for p in posts]
    )
    for post, user in zip(posts, users, strict=True):
        post.user = user
    LiaisonAssignment.objects.bulk_update(posts, ["user"])
    for username, role in (("aca-coordinacion", Role.COORDINATOR), ("aca-caso", Role.CASE_OFFICER)):
        user = User.objects.create(username=username, full_name=username, password=password)
        grant_membership(user, aca.node, role)
    return {"post_accounts": len(users)}


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def write_needs(
    municipality,
    n: int,
    *,
    seed: int,
    now: dt.datetime,
    open_share: float,
    overdue_share: float,
    sensitive_share: float = 0.005,
    progress=None,
) -> dict:
    """Write ``n`` needs over the municipality's blocks: ``open_share`` of them open (of which
    ``overdue_share`` past their sweep instant), the rest closed, resolved or cancelled over the last year."""
    from django.db import transaction

    from redes.core.db import adapt_datetime, adapt_uuid, copy_rows
    from redes.needs import services
    from redes.needs.models import DEFAULT_DEADLINES, Need, NeedCategory
    from redes.territories.models import Node

    services.ensure_defaults(municipality)
    rnd = random.Random(seed)
    cats = list(
        NeedCategory.objects.filter(municipality=municipality, sensitive=False).values_list("pk", flat=True)
    )
    violence = NeedCategory.objects.get(municipality=municipality, code="violencia").pk
    blocks = list(
        Node.objects.filter(municipality=municipality, depth=municipality.leaf_depth).values_list(
            "pk", flat=True
        )
    )
    urgencies = ["low", "normal", "high", "critical"]
    u_weights = [15, 50, 25, 10]
    open_statuses = ["new", "triaged", "assigned", "in_progress"]
    closed_statuses = ["closed", "closed", "closed", "resolved", "cancelled", "duplicate"]
    columns = [
        "uuid",
        "municipality_id",
        "node_id",
        "holder_node_id",
        "escalation_level",
        "category_id",
        "description",
        "sensitive",
        "sensitive_text",
        "address",
        "contact_phone",
        "urgency",
        "channel",
        "status",
        "ack_due",
        "resolve_due",
        "due_at",
        "ack_minutes",
        "escalate_at",
        "acknowledged_at",
        "outcome",
        "outcome_note",
        "created_at",
        "updated_at",
    ]
    muni_id, muni_node = municipality.pk, municipality.node_id
    counts = {"open": 0, "overdue": 0, "sensitive": 0}

    def rows(count: int):
        for _ in range(count):
            block = rnd.choice(blocks)
            urgency = rnd.choices(urgencies, u_weights)[0]
            ack, resolve = DEFAULT_DEADLINES[urgency]
            is_open = rnd.random() < open_share
            sensitive = is_open and rnd.random() < sensitive_share
            if is_open:
                overdue = rnd.random() < overdue_share
                counts["open"] += 1
                counts["overdue"] += overdue
                counts["sensitive"] += sensitive
                acked = rnd.random() < 0.4
                if overdue:
                    escalate_at = now - dt.timedelta(minutes=rnd.uniform(1, 2 * 1440))
                else:
                    escalate_at = now + dt.timedelta(minutes=rnd.uniform(10, 7 * 1440))
                created = escalate_at - dt.timedelta(minutes=resolve if acked else ack)
                status = rnd.choice(open_statuses)
                ack_due = created + dt.timedelta(minutes=ack)
                resolve_due = created + dt.timedelta(minutes=resolve)
                due = resolve_due if acked else ack_due
                acknowledged = created + dt.timedelta(minutes=ack / 2) if acked else None
                outcome = ""
            else:
                created = now - dt.timedelta(minutes=rnd.uniform(60, 365 * 1440))
                status = rnd.choice(closed_statuses)
                ack_due = created + dt.timedelta(minutes=ack)
                resolve_due = created + dt.timedelta(minutes=resolve)
                due = escalate_at = None
                acknowledged = created + dt.timedelta(minutes=ack / 3)
                outcome = "solved" if status in ("closed", "resolved") else ""
            yield (
                adapt_uuid(uuid.uuid4(), Need),
                muni_id,
                block,
                muni_node if sensitive else block,
                0,
                violence if sensitive else rnd.choice(cats),
                "" if sensitive else "Necesidad de prueba",
                sensitive,
                "",
                "",
                "",
                urgency,
                "field",
                status,
                adapt_datetime(ack_due, Need),
                adapt_datetime(resolve_due, Need),
                adapt_datetime(due, Need) if due else None,
                ack,
                adapt_datetime(escalate_at, Need) if escalate_at else None,
                adapt_datetime(acknowledged, Need) if acknowledged else None,
                outcome,
                "",
                adapt_datetime(created, Need),
                adapt_datetime(created, Need),
            )

    t0 = time.perf_counter()
    done = 0
    while done < n:
        batch = min(CHUNK, n - done)
        with transaction.atomic():
            copy_rows(Need, columns, rows(batch))
        done += batch
        if progress:
            progress(done)
    seconds = time.perf_counter() - t0
    return {"needs": n, "write_s": seconds, "rows_per_s": n / seconds, **counts}
