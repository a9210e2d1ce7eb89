"""Sending through the console: no HTTP. The message is accepted at once and reported delivered through the
same path as a provider's status callback (a ``status`` inbound event carrying our reference)."""

from __future__ import annotations

import uuid

from ..base import InboundEvent, OutgoingMessage, SendResult


def send(account, message: OutgoingMessage, client=None) -> SendResult:
    from ... import ingest

    provider_id = "console." + uuid.uuid4().hex
    ingest.record_events(
        account,
        [
            InboundEvent(
                provider_id=provider_id,
                kind="status",
                data={"status": "delivered", "reference": str(message.reference or ""), "errors": []},
            )
        ],
    )
    return SendResult(True, provider_id=provider_id)
