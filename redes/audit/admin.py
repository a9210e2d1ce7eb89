"""The audit log in the admin site: read-only (no add, change or delete), and the mixin that audits admin edits."""

from django.contrib import admin

from redes.core.admin import ReadOnlyAdmin

from .models import AuditEvent
from .services import record


class AuditedAdminMixin:
    """Record every add, change and delete made through the admin site in the audit log."""

    audit_prefix = ""

    def _audit_action(self, verb: str) -> str:
        return f"{self.audit_prefix or self.model._meta.label_lower}.admin_{verb}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        fields = sorted(form.changed_data) if form is not None else []
        record(
            self._audit_action("change" if change else "add"),
            actor=request.user,
            obj=obj,
            changes={"fields": fields},
        )

    def delete_model(self, request, obj):
        record(self._audit_action("delete"), actor=request.user, obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            record(self._audit_action("delete"), actor=request.user, obj=obj)
        super().delete_queryset(request, queryset)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "actor_label",
        "channel",
        "action",
        "outcome",
        "object_type",
        "object_id",
        "municipality_id",
    )
    list_filter = ("channel", "outcome", "action")
    search_fields = ("action", "actor_label", "object_id", "summary")
    date_hierarchy = "at"
    list_per_page = 100
    show_full_result_count = False
