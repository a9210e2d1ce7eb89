"""Pages of messaging: the entry page, the console, broadcasts with their live progress, the group registry,
message templates, conversation flows, channel accounts and the inbound log."""

from django.urls import path

from .views import messaging, messaging_admin, messaging_broadcasts

urlpatterns = [
    path("", messaging.messaging_home, name="messaging-home"),
    path("ack/<int:pk>/", messaging.acknowledge, name="messaging-ack"),
    path("console/", messaging.console, name="messaging-console"),
    path("console/conversation/", messaging.console_conversation, name="messaging-console-conversation"),
    path("broadcasts/", messaging_broadcasts.broadcasts, name="messaging-broadcasts"),
    path("broadcasts/<uuid:uuid>/", messaging_broadcasts.broadcast_detail, name="messaging-broadcast"),
    path(
        "broadcasts/<uuid:uuid>/map.geojson",
        messaging_broadcasts.broadcast_map,
        name="messaging-broadcast-map",
    ),
    path(
        "broadcasts/<uuid:uuid>/<str:action>/",
        messaging_broadcasts.broadcast_action,
        name="messaging-broadcast-action",
    ),
    path("groups/", messaging_admin.groups, name="messaging-groups"),
    path("groups/new/", messaging_admin.group_edit, name="messaging-group-new"),
    path("groups/<uuid:uuid>/", messaging_admin.group_edit, name="messaging-group"),
    path("templates/", messaging_admin.templates, name="messaging-templates"),
    path("templates/new/", messaging_admin.template_edit, name="messaging-template-new"),
    path("templates/<slug:key>/", messaging_admin.template_edit, name="messaging-template"),
    path("flows/", messaging_admin.flows, name="messaging-flows"),
    path("flows/<slug:key>/", messaging_admin.flow_edit, name="messaging-flow"),
    path("accounts/", messaging_admin.accounts, name="messaging-accounts"),
    path("accounts/new/", messaging_admin.account_edit, name="messaging-account-new"),
    path("accounts/<uuid:uuid>/", messaging_admin.account_edit, name="messaging-account"),
    path("inbound/", messaging_admin.inbound_log, name="messaging-inbound"),
    path("inbound/<int:pk>/", messaging_admin.inbound_log_entry, name="messaging-inbound-entry"),
]
