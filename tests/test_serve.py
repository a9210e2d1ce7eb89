"""``redes serve`` answers pages and static files from a real process (the way the demo serves)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

from django.test import SimpleTestCase


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeTests(SimpleTestCase):
    def test_it_serves_pages_and_static_files(self):
        tmp = self.enterContext(__import__("tempfile").TemporaryDirectory())
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/serve.sqlite3", "REDES_DATA_DIR": tmp}
        redes = [sys.executable, "-m", "redes.cli"]
        subprocess.run([*redes, "migrate", "-v0"], env=env, check=True, timeout=120)
        port = _free_port()
        proc = subprocess.Popen([*redes, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.terminate)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                page = urllib.request.urlopen(f"{base}/login/", timeout=5)  # noqa: S310 (loopback)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        self.assertEqual(page.status, 200)
        self.assertIn(b"csrfmiddlewaretoken", page.read())
        static = urllib.request.urlopen(f"{base}/static/vendor/leaflet/leaflet.js", timeout=5)  # noqa: S310
        self.assertEqual(static.status, 200)

    def test_a_bad_port_is_a_clear_error(self):
        result = subprocess.run(
            [sys.executable, "-m", "redes.cli", "serve", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("65535", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
