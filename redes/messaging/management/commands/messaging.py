"""``redes messaging run [--once] [--worker-id X]``: the messaging dispatcher as a process of its own (inbound
processing, need notifications, cascade reminders, the outbox); ``redes messaging status``: the outbox counts."""

from __future__ import annotations

import signal
import threading

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from redes.territories.management.commands._base import RedesCommand


class Command(RedesCommand):
    help = gettext_lazy(
        "Messaging: run the dispatcher that processes received messages and sends the outbox within each "
        "channel's rate limit (redes serve also runs it in a thread), or show the outbox."
    )

    def add_arguments(self, parser):
        sub = self.subcommands(parser)
        p = sub.add_parser("run", help=_("run the messaging dispatcher until stopped (Ctrl+C)"))
        p.add_argument("--once", action="store_true", help=_("run one round and stop"))
        p.add_argument(
            "--worker-id", default="", metavar="NAME", help=_("this worker's name (default: host-pid)")
        )
        p.add_argument("--threads", type=int, default=8, help=_("messages sent at once (default 8)"))
        p.add_argument("--limit", type=int, default=500, help=_("messages claimed per round (default 500)"))
        p.add_argument("--quiet", action="store_true", help=_("print nothing but errors"))
        sub.add_parser("status", help=_("outbox messages per channel account and status"))
        p = sub.add_parser(
            "prune", help=_("blank the raw payloads of webhook requests older than some days (run daily)")
        )
        p.add_argument(
            "--days", type=int, default=30, help=_("keep raw payloads this many days (default 30)")
        )

    def handle_run(self, *, once=False, worker_id="", threads=8, limit=500, quiet=False, **options):
        from redes.messaging import dispatcher, outbox

        if threads < 1 or limit < 1:
            from django.core.management.base import CommandError

            raise CommandError(_("--threads and --limit must be at least 1."))
        worker = (worker_id or outbox.worker_id())[:40]
        if once:
            stats = dispatcher.run_once(worker=worker, limit=limit, threads=threads)
            self._report(stats)
            return
        stop = threading.Event()

        def ask_to_stop(signum, frame):
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, ask_to_stop)
        if not quiet:
            self.note(_("Messaging dispatcher %(worker)s running (Ctrl+C stops).") % {"worker": worker})
        dispatcher.run_forever(
            stop,
            worker=worker,
            limit=limit,
            threads=threads,
            on_round=None if quiet else self._report_busy,
        )

    def _report_busy(self, stats: dict) -> None:
        if dispatcher_busy(stats) or stats.get("errors"):
            self._report(stats)

    def _report(self, stats: dict) -> None:
        out = stats.get("outbox") if isinstance(stats.get("outbox"), dict) else {}
        parts = [f"{key}={value}" for key, value in sorted(out.items()) if value and key != "error"]
        self.out(
            _("Received processed: %(intake)s; notifications queued: %(notify)s; outbox: %(outbox)s")
            % {
                "intake": _plain(stats.get("intake")),
                "notify": _plain(stats.get("notify")),
                "outbox": ", ".join(parts) or "0",
            }
        )
        for step in stats.get("errors", []):
            self.note(
                _("Step %(step)s failed: %(error)s") % {"step": step, "error": stats[step].get("error", "")}
            )

    def handle_prune(self, *, days=30, **options):
        from django.core.management.base import CommandError

        from redes.messaging import ingest

        if days < 1:
            raise CommandError(_("--days must be at least 1."))
        count = ingest.forget_raw(days)
        self.out(_("Raw payloads blanked: %(count)s.") % {"count": count})

    def handle_status(self, **options):
        from redes.messaging import outbox
        from redes.messaging.models import Outbound

        rows = outbox.counts()
        if not rows:
            self.out(_("The outbox is empty."))
            return
        current = None
        for row in rows:
            if row["account_id"] != current:
                current = row["account_id"]
                self.out(f"{row['account__provider']}: {row['account__name']}")
            label = (
                Outbound.Status(row["status"]).label
                if row["status"] in Outbound.Status.values
                else row["status"]
            )
            self.out(f"  {label:<40} {row['n']:>9,}")


def dispatcher_busy(stats: dict) -> bool:
    from redes.messaging.dispatcher import busy

    return busy(stats)


def _plain(value) -> str:
    if isinstance(value, dict):
        return "error" if "error" in value else str(sum(v for v in value.values() if isinstance(v, int)))
    return str(value if value is not None else 0)
