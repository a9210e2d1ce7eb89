"""Template context for every page: map tiles, and for signed-in users their territory and navigation.

The navigation is computed from the user's grants (loaded once per request by ``scoping``): a link shows
only when the user holds the permission it needs somewhere.
"""

from django.conf import settings
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from redes.accounts.roles import Perm
from redes.accounts.scoping import can, top_nodes


def _nav(request, tops) -> list[dict]:
    user = request.user
    path = request.path
    items = [{"url": reverse("home"), "label": _("Home"), "current": path == reverse("home")}]
    on_vacant = path.startswith("/territory/") and path.endswith("/vacant/")
    if tops and can(user, Perm.VIEW_TERRITORY):
        url = reverse("territory", args=[tops[0].uuid])
        current = path.startswith("/territory/") and not on_vacant
        items.append({"url": url, "label": _("Territory"), "current": current})
    if tops and can(user, Perm.VIEW_AGGREGATES):
        url = reverse("vacant-posts", args=[tops[0].uuid])
        items.append({"url": url, "label": _("Vacant posts"), "current": on_vacant})
    if can(user, Perm.VIEW_PERSONAL):
        url = reverse("census-home")
        census_paths = ("/registry/block", "/registry/household", "/registry/search", "/registry/person")
        officer_pages = ("/sensitive/", "/record/")
        current = path == url or (path.startswith(census_paths) and not path.endswith(officer_pages))
        items.append({"url": url, "label": _("Census"), "current": current})
    if tops and can(user, Perm.VIEW_TERRITORY):
        # Each area's home shows what the role may see (a queue, or aggregates only for observers).
        for name, label, prefix in (("needs-home", _("Needs"), "/needs/"), ("aid-home", _("Aid"), "/aid/")):
            items.append({"url": reverse(name), "label": label, "current": path.startswith(prefix)})
    if any(can(user, perm) for perm in (Perm.BROADCAST, Perm.ACK_CASCADE, Perm.MANAGE_MESSAGING)):
        url = reverse("messaging-home")
        items.append({"url": url, "label": _("Messages"), "current": path.startswith(url)})
    if can(user, Perm.MANAGE_REGISTRY):
        for name, label in (
            ("registry-imports", _("Imports")),
            ("registry-duplicates", _("Duplicates")),
            ("registry-requests", _("Data requests")),
            ("registry-weights", _("Priority weights")),
            ("registry-notices", _("Privacy notice")),
        ):
            url = reverse(name)
            items.append({"url": url, "label": label, "current": path.startswith(url)})
    if can(user, Perm.MANAGE_USERS):
        url = reverse("users")
        items.append({"url": url, "label": _("Users"), "current": path.startswith(url)})
    if can(user, Perm.VIEW_AUDIT):
        url = reverse("audit")
        items.append({"url": url, "label": _("Audit log"), "current": path.startswith(url)})
    if user.is_superuser:
        items.append({"url": reverse("admin:index"), "label": _("Admin"), "current": False})
    return items


def redes(request):
    context = {
        "REDES_TILE_URL": settings.REDES_TILE_URL,
        "REDES_TILE_ATTRIBUTION": settings.REDES_TILE_ATTRIBUTION,
    }
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        tops = SimpleLazyObject(lambda: top_nodes(request.user))
        context["home_nodes"] = tops
        context["nav"] = SimpleLazyObject(lambda: _nav(request, tops))
    return context
