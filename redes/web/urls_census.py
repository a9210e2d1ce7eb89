"""Pages of the registry for the field: a block's households, census forms, visits, consent, search."""

from django.urls import path

from .views import census

urlpatterns = [
    path("", census.census_home, name="census-home"),
    path("search/", census.census_search, name="census-search"),
    path("block/<uuid:uuid>/", census.census_block, name="census-block"),
    path("block/<uuid:uuid>/add/", census.census_household_add, name="census-household-add"),
    path("household/<uuid:uuid>/", census.census_household, name="census-household"),
    path("household/<uuid:uuid>/edit/", census.census_household_edit, name="census-household-edit"),
    path("household/<uuid:uuid>/visit/", census.census_visit, name="census-visit"),
    path("household/<uuid:uuid>/person/add/", census.census_person_add, name="census-person-add"),
    path("person/<uuid:uuid>/edit/", census.census_person_edit, name="census-person-edit"),
    path("person/<uuid:uuid>/consent/", census.census_consent, name="census-consent"),
    path("person/<uuid:uuid>/consent/revoke/", census.census_consent_revoke, name="census-consent-revoke"),
]
