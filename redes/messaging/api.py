"""JSON API of messaging (tag Messaging): broadcasts and their cascade, groups, templates, flows, contacts,
the outbox and the inbox. Filled in by the messaging issue's API work."""

from ninja import Router

router = Router(tags=["Messaging"])
