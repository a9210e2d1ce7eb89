import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import SimpleTestCase
from django.utils import translation

from redes.accounts.models import ApiToken, Membership, User
from redes.accounts.roles import Role
from redes.accounts.services import create_token, user_for_token
from redes.audit.context import Channel, current_channel
from redes.audit.models import AuditEvent
from redes.territories.models import Municipality, Node

from .base import RedesTestCase

DATA = Path(__file__).parent / "data"


class CliTestCase(RedesTestCase):
    def redes(self, *args: str) -> tuple[str, str]:
        """Run ``redes <args>`` in-process (in English); returns (stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with translation.override("en"):
            call_command(*args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def assert_refused(self, *args: str, message: str = "") -> CommandError:
        with self.assertRaises(CommandError) as caught, translation.override("en"):
            call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
        self.assertIn(message, str(caught.exception))
        return caught.exception

    def write(self, name: str, content: str | bytes) -> str:
        directory = Path(tempfile.mkdtemp(prefix="redes-cli-"))
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        path = directory / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def units(self, muni=None) -> set[str]:
        return set(
            Node.objects.filter(municipality=muni or self.w.esc, kind="unit").values_list("code", flat=True)
        )


class MunicipalityCommandTests(CliTestCase):
    def test_it_creates_a_municipality_with_its_levels_through_the_cli_channel(self):
        out, _ = self.redes(
            "municipality",
            "create",
            "--code",
            "19039",
            "--name",
            "Monterrey",
            "--levels",
            "Sector, Zona ,Manzana",
        )
        muni = Municipality.objects.get(code="19039")
        self.assertEqual(muni.level_names(), ["Sector", "Zona", "Manzana"])
        self.assertEqual(muni.node.parent, self.w.state_nl)
        self.assertIn("Monterrey (19039)", out)
        event = AuditEvent.objects.get(action="territories.municipality.create", object_id=str(muni.uuid))
        self.assertEqual((event.channel, event.actor), (Channel.CLI, None))
        self.assertNotEqual(current_channel(), Channel.CLI)  # the channel does not leak past the command

    def test_it_creates_the_state_when_new(self):
        self.redes(
            "municipality", "create", "--code", "14039", "--name", "Guadalajara", "--state-name", "Jalisco",
            "--levels", "Sector,Manzana",
        )  # fmt: skip
        self.assertEqual(Municipality.objects.get(code="14039").node.parent.name, "Jalisco")

    def test_it_refuses_bad_municipalities(self):
        cases = [
            (("--code", "1903", "--name", "X", "--levels", "A,B"), "5 digits"),
            (("--code", "19021", "--name", "Otra", "--levels", "A,B"), "already exists"),
            (("--code", "19039", "--name", "X", "--levels", "Solo"), "between 2 and 5"),
            (("--code", "19039", "--name", "X", "--levels", "A,a"), "different"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_refused("municipality", "create", *args, message=message)
        self.assertEqual(Municipality.objects.count(), 2)

    def test_it_needs_the_required_options(self):
        self.assert_refused("municipality", "create", "--code", "19039", message="--name")
        self.assert_refused("municipality", message="ACTION")

    def test_it_lists_municipalities(self):
        out, _ = self.redes("municipality", "list")
        self.assertIn("19021  General Escobedo, Nuevo León  ·  Sector / Manzana  ·  5 units", out)
        self.assertIn("12001", out)

    def test_it_shows_and_changes_levels(self):
        out, _ = self.redes("municipality", "levels", "19021")
        self.assertEqual(out.split("\n")[:2], ["1  Sector", "2  Manzana"])
        self.redes("municipality", "levels", "19021", "--set", "Sector,Manzana,Vivienda")
        self.assertEqual(
            Municipality.objects.get(code="19021").level_names(), ["Sector", "Manzana", "Vivienda"]
        )
        self.assert_refused("municipality", "levels", "19021", "--set", "Sector", message="between 2 and 5")
        self.assert_refused("municipality", "levels", "99999", message="99999")


class TerritoryCommandTests(CliTestCase):
    def test_it_imports_a_csv_file(self):
        path = self.write(
            "territorio.csv", "codigo,nombre,nivel,padre\nS03,Sector 3,Sector,\nS03-M1,M1,Manzana,S03\n"
        )
        out, _ = self.redes("territory", "import", "19021", path, "--no-progress")
        self.assertIn("Imported 2 units into General Escobedo.", out)
        self.assertEqual(Node.objects.get(municipality=self.w.esc, code="S03-M1").parent.code, "S03")
        event = AuditEvent.objects.get(action="territories.territory.import")
        self.assertEqual((event.channel, event.actor, event.outcome), (Channel.CLI, None, "ok"))

    def test_it_imports_a_geojson_file_and_shows_progress(self):
        out, err = self.redes(
            "territory", "import", "19021", str(DATA / "escobedo_inegi.geojson"), "--progress"
        )
        self.assertIn("Imported 3 units", out)
        self.assertIn("Checking", err)
        self.assertIn("Writing", err)
        self.assertIn("100%", err)

    def test_it_lists_row_errors_and_imports_nothing(self):
        before = self.units()
        lines = ["code,name,level,parent"] + [f"X{i},,Sector," for i in range(60)] + ["S01,Dup,Sector,"]
        path = self.write("malo.csv", "\n".join(lines))
        out, err = io.StringIO(), io.StringIO()
        with self.assertRaises(CommandError) as caught, translation.override("en"):
            call_command("territory", "import", "19021", path, stdout=out, stderr=err)
        self.assertIn("Nothing was imported: the file has 61 errors.", str(caught.exception))
        listed = err.getvalue().splitlines()
        self.assertEqual(listed[0], "row 2, name: The name is required.")
        self.assertEqual(len([line for line in listed if line.startswith("row ")]), 50)
        self.assertEqual(listed[-1], "… and 11 more errors.")
        self.assertEqual(self.units(), before)
        self.assertEqual(out.getvalue(), "")

    def test_it_reports_file_level_errors(self):
        path = self.write("vacio.geojson", '{"type": "Feature"}')
        self.assert_refused("territory", "import", "19021", path, message="1 error.")
        self.assert_refused("territory", "import", "19021", "/no/such/file.csv", message="no file")
        self.assert_refused(
            "territory", "import", "19021", self.write("datos.xlsx", b"PK"), message="--format"
        )
        self.assert_refused(
            "territory", "import", "99999", self.write("t.csv", "code,name\n"), message="99999"
        )

    def test_a_format_option_overrides_the_file_name(self):
        path = self.write(
            "export.txt",
            '{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"S09","name":"Nueve"},"geometry":null}]}',
        )
        self.redes("territory", "import", "19021", path, "--format", "geojson", "--no-progress")
        self.assertIn("S09", self.units())

    def test_it_exports_what_it_imports(self):
        path = self.write("export.csv", "")
        self.redes("territory", "export", "19021", "--output", path)
        self.redes(
            "municipality", "create", "--code", "19039", "--name", "Monterrey", "--levels", "Sector,Manzana"
        )
        self.redes("territory", "import", "19039", path, "--no-progress")
        copy = Municipality.objects.get(code="19039")
        self.assertEqual(self.units(copy), self.units())
        out, _ = self.redes("territory", "export", "19021", "--format", "geojson")
        self.assertIn('"FeatureCollection"', out)


class UserCommandTests(CliTestCase):
    def test_it_creates_a_coordinator_with_a_generated_password(self):
        out, _ = self.redes(
            "user", "create", "ana", "--full-name", "Ana Pérez", "--email", "ana@example.org",
            "--role", "coordinator", "--municipality", "19021",
        )  # fmt: skip
        password = re.search(r"Password \(shown only now\): (\S+)", out).group(1)
        ana = User.objects.get(username="ana")
        self.assertEqual((ana.full_name, ana.email), ("Ana Pérez", "ana@example.org"))
        self.assertTrue(ana.check_password(password))
        membership = Membership.objects.get(user=ana)
        self.assertEqual((membership.role, membership.node), (Role.COORDINATOR, self.w.esc_node))
        events = AuditEvent.objects.filter(action__in=["accounts.user.create", "accounts.membership.grant"])
        self.assertEqual(
            {(e.channel, e.actor_id) for e in events.filter(at__gte=ana.date_joined)}, {("cli", None)}
        )

    def test_it_creates_users_at_units_states_and_the_nation(self):
        self.redes("user", "create", "beto", "--password", "una clave larga 123", "--role", "sector-liaison",
                   "--municipality", "19021", "--node", "S02")  # fmt: skip
        self.redes("user", "create", "obs", "--no-password", "--role", "State observer", "--state", "19")
        self.redes("user", "create", "nac", "--no-password", "--role", "national_observer", "--nation")
        self.assertEqual(Membership.objects.get(user__username="beto").node, self.w.s2)
        self.assertEqual(Membership.objects.get(user__username="obs").node, self.w.state_nl)
        self.assertEqual(Membership.objects.get(user__username="nac").node, self.w.nation)
        self.assertTrue(User.objects.get(username="beto").check_password("una clave larga 123"))
        self.assertFalse(User.objects.get(username="obs").has_usable_password())

    def test_it_refuses_bad_users_and_leaves_nothing_behind(self):
        cases = [
            (("coord",), "taken"),
            (("x", "--password", "123"), ""),
            (("x", "--role", "coordinator"), "--role"),
            (("x", "--municipality", "19021"), "--role"),
            (("x", "--role", "jefe", "--municipality", "19021"), "Unknown role"),
            (("x", "--role", "coordinator", "--municipality", "19021", "--node", "S01"), "cannot be held"),
            (("x", "--role", "block_liaison", "--municipality", "19021", "--node", "S99"), "S99"),
            (("x", "--role", "block_liaison", "--node", "S01"), "--municipality"),
            (("x", "--role", "state_observer", "--state", "31"), "31"),
        ]
        users, memberships = User.objects.count(), Membership.objects.count()
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_refused("user", "create", *args, message=message)
        self.assertEqual((User.objects.count(), Membership.objects.count()), (users, memberships))

    def test_it_grants_and_revokes_roles(self):
        self.redes(
            "user", "grant", "nobody", "--role", "volunteer", "--municipality", "19021", "--node", "S02"
        )
        self.redes("user", "grant", "nobody", "--role", "hotline_operator", "--municipality", "19021")
        active = Membership.objects.active().filter(user=self.w.nobody)
        self.assertEqual(
            {(m.role, m.node) for m in active},
            {("volunteer", self.w.s2), ("hotline_operator", self.w.esc_node)},
        )
        out, _ = self.redes("user", "revoke", "nobody", "--role", "volunteer")
        self.assertIn("Ended: Volunteer · Sector: Sector 2 (S02), General Escobedo.", out)
        self.assertEqual(list(active.values_list("role", flat=True)), ["hotline_operator"])
        self.assert_refused("user", "revoke", "nobody", "--role", "volunteer", message="no active membership")
        self.assert_refused("user", "revoke", "nobody", message="Say which")
        self.assert_refused("user", "grant", "nobody", "--role", "volunteer", message="Say where")
        self.assert_refused("user", "grant", "nadie", "--role", "volunteer", "--nation", message="nadie")
        self.redes("user", "revoke", "nobody", "--municipality", "19021")
        self.assertFalse(Membership.objects.active().filter(user=self.w.nobody).exists())

    def test_it_lists_users_and_their_roles(self):
        out, _ = self.redes("user", "list")
        self.assertIn(
            "coord  Carmen Coordinadora\n    Municipal coordinator · Municipality: General Escobedo (19021)",
            out,
        )
        self.assertIn("root  [superuser]", out)
        out, _ = self.redes("user", "list", "--municipality", "12001")
        self.assertEqual(out.splitlines()[0], "other_coord  Other_Coord")
        self.assertNotIn("coord  Carmen", out)


class TokenCommandTests(CliTestCase):
    def test_it_creates_a_token_printed_alone_once(self):
        out, err = self.redes("token", "create", "coord", "--name", "script", "--expires-days", "30")
        raw = out.strip()
        self.assertEqual(user_for_token(raw), self.w.coord)
        token = ApiToken.objects.get(user=self.w.coord, name="script")
        self.assertIn(token.prefix, err)
        self.assertNotIn(raw, err)
        self.assertIsNotNone(token.expires_at)
        self.assertNotIn(raw, str(list(AuditEvent.objects.values_list("changes", "summary"))))

    def test_it_lists_and_revokes_tokens(self):
        token, raw = create_token(self.w.coord, name="viejo")
        out, _ = self.redes("token", "list", "coord")
        self.assertIn(f"{token.prefix}  viejo", out)
        self.assertIn("never used", out)
        self.assertNotIn(raw, out)
        self.redes("token", "revoke", token.prefix)
        self.assertIsNone(user_for_token(raw))
        out, _ = self.redes("token", "list", "coord")
        self.assertIn("revoked", out)
        out, _ = self.redes("token", "revoke", raw)
        self.assertIn("already revoked", out)

    def test_it_refuses_bad_token_requests(self):
        self.assert_refused("token", "create", "nadie", message="nadie")
        self.assert_refused("token", "create", "coord", "--expires-days", "0", message="positive")
        self.assert_refused("token", "create", "coord", "--expires-days", "pronto")
        self.assert_refused("token", "revoke", "abc", message="abc")
        self.assertFalse(ApiToken.objects.filter(user=self.w.coord).exists())


class ConsoleScriptTests(SimpleTestCase):
    """The real ``redes`` executable, in a subprocess with its own SQLite file."""

    def run_redes(self, *args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
        script = Path(sys.executable).parent / "redes"
        result = subprocess.run(
            [str(script), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_the_console_script_sets_up_a_municipality_and_a_token(self):
        with tempfile.TemporaryDirectory(prefix="redes-cli-") as tmp:
            env = {
                **os.environ,
                "REDES_DATA_DIR": tmp,
                "DATABASE_URL": f"sqlite:///{tmp}/redes.sqlite3",
                "PYTHONWARNINGS": "ignore",
            }
            help_text = self.run_redes("--help", env=env).stdout
            for command in ("municipality", "territory", "user", "token"):
                self.assertIn(f"    {command}\n", help_text)
            self.run_redes("migrate", "-v0", env=env)
            self.run_redes(
                "municipality", "create", "--code", "19021", "--name", "General Escobedo",
                "--state-name", "Nuevo León", "--levels", "Sector,Manzana", env=env,
            )  # fmt: skip
            bad = Path(tmp, "malo.csv")
            bad.write_text("code,name,level,parent\nS01,Sector 1,Sector,\nM1,Manzana,Manzana,S99\n")
            result = self.run_redes("territory", "import", "19021", str(bad), env=env, check=False)
            self.assertEqual(result.returncode, 1)
            self.assertIn("S99", result.stderr)
            self.assertNotIn("Traceback", result.stderr)
            self.assertEqual(self.run_redes("territory", "export", "19021", env=env).stdout.count("\n"), 1)
            good = Path(tmp, "bueno.csv")
            good.write_text("code,name,level,parent\nS01,Sector 1,Sector,\nM1,Manzana,Manzana,S01\n")
            self.run_redes("territory", "import", "19021", str(good), env=env)
            self.run_redes(
                "user", "create", "ana", "--role", "coordinator", "--municipality", "19021", env=env
            )
            token = self.run_redes("token", "create", "ana", env=env).stdout.strip()
            self.assertRegex(token, r"^rds_[0-9a-f]{8}_\S{20,}$")
            self.assertIn(token.split("_")[1], self.run_redes("token", "list", "ana", env=env).stdout)
