"""The storage audit's findings."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .backup import Backup


class StorageFinding(models.Model):
    """Something the storage audit (``manage.py backup audit-storage``, weekly in beat) found
    wrong between the backups' records and the objects in storage, for the operators."""

    class Kind(models.TextChoices):
        MISSING = "missing", "A completed backup's file is missing"
        SIZE = "size", "A completed backup's file has another size than recorded"
        ORPHAN = "orphan", "A file under the backups prefix belongs to no backup"
        UNFINISHED_UPLOAD = "upload", "An unfinished multipart upload belongs to no running backup"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=255, help_text="The object's name in storage.")
    backup = models.ForeignKey(Backup, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    recorded_size = models.PositiveBigIntegerField(null=True, blank=True)
    stored_size = models.PositiveBigIntegerField(null=True, blank=True)
    found_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="Gone at a later audit, or fixed.")
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-found_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "name"], condition=Q(resolved_at__isnull=True), name="storage_finding_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"
