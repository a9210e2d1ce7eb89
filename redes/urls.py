from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.utils.translation import gettext as _

from redes.api import api


def api_not_found(request, *args, **kwargs):
    """Unknown paths under /api/ answer in the API's error shape, not with an HTML page."""
    return JsonResponse({"detail": _("Not found."), "errors": []}, status=404)


urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    re_path(r"^api/", api_not_found),
    path("hooks/", include("redes.messaging.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("redes.web.urls")),
]
