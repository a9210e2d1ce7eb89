"""The registry pages for coordinators and case officers, one module per feature (``registry_*.py``)."""

from .registry_duplicates import duplicate_decide, duplicate_queue, person_record
from .registry_imports import (
    import_detail,
    import_errors_csv,
    import_list,
    import_preview,
    import_progress,
    import_start,
)
from .registry_requests import request_detail, request_export, request_list, request_new, requests_summary
from .registry_sensitive import person_sensitive
from .registry_settings import notices, weights

__all__ = [
    "duplicate_decide",
    "duplicate_queue",
    "import_detail",
    "import_errors_csv",
    "import_list",
    "import_preview",
    "import_progress",
    "import_start",
    "notices",
    "person_record",
    "person_sensitive",
    "request_detail",
    "request_export",
    "request_list",
    "request_new",
    "requests_summary",
    "weights",
]
