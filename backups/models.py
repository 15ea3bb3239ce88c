"""Backups, their downloads and events, and per-organization schedules."""

from __future__ import annotations

import datetime as dt
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
        """Backups the user may see: Site Admins all; others only backups whose every OU they
        may back up (an all-OUs backup needs the permission in every OU of the organization)."""
        from accounts.permissions import backup_ou_ids
        from organizations.models import Organization

        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_site_admin:
            return self.all()
        visible = Q(pk__in=[])
        for org in Organization.objects.filter(memberships__user=user):
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


class BackupSchedule(models.Model):
    """Regular backups of one organization, keeping a rolling history of the last N."""

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="backup_schedules"
    )
    name = models.CharField(max_length=100, default="Regular backup")
    frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices, default=Weekday.SUNDAY)
    time_of_day = models.TimeField(default=dt.time(2, 0))
    datasets = models.JSONField(default=list, blank=True, help_text="Empty means every data set.")
    include_active = models.BooleanField(default=True)
    include_inactive = models.BooleanField(default=True)
    exclude_superseded = models.BooleanField(default=False)
    keep_last = models.PositiveIntegerField(default=7, help_text="Scheduled backups kept (older ones expire).")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ("organization", "name")
        constraints = [
            models.CheckConstraint(condition=Q(keep_last__gte=1), name="schedule_keeps_at_least_one"),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.get_frequency_display()} at {self.time_of_day:%H:%M}"

    def compute_next_run(self, after: dt.datetime) -> dt.datetime:
        """The first run time strictly after ``after``, in the server's time zone."""
        local = timezone.localtime(after)
        candidate = local.replace(hour=self.time_of_day.hour, minute=self.time_of_day.minute, second=0, microsecond=0)
        if self.frequency == self.Frequency.DAILY:
            if candidate <= local:
                candidate += dt.timedelta(days=1)
            return candidate
        days = (self.weekday - candidate.weekday()) % 7
        candidate += dt.timedelta(days=days)
        if candidate <= local:
            candidate += dt.timedelta(days=7)
        return candidate


class BackupComparisonQuerySet(models.QuerySet["BackupComparison"]):
    def visible_to(self, user: User) -> BackupComparisonQuerySet:
        """Comparisons whose backups (one or both) the user may see: another one is a 404."""
        visible = Backup.objects.visible_to(user)
        return self.filter(earlier__in=visible).filter(Q(later__isnull=True) | Q(later__in=visible))


class BackupComparison(models.Model):
    """A kept record-level comparison: a backup against now, or against a later backup.

    ``summary`` is data set -> model -> {added, removed, changed}; ``counts`` is data set ->
    model -> {earlier, later} rows; the records themselves are ``ComparisonEntry`` rows.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Purpose(models.TextChoices):
        REQUESTED = "requested", "Requested"
        CHANGES = "changes", "Changes since the previous backup"

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="backup_comparisons"
    )
    earlier = models.ForeignKey(Backup, on_delete=models.CASCADE, related_name="comparisons_from")
    later = models.ForeignKey(
        Backup, on_delete=models.CASCADE, null=True, blank=True, related_name="comparisons_to", help_text="Empty: now."
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.REQUESTED)
    requested_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    notes = models.JSONField(default=list, blank=True, help_text="Sentences shown with the result.")
    mass_change = models.BooleanField(default=False)
    failure_reason = models.TextField(blank=True)

    objects = BackupComparisonQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["later", "purpose"], name="comparison_later_purpose")]

    def __str__(self) -> str:
        return f"{self.earlier_id} → {self.later_id or 'now'} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("backups:comparison", args=[self.pk])

    @property
    def with_now(self) -> bool:
        return self.later_id is None

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))

    def totals(self) -> dict[str, int]:
        totals = {"added": 0, "removed": 0, "changed": 0}
        for per_model in (self.summary or {}).values():
            for tally in per_model.values():
                for kind in totals:
                    totals[kind] += int(tally.get(kind, 0))
        return totals


class ComparisonEntry(models.Model):
    """One record that differs between the two sides of a comparison."""

    class Kind(models.TextChoices):
        ADDED = "added", "Added"
        REMOVED = "removed", "Removed"
        CHANGED = "changed", "Changed"

    comparison = models.ForeignKey(BackupComparison, on_delete=models.CASCADE, related_name="entries")
    dataset = models.CharField(max_length=40)
    model = models.CharField(max_length=40)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    record_pk = models.BigIntegerField()
    title = models.CharField(max_length=400)
    label = models.CharField(max_length=200, blank=True, help_text="How rows referring to this one name it.")
    details = models.JSONField(default=list, blank=True, help_text="[{field, old, new}] of a changed record.")

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["comparison", "model", "kind"], name="comparison_entry_model")]

    def __str__(self) -> str:
        return f"{self.kind} {self.model} #{self.record_pk}"


class ChangeAlertSettings(models.Model):
    """When a backup's changes since the previous one count as a mass change (the Owner sets it)."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="change_alert_settings"
    )
    enabled = models.BooleanField(default=True, help_text="Email the Owner and Admins about mass changes.")
    percent = models.PositiveSmallIntegerField(
        default=20, help_text="More than this share (in %) of a kind of record removed or changed."
    )
    min_records = models.PositiveIntegerField(default=50, help_text="And at least this many records of that kind.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(percent__lte=100), name="change_alert_percent_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: >{self.percent}% and ≥{self.min_records}"
