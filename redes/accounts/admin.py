"""Users, memberships and API tokens in the admin site.

Users are edited with Django's user admin (every change audited). Memberships and tokens are read-only here,
with actions that go through the services: end memberships, revoke tokens.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from redes.audit.admin import AuditedAdminMixin
from redes.core.admin import ReadOnlyAdmin

from .models import ApiToken, Membership, User
from .services import end_membership, revoke_token


class MembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ("role", "node", "created_at", "ended_at")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    audit_prefix = "accounts.user"
    list_display = ("username", "full_name", "email", "is_active", "is_superuser", "last_login")
    search_fields = ("username", "full_name", "email")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("full_name", "phone", "email")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("last_login", "date_joined")
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "role", "node", "created_at", "ended_at")
    list_filter = ("role", "ended_at")
    search_fields = ("user__username", "user__full_name", "node__code", "node__name")
    list_select_related = ("user", "node")
    actions = ["end_selected"]

    @admin.action(description=_("End the selected memberships"), permissions=["view"])
    def end_selected(self, request, queryset):
        ended = 0
        for membership in queryset.filter(ended_at__isnull=True):
            end_membership(membership, actor=request.user)
            ended += 1
        self.message_user(
            request,
            ngettext("%(count)d membership ended.", "%(count)d memberships ended.", ended) % {"count": ended},
            messages.SUCCESS,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "user__username", "name")
    list_select_related = ("user",)
    exclude = ("key_hash",)
    actions = ["revoke_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "key_hash"]

    @admin.action(description=_("Revoke the selected tokens"), permissions=["view"])
    def revoke_selected(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            revoke_token(token, actor=request.user)
            revoked += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked) % {"count": revoked},
            messages.SUCCESS,
        )
