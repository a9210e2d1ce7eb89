"""The registry's API router (households, persons, consent, sensitive data, ARCO, duplicates, imports)."""

from ninja import Router

router = Router(tags=["Registry"])
