"""Aid in the admin site: read-only (every change goes through ``aid.services``, audited)."""

from django.contrib import admin

from redes.core.admin import ReadOnlyAdmin

from .models import (
    Campaign,
    Donation,
    Donor,
    Entitlement,
    Item,
    PackageTemplate,
    Site,
    StockBalance,
    StockEntry,
)


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "unit", "whole_units", "kcal", "active")
    search_fields = ("code", "name")


@admin.register(Donor)
class DonorAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "public_name", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "public_name")


@admin.register(Site)
class SiteAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "node", "public", "active")
    list_filter = ("kind", "public", "active")
    list_select_related = ("node",)


@admin.register(Donation)
class DonationAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "donor", "site", "kind", "pledge_mxn", "received_at")
    list_filter = ("kind",)
    list_select_related = ("donor", "site")


@admin.register(StockEntry)
class StockEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "site", "item", "kind", "quantity", "reserved", "reason")
    list_filter = ("kind",)
    list_select_related = ("site", "item")
    show_full_result_count = False


@admin.register(StockBalance)
class StockBalanceAdmin(ReadOnlyAdmin):
    list_display = ("site", "item", "quantity", "reserved", "updated_at")
    list_select_related = ("site", "item")


@admin.register(PackageTemplate)
class PackageTemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "persons", "days", "active")


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "node", "allocated_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("node",)


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdmin):
    list_display = ("code", "campaign", "node", "status", "reason", "delivered_at")
    list_filter = ("status",)
    list_select_related = ("campaign", "node")
    show_full_result_count = False
