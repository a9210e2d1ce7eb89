"""Pages of aid (donors, donations, sites, stock, campaigns, deliveries, public map and reports)."""

from django.urls import path

from .views import aid, aid_campaigns, aid_public, aid_stock

urlpatterns = [
    path("", aid.aid_home, name="aid-home"),
    path("donors/", aid_stock.donors, name="aid-donors"),
    path("donors/<uuid:uuid>/", aid_stock.donor_detail, name="aid-donor"),
    path("donors/<uuid:uuid>/impact/", aid_stock.donor_impact, name="aid-donor-impact"),
    path("donations/", aid_stock.donations, name="aid-donations"),
    path("donations/new/", aid_stock.donation_new, name="aid-donation-new"),
    path("sites/", aid_stock.sites, name="aid-sites"),
    path("sites/<uuid:uuid>/", aid_stock.site_detail, name="aid-site"),
    path(
        "sites/<uuid:uuid>/<str:action>/",
        aid_stock.site_action,
        name="aid-site-action",
    ),
    path("stock/", aid_stock.stock, name="aid-stock"),
    path("packages/", aid_stock.templates, name="aid-templates"),
    path("campaigns/", aid_campaigns.campaigns, name="aid-campaigns"),
    path("campaigns/<uuid:uuid>/", aid_campaigns.campaign_detail, name="aid-campaign"),
    path("campaigns/<uuid:uuid>/map.geojson", aid_campaigns.campaign_map, name="aid-campaign-map"),
    path("campaigns/<uuid:uuid>/print/", aid_campaigns.campaign_print, name="aid-campaign-print"),
    path(
        "campaigns/<uuid:uuid>/allocation/",
        aid_campaigns.campaign_allocation,
        name="aid-campaign-allocation",
    ),
    path("campaigns/<uuid:uuid>/<str:action>/", aid_campaigns.campaign_action, name="aid-campaign-action"),
    path("deliver/", aid_campaigns.deliver, name="aid-deliver"),
    path("deliver/check/", aid_campaigns.deliver_check, name="aid-deliver-check"),
    path("public/map/", aid_public.public_map, name="aid-public-map"),
    path("public/campaign/<uuid:uuid>/", aid_public.public_report, name="aid-public-report"),
]
