"""Channel accounts of a municipality: which account carries which medium, and their encrypted secrets."""

from __future__ import annotations

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


def secrets_of(account: ChannelAccount) -> dict:
    return crypto.decrypt(account.secrets)


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
