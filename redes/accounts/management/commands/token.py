"""``redes token create|list|revoke``: bearer tokens for the JSON API (``Authorization: Bearer <token>``)."""

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.accounts import services
from redes.accounts.models import ApiToken, hash_token
from redes.accounts.services import TOKEN_PREFIX
from redes.territories.management.commands._base import RedesCommand

from .user import find_user


def token_prefix(text: str) -> str:
    """The public prefix of a token, given the prefix itself or the whole token (``rds_<prefix>_<secret>``)."""
    text = (text or "").strip().rstrip("…")
    if text.startswith(TOKEN_PREFIX):
        text = text[len(TOKEN_PREFIX) :].split("_", 1)[0]
    return text


class Command(RedesCommand):
    help = gettext_lazy("Create, list and revoke API tokens.")

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser("create", help=_("create a token for a user and print it (shown only once)"))
        p.add_argument("username")
        p.add_argument("--name", default="", help=_("what the token is for, e.g. “data team script”"))
        p.add_argument(
            "--expires-days", type=int, metavar="N", help=_("expire after N days (default: never)")
        )
        p = sub.add_parser("list", help=_("list a user's tokens (prefixes only; tokens are never stored)"))
        p.add_argument("username")
        p = sub.add_parser("revoke", help=_("revoke a token, named by its prefix"))
        p.add_argument("prefix", help=_("the token's prefix as “redes token list” shows it, or the token"))

    def handle_create(self, *, username, name, expires_days, **options):
        user = find_user(username)
        token, raw = services.create_token(user, name=name, expires_in_days=expires_days)
        # The token alone on standard output (for scripts); the explanation on standard error.
        self.out(raw)
        self.note(
            _("Token %(prefix)s for %(username)s. It is shown only now: store it safely.")
            % {"prefix": token.prefix, "username": user.username}
        )

    def handle_list(self, *, username, **options):
        user = find_user(username)
        now = timezone.now()
        tokens = ApiToken.objects.filter(user=user).order_by("-created_at")
        if not tokens:
            self.out(_("%(username)s has no tokens.") % {"username": user.username})
        for token in tokens:
            if token.revoked_at:
                state = _("revoked %(date)s") % {"date": _date(token.revoked_at)}
            elif token.expires_at and token.expires_at <= now:
                state = _("expired %(date)s") % {"date": _date(token.expires_at)}
            elif token.expires_at:
                state = _("active until %(date)s") % {"date": _date(token.expires_at)}
            else:
                state = _("active")
            used = (
                _("last used %(date)s") % {"date": _date(token.last_used_at)}
                if token.last_used_at
                else _("never used")
            )
            created = _("created %(date)s") % {"date": _date(token.created_at)}
            self.out(f"{token.prefix}  {token.name or '-'}  ·  {created}  ·  {used}  ·  {state}")

    def handle_revoke(self, *, prefix, **options):
        key = token_prefix(prefix)
        tokens = list(ApiToken.objects.filter(prefix=key).select_related("user")) if key else []
        if len(tokens) > 1 and prefix.strip().startswith(TOKEN_PREFIX):
            tokens = [t for t in tokens if t.key_hash == hash_token(prefix.strip())]
        if not tokens:
            raise CommandError(_("There is no token with the prefix “%(prefix)s”.") % {"prefix": prefix})
        if len(tokens) > 1:
            raise CommandError(
                _("Several tokens share the prefix “%(prefix)s”; give the whole token.") % {"prefix": key}
            )
        token = tokens[0]
        already = token.revoked_at is not None
        services.revoke_token(token)
        message = (
            _("Token %(prefix)s of %(username)s was already revoked.")
            if already
            else _("Revoked the token %(prefix)s of %(username)s.")
        )
        self.out(message % {"prefix": token.prefix, "username": token.user.username})


def _date(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
