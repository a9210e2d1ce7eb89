"""Territory in the admin site, read-only: the tree changes only through its services (the territory pages,
the CLI and the API), which keep the ancestor columns consistent and write the audit log."""

from django.contrib import admin

from redes.core.admin import ReadOnlyAdmin

from .models import Level, Municipality, Node


class LevelInline(admin.TabularInline):
    model = Level
    extra = 0
    fields = ("position", "name")
    readonly_fields = ("position", "name")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Municipality)
class MunicipalityAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
    inlines = [LevelInline]


@admin.register(Node)
class NodeAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "kind", "depth", "municipality")
    list_filter = ("kind", "depth")
    search_fields = ("code", "name")
    list_select_related = ("municipality",)
    show_full_result_count = False
    exclude = ("geometry",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "geometry"]
