"""Backups, their downloads and events, per-organization schedules, comparisons and storage
findings, one module per concern."""

from .backup import Backup, BackupDownload, BackupEvent, BackupQuerySet, archive_upload_to
from .comparison import BackupComparison, BackupComparisonQuerySet, ChangeAlertSettings, ComparisonEntry
from .schedule import BackupSchedule
from .storage import StorageFinding

__all__ = [
    "Backup",
    "BackupComparison",
    "BackupComparisonQuerySet",
    "BackupDownload",
    "BackupEvent",
    "BackupQuerySet",
    "BackupSchedule",
    "ChangeAlertSettings",
    "ComparisonEntry",
    "StorageFinding",
    "archive_upload_to",
]
