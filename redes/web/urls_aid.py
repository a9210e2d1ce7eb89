"""Pages of aid (donors, donations, sites, stock, campaigns, deliveries, public map and reports)."""

from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    # Placeholder until the aid pages land.
    path("", RedirectView.as_view(pattern_name="home"), name="aid-home"),
]
