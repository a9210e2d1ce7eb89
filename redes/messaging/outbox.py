"""The outbox: messages waiting to be sent, sent by the dispatcher within each provider's rate limit.

``enqueue`` is the one way to put a single message in it; broadcasts build theirs set-based
(``broadcasts.build_outbox``). ``send_due`` sends what is due:

1. **Reconcile** rows left ``sending`` by a worker whose lease expired (it died, or a call timed out). A row
   whose call never started is queued again at once. A row whose call may have reached the provider is *in
   doubt*: when the provider reports statuses, the row waits ``DOUBT_SECONDS`` after its lease for a status
   callback carrying its reference (``apply_status`` then marks it sent, and it is never sent again); only
   then is it sent once more. That is how a worker killed mid-send never causes a duplicate.
2. **Claim** due rows (priority, due time, id) with a lease: ``SELECT … FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so concurrent workers never claim the same row; SQLite serialises writers anyway. A claimed
   row has no ``next_attempt_at`` until its call starts: ``_start`` stamps it (and counts the attempt) with a
   conditional UPDATE committed just before the call, by the pool thread that makes it, so a row is called at
   most once per claim and a worker that lost its lease never calls.
3. **Prepare** each row: opted-out contacts get nothing but replies (``SKIPPED``); the text is the row's body,
   else the rendered template (``texts.render``), else the broadcast rendered through the ``broadcast``
   template; WhatsApp outside 24 hours of the contact's last message needs the approved WhatsApp template of
   the broadcast or template key, else the message falls back to SMS.
4. **Send** in a thread pool sharing one ``httpx.Client``, each account within its shared token bucket
   (``ratelimit``; after a refusal the account is tried again when its next token has dripped in). ``send_due``
   is one round (claim, send for up to ``ROUND_SECONDS``, give back the rest); the dispatcher's sending thread
   runs ``send_stream`` instead, which claims and prepares the next batch in a feeder thread while the current
   one is being sent, so the bucket's rate is used without a pause between batches. Accepted results are
   written in two statements per group. Transient failures (429, 130429, 5xx, timeouts) are retried with exponential backoff and
   jitter (the provider's ``Retry-After`` when given) up to ``MAX_ATTEMPTS``; permanent failures of WhatsApp
   messages get an SMS fallback row (``fallback_of``) when the contact has a phone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from functools import partial

from django.db import OperationalError, connection, connections, transaction
from django.db.models import F

from redes.core import clock

from . import accounts
from .channels import get_adapter
from .channels.base import OutgoingMessage, SendResult
from .contacts import TELEGRAM_PREFIX
from .models import ChannelAccount, Contact, Inbound, Medium, MessageTemplate, Outbound, Provider

logger = logging.getLogger("redes.messaging")

Status = Outbound.Status

#: Seconds a worker holds the rows it claimed (and, once a call started, that call).
LEASE_SECONDS = float(os.environ.get("REDES_OUTBOX_LEASE", 60))
#: Seconds after an expired lease that a row in doubt waits for a status callback before it is sent again.
DOUBT_SECONDS = float(os.environ.get("REDES_OUTBOX_DOUBT", 120))
#: A round of ``send_due`` ends after this many seconds (what is left goes back to the queue); ``send_stream``
#: claims what the accounts' rates send in this time at once (so claimed rows wait seconds, not minutes).
ROUND_SECONDS = float(os.environ.get("REDES_OUTBOX_ROUND", 5))
#: Retries wait ½, 1, 2 … 256 s (with jitter): a passing 5xx is retried within half a second, so it hardly makes
#: a broadcast's tail, and the last retry still comes about eight and a half minutes after the first failure.
MAX_ATTEMPTS = 11
BACKOFF_BASE = 0.5
BACKOFF_CAP = 900.0
#: WhatsApp accepts free text within 24 hours of the person's last message; templates otherwise.
WINDOW = dt.timedelta(hours=24)
#: Statuses only move forward along this order (failed is handled apart).
RANK = {Status.QUEUED: 0, Status.SENDING: 0, Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3}
POOL_PREFIX = "redes-send"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def medium_for(contact: Contact) -> str:
    """The medium a message to ``contact`` goes through: its preferred one when it can carry it."""
    if contact.preferred == Medium.WHATSAPP and not contact.whatsapp:
        return Medium.SMS
    if contact.preferred == Medium.TELEGRAM and not contact.address.startswith("telegram:"):
        return Medium.SMS
    return contact.preferred


def enqueue(
    contact: Contact,
    body: str = "",
    *,
    kind: str = Outbound.Kind.REPLY,
    template: str = "",
    variables: dict | None = None,
    account: ChannelAccount | None = None,
    broadcast=None,
    priority: int = 0,
) -> Outbound:
    """Queue one message to ``contact`` (through ``account``, else the route of its preferred medium)."""
    if account is None:
        account = accounts.route(contact.municipality_id, medium_for(contact))
    return Outbound.objects.create(
        municipality_id=contact.municipality_id,
        contact=contact,
        account=account,
        broadcast=broadcast,
        kind=kind,
        priority=priority,
        body=body,
        template=template,
        variables=variables or {},
        next_attempt_at=clock.now(),
    )


# ---------------------------------------------------------------- helpers


def worker_id() -> str:
    """A name for this process's sends (``Outbound.worker``): host and pid."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}"


def backoff(attempts: int, retry_after: float | None = None, *, rng=random) -> float:
    """Seconds before the next attempt: exponential (½, 1, 2 … s, capped at 15 min) with full jitter over
    the upper half, and never earlier than the provider's ``Retry-After``."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    delay = delay * (0.5 + rng.random() / 2)
    if retry_after:
        delay = max(delay, float(retry_after))
    return delay


def _skip_locked(qs):
    return qs.select_for_update(skip_locked=True) if connection.vendor == "postgresql" else qs


def has_phone(contact: Contact) -> bool:
    return bool(contact.address) and not contact.address.startswith(TELEGRAM_PREFIX)


def render(row: Outbound, cache: dict | None = None) -> str:
    """The text of ``row``: its body, else its template rendered, else its broadcast's message."""
    if row.body:
        return row.body
    cache = {} if cache is None else cache
    if row.template:
        return _render(row.municipality_id, row.template, row.variables or {}, cache)
    if row.broadcast_id:
        key = ("broadcast", row.broadcast_id)
        if key not in cache:
            broadcast = row.broadcast
            cache[key] = _render(
                row.municipality_id, "broadcast", {"title": broadcast.title, "body": broadcast.body}, cache
            )
        return cache[key]
    return ""


def _render(municipality_id: int, key: str, variables: dict, cache: dict) -> str:
    from redes.territories.models import Municipality

    from . import texts  # H3's module; imported late (it imports the outbox)

    if ("muni", municipality_id) not in cache:
        cache[("muni", municipality_id)] = Municipality.objects.get(pk=municipality_id)
    return texts.render(cache[("muni", municipality_id)], key, variables)


def _whatsapp_template(row: Outbound, text_vars: dict, cache: dict) -> dict | None:
    """The approved WhatsApp template for ``row`` outside the window: the broadcast's own, else the one of
    its template key (``broadcast`` for broadcasts), as ``OutgoingMessage.template``; None when none."""
    template = None
    if row.broadcast_id and row.broadcast.template_id:
        template = row.broadcast.template
    key = row.template or ("broadcast" if row.broadcast_id else "")
    if (template is None or not _approved(template)) and key:
        cache_key = ("tpl", row.municipality_id, key)
        if cache_key not in cache:
            cache[cache_key] = MessageTemplate.objects.filter(
                municipality_id=row.municipality_id, key=key
            ).first()
        template = cache[cache_key]
    if template is None or not _approved(template):
        return None
    params = [str(text_vars.get(name, "")) for name in _PLACEHOLDER.findall(template.body)]
    return {
        "name": template.whatsapp_name,
        "language": template.whatsapp_language or "es_MX",
        "params": params,
    }


def _approved(template: MessageTemplate) -> bool:
    return template.whatsapp_status == MessageTemplate.WhatsAppStatus.APPROVED and bool(
        template.whatsapp_name
    )


def _variables_of(row: Outbound) -> dict:
    variables = dict(row.variables or {})
    if row.broadcast_id:
        variables.setdefault("title", row.broadcast.title)
        variables.setdefault("body", row.broadcast.body)
    return variables


def in_window(contact: Contact, now: dt.datetime) -> bool:
    return contact.last_inbound_at is not None and now - contact.last_inbound_at < WINDOW


# ---------------------------------------------------------------- state changes


def _fail(
    row: Outbound, code: str, error: str, *, worker: str | None = None, text: str | None = None
) -> bool:
    """Mark ``row`` failed for good (if it is still ours) and queue its SMS fallback when it went by WhatsApp."""
    qs = Outbound.objects.filter(pk=row.pk, status__in=[Status.QUEUED, Status.SENDING, Status.SENT])
    if worker is not None:
        qs = qs.filter(status=Status.SENDING, worker=worker)
    with transaction.atomic():
        changed = qs.update(
            status=Status.FAILED, error_code=code[:20], error=error[:300], lease_until=None, worker=""
        )
        if changed:
            fallback(row, text=text)
    return bool(changed)


def fallback(row: Outbound, *, text: str | None = None) -> Outbound | None:
    """An SMS row for a WhatsApp message that could not go (``fallback_of``), when the contact has a phone.

    It carries the rendered text (so it needs no broadcast) and no broadcast link (one row per broadcast,
    contact and kind); progress follows ``fallback_of``."""
    account = row.account
    if account.medium != Medium.WHATSAPP or not has_phone(row.contact):
        return None
    if text is None:
        try:
            text = render(row)
        except Exception:  # noqa: BLE001 - a text that cannot be rendered cannot fall back either
            logger.exception("Outbound %s: no text for the SMS fallback", row.pk)
            return None
    if not text:
        return None
    now = clock.now()
    return Outbound.objects.create(
        municipality_id=row.municipality_id,
        contact_id=row.contact_id,
        account=accounts.route(row.municipality_id, Medium.SMS),
        kind=row.kind,
        priority=row.priority,
        body=text,
        template=row.template,
        variables=row.variables,
        fallback_of=row,
        next_attempt_at=now,
        created_at=now,
    )


def apply_status(inbound: Inbound) -> bool:
    """Apply a STATUS inbound row to the outbound row it names (our reference, else the provider's id).

    Statuses only move forward (sent < delivered < read); ``failed`` applies to a row not yet delivered and
    queues its SMS fallback like a permanent failure. A row in doubt is thereby settled (never resent).
    Returns whether a row changed."""
    data = inbound.data or {}
    status = str(data.get("status") or "").lower()
    if status not in ("sent", "delivered", "read", "failed"):
        return False
    rows = Outbound.objects.filter(account_id=inbound.account_id)
    row = None
    reference = str(data.get("reference") or "")
    if reference.isdigit():
        row = rows.filter(pk=int(reference)).select_related("contact", "account").first()
    # ingest keys status rows "<message id>:<status>" (one row per status) and keeps the id in message_id.
    message_id = str(data.get("message_id") or (inbound.provider_id or "").split(":")[0])
    if row is None and message_id:
        row = rows.filter(provider_id=message_id).select_related("contact", "account").first()
    if row is None:
        return False
    when = inbound.received_at or clock.now()
    if status == "failed":
        errors = data.get("errors") or [{}]
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        code = str(first.get("code") or "failed")
        with transaction.atomic():
            changed = Outbound.objects.filter(
                pk=row.pk, status__in=[Status.QUEUED, Status.SENDING, Status.SENT]
            ).update(
                status=Status.FAILED,
                error_code=code[:20],
                error=str(first.get("title") or "Reported failed by the provider")[:300],
                lease_until=None,
                provider_id=row.provider_id or message_id,
            )
            if changed:
                fallback(row)
        return bool(changed)
    rank = RANK[Status(status)]
    lower = [s for s, r in RANK.items() if r < rank]
    stamps = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at"}
    values = {"status": status, "lease_until": None, stamps[status]: when}
    if not row.sent_at:
        values["sent_at"] = when
    if not row.provider_id and message_id:
        values["provider_id"] = message_id[:128]
    changed = Outbound.objects.filter(pk=row.pk, status__in=lower).update(**values)
    if not changed and not row.provider_id and message_id:
        Outbound.objects.filter(pk=row.pk, provider_id="").update(provider_id=message_id[:128])
    return bool(changed)


def _status_of(inbound: Inbound) -> tuple[str, str, str]:
    """(status, our reference, the provider's message id) of a STATUS inbound row, as ``apply_status`` reads
    them."""
    data = inbound.data or {}
    status = str(data.get("status") or "").lower()
    reference = str(data.get("reference") or "")
    message_id = str(data.get("message_id") or (inbound.provider_id or "").split(":")[0])
    return status, reference, message_id


def apply_statuses(inbounds: list[Inbound]) -> int:
    """``apply_status`` of many STATUS rows at once, with the same effect as one by one in id order: the
    outbound rows they name are read (and locked, in id order) in two queries, each row's statuses move it
    forward in memory, and each changed row is written once. Rows with a ``failed`` status among them (rare:
    they queue a fallback) and statuses naming no row found here go through ``apply_status`` one status at a
    time. Returns how many outbound rows
    changed."""
    inbounds = sorted(inbounds, key=lambda i: i.pk)
    parsed = [(inbound, *_status_of(inbound)) for inbound in inbounds]
    parsed = [p for p in parsed if p[1] in ("sent", "delivered", "read", "failed")]
    if not parsed:
        return 0
    accounts = {p[0].account_id for p in parsed}
    references = {int(ref) for _, _, ref, _ in parsed if ref.isdigit()}
    rows = Outbound.objects.filter(account_id__in=accounts)
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(of=("self",))
    fields = ("id", "account_id", "status", "sent_at", "provider_id")
    by_pk = (
        {r.pk: r for r in rows.filter(pk__in=references).order_by("id").only(*fields)} if references else {}
    )
    missing = {
        mid
        for inbound, _, ref, mid in parsed
        if mid and not (ref.isdigit() and (r := by_pk.get(int(ref))) and r.account_id == inbound.account_id)
    }
    by_pid: dict = {}
    if missing:
        for row in rows.filter(provider_id__in=missing).order_by("id").only(*fields):
            by_pid.setdefault((row.account_id, row.provider_id), row)  # the first, like apply_status
    groups: dict[int, list] = {}
    unmatched: list[Inbound] = []
    for inbound, status, ref, mid in parsed:
        row = by_pk.get(int(ref)) if ref.isdigit() else None
        if row is not None and row.account_id != inbound.account_id:
            row = None
        if row is None and mid:
            row = by_pid.get((inbound.account_id, mid))
        if row is not None:
            groups.setdefault(row.pk, [row, []])[1].append((inbound, status, mid))
        else:  # not one of ours as far as the batch can tell (rare): the one-row path has the last word
            unmatched.append(inbound)
    changed = sum(1 for inbound in unmatched if apply_status(inbound))
    stamps = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at"}
    for pk in sorted(groups):
        row, items = groups[pk]
        if any(status == "failed" for _, status, _ in items):
            changed += sum(1 for inbound, _, _ in items if apply_status(inbound)) > 0
            continue
        loaded = row.status
        rank = RANK.get(Status(loaded), -1) if loaded in RANK else -1
        values: dict = {}
        provider_id = row.provider_id
        sent_at = row.sent_at
        for inbound, status, mid in items:
            when = inbound.received_at or clock.now()
            if loaded in RANK and RANK[Status(status)] > rank:
                rank = RANK[Status(status)]
                values.update({"status": status, "lease_until": None, stamps[status]: when})
                if not sent_at:
                    sent_at = values["sent_at"] = when
            if not provider_id and mid:
                provider_id = values["provider_id"] = mid[:128]
        if values:
            done = Outbound.objects.filter(pk=pk, status=loaded, provider_id=row.provider_id).update(**values)
            changed += bool(done) and "status" in values
    return changed


def reconcile(now: dt.datetime | None = None, *, limit: int = 1000) -> dict:
    """Settle rows left ``sending`` past their lease (see the module's docstring)."""
    now = now or clock.now()
    stats = Counter()
    with transaction.atomic():
        qs = Outbound.objects.filter(status=Status.SENDING, lease_until__lt=now).select_related(
            "account", "contact"
        )
        rows = list(_skip_locked(qs).order_by("id")[:limit])
        if not rows:
            return stats
        # Callbacks already stored but not yet processed (intake may lag behind) settle rows in doubt first.
        doubtful = [r for r in rows if r.next_attempt_at is not None and _reports_status(r.account)]
        settled = _settle_from_pending(doubtful) if doubtful else set()
        stats["settled"] += len(settled)
        for row in rows:
            if row.pk in settled:
                continue
            if row.next_attempt_at is None:  # claimed, never called: back in the queue at once
                Outbound.objects.filter(pk=row.pk, status=Status.SENDING).update(
                    status=Status.QUEUED, worker="", lease_until=None, next_attempt_at=now
                )
                stats["released"] += 1
            elif _reports_status(row.account) and now < row.lease_until + dt.timedelta(seconds=DOUBT_SECONDS):
                stats["doubt"] += 1  # wait for its status callback
            elif row.attempts >= MAX_ATTEMPTS:
                _fail(row, "attempts", f"No answer after {row.attempts} attempts")
                stats["failed"] += 1
            else:  # in doubt too long with no status: it never reached the provider; send once more
                Outbound.objects.filter(pk=row.pk, status=Status.SENDING).update(
                    status=Status.QUEUED, worker="", lease_until=None, next_attempt_at=now
                )
                stats["resent"] += 1
    return stats


def _settle_from_pending(rows: list[Outbound]) -> set[int]:
    """Apply status callbacks already stored but not yet processed that name rows in doubt; returns the ids
    of the rows they settled."""
    references = [str(r.pk) for r in rows]
    pending = Inbound.objects.filter(
        state=Inbound.State.PENDING,
        kind=Inbound.Kind.STATUS,
        account_id__in={r.account_id for r in rows},
        data__reference__in=references,
    ).order_by("id")
    settled = set()
    for inbound in pending:
        if apply_status(inbound):
            settled.add(int(inbound.data["reference"]))
    return settled


def _reports_status(account: ChannelAccount) -> bool:
    try:
        return bool(get_adapter(account.provider).reports_status)
    except (KeyError, ImportError):
        return False


# ---------------------------------------------------------------- claiming and sending


def claim(*, limit: int, worker: str, now: dt.datetime) -> list[int]:
    """Claim up to ``limit`` due rows for ``worker``; returns their ids."""
    with transaction.atomic():
        # Every queued row carries its due time (``enqueue``, ``build_outbox``, retries and releases set it): a
        # plain range on the ``outbound_due`` index, read in order, so a claim never sorts a large outbox.
        due = Outbound.objects.filter(status=Status.QUEUED, next_attempt_at__lte=now)
        ids = list(
            _skip_locked(due.order_by("priority", "next_attempt_at", "id")).values_list("id", flat=True)[
                :limit
            ]
        )
        if ids:
            Outbound.objects.filter(pk__in=ids, status=Status.QUEUED).update(
                status=Status.SENDING,
                worker=worker,
                lease_until=now + dt.timedelta(seconds=LEASE_SECONDS),
                next_attempt_at=None,
            )
    return ids


def _start(row: Outbound, worker: str) -> bool:
    """Stamp the start of the call (and count the attempt) if the row is still ours; False: do not call."""
    now = clock.now()
    started = Outbound.objects.filter(
        pk=row.pk, status=Status.SENDING, worker=worker, next_attempt_at__isnull=True, lease_until__gte=now
    ).update(
        next_attempt_at=now, lease_until=now + dt.timedelta(seconds=LEASE_SECONDS), attempts=F("attempts") + 1
    )
    if started:
        row.attempts += 1
    return bool(started)


def _record(row: Outbound, result: SendResult, worker: str, adapter, text: str, stats: Counter) -> None:
    now = clock.now()
    mine = Outbound.objects.filter(pk=row.pk, status=Status.SENDING, worker=worker)
    if result.ok:
        changed = mine.update(
            status=Status.SENT,
            sent_at=now,
            provider_id=(result.provider_id or "")[:128],
            lease_until=None,
            error_code="",
            error="",
        )
        if not changed and result.provider_id:  # a status callback got there first
            Outbound.objects.filter(pk=row.pk, provider_id="").update(provider_id=result.provider_id[:128])
        stats["sent"] += 1
        return
    if result.retry:
        if result.error_code == "timeout" and getattr(adapter, "reports_status", False):
            # The provider may have taken it: in doubt until a status callback says so or DOUBT_SECONDS pass.
            mine.update(lease_until=now, error_code="timeout", error=result.error[:300])
            stats["doubt"] += 1
            return
        if row.attempts >= MAX_ATTEMPTS:
            _fail(row, result.error_code or "retry", result.error or "Gave up", worker=worker, text=text)
            stats["failed"] += 1
            return
        delay = backoff(row.attempts, result.retry_after)
        mine.update(
            status=Status.QUEUED,
            worker="",
            lease_until=None,
            next_attempt_at=now + dt.timedelta(seconds=delay),
            error_code=(result.error_code or "")[:20],
            error=(result.error or "")[:300],
        )
        stats["retried"] += 1
        return
    _fail(
        row,
        result.error_code or "failed",
        result.error or "Refused by the provider",
        worker=worker,
        text=text,
    )
    stats["failed"] += 1


def _record_sent(sent: list, worker: str, stats: Counter) -> None:
    """``_record`` of many accepted calls at once: two statements whatever their number."""
    if not sent:
        return
    from django.db.models import Case, CharField, Value, When

    ids = [row.pk for row, _ in sent]
    with_id = [(row.pk, (result.provider_id or "")[:128]) for row, result in sent if result.provider_id]
    provider_id = (
        Case(
            *(When(pk=pk, then=Value(pid)) for pk, pid in with_id),
            default=F("provider_id"),
            output_field=CharField(),
        )
        if with_id
        else F("provider_id")
    )
    Outbound.objects.filter(pk__in=ids, status=Status.SENDING, worker=worker).update(
        status=Status.SENT,
        sent_at=clock.now(),
        provider_id=provider_id,
        lease_until=None,
        error_code="",
        error="",
    )
    if with_id:  # rows a status callback got to first keep their status and learn the provider's id
        Outbound.objects.filter(pk__in=[pk for pk, _ in with_id], provider_id="").update(
            provider_id=provider_id
        )
    stats["sent"] += len(sent)


def _prepare(row: Outbound, now: dt.datetime, cache: dict, stats: Counter, worker: str):
    """The ``OutgoingMessage`` for ``row``, or None when the row was settled here (skipped, fallen back)."""
    contact = row.contact
    mine = Outbound.objects.filter(pk=row.pk, status=Status.SENDING, worker=worker)
    if row.kind != Outbound.Kind.REPLY and contact.opted_out_at is not None:
        mine.update(status=Status.SKIPPED, lease_until=None, error_code="opted_out", error="Opted out")
        stats["skipped"] += 1
        return None
    if not row.account.active:
        _fail(row, "inactive", "The channel account is disabled", worker=worker)
        stats["failed"] += 1
        return None
    text = render(row, cache)
    template = None
    if row.account.medium == Medium.WHATSAPP and not in_window(contact, now):
        template = _whatsapp_template(row, _variables_of(row), cache)
        if template is None:
            _fail(
                row,
                "window",
                "Outside WhatsApp's 24-hour window with no approved template",
                worker=worker,
                text=text,
            )
            stats["fallback"] += 1
            return None
    if not text and template is None:
        _fail(row, "empty", "Nothing to send", worker=worker)
        stats["failed"] += 1
        return None
    options = (row.variables or {}).get("options")
    return OutgoingMessage(
        to=contact.address,
        text=text,
        reference=str(row.pk),
        template=template,
        options=options if isinstance(options, list) else None,
    )


def _call(adapter, account, message: OutgoingMessage, client) -> SendResult:
    try:
        return adapter.send(account, message, client)
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not lose the row: it is retried
        logger.exception("The %s adapter failed to send", account.provider)
        return SendResult(False, retry=True, error_code="adapter", error=str(exc)[:300])


def _start_and_call(
    adapter, row: Outbound, message: OutgoingMessage, client, worker: str
) -> SendResult | None:
    """Stamp the start (``_start``, its own commit) and make the call; None when the row is no longer ours.

    It runs in the pool thread that makes the call, so the sending loop never waits for these commits: they
    overlap with each other and with the calls in flight. The pool threads keep their connection for the
    pool's life (``_close_pool_connections``)."""
    try:
        if not _start(row, worker):
            return None
    except Exception:  # noqa: BLE001 - not started, not called: the row goes back to the queue
        logger.exception("Outbound %s: the start of its call could not be written", row.pk)
        return NOT_STARTED
    return _call(adapter, row.account, message, client)


#: What ``_start_and_call`` answers when the start could not be written (so no call was made).
NOT_STARTED = SendResult(False, retry=True, error_code="not-started")


def _close_pool_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Give back the database connection of every pool thread: one task per thread, held at a barrier so
    that each thread runs exactly one."""
    barrier = threading.Barrier(threads)

    def close():
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(5)
        connections.close_all()

    for future in [pool.submit(close) for _ in range(threads)]:
        future.result()


def _fetch(*, limit: int, worker: str, now: dt.datetime) -> tuple[list, Counter]:
    """Reconcile, claim up to ``limit`` due rows and prepare them: ``[(row, message)]`` ready to send, and
    the counts (``claimed`` and whatever was settled while preparing)."""
    stats = Counter(reconcile(now))
    ids = claim(limit=limit, worker=worker, now=now)
    stats["claimed"] += len(ids)
    if not ids:
        return [], stats
    rows = list(
        Outbound.objects.filter(pk__in=ids, status=Status.SENDING, worker=worker)
        .select_related("contact", "account", "broadcast", "broadcast__template")
        .order_by("priority", "id")
    )
    cache: dict = {}
    items = []
    for row in rows:
        try:
            message = _prepare(row, now, cache, stats, worker)
        except Exception as exc:  # noqa: BLE001 - one bad row (a broken template) must not stop the others
            logger.exception("Outbound %s could not be prepared", row.pk)
            _fail(row, "render", str(exc) or exc.__class__.__name__, worker=worker)
            stats["failed"] += 1
            continue
        if message is not None:
            items.append((row, message))
    return items, stats


def next_due(now: dt.datetime) -> float | None:
    """Seconds until the next queued row comes due (a retry waiting its backoff), or None when none is queued."""
    from django.db.models import Min

    first = Outbound.objects.filter(status=Status.QUEUED).aggregate(at=Min("next_attempt_at"))["at"]
    return None if first is None else max(0.0, (first - now).total_seconds())


def _fetch_in_thread(**kwargs) -> tuple[list, Counter]:
    try:
        items, stats = _fetch(**kwargs)
        if not stats.get("claimed"):
            stats["next_due"] = next_due(kwargs["now"])  # not a count: taken out by the stream
        return items, stats
    finally:
        connections.close_all()  # the feeder thread's connection goes back after each claim


def send_due(
    *,
    limit: int = 500,
    worker: str = "",
    threads: int = 8,
    now: dt.datetime | None = None,
    stop: threading.Event | None = None,
    client=None,
) -> dict:
    """One sending round: reconcile, claim up to ``limit`` rows and send them for at most ``ROUND_SECONDS``
    (see the module's docstring); what is left goes back to the queue. Returns counts: ``claimed``, ``sent``,
    ``retried``, ``failed``, ``skipped``, ``fallback``, ``doubt``, ``released``, ``resent``…"""
    now = now or clock.now()
    worker = (worker or worker_id())[:40]
    items, stats = _fetch(limit=limit, worker=worker, now=now)
    if not items:
        return dict(stats)
    sender = _Sender(worker, threads, stats, stop)
    sender.add(items)
    sender.run(client, deadline=time.monotonic() + min(LEASE_SECONDS * 0.8, ROUND_SECONDS))
    return dict(stats)


def send_stream(
    *,
    limit: int = 500,
    worker: str = "",
    threads: int = 16,
    stop: threading.Event | None = None,
    client=None,
) -> dict:
    """Send continuously until nothing is due (or ``stop``): the dispatcher's sending thread.

    Unlike rounds of ``send_due``, sending never pauses to claim: a feeder thread claims and prepares the next
    batch while the current one is being sent, as soon as what is waiting would last less than
    ``LOW_WATER_SECONDS`` at the accounts' rates. A batch is what the accounts' rates send in ``ROUND_SECONDS``
    (at most ``limit``), so claimed rows wait seconds, well within their lease, and workers sharing a bucket
    share the rows too. Returns the counts of ``send_due``."""
    worker = (worker or worker_id())[:40]
    stats = Counter()
    sender = _Sender(worker, threads, stats, stop)
    sender.feed_limit = limit
    sender.run(client, deadline=None)
    return dict(stats)


#: Database writes of a sending round are grouped: the starts of the calls the bucket allows at once in one
#: transaction, the results of up to ``FLUSH_EVERY`` calls (or ``FLUSH_SECONDS``) in another. One commit per
#: message would cap a worker at the disk's commit rate; a crash between a call and the flush of its result only
#: leaves that row in doubt, which its status callback settles.
FLUSH_EVERY = 32
FLUSH_SECONDS = 0.25
#: A streaming sender claims the next batch when what it holds would last less than this at the accounts' rates.
LOW_WATER_SECONDS = 2.0


def _retrying(write, attempts: int = 5) -> None:
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                write()
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


class _Sender:
    """The sending loop: per-account queues of prepared messages taken within each account's bucket, calls in
    a thread pool, starts and results written in grouped transactions. ``feed_limit`` set: a feeder thread
    refills the queues (``send_stream``); else it sends what ``add`` gave it (``send_due``)."""

    def __init__(self, worker: str, threads: int, stats: Counter, stop: threading.Event | None):
        self.worker = worker
        self.threads = max(threads, 1)
        self.stats = stats
        self.stop = stop
        self.queues: dict[int, deque] = {}
        self.accounts: dict[int, ChannelAccount] = {}
        self.buckets: dict = {}
        self.adapters: dict = {}
        self.ready_at: dict[int, float] = {}
        self.inflight: dict = {}
        self.results: list = []
        self.flushed = time.monotonic()
        self.feed_limit: int | None = None

    # ---- queues
    def add(self, items) -> None:
        from . import ratelimit

        for row, message in items:
            aid = row.account_id
            if aid not in self.queues:
                self.queues[aid] = deque()
                self.accounts[aid] = row.account
                self.buckets[aid] = ratelimit.bucket(row.account)
                self.adapters[aid] = get_adapter(row.account.provider)
                self.ready_at[aid] = 0.0
            self.queues[aid].append((row, message))

    def backlog_seconds(self) -> float:
        """How long what is queued lasts at the accounts' rates (the longest queue)."""
        return max(
            (
                len(q) / max(self.accounts[aid].rate_per_second or 0.001, 0.001)
                for aid, q in self.queues.items()
            ),
            default=0.0,
        )

    def batch_size(self) -> int:
        """Rows to claim at once: what the active accounts' rates send in ``ROUND_SECONDS``, at most the limit."""
        from django.db.models import Sum

        rate = ChannelAccount.objects.filter(active=True).aggregate(r=Sum("rate_per_second"))["r"] or 0
        return max(1, min(self.feed_limit or 1, int(rate * ROUND_SECONDS + 0.999)))

    def queued_ids(self) -> list[int]:
        return [row.pk for q in self.queues.values() for row, _ in q]

    # ---- results
    def flush(self, force: bool = False) -> None:
        results = self.results
        if not results or not (
            force or len(results) >= FLUSH_EVERY or time.monotonic() - self.flushed > FLUSH_SECONDS
        ):
            return
        results.sort(key=lambda item: item[0].pk)  # one lock order with other grouped writers
        counted = Counter()
        try:
            with transaction.atomic():
                _record_sent(
                    [(row, result) for row, result, _, _ in results if result.ok], self.worker, counted
                )
                for row, result, aid, text in results:
                    if not result.ok:
                        _record(row, result, self.worker, self.adapters[aid], text, counted)
        except OperationalError:  # a deadlock with status callbacks being applied: one row at a time
            logger.info("Grouped outbox write failed; writing %s results one by one", len(results))
            counted = Counter()
            for row, result, aid, text in results:
                _retrying(partial(_record, row, result, self.worker, self.adapters[aid], text, counted))
        self.stats.update(counted)
        results.clear()
        self.flushed = time.monotonic()

    def collect(self, futures) -> None:
        for future in futures:
            row, aid, text = self.inflight.pop(future)
            self.done(row, future.result(), aid, text)

    # ---- the loop
    def take(self, window: int) -> list:
        """Messages whose tokens were taken now, across accounts, up to ``window`` calls in flight."""
        batch = []
        for aid, queue in self.queues.items():
            while (
                queue and self.ready_at[aid] <= time.monotonic() and len(self.inflight) + len(batch) < window
            ):
                wait = self.buckets[aid].take()
                if wait > 0:
                    # The next token, not a fixed pause: try again as soon as it has dripped in.
                    self.ready_at[aid] = time.monotonic() + wait
                    break
                batch.append((aid, *queue.popleft()))
        return batch

    def start(self, batch, pool, client) -> None:
        for aid, row, message in batch:
            adapter = self.adapters[aid]
            if pool is None or row.account.provider == Provider.CONSOLE:  # no HTTP: inline
                result = _start_and_call(adapter, row, message, client, self.worker)
                self.done(row, result, aid, message.text)
            else:
                future = pool.submit(_start_and_call, adapter, row, message, client, self.worker)
                self.inflight[future] = (row, aid, message.text)

    def done(self, row, result, aid, text) -> None:
        if result is None:
            self.stats["lost_lease"] += 1
        elif result is NOT_STARTED:
            # The start was not written, so the call was not made: back in the queue at once (else its lease
            # runs out and ``reconcile`` gives it back).
            with contextlib.suppress(OperationalError):
                self.stats["released"] += Outbound.objects.filter(
                    pk=row.pk, status=Status.SENDING, worker=self.worker, next_attempt_at__isnull=True
                ).update(status=Status.QUEUED, worker="", lease_until=None, next_attempt_at=clock.now())
        else:
            self.results.append((row, result, aid, text))

    def run(self, client, *, deadline: float | None) -> None:
        import httpx

        own_client = client is None
        if own_client:
            client = httpx.Client(limits=httpx.Limits(max_connections=self.threads * 2))
        pool = (
            ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=POOL_PREFIX)
            if self.threads > 1
            else None
        )
        feeder = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="redes-claim") if self.feed_limit else None
        )
        fetching = None
        size = self.batch_size() if feeder else 0
        exhausted = False  # the last claim found nothing due, and nothing comes due soon
        hold_until = 0.0  # the next claim waits until then (a retry coming due)
        window = self.threads * 2
        try:
            while True:
                stopping = (self.stop is not None and self.stop.is_set()) or (
                    deadline is not None and time.monotonic() > deadline
                )
                if feeder is not None and not stopping:
                    if fetching is not None and fetching.done():
                        items, counted = fetching.result()
                        fetching = None
                        due = counted.pop("next_due", None)
                        self.stats.update(counted)
                        self.add(items)
                        exhausted = not counted.get("claimed")
                        if exhausted and due is not None and due <= LOW_WATER_SECONDS:
                            # A retry comes due in a moment (the tail of a broadcast): wait for it here.
                            exhausted, hold_until = False, time.monotonic() + due + 0.01
                        elif exhausted and (self.inflight or self.results):
                            # Calls not yet written may come back as retries: ask again once they are.
                            exhausted, hold_until = False, time.monotonic() + 0.1
                    if (
                        fetching is None
                        and not exhausted
                        and time.monotonic() >= hold_until
                        and self.backlog_seconds() < LOW_WATER_SECONDS
                    ):
                        # Claim and prepare the next batch while this one is being sent.
                        fetching = feeder.submit(
                            _fetch_in_thread, limit=size, worker=self.worker, now=clock.now()
                        )
                pending = any(self.queues.values())
                holding = hold_until > time.monotonic()
                if (stopping or not (pending or fetching is not None or holding)) and not self.inflight:
                    break
                batch = [] if stopping else self.take(window)
                if batch:
                    self.start(batch, pool, client)
                done = [f for f in self.inflight if f.done()]
                self.collect(done)
                self.flush()
                if batch or done:
                    continue
                if self.inflight:
                    self.collect(
                        wait_futures(list(self.inflight), timeout=0.02, return_when=FIRST_COMPLETED).done
                    )
                    continue
                self.flush(force=True)
                waits = [self.ready_at[aid] for aid, q in self.queues.items() if q]
                pause = max(0.0, min(waits) - time.monotonic()) if waits else 0.02
                if exhausted and not waits:
                    break  # nothing queued, nothing due soon: the stream ends (the dispatcher starts another)
                if holding and not waits:
                    pause = hold_until - time.monotonic()
                pause = max(0.0, min(pause, 0.05 if fetching is not None else 1.0))
                if self.stop is not None:
                    self.stop.wait(pause)
                else:
                    time.sleep(pause)
        finally:
            if pool is not None:
                self.collect(list(self.inflight))
                _close_pool_connections(pool, self.threads)
                pool.shutdown(wait=True)
            if feeder is not None:
                if fetching is not None:
                    try:
                        items, counted = fetching.result()
                        self.stats.update(counted)
                        self.add(items)
                    except Exception:  # noqa: BLE001 - its rows' leases run out and reconcile frees them
                        logger.exception("Claiming the next outbox batch failed")
                feeder.shutdown(wait=True)
            self.flush(force=True)
            if own_client:
                client.close()
            # Whatever was claimed and not called (stopped, round over) goes back to the queue now.
            left = self.queued_ids()
            released = 0
            for start in range(0, len(left), 1000):
                released += Outbound.objects.filter(
                    pk__in=left[start : start + 1000],
                    status=Status.SENDING,
                    worker=self.worker,
                    next_attempt_at__isnull=True,
                ).update(status=Status.QUEUED, worker="", lease_until=None, next_attempt_at=clock.now())
            if released:
                self.stats["released"] += released


def counts() -> list[dict]:
    """Outbox rows per account and status (``redes messaging status``)."""
    from django.db.models import Count

    return list(
        Outbound.objects.values("account_id", "account__name", "account__provider", "status")
        .annotate(n=Count("id"))
        .order_by("account_id", "status")
    )
