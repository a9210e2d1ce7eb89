"""``redes registry import|recount|rotate-keys|anonymise-due``: output, exit codes, permissions."""

import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from redes.audit.models import AuditEvent
from redes.registry import services
from redes.registry.models import BlockCounts, Household, ImportJob, Person

from .base import RedesTestCase
from .test_registry_import import GOOD_ROWS, HEADER, IMMEDIATE_TASKS, csv_bytes, xlsx_bytes


class RegistryCliTests(RedesTestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="redes-registry-cli-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        override = self.settings(REDES_IMPORT_DIR=self.tmp / "imports", TASKS=IMMEDIATE_TASKS)
        override.enable()
        self.addCleanup(override.disable)

    def write(self, name: str, content: bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content)
        return str(path)

    def redes(self, *args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        with translation.override("en"):
            call_command("registry", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    def refused(self, *args: str) -> tuple[str, str]:
        out, err = io.StringIO(), io.StringIO()
        with self.assertRaises(CommandError) as caught, translation.override("en"):
            call_command("registry", *args, stdout=out, stderr=err)
        return str(caught.exception), err.getvalue()

    def test_import_prints_counts_and_uses_the_cli_channel(self):
        path = self.write("hogares.csv", csv_bytes(GOOD_ROWS))
        out, err = self.redes("import", path, "--municipality", "19021", "--actor", "coord", "--no-progress")
        self.assertIn(
            "3 rows read, 0 with errors. Households: 2 new, 0 updated. Persons: 3 new, 0 updated.", out
        )
        self.assertIn("First surname ← Primer apellido", err)
        self.assertEqual(Person.objects.count(), 3)
        event = AuditEvent.objects.get(action="registry.import.run")
        self.assertEqual((event.channel, event.actor), ("cli", self.w.coord))
        # the same file again: updated, not duplicated
        out, _err = self.redes("import", path, "--municipality", "19021", "--no-progress")
        self.assertIn("Households: 0 new, 2 updated. Persons: 0 new, 3 updated.", out)
        self.assertEqual(Person.objects.count(), 3)

    def test_import_lists_row_errors_and_imports_the_valid_rows(self):
        bad = list(GOOD_ROWS[2])
        bad[HEADER.index("ID persona")] = "P9"
        bad[HEADER.index("CURP")] = "XYZ"
        path = self.write("hogares.csv", csv_bytes([*GOOD_ROWS, bad]))
        out, err = self.redes("import", path, "--municipality", "19021", "--no-progress")
        self.assertIn("row 5, CURP: A CURP has 18 characters; “XYZ” has 3.", err)
        self.assertIn("Every error:", err)
        self.assertIn("4 rows read, 1 with errors.", out)
        self.assertEqual(Person.objects.count(), 3)

    def test_all_or_nothing_exits_non_zero_and_writes_nothing(self):
        bad = list(GOOD_ROWS[0])
        bad[HEADER.index("Fecha de nacimiento")] = "ayer"
        path = self.write("hogares.csv", csv_bytes([bad, *GOOD_ROWS[1:]]))
        message, err = self.refused(
            "import", path, "--municipality", "19021", "--mode", "all_or_nothing", "--no-progress"
        )
        self.assertIn("Nothing was imported: 1 row has errors (mode all_or_nothing).", message)
        self.assertIn("row 2, Fecha de nacimiento: “ayer” is not a date", err)
        self.assertEqual(Person.objects.count(), 0)
        self.assertEqual(ImportJob.objects.get().status, ImportJob.Status.REJECTED)

    def test_nothing_valid_exits_non_zero(self):
        path = self.write(
            "hogares.csv", csv_bytes([["", "", "Ana", "", "", "", "", "", "", "", "", "", "", "", "Z-1", ""]])
        )
        message, _err = self.refused("import", path, "--municipality", "19021", "--no-progress")
        self.assertIn("Nothing was imported: the file has no valid row.", message)

    def test_preview_writes_nothing(self):
        path = self.write("hogares.xlsx", xlsx_bytes(GOOD_ROWS))
        out, _err = self.redes("import", path, "--municipality", "19021", "--preview")
        self.assertIn("row 2: ", out)
        self.assertIn("curp=GOMR500312MNLRRS02", out)
        self.assertIn("3 rows: 3 valid, 0 with errors, 2 households. Nothing written.", out)
        self.assertEqual(Person.objects.count(), 0)

    def test_mapping_option(self):
        header = ["Persona", "Mza"]
        path = self.write("lista.csv", csv_bytes([["Pedro Páramo", "S01-M002"]], header=header))
        message, _err = self.refused("import", path, "--municipality", "19021", "--no-progress")
        self.assertIn("Choose the column with the person's name", message)
        mapping = json.dumps({"full_name": "Persona", "block": "Mza"})
        out, _err = self.redes(
            "import", path, "--municipality", "19021", "--mapping", mapping, "--no-progress"
        )
        self.assertIn("Persons: 1 new", out)
        self.assertEqual(Person.objects.get().node, self.w.b12)
        message, _err = self.refused("import", path, "--municipality", "19021", "--mapping", "{nope")
        self.assertIn("--mapping is not valid JSON", message)

    def test_actor_outside_their_territory_is_refused(self):
        path = self.write("hogares.csv", csv_bytes(GOOD_ROWS))
        message, _err = self.refused("import", path, "--municipality", "19021", "--actor", "other_coord")
        self.assertIn("other_coord may not import households into General Escobedo", message)
        message, _err = self.refused(
            "import", path, "--municipality", "19021", "--node", "S01", "--actor", "sector1"
        )
        self.assertIn("may not import", message)
        self.assertFalse(ImportJob.objects.exists())
        message, _err = self.refused("import", path, "--municipality", "19021", "--actor", "ghost")
        self.assertIn("no active user “ghost”", message)

    def test_bad_files_and_places_are_one_line(self):
        message, _err = self.refused("import", str(self.tmp / "missing.csv"), "--municipality", "19021")
        self.assertIn("There is no file", message)
        path = self.write("vacio.csv", b"")
        message, _err = self.refused("import", path, "--municipality", "19021")
        self.assertIn("The file is empty.", message)
        path = self.write("hogares.csv", csv_bytes(GOOD_ROWS))
        message, _err = self.refused("import", path, "--municipality", "99999")
        self.assertIn("no municipality with the key “99999”", message)
        message, _err = self.refused("import", path, "--municipality", "19021", "--node", "NOPE")
        self.assertIn("no unit with the code “NOPE”", message)

    def test_recount_rotate_and_anonymise(self):
        house = services.create_household(self.w.b11, street="Hidalgo", ext_number="1")
        services.add_person(house, full_name="Ana Pérez", check_duplicates=False)
        BlockCounts.objects.all().delete()
        out, _err = self.redes("recount", "--municipality", "19021")
        self.assertIn("General Escobedo: 1 block counted.", out)
        self.assertEqual(BlockCounts.objects.get(node=self.w.b11).persons, 1)
        out, _err = self.redes("recount")
        self.assertIn("Acapulco de Juárez: 0 blocks counted.", out)
        out, _err = self.redes("rotate-keys")
        self.assertIn("0 sensitive values re-encrypted", out)
        out, _err = self.redes("anonymise-due")
        self.assertIn("0 blocked records anonymised.", out)
        self.assertEqual(Household.objects.count(), 1)


class RegistryCliProcessTests(RedesTestCase):
    def test_help_as_a_real_process(self):
        result = subprocess.run(
            [sys.executable, "-m", "redes.cli", "registry", "import", "--help"],
            capture_output=True,
            text=True,
            env={
                "LANGUAGE": "en",
                "PATH": "/usr/bin:/bin",
                "REDES_DATA_DIR": tempfile.gettempdir() + "/redes-cli-help",
            },
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--mode {valid_rows,all_or_nothing}", result.stdout)
