"""Aid: donors, donations, sites, stock ledger, package templates, campaigns, deliveries (see docs/aid.md)."""

from django.db import models  # noqa: F401
