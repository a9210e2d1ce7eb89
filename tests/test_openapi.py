"""The OpenAPI 3 document at /api/v1/openapi.json and the interactive docs at /api/v1/docs."""

import json

from django.test import Client, SimpleTestCase

from .test_api_aid import AID_ENDPOINTS, AID_PUBLIC
from .test_api_messaging import MESSAGING_ENDPOINTS
from .test_api_needs import NEEDS_ENDPOINTS
from .test_api_registry import REGISTRY_ENDPOINTS

ENDPOINTS = {
    "/api/v1/municipalities": {"get", "post"},
    "/api/v1/municipalities/{uuid}": {"get"},
    "/api/v1/municipalities/{uuid}/levels": {"get", "put"},
    "/api/v1/municipalities/{uuid}/import": {"post"},
    "/api/v1/nodes": {"get", "post"},
    "/api/v1/nodes/{uuid}": {"get", "patch", "delete"},
    "/api/v1/nodes/{uuid}/move": {"post"},
    "/api/v1/nodes/{uuid}/coverage": {"get"},
    "/api/v1/nodes/{uuid}/geojson": {"get"},
    "/api/v1/nodes/{uuid}/liaisons": {"get", "post"},
    "/api/v1/liaisons": {"get"},
    "/api/v1/liaisons/{uuid}/end": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/memberships": {"get", "post"},
    "/api/v1/memberships/{uuid}/end": {"post"},
    "/api/v1/users": {"get", "post"},
    **REGISTRY_ENDPOINTS,
    **NEEDS_ENDPOINTS,
    **AID_ENDPOINTS,
    **MESSAGING_ENDPOINTS,
}
#: Operations served without a token (public aggregates, no personal data).
PUBLIC = AID_PUBLIC


class OpenApiTests(SimpleTestCase):
    databases = {"default"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        response = Client().get("/api/v1/openapi.json")
        cls.status = response.status_code
        cls.content_type = response["Content-Type"]
        cls.doc = json.loads(response.content)

    def test_it_is_served_as_json_without_a_token(self):
        self.assertEqual(self.status, 200)
        self.assertTrue(self.content_type.startswith("application/json"))
        self.assertTrue(self.doc["openapi"].startswith("3."))
        self.assertEqual(self.doc["info"]["title"], "redes API")

    def test_it_lists_every_endpoint(self):
        paths = {path: set(ops) for path, ops in self.doc["paths"].items()}
        for path, methods in ENDPOINTS.items():
            with self.subTest(path=path):
                self.assertIn(path, paths)
                self.assertEqual(paths[path], methods)

    def test_it_declares_the_bearer_scheme_on_every_operation(self):
        schemes = self.doc["components"]["securitySchemes"]
        [(name, scheme)] = schemes.items()
        self.assertEqual((scheme["type"], scheme["scheme"]), ("http", "bearer"))
        for path, operations in self.doc["paths"].items():
            for method, operation in operations.items():
                with self.subTest(method=method, path=path):
                    if path in PUBLIC:
                        self.assertNotIn("security", operation)
                        continue
                    self.assertEqual(operation["security"], [{name: []}])

    def test_every_operation_is_tagged_summarised_and_documents_its_errors(self):
        tags = {t["name"] for t in self.doc["tags"]}
        for path, operations in self.doc["paths"].items():
            for method, operation in operations.items():
                with self.subTest(method=method, path=path):
                    self.assertTrue(operation.get("summary"))
                    self.assertTrue(set(operation["tags"]) <= tags)
                    if path not in PUBLIC:
                        self.assertIn("401", operation["responses"])
                    self.assertIn("404", operation["responses"])

    def test_operation_ids_are_unique(self):
        ids = [op["operationId"] for ops in self.doc["paths"].values() for op in ops.values()]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(len(ids), sum(len(m) for m in ENDPOINTS.values()))

    def test_urls_name_records_by_uuid(self):
        for path in self.doc["paths"]:
            self.assertNotIn("{id}", path)
            self.assertNotIn("{pk}", path)

    def test_schemas_carry_examples(self):
        schemas = self.doc["components"]["schemas"]
        self.assertEqual(schemas["NodeIn"]["properties"]["code"]["examples"], ["S01-M003"])
        self.assertIn("examples", schemas["MunicipalityIn"]["properties"]["levels"])
        self.assertIn("ErrorOut", schemas)

    def test_the_interactive_docs_are_served(self):
        response = Client().get("/api/v1/docs")
        self.assertEqual(response.status_code, 200)
        self.assertIn(b"openapi.json", response.content)
        # Served from the package's static files, not from a CDN: the page works without internet.
        self.assertNotIn(b"cdn.", response.content)
        self.assertEqual(Client().get("/static/ninja/swagger-ui-bundle.js").status_code, 200)
