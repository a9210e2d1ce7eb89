"""Pages of the registry for the field: a block's households, census forms, visits, consent, search."""

urlpatterns: list = []
