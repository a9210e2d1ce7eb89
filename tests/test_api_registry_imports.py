"""The registry API's bulk imports: upload, mapping, preview, start and status, role by role.

Imports are for coordinators (registry management); every other persona gets 403 where they see the
municipality and 404 elsewhere, and an import job is missing (404) for anyone who does not manage its node.
"""

import shutil
import tempfile
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from redes.audit.models import AuditEvent, Outcome
from redes.registry.models import Household, ImportJob, Person

from .test_api_registry import OBSERVERS, ROLES, RegistryApiCase, expect

CSV = (
    "Nombre,Calle,Numero,CP,Manzana,CURP,Telefono\n"
    "Juana Pérez Soto,Calle Roble,1,66050,S01-M001,,81 1111 1111\n"
    "Mario Pérez Soto,Calle Roble,1,66050,S01-M001,,\n"
    "Lucía Ramos Vega,Calle Pino,9,66050,S02-M001,,\n"
    "Fila Mala,Calle Olmo,2,66050,S01-M001,ABC,\n"
)
IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": []}}
MAPPING = {"full_name": "Nombre", "street": "Calle", "ext_number": "Numero", "postal_code": "CP",
           "block": "Manzana", "curp": "CURP", "phone": "Telefono"}  # fmt: skip


class ImportApiTests(RegistryApiCase):
    @classmethod
    def setUpClass(cls):
        cls.import_dir = tempfile.mkdtemp(prefix="redes-api-imports-")
        # Tasks inline: tests/conftest.py sets REDES_TASKS_BACKEND after the settings are loaded.
        cls._dir = override_settings(REDES_IMPORT_DIR=cls.import_dir, TASKS=IMMEDIATE_TASKS)
        cls._dir.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._dir.disable()
        shutil.rmtree(cls.import_dir, ignore_errors=True)

    def upload(self, role, content=CSV, name="padron.csv", node=None, muni=None):
        client = Client()
        headers = {"Accept-Language": "en"}
        if role is not None:
            headers["Authorization"] = f"Bearer {self.token_for(self.user(role))}"
        data = {
            "file": SimpleUploadedFile(name, content.encode("utf-8") if isinstance(content, str) else content)
        }
        if node is not None:
            data["node"] = str(node.uuid)
        url = f"/api/v1/municipalities/{(muni or self.w.esc).uuid}/registry-imports"
        response = client.post(url, data, headers=headers)
        if role in OBSERVERS:
            self.assert_nothing_registry_personal(response)
        return response

    def job(self, **kwargs) -> ImportJob:
        response = self.upload("coord", **kwargs)
        self.assertEqual(response.status_code, 201, response.content)
        return ImportJob.objects.get(uuid=response.json()["uuid"])

    # --- upload ---

    def test_upload_matrix(self):
        expected = expect(403, coord=201, other_coord=404, nobody=404)
        for role in ROLES:
            with self.subTest(role=role):
                response = self.upload(role)
                self.assertEqual(response.status_code, expected[role], (role, response.content[:300]))
                if expected[role] >= 400:
                    self.assert_error(response, expected[role])
        self.assertEqual(ImportJob.objects.count(), 1)
        refused = AuditEvent.objects.filter(action="registry.import.create").exclude(outcome=Outcome.OK)
        self.assertEqual(refused.count(), 10)

    def test_upload_detects_the_columns_and_suggests_a_mapping(self):
        response = self.upload("coord")
        body = response.json()
        self.assertEqual(
            (body["status"], body["format"], body["filename"]), ("uploaded", "csv", "padron.csv")
        )
        self.assertEqual(body["columns"], ["Nombre", "Calle", "Numero", "CP", "Manzana", "CURP", "Telefono"])
        self.assertEqual(body["mapping"]["curp"], "CURP")
        self.assertEqual(body["mapping"]["block"], "Manzana")
        self.assertEqual(body["node"]["uuid"], str(self.w.esc_node.uuid))

    def test_upload_under_a_node(self):
        response = self.upload("coord", node=self.w.s1)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["node"]["code"], "S01")
        self.assert_error(self.upload("coord", node=self.w.ab), 404)  # a node of another municipality
        self.assert_error(self.upload("sector1", node=self.w.s1), 403)

    def test_bad_files_say_why(self):
        before = ImportJob.objects.count()
        empty = self.assert_error(self.upload("coord", content=""), 400)
        self.assertIn("empty", empty["detail"])
        twice = self.assert_error(self.upload("coord", content="Nombre,Nombre\nA,B\n"), 400)
        self.assertIn("same name", twice["detail"])
        missing = Client().post(
            f"/api/v1/municipalities/{self.w.esc.uuid}/registry-imports",
            {},
            headers={"Authorization": f"Bearer {self.token_for(self.w.coord)}"},
        )
        self.assert_error(missing, 422)
        self.assertEqual(ImportJob.objects.count(), before)

    # --- one job ---

    def test_job_endpoints_are_missing_for_everyone_but_its_managers(self):
        job = self.job()
        mapping = {"mapping": MAPPING, "mode": "valid_rows"}
        only_coord = expect(404, coord=200)
        self.check_matrix("get", f"/registry-imports/{job.uuid}", only_coord)
        self.check_matrix("get", f"/registry-imports/{job.uuid}/preview", only_coord)
        self.check_matrix("put", f"/registry-imports/{job.uuid}/mapping", only_coord, mapping)
        start = expect(404, coord=202)
        self.check_matrix("post", f"/registry-imports/{job.uuid}/start", start, {})
        for key in (uuid.uuid4(), "nope", job.pk):
            self.assert_error(self.api(self.w.coord, "get", f"/registry-imports/{key}"), 404)

    def test_mapping_preview_start_and_status(self):
        job = self.job()
        url = f"/registry-imports/{job.uuid}"
        response = self.api(self.w.coord, "put", f"{url}/mapping", {"mapping": MAPPING, "mode": "valid_rows"})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["mapping"], MAPPING)

        preview = self.api(self.w.coord, "get", f"{url}/preview?limit=2")
        self.assertEqual(preview.status_code, 200, preview.content)
        body = preview.json()
        self.assertEqual((body["total"], body["valid"], body["invalid"]), (4, 3, 1))
        self.assertEqual(len(body["rows"]), 2)
        [error] = body["errors"]
        self.assertEqual((error["row"], error["column"], error["loc"]), (5, "CURP", ["file", 5, "CURP"]))
        self.assertIn("18 characters", error["msg"])
        self.assertFalse(Person.objects.filter(full_name="Juana Pérez Soto").exists())

        started = self.api(self.w.coord, "post", f"{url}/start", {})
        self.assertEqual(started.status_code, 202, started.content)
        status = self.api(self.w.coord, "get", url).json()  # tests run tasks inline: it is finished
        self.assertEqual((status["status"], status["phase"], status["percent"]), ("done", "done", 100))
        self.assertEqual((status["total_rows"], status["processed_rows"], status["invalid_rows"]), (4, 4, 1))
        self.assertEqual((status["households_created"], status["persons_created"]), (2, 3))
        self.assertEqual(status["errors"][0]["loc"], ["file", 5, "CURP"])
        juana = Person.objects.get(full_name="Juana Pérez Soto")
        self.assertEqual(juana.node, self.w.b11)
        self.assertEqual(
            list(Household.objects.get(pk=juana.household_id).phones.values_list("number", flat=True)),
            ["+528111111111"],
        )
        again = self.assert_error(self.api(self.w.coord, "post", f"{url}/start", {}), 400)
        self.assertIn("already", again["detail"])
        late = self.api(self.w.coord, "put", f"{url}/mapping", {"mapping": MAPPING, "mode": "valid_rows"})
        self.assertIn("already", self.assert_error(late, 400)["detail"])

    def test_all_or_nothing_imports_nothing_when_a_row_is_invalid(self):
        job = self.job()
        url = f"/registry-imports/{job.uuid}"
        self.api(self.w.coord, "put", f"{url}/mapping", {"mapping": MAPPING, "mode": "all_or_nothing"})
        before = Person.objects.count()
        self.assertEqual(self.api(self.w.coord, "post", f"{url}/start", {}).status_code, 202)
        status = self.api(self.w.coord, "get", url).json()
        self.assertEqual((status["status"], status["persons_created"]), ("rejected", 0))
        self.assertEqual(Person.objects.count(), before)

    def test_bad_mappings_say_why_and_change_nothing(self):
        job = self.job()
        url = f"/registry-imports/{job.uuid}/mapping"
        suggested = dict(ImportJob.objects.get(pk=job.pk).mapping)
        cases = [
            ({"mapping": {**MAPPING, "shoe_size": "Calle"}, "mode": "valid_rows"}, 400, "shoe_size"),
            ({"mapping": {**MAPPING, "curp": "Clave"}, "mode": "valid_rows"}, 400, "Clave"),
            ({"mapping": {"street": "Calle"}, "mode": "valid_rows"}, 400, "name"),
            ({"mapping": MAPPING, "mode": "some_rows"}, 422, None),
            ({"mode": "valid_rows"}, 422, None),
        ]
        for payload, status, reason in cases:
            with self.subTest(payload=payload):
                body = self.assert_error(self.api(self.w.coord, "put", url, payload), status)
                if reason:
                    self.assertIn(reason, str(body))
        self.assertEqual(ImportJob.objects.get(pk=job.pk).mapping, suggested)
        self.assertEqual(
            AuditEvent.objects.filter(action="registry.import.update", outcome=Outcome.REJECTED).count(), 3
        )
