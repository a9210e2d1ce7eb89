"""Pages of needs and cases (intake, queues, map, triage, escalation, referrals, settings)."""

from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    # Placeholder until the needs pages land.
    path("", RedirectView.as_view(pattern_name="home"), name="needs-home"),
]
