"""Operators see restores, their codes (as HMACs only) and uploads; they can end a stuck
maintenance window and unlock a request locked after too many wrong codes. Nothing here can
reveal or create a code."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.services import audit_log
from restores import services
from restores.maintenance import maintenance_off
from restores.models import Restore, RestoreCode, RestoreUpload


class RestoreCodeInline(admin.TabularInline):
    model = RestoreCode
    extra = 0
    can_delete = False
    fields = ("created_at", "expires_at", "used_at", "sent_to")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Restore)
class RestoreAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "status", "organization", "backup", "requested_by", "attempts", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("organization__name", "requested_by__email")
    readonly_fields = [f.name for f in Restore._meta.fields]
    inlines = [RestoreCodeInline]
    actions = ["end_maintenance", "unlock"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="End the maintenance window of the selected restores' organizations")
    def end_maintenance(self, request: HttpRequest, queryset: QuerySet[Restore]) -> None:
        ended = 0
        for restore in queryset.exclude(status__in=Restore.ACTIVE_STATUSES).select_related("organization"):
            if restore.organization and restore.organization.maintenance_since:
                maintenance_off(restore.organization)
                audit_log(
                    action="restore.maintenance_off", organization=restore.organization, obj=restore, request=request
                )
                ended += 1
        messages.info(request, f"Maintenance ended for {ended} organization(s). Running restores are left alone.")

    @admin.action(description="Unlock locked requests (the requester asks the Owner for a new code)")
    def unlock(self, request: HttpRequest, queryset: QuerySet[Restore]) -> None:
        unlocked = skipped = 0
        for restore in queryset.order_by("pk"):
            if restore.status != Restore.Status.LOCKED:
                skipped += 1
                continue
            try:
                services.restore_unlock(restore=restore, user=request.user, request=request)  # type: ignore[arg-type]
            except services.RestoreError as exc:
                self.message_user(request, f"Not unlocked: {exc}", messages.ERROR)
            else:
                unlocked += 1
        self.message_user(
            request,
            f"{unlocked} restore request(s) unlocked: codes sent before no longer work, and the requester can ask "
            f"for a new code, which goes to the Owner. {skipped} skipped because they were not locked.",
            messages.SUCCESS if unlocked else messages.WARNING,
        )


@admin.register(RestoreUpload)
class RestoreUploadAdmin(admin.ModelAdmin):
    list_display = ("pk", "original_name", "size", "uploaded_by", "created_at")
    readonly_fields = ("file", "original_name", "size", "sha256", "uploaded_by", "created_at", "manifest_summary")
    exclude = ("password_wrapped",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
