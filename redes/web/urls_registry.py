"""Pages of the registry for coordinators and case officers: imports, duplicates, data requests, weights,
privacy notices, sensitive data."""

urlpatterns: list = []
