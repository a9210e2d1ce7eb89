"""Shared admin-site building blocks."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: records that change through services (audited) are never edited in the admin site."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
