"""Pages of needs and cases (intake, queues, map, triage, escalation, referrals, settings)."""

from django.urls import path

from .views import needs_detail, needs_intake, needs_queue, needs_settings

urlpatterns = [
    path("", needs_queue.needs_home, name="needs-home"),
    path("new/", needs_intake.needs_new, name="needs-new"),
    path("hotline/", needs_intake.needs_hotline, name="needs-hotline"),
    path("report/", needs_intake.needs_report, name="needs-report"),
    path("report/thanks/", needs_intake.needs_report_thanks, name="needs-report-thanks"),
    path("map/", needs_queue.needs_map, name="needs-map"),
    path("map/data.geojson", needs_queue.needs_map_data, name="needs-map-data"),
    path("notifications/", needs_queue.needs_notifications, name="needs-notifications"),
    path("notifications/read/", needs_queue.needs_notifications_read, name="needs-notifications-read"),
    path("settings/", needs_settings.needs_settings, name="needs-settings"),
    path("<uuid:uuid>/", needs_detail.needs_detail, name="needs-detail"),
    path("<uuid:uuid>/do/<slug:action>/", needs_detail.needs_action, name="needs-action"),
    path(
        "<uuid:uuid>/referral/<uuid:referral>/",
        needs_detail.needs_referral,
        name="needs-referral",
    ),
]
