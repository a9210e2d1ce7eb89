"""Pages of the registry for coordinators and case officers: imports, duplicates, data requests, weights,
privacy notices, sensitive data."""

from django.urls import path

from .views import registry_admin as v

urlpatterns = [
    path("person/<uuid:uuid>/sensitive/", v.person_sensitive, name="registry-person-sensitive"),
    path("person/<uuid:uuid>/record/", v.person_record, name="registry-person-record"),
    path("duplicates/", v.duplicate_queue, name="registry-duplicates"),
    path("duplicates/<uuid:uuid>/decide/", v.duplicate_decide, name="registry-duplicate-decide"),
    path("requests/", v.request_list, name="registry-requests"),
    path("requests/summary/", v.requests_summary, name="registry-requests-summary"),
    path("requests/new/", v.request_new, name="registry-request-new"),
    path("requests/<uuid:uuid>/", v.request_detail, name="registry-request"),
    path("requests/<uuid:uuid>/export.json", v.request_export, name="registry-request-export"),
    path("weights/", v.weights, name="registry-weights"),
    path("notices/", v.notices, name="registry-notices"),
    path("imports/", v.import_list, name="registry-imports"),
    path("imports/<uuid:uuid>/", v.import_detail, name="registry-import"),
    path("imports/<uuid:uuid>/preview/", v.import_preview, name="registry-import-preview"),
    path("imports/<uuid:uuid>/start/", v.import_start, name="registry-import-start"),
    path("imports/<uuid:uuid>/progress/", v.import_progress, name="registry-import-progress"),
    path("imports/<uuid:uuid>/errors.csv", v.import_errors_csv, name="registry-import-errors"),
]
