"""Store first: every webhook request is written to ``WebhookLog`` before anything else, then checked, parsed and
turned into ``Inbound`` rows that the dispatcher processes later (``intake.process_pending``).

- A body over ``MAX_BODY`` (1 MB) is answered 413 and logged truncated.
- A missing or wrong signature is logged ``forged`` and refused (403): the provider is not who it says.
- A signed request that cannot be read is logged ``malformed`` with the reason and answered 200, so the
  provider does not retry it forever; the raw body stays for inspection.
- ``Inbound`` is unique per (account, provider id, kind): a provider's retry inserts nothing and its log row
  says ``duplicate``. A status's row is keyed ``<message id>:<status>`` (sent, delivered and read of one message
  are three rows); ``data["message_id"]`` keeps the provider's message id and ``data["reference"]`` our
  ``Outbound.id`` when the provider echoed it.
- Senders are normalised (``contacts.address_of``: WhatsApp's ``521…`` becomes ``+52…``); an unusable sender
  keeps its raw value and the row is ``ignored`` with the reason. Texts are cut to ``TEXT_LIMIT`` characters
  (the log keeps the whole body).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse

from redes.core import clock
from redes.registry import crypto

from .channels import get_adapter
from .channels.base import InboundEvent, MalformedPayload, WebhookRefused
from .contacts import address_of
from .models import ChannelAccount, Inbound, Provider, WebhookLog

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
#: How much of an oversized body is kept in the log.
KEPT_OF_OVERSIZED = 64 * 1024
TEXT_LIMIT = 4096
#: Request headers never written to the log.
_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


#: Accounts found by the webhooks, kept ``ACCOUNT_SECONDS`` per process (a webhook request then costs no query
#: for them); saving an account forgets them at once in this process (``forget_accounts``).
ACCOUNT_SECONDS = 5.0
_accounts: dict[tuple[str, uuid.UUID], tuple[float, ChannelAccount]] = {}


def forget_accounts() -> None:
    _accounts.clear()


def _account(provider: str, account_uuid) -> ChannelAccount | None:
    try:
        key = uuid.UUID(str(account_uuid))
    except ValueError:
        return None
    now = time.monotonic()
    hit = _accounts.get((provider, key))
    if hit is not None and hit[0] > now:
        return hit[1]
    account = ChannelAccount.objects.filter(uuid=key, provider=provider, active=True).first()
    if account is not None:  # unknown ids are not kept: a flood of them must not grow the cache
        _accounts[(provider, key)] = (now + ACCOUNT_SECONDS, account)
    else:
        _accounts.pop((provider, key), None)
    return account


def _headers(request) -> dict:
    kept = {}
    for name, value in request.headers.items():
        if name.lower() not in _SECRET_HEADERS and len(kept) < 40:
            kept[name] = str(value)[:500]
    return kept


def _read(request) -> tuple[bytes, bool]:
    """The raw body, at most ``MAX_BODY`` + 1 bytes (so an oversized body is detected without reading it all)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return request.read(KEPT_OF_OVERSIZED), True
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return body[:KEPT_OF_OVERSIZED], True
    return body, False


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _refused(reason: str, status: int) -> JsonResponse:
    return JsonResponse({"error": reason}, status=status)


def not_found() -> JsonResponse:
    return _refused("Unknown account.", 404)


def open_log(
    account: ChannelAccount, body: bytes, *, headers=None, truncated=False, outcome=None, error="", events=0
) -> WebhookLog:
    """Write the raw request before anything else (its own statement, committed at once)."""
    return WebhookLog.objects.create(
        error=error[:300],
        events=events,
        account=account,
        municipality_id=account.municipality_id,
        received_at=clock.now(),
        body=_text(body),
        truncated=truncated,
        headers=headers or {},
        outcome=outcome or WebhookLog.Outcome.STORED,
    )


def _close(entry: WebhookLog, outcome: str, *, error: str = "", events: int = 0) -> None:
    WebhookLog.objects.filter(pk=entry.pk).update(outcome=outcome, error=error[:300], events=events)
    entry.outcome, entry.error, entry.events = outcome, error[:300], events


def store(provider: str, account_uuid, request) -> HttpResponse:
    """Everything of a webhook POST (see the module's docstring); never raises for bad input.

    The signature check and the parsing touch no database, so the log entry is written once with what they
    found: refused and unreadable requests alone in their own statement; a readable one together with its
    ``Inbound`` rows in one transaction (log row first, then one ``INSERT … ON CONFLICT DO NOTHING``), so a
    failure there rolls both back and answers 5xx: the provider retries, nothing is lost."""
    account = _account(provider, account_uuid)
    if account is None:
        return not_found()
    adapter = get_adapter(provider)
    body, oversized = _read(request)
    headers = _headers(request)
    if oversized:
        _log(account, body, headers, WebhookLog.Outcome.MALFORMED, "Body over 1 MB.", truncated=True)
        return _refused("Body over 1 MB.", 413)
    try:
        adapter.check_signature(request, body, account)
    except WebhookRefused as exc:
        _log(account, body, headers, WebhookLog.Outcome.FORGED, exc.reason)
        return _refused(exc.reason, exc.status)
    except crypto.SensitiveDataUnreadable:
        # The secrets were encrypted with a key no longer configured: refuse with a 5xx so the provider
        # retries once the key is back, and keep the request.
        _log(account, body, headers, WebhookLog.Outcome.IGNORED, "The account's secrets cannot be read.")
        return _refused("The account's secrets cannot be read.", 503)
    try:
        events = adapter.parse(request, body, account)
    except MalformedPayload as exc:
        _log(account, body, headers, WebhookLog.Outcome.MALFORMED, str(exc) or "Could not be read.")
        return adapter.accepted()
    except Exception as exc:  # a parser bug: keep the payload, tell the provider not to retry
        log.exception("webhook %s: parser failed", provider)
        _log(account, body, headers, WebhookLog.Outcome.MALFORMED, f"{type(exc).__name__}: {exc}")
        return adapter.accepted()
    outcome = WebhookLog.Outcome.STORED if events else WebhookLog.Outcome.IGNORED
    with transaction.atomic():
        entry = _log(account, body, headers, outcome, events=len(events))
        record_events(account, events, entry=entry)
    return adapter.accepted()


def _log(account, body, headers, outcome, error: str = "", *, truncated=False, events=0) -> WebhookLog:
    return open_log(
        account, body, headers=headers, truncated=truncated, outcome=outcome, error=error, events=events
    )


def handshake(provider: str, account_uuid, request) -> HttpResponse:
    """A GET: the provider's verification handshake (WhatsApp), 405 when the provider has none."""
    account = _account(provider, account_uuid)
    if account is None:
        return not_found()
    adapter = get_adapter(provider)
    try:
        answer = adapter.handshake(request, account)
    except WebhookRefused as exc:
        entry = open_log(account, request.META.get("QUERY_STRING", "").encode(), headers=_headers(request))
        _close(entry, WebhookLog.Outcome.FORGED, error=exc.reason)
        return _refused(exc.reason, exc.status)
    if answer is None:
        return _refused("Use POST.", 405)
    return answer


def _row(account: ChannelAccount, event: InboundEvent, entry: WebhookLog | None, now) -> Inbound:
    data = dict(event.data or {})
    provider_id = str(event.provider_id)
    sender, state, error = "", Inbound.State.PENDING, ""
    if event.kind == Inbound.Kind.STATUS:
        data["message_id"] = provider_id
        provider_id = f"{provider_id}:{data.get('status', '')}"
    else:
        try:
            sender = address_of(event.sender, account.medium)
        except ValidationError as exc:
            sender = str(event.sender or "")[:64]
            state, error = Inbound.State.IGNORED, "; ".join(exc.messages)[:300]
            data["sender_error"] = error
    text = str(event.text or "")
    if len(text) > TEXT_LIMIT:
        text = text[:TEXT_LIMIT]
        data["truncated"] = True
    if event.timestamp is not None:
        data["timestamp"] = event.timestamp.isoformat()
    return Inbound(
        municipality_id=account.municipality_id,
        account=account,
        log=entry,
        provider_id=provider_id[:128],
        kind=event.kind,
        sender=sender,
        text=text.replace("\x00", "\ufffd"),
        data=data,
        received_at=now,
        state=state,
        processed_at=now if state == Inbound.State.IGNORED else None,
        error=error,
    )


def _insert(rows: list[Inbound]) -> set[tuple[str, str]]:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite >= 3.35): one statement that skips the
    events already received and says which rows are new."""
    fields = [f for f in Inbound._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [f.get_db_prep_save(getattr(r, f.attname), connection) for r in rows for f in fields]
    # Table and column names come from the model; every value is a parameter.
    table, values = quote(Inbound._meta.db_table), ", ".join([one] * len(rows))
    returning = f"{quote('provider_id')}, {quote('kind')}"
    sql = f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT DO NOTHING RETURNING {returning}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {tuple(r) for r in cursor.fetchall()}


def record_events(account: ChannelAccount, events: list[InboundEvent], *, entry: WebhookLog | None = None):
    """Insert the events as ``Inbound`` rows (those already received are skipped) and settle the log entry's
    outcome (``stored``, ``duplicate`` or ``ignored``). Returns the new rows (without primary keys)."""
    now = clock.now()
    rows = [_row(account, event, entry, now) for event in events]
    # One request may repeat an event (a provider batching a retry): keep the first.
    unique = list({(r.provider_id, r.kind): r for r in reversed(rows)}.values())[::-1]
    if not unique:
        if entry is not None:
            _close(entry, WebhookLog.Outcome.IGNORED)
        return []
    try:
        inserted = _insert(unique)
    except Exception as exc:
        if entry is not None:  # the provider gets a 5xx and retries: nothing is lost
            _close(entry, entry.outcome, error=f"Not stored: {type(exc).__name__}")
        raise
    new = [r for r in unique if (r.provider_id, r.kind) in inserted]
    if entry is not None:
        if not new:
            _close(entry, WebhookLog.Outcome.DUPLICATE)
        elif len(new) < len(rows):
            _close(
                entry,
                WebhookLog.Outcome.STORED,
                error=f"{len(rows) - len(new)} already received.",
                events=len(new),
            )
        elif entry.events != len(new) or entry.outcome != WebhookLog.Outcome.STORED:
            _close(entry, WebhookLog.Outcome.STORED, events=len(new))
    return new


def store_console(
    account: ChannelAccount, sender: str, *, text: str = "", lat=None, lon=None, option_id: str = ""
) -> Inbound:
    """What the console page calls when someone "texts" from the web: the same path as a provider's webhook
    (a log entry with the raw message, then an ``Inbound`` row), returned."""
    from .channels.console import inbound as console_inbound

    provider_id = "console." + uuid.uuid4().hex
    body = console_inbound.body_of(provider_id, sender, text=text, lat=lat, lon=lon, option_id=option_id)
    entry = open_log(account, body, headers={"X-Redes-Console": "1"})
    adapter = get_adapter(Provider.CONSOLE)
    try:
        events = adapter.parse(None, body, account)
    except MalformedPayload as exc:
        _close(entry, WebhookLog.Outcome.MALFORMED, error=str(exc))
        raise ValidationError(str(exc)) from exc
    record_events(account, events, entry=entry)
    return Inbound.objects.get(account=account, provider_id=provider_id, kind=events[0].kind)


def payload_json(entry: WebhookLog):
    """The logged body as JSON when it is JSON (for the inspection page), else None."""
    try:
        return json.loads(entry.body)
    except ValueError:
        return None


def forget_raw(older_than_days: int) -> int:
    """Blank the raw payload and headers of webhook requests older than ``older_than_days`` (retention of
    personal data: the parsed rows and the log's outcome stay); returns how many were blanked."""
    cutoff = clock.now() - dt.timedelta(days=older_than_days)
    return (
        WebhookLog.objects.filter(received_at__lt=cutoff)
        .exclude(body="", headers={})
        .update(body="", headers={}, truncated=False)
    )
