from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import AuditLog, Membership, Notification, OURoleAssignment, Permission, Role, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("organization",)


class OURoleInline(admin.TabularInline):
    model = OURoleAssignment
    extra = 0
    autocomplete_fields = ("ou", "role")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "is_site_admin", "is_staff", "is_active", "last_login", "date_joined")
    list_filter = ("is_site_admin", "is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    inlines = (MembershipInline, OURoleInline)
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        (
            "Access",
            {"fields": ("is_active", "is_site_admin", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__email", "organization__name")
    autocomplete_fields = ("user", "organization")
    list_select_related = ("user", "organization")


@admin.register(Permission)
class PermissionAdmin(admin.ModelAdmin):
    list_display = ("codename", "name")
    search_fields = ("codename", "name")


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "is_system")
    list_filter = ("is_system",)
    search_fields = ("name",)
    filter_horizontal = ("permissions",)


@admin.register(OURoleAssignment)
class OURoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "ou", "ou__organization", "created_at")
    list_filter = ("role", "ou__organization")
    search_fields = ("user__email", "ou__name")
    autocomplete_fields = ("user", "ou", "role")
    list_select_related = ("user", "role", "ou__organization")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "organization", "level", "created_at", "read_at")
    list_filter = ("level", "organization")
    search_fields = ("title", "user__email")
    date_hierarchy = "created_at"
    list_select_related = ("user", "organization")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is written by services and never edited."""

    list_display = ("created_at", "actor_email", "action", "organization", "object_type", "object_repr", "ip_address")
    list_filter = ("action", "organization")
    search_fields = ("actor_email", "action", "object_repr", "object_id")
    date_hierarchy = "created_at"
    list_select_related = ("organization",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
