"""A coordinator imports a small CSV in a real headless Chromium: upload, column mapping, preview, start, the
progress bar polled by htmx until 100 %, and the report.

Launched like tests/e2e/test_browser.py (Debian's /usr/bin/chromium through Playwright, every request off the
live server aborted; skipped without a browser unless REDES_REQUIRE_BROWSER=1). The background task queue is
Django's dummy backend here, so the job waits, "queued", until the test runs it: the page must then notice by
itself, through its polling, that the import finished.

Set REDES_SCREENSHOTS=/some/dir to also save the report page (the committed docs/registry-import.png).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.test import override_settings

from redes.registry.models import DuplicateCandidate, Household, ImportJob, Person
from tests.base import PASSWORD
from tests.e2e.browser import DESKTOP, PHONE, BrowserTestCase

DUMMY_TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend", "QUEUES": []}}

pytestmark = pytest.mark.browser

CSV = (
    "Folio hogar,Nombre,Primer apellido,Segundo apellido,Fecha de nacimiento,Sexo,Calle,Número,C.P.,Manzana,Celular\n"
    "H1,Rosa María,Gómez,Ruiz,12/03/1950,Mujer,Calle Niño Artillero,12,66050,S01-M001,81 1234 5678\n"
    "H1,Ana,Gómez,,2018-04-01,M,Calle Niño Artillero,12,66050,S01-M001,81 1234 5678\n"
    "H2,Juan,López,Pérez,1990-05-01,H,Juárez,3,66050,S02-M001,\n"
    "H3,Pedro,Sánchez,Luna,1985-13-45,H,Allende,7,66050,S01-M002,\n"
    "H4,Lucía,Torres,Vega,1979-09-09,M,Morelos,40,66050,ZZ-999,\n"
)


@override_settings(LANGUAGE_CODE="en", TASKS=DUMMY_TASKS)
class RegistryImportBrowserTests(BrowserTestCase):
    def setUp(self):
        super().setUp()
        tmp = Path(tempfile.mkdtemp(prefix="redes-import-browser-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        override = self.settings(REDES_IMPORT_DIR=tmp)
        override.enable()
        self.addCleanup(override.disable)
        self.tmp = tmp

    def sign_in(self, page, username: str, password: str = PASSWORD):
        super().sign_in(page, username, password)
        page.wait_for_url(f"{self.live_server_url}/")

    def test_a_coordinator_uploads_maps_previews_starts_and_watches_the_progress(self):
        from redes.registry import importing

        folder = os.environ.get("REDES_SCREENSHOTS")
        shots = Path(folder) if folder else None
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
        page = self.new_page(DESKTOP)
        self.sign_in(page, "coord")
        page.goto(f"{self.live_server_url}/registry/imports/")
        page.set_input_files(
            "#id_file", {"name": "padron.csv", "mimeType": "text/csv", "buffer": CSV.encode("utf-8")}
        )
        page.locator("#upload-form button[type=submit]").click()

        # the mapping: suggested from the headers; the coordinator fixes one and picks the mode
        page.locator("#mapping-form").wait_for()
        job = ImportJob.objects.get()
        self.assertIn(f"/registry/imports/{job.uuid}/", page.url)
        self.assertEqual(page.locator("#id_f_surname1").input_value(), "Primer apellido")
        self.assertEqual(page.locator("#id_f_block").input_value(), "Manzana")
        if shots:
            page.screenshot(path=str(shots / "registry-import-mapping.png"), full_page=True)
        page.select_option("#id_f_mobile", "Celular")
        page.check("input[name=mode][value=valid_rows]")
        page.locator("#mapping-form button[type=submit]").click()

        # the preview: counts and the row errors, before anything is written
        page.locator("#start-import").wait_for()
        self.assertEqual(page.locator("#preview-total").inner_text(), "5")
        self.assertEqual(page.locator("#preview-invalid").inner_text(), "2")
        self.assertEqual(page.locator("table.preview tr.invalid").count(), 2)
        self.assertEqual(Household.objects.count(), 0)
        if shots:
            page.screenshot(path=str(shots / "registry-import-preview.png"), full_page=True)

        page.locator("#start-import").click()
        progress = page.locator("#import-progress")
        progress.wait_for()
        self.assertEqual(progress.get_attribute("data-status"), "queued")
        self.assertEqual(progress.get_attribute("hx-trigger"), "every 1s")
        self.assertEqual(page.locator("#import-bar").get_attribute("value"), "0")

        # the worker runs the job; the page finds out by polling
        importing.run(job.pk)
        page.locator("#import-report").wait_for()
        self.assertEqual(page.locator("#import-bar").get_attribute("value"), "100")
        self.assertEqual(page.locator("#import-percent").inner_text(), "100 %")
        self.assertIsNone(page.locator("#import-progress").get_attribute("hx-trigger"))
        self.assertEqual(page.locator("#r-households-created").inner_text(), "2")
        self.assertEqual(page.locator("#r-persons-created").inner_text(), "3")
        self.assertEqual(page.locator("#r-invalid").inner_text(), "2")
        errors = page.locator("table.errors").inner_text()
        self.assertIn("5", errors)  # row numbers as in the file (header = row 1)
        self.assertIn("6", errors)
        self.assertEqual(Person.objects.count(), 3)
        self.assertEqual(DuplicateCandidate.objects.count(), job.__class__.objects.get().duplicates_flagged)

        with page.expect_download() as download:
            page.locator("#errors-csv").click()
        self.assertTrue(download.value.suggested_filename.endswith("-errors.csv"))

        if shots:
            page.screenshot(path=str(shots / "registry-import.png"), full_page=True)

    def test_the_coordinator_pages_fit_a_phone(self):
        from redes.registry import services

        w = self.w
        services.publish_notice(w.esc, version="2026-1", text="Aviso de privacidad")
        house = services.create_household(
            w.b11, street="Calle Niño Artillero", ext_number="12", postal_code="66050"
        )
        a = services.add_person(house, full_name="Rosa María Gómez Ruiz", age=70, check_duplicates=False)
        b = services.add_person(house, full_name="Rosa Maria Gomez", age=70, check_duplicates=False)
        DuplicateCandidate.objects.create(
            municipality=w.esc,
            node=w.b11,
            person_a=a,
            person_b=b,
            score=0.93,
            reasons=["given_exact", "same_household"],
        )
        request = services.open_data_request(a, "access", actor=w.coord)
        page = self.new_page(PHONE)
        self.sign_in(page, "coord")
        paths = (
            "/registry/imports/",
            "/registry/requests/",
            f"/registry/requests/{request.uuid}/",
            "/registry/requests/new/?q=rosa",
            "/registry/duplicates/",
            f"/registry/person/{b.uuid}/record/",
            "/registry/weights/",
            "/registry/notices/",
        )
        shots = os.environ.get("REDES_SCREENSHOTS")
        for path in paths:
            page.goto(f"{self.live_server_url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            self.assertLessEqual(width, PHONE["width"], path)
            if shots and path.startswith("/registry/duplicates/"):
                page.screenshot(path=str(Path(shots) / "registry-duplicates-phone.png"), full_page=True)
        officer = self.new_page(PHONE)
        self.sign_in(officer, "caseworker")
        officer.goto(f"{self.live_server_url}/registry/person/{a.uuid}/sensitive/")
        self.assertIn("express consent", officer.locator("#needs-consent").inner_text())
        self.assertLessEqual(officer.evaluate("document.documentElement.scrollWidth"), PHONE["width"])
        if shots:
            officer.screenshot(path=str(Path(shots) / "registry-sensitive-phone.png"), full_page=True)
