"""What the adapters' ``outbound.py`` share: posting with the outbox's ``httpx.Client`` and classifying the answer
(2xx sent; 429, 5xx, timeouts and connection errors retried; other 4xx failed for good)."""

from __future__ import annotations

import httpx

from .base import SendResult

#: Seconds one API call may take before it is retried later.
TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def secrets(account) -> dict:
    """The account's decrypted secrets (``accounts.secrets_of``, cached per encrypted value)."""
    from redes.messaging.accounts import secrets_of

    return secrets_of(account)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def post(client: httpx.Client, url: str, **kwargs) -> httpx.Response | SendResult:
    """POST, or a retryable ``SendResult`` when the provider could not be reached."""
    try:
        return client.post(url, timeout=kwargs.pop("timeout", TIMEOUT), **kwargs)
    except httpx.TimeoutException as exc:
        return SendResult(False, retry=True, error_code="timeout", error=f"Timed out: {exc}"[:300])
    except httpx.HTTPError as exc:
        return SendResult(False, retry=True, error_code="connection", error=f"Not reached: {exc}"[:300])


def body_json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def generic(response: httpx.Response, error_code: str = "", error: str = "") -> SendResult:
    """A non-2xx answer: 429/5xx retried, other 4xx permanent."""
    code = error_code or str(response.status_code)
    text = (error or response.text or "")[:300]
    if response.status_code == 429 or response.status_code >= 500:
        return SendResult(False, retry=True, retry_after=retry_after(response), error_code=code, error=text)
    return SendResult(False, error_code=code, error=text)


def cut(text: str, limit: int) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"
