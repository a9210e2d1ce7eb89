"""JSON API of needs and cases."""

from ninja import Router

router = Router(tags=["Needs"])
