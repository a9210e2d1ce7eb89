"""Channel accounts of a municipality: which account carries which medium, and their encrypted secrets."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from redes.accounts import scoping
from redes.accounts.roles import Perm
from redes.audit.models import Outcome as AuditOutcome
from redes.audit.services import record, record_denied
from redes.core.phones import normalize_phone
from redes.registry import crypto

from .models import PROVIDER_MEDIUM, ChannelAccount, Medium, Provider

#: Default send rate per provider (messages per second): WhatsApp Cloud API's default throughput per number,
#: Telegram's global bot limit, a conservative SMS long-code rate.
DEFAULT_RATES = {
    Provider.CONSOLE: 1000.0,
    Provider.WHATSAPP: 80.0,
    Provider.TWILIO: 10.0,
    Provider.GATEWAY: 10.0,
    Provider.TELEGRAM: 30.0,
}


@lru_cache(maxsize=64)
def _decrypt(token: str) -> dict:
    return crypto.decrypt(token)


def secrets_of(account: ChannelAccount) -> dict:
    """The account's decrypted secrets (cached per encrypted value: webhooks and broadcasts decrypt them once)."""
    return dict(_decrypt(account.secrets or ""))


def set_secrets(account: ChannelAccount, values: dict) -> None:
    """Encrypt ``values`` into the account (the caller saves it)."""
    account.secrets = crypto.encrypt({k: v for k, v in values.items() if v})


def console_account(municipality) -> ChannelAccount:
    """The municipality's built-in console account (created on first use): every message to a medium with
    no real account goes here, and shows in the console inbox/outbox page."""
    account, _ = ChannelAccount.objects.get_or_create(
        municipality_id=getattr(municipality, "pk", municipality),
        provider=Provider.CONSOLE,
        name="console",
        defaults={"rate_per_second": DEFAULT_RATES[Provider.CONSOLE], "burst": 1000},
    )
    return account


def account_for(municipality, medium: str) -> ChannelAccount | None:
    """The active account carrying ``medium`` for the municipality (oldest first), or None."""
    providers = [p for p, m in PROVIDER_MEDIUM.items() if m == medium]
    return (
        ChannelAccount.objects.filter(
            municipality_id=getattr(municipality, "pk", municipality), provider__in=providers, active=True
        )
        .order_by("created_at", "id")
        .first()
    )


def route(municipality, medium: str) -> ChannelAccount:
    """The account a message for ``medium`` goes out through: the real one, else the console."""
    if medium != Medium.CONSOLE:
        account = account_for(municipality, medium)
        if account is not None:
            return account
    return console_account(municipality)


# ------------------------------------------------------------------------------------------- saving accounts

#: Settings (not secret) and secrets each provider's account has; ``required`` ones must be set.
CONFIG_KEYS = {
    Provider.CONSOLE: (),
    Provider.WHATSAPP: ("api_base", "api_version", "phone_number_id"),
    Provider.TWILIO: ("api_base", "account_sid", "from_number", "messaging_service_sid"),
    Provider.GATEWAY: ("send_url",),
    Provider.TELEGRAM: ("api_base",),
}
SECRET_KEYS = {
    Provider.CONSOLE: (),
    Provider.WHATSAPP: ("access_token", "app_secret", "verify_token"),
    Provider.TWILIO: ("auth_token",),
    Provider.GATEWAY: ("api_key", "webhook_secret"),
    Provider.TELEGRAM: ("bot_token", "webhook_secret"),
}
_URL_KEYS = ("api_base", "send_url")
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def secrets_set(account: ChannelAccount) -> list[str]:
    """The names of the secrets an account has (never their values): what pages and the API may show."""
    try:
        return sorted(secrets_of(account))
    except crypto.SensitiveDataUnreadable:
        return []


def _check_config(provider: str, config: dict, address: str) -> tuple[dict, dict]:
    errors: dict[str, list[str]] = {}
    clean: dict = {}
    allowed = CONFIG_KEYS[Provider(provider)]
    for key, value in (config or {}).items():
        if key not in allowed:
            errors.setdefault(f"config_{key}", []).append(_("This setting does not apply to this provider."))
            continue
        value = str(value or "").strip()
        if not value:
            continue
        if key in _URL_KEYS:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors.setdefault(f"config_{key}", []).append(_("Enter a web address (http or https)."))
                continue
            value = value.rstrip("/") if key == "api_base" else value
        clean[key] = value
    if provider == Provider.WHATSAPP:
        if not re.fullmatch(r"\d{5,20}", clean.get("phone_number_id", "")):
            errors.setdefault("config_phone_number_id", []).append(
                _("The phone number id is the number WhatsApp Manager shows for this phone (digits).")
            )
        if clean.get("api_version") and not re.fullmatch(r"v\d+\.\d+", clean["api_version"]):
            errors.setdefault("config_api_version", []).append(_("An API version looks like v21.0."))
    elif provider == Provider.TWILIO:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", clean.get("account_sid", "")):
            errors.setdefault("config_account_sid", []).append(
                _("The account SID starts with AC followed by 32 letters and digits.")
            )
        sender = clean.get("from_number") or address
        if not clean.get("messaging_service_sid"):
            try:
                clean["from_number"] = normalize_phone(sender)
            except ValidationError:
                errors.setdefault("config_from_number", []).append(
                    _("Enter the number messages are sent from.")
                )
    elif provider == Provider.GATEWAY and not clean.get("send_url"):
        errors.setdefault("config_send_url", []).append(_("Enter the gateway's send URL."))
    return clean, errors


def _check_secrets(provider: str, given: dict, current: dict) -> tuple[dict, dict]:
    errors: dict[str, list[str]] = {}
    allowed = SECRET_KEYS[Provider(provider)]
    merged = {k: v for k, v in current.items() if k in allowed}
    for key, value in (given or {}).items():
        if key not in allowed:
            errors.setdefault(f"secret_{key}", []).append(_("This secret does not apply to this provider."))
        elif str(value or "").strip():
            merged[key] = str(value).strip()
    for key in allowed:
        if not merged.get(key):
            errors.setdefault(f"secret_{key}", []).append(_("This secret is required."))
    webhook_secret = merged.get("webhook_secret", "")
    if provider == Provider.TELEGRAM and webhook_secret and not _TELEGRAM_SECRET.fullmatch(webhook_secret):
        errors.setdefault("secret_webhook_secret", []).append(
            _("Telegram accepts 1 to 256 letters, digits, “_” and “-”.")
        )
    return merged, errors


def save_account(
    municipality,
    *,
    actor,
    account: ChannelAccount | None = None,
    provider: str = "",
    name: str = "",
    address: str = "",
    config: dict | None = None,
    secrets: dict | None = None,
    rate_per_second: float | None = None,
    burst: int | None = None,
    active: bool = True,
) -> ChannelAccount:
    """Create or update a channel account of ``municipality`` (needs ``MANAGE_MESSAGING`` over it).

    ``secrets`` is write-only: a key left empty keeps the saved value; values are encrypted at rest and never
    returned (``secrets_set`` gives their names). Audited, naming secrets by key only."""
    action = "messaging.account.update" if account is not None else "messaging.account.create"
    node = municipality.node
    foreign = account is not None and account.municipality_id != municipality.pk
    if foreign or not scoping.can(actor, Perm.MANAGE_MESSAGING, node):
        record_denied(
            action,
            actor=actor,
            obj=account,
            municipality=None if account else municipality,
            reason="forbidden",
        )
        raise PermissionDenied(_("You may not manage the messaging channels of this municipality."))
    try:
        return _save_account(
            municipality,
            actor,
            account,
            action,
            provider,
            name,
            address,
            config or {},
            secrets or {},
            rate_per_second,
            burst,
            active,
        )
    except ValidationError as exc:
        record_denied(
            action,
            actor=actor,
            obj=account,
            municipality=None if account else municipality,
            reason="invalid input: " + ", ".join(sorted(getattr(exc, "error_dict", {}) or ["form"])),
            outcome=AuditOutcome.REJECTED,
        )
        raise


def _save_account(
    municipality, actor, account, action, provider, name, address, config, secrets, rate, burst, active
) -> ChannelAccount:
    errors: dict[str, list[str]] = {}
    if account is not None:
        if provider and provider != account.provider:
            errors["provider"] = [_("The provider of an account cannot change.")]
        provider = account.provider
    if provider not in Provider.values:
        raise ValidationError({"provider": [_("Choose a provider.")]})
    name = (name or "").strip()
    if not name or len(name) > 80:
        errors["name"] = [_("Give the account a name (up to 80 characters).")]
    elif (
        ChannelAccount.objects.filter(municipality=municipality, provider=provider, name=name)
        .exclude(pk=getattr(account, "pk", None))
        .exists()
    ):
        errors["name"] = [_("Another account of this provider already has this name.")]
    address = (address or "").strip()[:64]
    clean_config, problems = _check_config(provider, config, address)
    errors.update(problems)
    current = secrets_of(account) if account is not None and account.secrets else {}
    merged, problems = _check_secrets(provider, secrets, current)
    errors.update(problems)
    rate = DEFAULT_RATES[Provider(provider)] if rate is None else rate
    burst = max(1, int(rate)) if burst is None else burst
    try:
        rate = float(rate)
        if not 0.1 <= rate <= 1000:
            raise ValueError
    except (TypeError, ValueError):
        errors["rate_per_second"] = [_("Between 0.1 and 1,000 messages per second.")]
    try:
        burst = int(burst)
        if not 1 <= burst <= 10000:
            raise ValueError
    except (TypeError, ValueError):
        errors["burst"] = [_("Between 1 and 10,000 messages.")]
    if errors:
        raise ValidationError(errors)
    creating = account is None
    if creating:
        account = ChannelAccount(municipality=municipality, provider=provider)
    before = {
        "name": account.name,
        "address": account.address,
        "config": dict(account.config or {}),
        "rate_per_second": account.rate_per_second,
        "burst": account.burst,
        "active": account.active,
    }
    account.name, account.address, account.config = name, address, clean_config
    account.rate_per_second, account.burst, account.active = rate, burst, bool(active)
    after = {
        "name": name,
        "address": address,
        "config": clean_config,
        "rate_per_second": rate,
        "burst": burst,
        "active": bool(active),
    }
    changes = {k: v for k, v in after.items() if creating or before[k] != v}
    changed_secrets = sorted(k for k in merged if merged[k] != current.get(k))
    if changed_secrets:
        changes["secrets_changed"] = changed_secrets  # names only, never values
    set_secrets(account, merged)
    with transaction.atomic():
        account.save()
        record(
            action,
            actor=actor,
            obj=account,
            municipality=municipality,
            changes=changes,
            summary=_("Channel account saved"),
        )
    return account
