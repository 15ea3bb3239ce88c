"""Operators' view of backups: every job, its timeline and downloads, with actions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backups import services
from backups.models import Backup, BackupDownload, BackupEvent, BackupSchedule, StorageFinding


class EventInline(admin.TabularInline):
    model = BackupEvent
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "status", "message", "actor")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class DownloadInline(admin.TabularInline):
    model = BackupDownload
    extra = 0
    can_delete = False
    readonly_fields = ("downloaded_at", "user_email", "ip_address", "user_agent")
    exclude = ("user",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "organization",
        "display_name",
        "kind",
        "status",
        "created_at",
        "requested_by",
        "document_count",
        "size",
        "download_expires_at",
        "verification_ok",
    )
    list_filter = ("status", "kind", "verification_ok", "organization")
    search_fields = ("label", "organization__name", "organization__slug", "requested_by__email", "sha256")
    date_hierarchy = "created_at"
    list_select_related = ("organization", "requested_by")
    # The wrapped password is never shown, not even to operators.
    exclude = ("password_wrapped",)
    readonly_fields = [f.name for f in Backup._meta.fields if f.name != "password_wrapped"] + ["ous", "facilities"]
    inlines = (EventInline, DownloadInline)
    actions = ("retry_failed", "expire_now", "reverify")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry: queue a new backup with the same scope and password")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        done = 0
        for backup in queryset.filter(status=Backup.Status.FAILED):
            try:
                services.backup_retry(backup=backup, user=request.user, request=request)  # type: ignore[arg-type]
                done += 1
            except services.BackupError as exc:
                self.message_user(request, f"Backup {backup.pk}: {exc}", messages.ERROR)
        self.message_user(request, f"{done} backup(s) queued again.")

    @admin.action(description="Expire now (delete the file, keep the record)")
    def expire_now(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        done = 0
        for backup in queryset.filter(status=Backup.Status.COMPLETED):
            services.backup_expire(backup=backup, user=request.user, request=request, early=True)  # type: ignore[arg-type]
            done += 1
        self.message_user(request, f"{done} backup(s) expired.")

    @admin.action(description="Verify again")
    def reverify(self, request: HttpRequest, queryset: QuerySet[Backup]) -> None:
        from backups.tasks import verify_backup

        ids = list(queryset.filter(status=Backup.Status.COMPLETED).values_list("pk", flat=True))
        for pk in ids:
            verify_backup.delay(pk)
        self.message_user(request, f"{len(ids)} verification(s) queued.")


@admin.register(BackupSchedule)
class BackupScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "organization",
        "name",
        "frequency",
        "weekday",
        "time_of_day",
        "keep_last",
        "enabled",
        "next_run_at",
    )
    list_filter = ("frequency", "enabled", "organization")
    search_fields = ("organization__name", "name")
    list_select_related = ("organization",)


@admin.register(BackupDownload)
class BackupDownloadAdmin(admin.ModelAdmin):
    list_display = ("backup", "user_email", "downloaded_at", "ip_address", "user_agent")
    search_fields = ("user_email", "ip_address")
    date_hierarchy = "downloaded_at"
    list_select_related = ("backup",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BackupEvent)
class BackupEventAdmin(admin.ModelAdmin):
    list_display = ("backup", "status", "message", "actor", "created_at")
    list_filter = ("status",)
    search_fields = ("message",)
    list_select_related = ("backup", "actor")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(StorageFinding)
class StorageFindingAdmin(admin.ModelAdmin):
    """What the storage audit found (``manage.py backup audit-storage``, weekly in beat)."""

    list_display = ("kind", "name", "backup", "recorded_size", "stored_size", "found_at", "last_seen_at", "resolved_at")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    date_hierarchy = "found_at"
    list_select_related = ("backup",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
