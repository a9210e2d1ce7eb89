from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .forms import LoginForm

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("territory/search/", views.search, name="territory-search"),
    path("territory/<uuid:uuid>/", views.node_detail, name="territory"),
    path("territory/<uuid:uuid>/map.geojson", views.node_map, name="territory-map"),
    path("territory/<uuid:uuid>/add/", views.add_child, name="territory-add"),
    path("territory/<uuid:uuid>/rename/", views.rename, name="territory-rename"),
    path("territory/<uuid:uuid>/move/", views.move, name="territory-move"),
    path("territory/<uuid:uuid>/remove/", views.remove, name="territory-remove"),
    path("territory/<uuid:uuid>/vacant/", views.vacant, name="vacant-posts"),
    path("territory/<uuid:uuid>/liaison/", views.liaison_panel, name="liaison-panel"),
    path("territory/<uuid:uuid>/liaison/assign/", views.liaison_assign, name="liaison-assign"),
    path("territory/<uuid:uuid>/liaison/end/", views.liaison_end, name="liaison-end"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user-create"),
    path("users/<uuid:uuid>/", views.user_detail, name="user-detail"),
    path(
        "users/<uuid:uuid>/memberships/<uuid:membership_uuid>/end/",
        views.membership_end,
        name="membership-end",
    ),
    path("audit/", views.audit_log, name="audit"),
    path("registry/", include("redes.web.urls_census")),
    path("registry/", include("redes.web.urls_registry")),
    path("needs/", include("redes.web.urls_needs")),
    path("aid/", include("redes.web.urls_aid")),
    path("messaging/", include("redes.web.urls_messaging")),
]
