"""The JSON API under /api/v1/: one NinjaAPI, with a router per app (each app's ``api.py``)."""

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.security import HttpBearer

from redes.accounts.services import user_for_token


class BearerToken(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str):
        user = user_for_token(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="redes API",
    version="1",
    description="Territory, liaisons and access for neighbourhood solidarity networks.",
    auth=BearerToken(),
    urls_namespace="api",
)
