"""The registry in the admin site: read-only, and without sensitive data (case officers read it, audited,
through ``services.read_sensitive`` only)."""

from django.contrib import admin

from redes.core.admin import ReadOnlyAdmin

from .models import DataRequest, DuplicateCandidate, Household, ImportJob, Person, PrivacyNotice


class _NoSensitiveAdmin(ReadOnlyAdmin):
    hidden = ("sensitive_data",)

    def get_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.hidden]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)


@admin.register(Household)
class HouseholdAdmin(_NoSensitiveAdmin):
    list_display = ("__str__", "node", "members_count", "priority", "last_visit_at", "status")
    list_filter = ("status",)
    search_fields = ("street", "colonia", "postal_code", "node__code", "external_id")
    list_select_related = ("node",)
    show_full_result_count = False


@admin.register(Person)
class PersonAdmin(_NoSensitiveAdmin):
    list_display = ("full_name", "node", "birth_year", "sex", "relation", "status")
    list_filter = ("status", "sex")
    search_fields = ("surname1_key", "given_key", "curp", "external_id")
    list_select_related = ("node",)
    show_full_result_count = False


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(ReadOnlyAdmin):
    list_display = ("version", "municipality", "published_at")


@admin.register(DataRequest)
class DataRequestAdmin(ReadOnlyAdmin):
    list_display = ("kind", "status", "received_at", "due_on", "municipality")
    list_filter = ("status", "kind")


@admin.register(DuplicateCandidate)
class DuplicateCandidateAdmin(ReadOnlyAdmin):
    list_display = ("person_a", "person_b", "score", "status", "source")
    list_filter = ("status", "source")


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("filename", "municipality", "status", "processed_rows", "total_rows", "created_at")
    list_filter = ("status",)
