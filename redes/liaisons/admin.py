"""Liaison posts in the admin site: read-only (posts are assigned and ended on the territory pages, audited)."""

from django.contrib import admin

from .models import LiaisonAssignment


@admin.register(LiaisonAssignment)
class LiaisonAssignmentAdmin(admin.ModelAdmin):
    list_display = ("full_name", "node", "start_date", "end_date", "end_reason")
    list_filter = ("end_date",)
    search_fields = ("full_name", "node__code", "node__name")
    list_select_related = ("node",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
