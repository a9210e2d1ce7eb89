"""Provider webhooks under /hooks/ (no session, no CSRF: each request is checked by its provider's signature)."""

urlpatterns: list = []
