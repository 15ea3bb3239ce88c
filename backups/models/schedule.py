"""Per-organization backup schedules."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User


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
    # Scope, as in a request: no OU and no facility means every OU of the organization.
    ous = models.ManyToManyField("organizations.OrganisationalUnit", blank=True, related_name="backup_schedules")
    facilities = models.ManyToManyField("organizations.Facility", blank=True, related_name="backup_schedules")
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

    def backup_label(self, when: dt.datetime) -> str:
        """The name of the backup a run makes: the schedule's name and the run's date, e.g.
        "Nightly · 1 Dec 2026" (one run a day at most, so the date tells them apart)."""
        local = timezone.localtime(when)
        return f"{self.name} · {local.day} {local:%b %Y}"[:120]

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
