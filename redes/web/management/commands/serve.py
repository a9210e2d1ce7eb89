"""``redes serve``: serve the web app with waitress, a multi-threaded pure-Python WSGI server.

Static files are served by WhiteNoise from the package, so no collectstatic step is needed. Behind a reverse
proxy in production; on its own for the demo and small installations.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


class Command(BaseCommand):
    help = gettext_lazy("Serve the web app (waitress WSGI server).")

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args, host, port, threads, **options):
        if not 0 < port < 65536:
            raise CommandError(_("The port must be between 1 and 65535."))
        import waitress

        from redes.core.worker import start_background_worker
        from redes.wsgi import application

        start_background_worker()  # background tasks (imports) in this process, unless run elsewhere
        self.stdout.write(
            _("Serving on http://%(host)s:%(port)s/ (Ctrl+C stops).") % {"host": host, "port": port}
        )
        try:
            waitress.serve(application, host=host, port=port, threads=threads, ident="redes", _quiet=True)
        except OSError as exc:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s")
                % {"host": host, "port": port, "error": exc}
            ) from exc
