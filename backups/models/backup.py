"""Backups, their timeline of events and their downloads."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import User


def archive_upload_to(instance: Backup, filename: str) -> str:
    # Storage keys are opaque: no organization, label or date in them.
    return f"backups/{uuid.uuid4().hex}.zip"


class BackupQuerySet(models.QuerySet["Backup"]):
    def visible_to(self, user: User) -> BackupQuerySet:
        """Backups the user may see: Site Admins all; an organization's Owner and Admins every
        backup of it; members only backups whose every OU they may back up (an all-OUs backup
        needs the permission in every OU of the organization)."""
        from accounts.permissions import backup_ou_ids, manages_all_backups
        from organizations.models import Organization

        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_site_admin:
            return self.all()
        visible = Q(pk__in=[])
        for org in Organization.objects.filter(memberships__user=user):
            if manages_all_backups(user, org):
                visible |= Q(organization=org)
                continue
            allowed = backup_ou_ids(user, org)
            if not allowed:
                continue
            all_ous = set(org.ous.values_list("pk", flat=True))
            in_org = Q(organization=org)
            # An explicit scope: no OU outside the allowed set.
            # An explicit scope needs at least one OU left: a backup whose OUs were all
            # deleted is for those who may back up the whole organization only.
            # (A subquery, not a join: a join would be shared with the exclusion below.)
            has_ous = Q(pk__in=Backup.ous.through.objects.values("backup_id"))
            explicit = Q(all_ous=False) & has_ous & ~Q(ous__in=all_ous - allowed)
            if allowed >= all_ous:
                visible |= in_org
            else:
                visible |= in_org & explicit
        # No DISTINCT: every condition above is on the backup's own columns or a subquery, so no
        # row can repeat; DISTINCT over these wide rows (JSON columns included) cost more than the
        # list page's query itself. Filters that join a multi-valued relation add their own.
        return self.filter(visible)

    def pending(self) -> BackupQuerySet:
        return self.filter(status=Backup.Status.PENDING)


class Backup(models.Model):
    """One backup job and, once completed, its encrypted archive."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_PROGRESS = "in_progress", "In Progress"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        MANUAL = "manual", "Manual"
        SCHEDULED = "scheduled", "Scheduled"
        PRE_RESTORE = "pre_restore", "Pre-restore"

    class PasswordSource(models.TextChoices):
        GENERATED = "generated", "System-generated"
        USER = "user", "Chosen by the requester"

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="backups")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.MANUAL, db_index=True)
    label = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    requested_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="backups_requested"
    )
    schedule = models.ForeignKey(
        "backups.BackupSchedule", on_delete=models.SET_NULL, null=True, blank=True, related_name="backups"
    )
    requested_via = models.CharField(
        max_length=200,
        blank=True,
        help_text="Who asked when no user of the site did, e.g. “Operator ops@example.com via command line”.",
    )

    # Scope
    all_ous = models.BooleanField(default=True)
    ous = models.ManyToManyField("organizations.OrganisationalUnit", blank=True, related_name="backups")
    facilities = models.ManyToManyField("organizations.Facility", blank=True, related_name="backups")
    include_active = models.BooleanField(default=True)
    include_inactive = models.BooleanField(default=False)
    exclude_superseded = models.BooleanField(default=False)
    datasets = models.JSONField(default=list, help_text="Data set keys, dependencies included.")

    # Password: kept only wrapped with the BACKUP_KEYS ring (MultiFernet).
    password_wrapped = models.TextField(blank=True)
    password_source = models.CharField(max_length=10, choices=PasswordSource.choices, default=PasswordSource.GENERATED)

    # Lifecycle timestamps, one per state
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    # Progress
    progress_items_done = models.PositiveIntegerField(default=0)
    progress_items_total = models.PositiveIntegerField(default=0)
    progress_bytes_done = models.PositiveBigIntegerField(default=0)
    progress_bytes_total = models.PositiveBigIntegerField(default=0)

    # Result
    file = models.FileField(upload_to=archive_upload_to, blank=True, max_length=255)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    document_count = models.PositiveIntegerField(null=True, blank=True)
    row_counts = models.JSONField(default=dict, blank=True)
    captured = models.JSONField(
        default=dict, blank=True, help_text="Organization name, master data version etc. at backup time."
    )
    download_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failure_reason = models.TextField(blank=True)

    # Verification
    last_verified_at = models.DateTimeField(null=True, blank=True)
    verification_ok = models.BooleanField(null=True, blank=True)
    verification_message = models.TextField(blank=True)

    # Change alert: many records removed or changed since the previous backup of the same scope.
    mass_change = models.BooleanField(default=False)

    objects = BackupQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # One pending backup per organization, by the database, not only a hidden button.
            models.UniqueConstraint(
                fields=["organization"], condition=Q(status="pending"), name="backup_one_pending_per_org"
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"], name="backup_org_created")]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("backups:detail", args=[self.pk])

    @property
    def display_name(self) -> str:
        if self.label:
            return self.label
        when = timezone.localtime(self.created_at).strftime("%Y-%m-%d %H:%M")
        return f"{self.get_kind_display()} backup {when}"

    @property
    def requester_display(self) -> str:
        """Who requested it, as the list's *Created by* says it (the requester is loaded)."""
        user = self.requested_by
        if user is not None:
            return user.get_full_name() or user.email
        if self.requested_via:
            return self.requested_via
        if self.kind == self.Kind.SCHEDULED:
            return "Schedule"
        if self.kind == self.Kind.PRE_RESTORE:
            return "System, before a restore"
        return "System"

    @property
    def is_downloadable(self) -> bool:
        return (
            self.status == self.Status.COMPLETED
            and bool(self.file)
            and (self.download_expires_at is None or self.download_expires_at > timezone.now())
        )

    @property
    def progress_percent(self) -> int:
        if self.progress_bytes_total:
            return min(100, int(100 * self.progress_bytes_done / self.progress_bytes_total))
        if self.progress_items_total:
            return min(100, int(100 * self.progress_items_done / self.progress_items_total))
        return 0


class BackupEvent(models.Model):
    """The timeline of a backup: every status change and notable step."""

    backup = models.ForeignKey(Backup, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=12, choices=Backup.Status.choices)
    message = models.CharField(max_length=500, blank=True)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.backup_id} {self.status}"


class BackupDownload(models.Model):
    """A download of a backup; the history outlives the file."""

    backup = models.ForeignKey(Backup, on_delete=models.CASCADE, related_name="downloads")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    user_email = models.CharField(max_length=254, blank=True)
    downloaded_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        ordering = ("-downloaded_at", "-id")

    def __str__(self) -> str:
        return f"{self.backup_id} by {self.user_email} at {self.downloaded_at:%Y-%m-%d %H:%M}"
