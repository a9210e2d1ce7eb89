"""JSON API of aid: donors, donations, sites, stock, templates, campaigns, deliveries."""

from ninja import Router

router = Router(tags=["Aid"])
