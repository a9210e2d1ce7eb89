"""Provider webhooks under /hooks/ (no session, no CSRF: each request is checked by its provider's signature)."""

from django.urls import path

from . import webhooks

urlpatterns = [
    path("whatsapp/<uuid:account>/", webhooks.whatsapp, name="messaging-hook-whatsapp"),
    path("twilio/<uuid:account>/", webhooks.twilio, name="messaging-hook-twilio"),
    path("gateway/<uuid:account>/", webhooks.gateway, name="messaging-hook-gateway"),
    path("telegram/<uuid:account>/", webhooks.telegram, name="messaging-hook-telegram"),
]
