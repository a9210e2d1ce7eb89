"""``redes demo``: build a synthetic municipality in the demo's own database and serve the web app on it."""

import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.accounts.roles import Role
from redes.audit.context import Channel, using_channel
from redes.audit.models import AuditEvent
from redes.audit.services import record
from redes.demo.generator import DEMO_PASSWORD, SCALES, build_demo
from redes.territories.models import Municipality

DEMO_ACTION = "demo.build"
DEMO_FILE = "demo.sqlite3"  # the demo's own database (see redes/cli.py)
NOT_DEMO = gettext_lazy(
    "The database holds data that the demo did not create, and the demo only rebuilds its own database. "
    "Unset DATABASE_URL to use the demo's own file."
)


def _sqlite_file() -> Path | None:
    """The database file when the default database is a file-backed SQLite one."""
    db = settings.DATABASES["default"]
    name = str(db.get("NAME") or "")
    if (
        db["ENGINE"] != "django.db.backends.sqlite3"
        or not name
        or name == ":memory:"
        or "mode=memory" in name
    ):
        return None
    return Path(name)


def _database_label() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return str(_sqlite_file() or db.get("NAME"))
    return f"{connection.vendor} {db.get('HOST') or 'localhost'}/{db.get('NAME')}"


def _holds_data() -> bool:
    """True when the database has territory or users in it (an unmigrated database holds nothing)."""
    User = get_user_model()
    tables = set(connection.introspection.table_names())
    if not {Municipality._meta.db_table, User._meta.db_table} <= tables:
        return False
    return Municipality.objects.exists() or User.objects.exists()


def _is_demo_database() -> bool:
    """True when the database is empty or was built by ``redes demo`` (never wipe anything else)."""
    if not _holds_data():
        return True
    return AuditEvent.objects.filter(action=DEMO_ACTION).exists()


class Command(BaseCommand):
    @property
    def help(self):  # argparse needs a real string, translated when the help is shown
        return str(
            gettext_lazy(
                "Build a realistic synthetic municipality (General Escobedo, N.L.) with liaisons and demo logins "
                "in the demo's own database, then serve the web app on http://127.0.0.1:PORT."
            )
        )

    requires_system_checks = []  # checked when serving

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help=_("Port to serve on (default 8000)."))
        parser.add_argument(
            "--seed", type=int, default=1, help=_("Seed of the generated data (same seed, same data).")
        )
        parser.add_argument(
            "--scale",
            choices=SCALES,
            default="small",
            help=_(
                "small: the demo municipality; acapulco: also an Acapulco-size tree (13,170 blocks); "
                "national: also every municipality of the country (~500,000 blocks)."
            ),
        )
        parser.add_argument(
            "--persons",
            type=int,
            default=0,
            metavar="N",
            help=_(
                "Also register N synthetic persons (in ~N/3.5 households, plus 2%% likely duplicates) on the "
                "blocks of Acapulco, for benchmarks; with --scale acapulco they spread over its 13,170 blocks. "
                "Same seed, same persons. The demo municipality always gets its own registry of 10,000 persons."
            ),
        )
        parser.add_argument("--no-serve", action="store_true", help=_("Build the data, then exit."))
        parser.add_argument(
            "--keep", action="store_true", help=_("Keep the existing demo database instead of rebuilding it.")
        )

    def handle(self, *args, **options):
        port = options["port"]
        if not 0 < port < 65536:
            raise CommandError(_("The port must be between 1 and 65535."))
        if options["persons"] < 0:
            raise CommandError(_("The number of persons cannot be negative."))
        started = time.perf_counter()
        keep = options["keep"]
        with using_channel(Channel.SYSTEM):
            if not keep:
                self._reset_database()
            call_command("migrate", verbosity=0, interactive=False)
            self.stdout.write(_("Database: %(name)s") % {"name": _database_label()})
            if keep and Municipality.objects.exists():
                if not _is_demo_database():
                    raise CommandError(NOT_DEMO)
                self.stdout.write(_("Keeping the existing demo database."))
            else:
                if not _is_demo_database():
                    raise CommandError(NOT_DEMO)
                # Marked first, so that a build stopped half-way is still known as the demo's own data.
                record(
                    DEMO_ACTION,
                    changes={
                        "seed": options["seed"],
                        "scale": options["scale"],
                        "persons": options["persons"],
                    },
                )
                result = build_demo(
                    seed=options["seed"], scale=options["scale"], progress=True, persons=options["persons"]
                )
                self.stdout.write(
                    _(
                        "Built the demo (seed %(seed)s, scale %(scale)s) in %(seconds).1f s: %(municipalities)s "
                        "municipalities, %(held)s liaison posts held, %(vacant)s vacant."
                    )
                    % {
                        "seed": result.seed,
                        "scale": result.scale,
                        "seconds": time.perf_counter() - started,
                        "municipalities": result.municipalities,
                        "held": result.posts["held"],
                        "vacant": result.posts["vacant"],
                    }
                )
                self._print_registry(result)
                for stats in (result.needs, result.aid, result.messaging):
                    for line in stats.lines() if stats is not None else ():
                        self.stdout.write(line)
        self._print_logins(port)
        if options["no_serve"]:
            return
        connections.close_all()
        call_command("serve", port=port)

    def _reset_database(self) -> None:
        """Empty the demo database: delete the demo's own SQLite file, else flush (never a foreign database)."""
        path = _sqlite_file()
        own_file = path is not None and path.name == DEMO_FILE and not connection.in_atomic_block
        if not own_file:
            if not _holds_data():
                return
            if not _is_demo_database():
                raise CommandError(NOT_DEMO)
            if path is None or connection.in_atomic_block:
                if connection.vendor == "postgresql" and connection.in_atomic_block:
                    # Inside a transaction (tests), deferred foreign-key checks must run before TRUNCATE.
                    with connection.cursor() as cursor:
                        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                call_command("flush", verbosity=0, interactive=False)
                if connection.vendor == "postgresql" and connection.in_atomic_block:
                    with connection.cursor() as cursor:
                        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                return
        connections.close_all()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    def _print_registry(self, result) -> None:
        stats = result.registry
        if stats is not None:
            self.stdout.write(
                _(
                    "Registry of %(municipality)s: %(households)s households, %(persons)s persons, %(consents)s "
                    "consents, %(visits)s visits, %(duplicates)s possible duplicates to review, %(requests)s open "
                    "data-subject requests."
                )
                % {
                    "municipality": result.escobedo.name,
                    "households": stats.households,
                    "persons": stats.persons,
                    "consents": stats.consents,
                    "visits": stats.visits,
                    "duplicates": stats.duplicates,
                    "requests": stats.requests,
                }
            )
        stats = result.scale_registry
        if stats is not None:
            seconds = sum(stats.seconds.values())
            self.stdout.write(
                _(
                    "Registry of %(municipality)s: %(households)s households and %(persons)s persons in %(seconds).1f "
                    "s (%(rate)s persons/s)."
                )
                % {
                    "municipality": result.acapulco.name,
                    "households": stats.households,
                    "persons": stats.persons,
                    "seconds": seconds,
                    "rate": f"{stats.persons / seconds:,.0f}" if seconds else "—",
                }
            )

    def _print_logins(self, port: int) -> None:
        from redes.accounts.models import Membership

        url = f"http://127.0.0.1:{port}/"
        self.stdout.write("")
        self.stdout.write(
            _("Open %(url)s and log in with the password “%(password)s” as:")
            % {"url": url, "password": DEMO_PASSWORD}
        )
        usernames = ["coordinacion", "sector1", "manzana1", "observador", "operador", "caso", "voluntario"]
        rows = (
            Membership.objects.active()
            .filter(user__username__in=usernames)
            .select_related("user", "node")
            .order_by("user__username")
        )
        by_user = {m.user.username: m for m in rows}
        for username in usernames:
            m = by_user.get(username)
            if m is None:
                continue
            self.stdout.write(f"  {username:<13} {Role(m.role).label} · {m.node.name}")
        self.stdout.write("")
