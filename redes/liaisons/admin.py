"""Liaison posts in the admin site: read-only (posts are assigned and ended on the territory pages, audited)."""

from django.contrib import admin

from redes.core.admin import ReadOnlyAdmin

from .models import LiaisonAssignment


@admin.register(LiaisonAssignment)
class LiaisonAssignmentAdmin(ReadOnlyAdmin):
    list_display = ("full_name", "node", "start_date", "end_date", "end_reason")
    list_filter = ("end_date",)
    search_fields = ("full_name", "node__code", "node__name")
    list_select_related = ("node",)
    show_full_result_count = False
