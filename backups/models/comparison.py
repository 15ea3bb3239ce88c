"""Kept record-level comparisons of backups and the change-alert thresholds."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import User

from .backup import Backup


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
