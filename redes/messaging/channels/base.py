"""The one interface every channel adapter implements (``channels/<provider>/``).

Each adapter folder has the same files:

- ``__init__.py`` exposes ``ADAPTER``, an instance of a ``ChannelAdapter`` subclass;
- ``inbound.py``: the webhook side — the verification handshake (WhatsApp), the signature check, and parsing
  a provider payload into ``InboundEvent`` objects;
- ``outbound.py``: sending one ``OutgoingMessage`` through the provider's HTTP API, classifying the answer
  into a ``SendResult`` (sent, retry later, or failed for good);
- ``emulator.py``: a local emulator of the provider's API on 127.0.0.1 (same paths, payloads and errors),
  for the tests and the benchmarks — there is no network in tests or CI.

Adapters are stateless; they read the account's ``config`` and decrypted ``secrets`` (``accounts.secrets_of``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse, JsonResponse


class WebhookRefused(Exception):
    """The request is not from the provider (bad or missing signature, wrong verify token): answer ``status``.

    The raw request is still logged (``WebhookLog.Outcome.FORGED``) before the refusal."""

    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class MalformedPayload(Exception):
    """The request is from the provider but cannot be read. It is logged with this reason and answered 200,
    so the provider does not retry it forever."""


@dataclass
class InboundEvent:
    """A message or status as the provider reported it, before any processing.

    ``sender`` is the address as the provider gives it (``5215512345678``, ``+525512345678``, a Telegram chat
    id); ``ingest`` normalises it. ``kind`` is an ``Inbound.Kind`` value. ``data`` carries what the kind needs:
    location ``{"lat", "lon", "name", "address"}``; interactive ``{"id", "title"}``; media ``{"type"}``;
    status ``{"status": sent|delivered|read|failed, "reference": our outbound id or "", "errors": [...],
    "recipient": ...}`` (for a status, ``provider_id`` is the id of the message we sent).
    """

    provider_id: str
    kind: str
    sender: str = ""
    text: str = ""
    data: dict = field(default_factory=dict)
    timestamp: dt.datetime | None = None


@dataclass
class OutgoingMessage:
    """What the outbox asks an adapter to send. ``reference`` is our ``Outbound.id`` as text; adapters pass it
    where the provider echoes it back in status callbacks (WhatsApp ``biz_opaque_callback_data``, a Twilio
    ``StatusCallback`` query parameter, the gateway's ``reference``) so that a message in doubt after a crash
    can be reconciled instead of sent twice."""

    to: str
    text: str
    reference: str = ""
    #: WhatsApp template outside the 24-hour window: {"name", "language", "params": [str, ...]}.
    template: dict | None = None
    #: Up to 10 menu options [{"id", "title"}] that WhatsApp/Telegram may show as buttons or a list.
    options: list[dict] | None = None


@dataclass
class SendResult:
    ok: bool
    provider_id: str = ""
    #: A transient failure (429, 130429, 5xx, timeout, connection refused): try again after ``retry_after``
    #: seconds (the provider's hint) or the outbox's backoff.
    retry: bool = False
    retry_after: float | None = None
    error_code: str = ""
    error: str = ""

    @property
    def permanent(self) -> bool:
        return not self.ok and not self.retry


class ChannelAdapter:
    """Base class: override what the provider has."""

    provider: str = ""
    #: Whether the provider reports delivery statuses (so that doubtful sends can be reconciled).
    reports_status: bool = False

    # ---- webhook side (inbound.py)
    def handshake(self, request: HttpRequest, account) -> HttpResponse | None:
        """Answer a GET verification request (WhatsApp's ``hub.challenge``); None when there is none."""
        return None

    def check_signature(self, request: HttpRequest, body: bytes, account) -> None:
        """Raise ``WebhookRefused`` unless the request is signed by the provider."""
        raise NotImplementedError

    def parse(self, request: HttpRequest, body: bytes, account) -> list[InboundEvent]:
        """Events of one webhook request; raise ``MalformedPayload`` with a reason when it cannot be read."""
        raise NotImplementedError

    def accepted(self) -> HttpResponse:
        """The answer the provider expects when the request was stored."""
        return JsonResponse({"ok": True})

    # ---- API side (outbound.py)
    def send(self, account, message: OutgoingMessage, client) -> SendResult:
        """Send one message with ``client`` (an ``httpx.Client`` the outbox keeps open)."""
        raise NotImplementedError
