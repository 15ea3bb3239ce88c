"""Writes of comparisons: request, claim, run (in a worker), fail, and the change summary that
follows each completed backup. Views, tasks, the queue run and the ``backup`` command call these."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups.compare import titles
from backups.compare.engine import CompareResult, Difference, compare
from backups.compare.sides import ArchiveSide, CompareError, LiveSide
from backups.models import Backup, BackupComparison, BackupEvent, ChangeAlertSettings, ComparisonEntry
from backupsvc.lib.logcontext import log_context

logger = logging.getLogger(__name__)

BATCH = 1000


class ComparisonError(Exception):
    """A comparison the rules refuse; the message is shown to the user as is."""


def _dispatch(comparison: BackupComparison) -> None:
    if settings.BACKUP_DISPATCH_IMMEDIATELY:
        from backups.tasks import run_comparison

        # robust: a broker outage leaves it pending; the queue run (beat) picks it up.
        transaction.on_commit(lambda: run_comparison.delay(comparison.pk), robust=True)


def _comparable(backup: Backup) -> None:
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise ComparisonError(
            f"“{backup.display_name}” cannot be compared: only a completed backup whose file is still kept can."
        )


def comparison_request(
    *,
    backup: Backup,
    other: Backup | None = None,
    requested_by: User | None,
    request: Any = None,
) -> BackupComparison:
    """Queue a comparison of ``backup`` with now (``other`` None) or with another backup of the
    same organization; with two backups the older one is the earlier side."""
    _comparable(backup)
    earlier, later = backup, other
    if other is not None:
        if other.pk == backup.pk:
            raise ComparisonError("Choose a different backup to compare with.")
        if other.organization_id != backup.organization_id:
            raise ComparisonError("Only backups of the same organization can be compared.")
        _comparable(other)
        if (other.created_at, other.pk) < (backup.created_at, backup.pk):
            earlier, later = other, backup
    total = _estimate(earlier) + (_estimate(later) if later is not None else _estimate(earlier))
    with transaction.atomic():
        comparison = BackupComparison.objects.create(
            organization=backup.organization,
            earlier=earlier,
            later=later,
            requested_by=requested_by,
            progress_total=total,
        )
        audit_log(
            action="backup.compare",
            actor=requested_by,
            organization=backup.organization,
            obj=comparison,
            request=request,
            details={"earlier": earlier.pk, "later": later.pk if later else "now"},
        )
        _dispatch(comparison)
    return comparison


def _estimate(backup: Backup) -> int:
    counts = backup.row_counts or {}
    return sum(int(n) for per in counts.values() if isinstance(per, dict) for n in per.values())


def previous_backup(backup: Backup) -> Backup | None:
    """The latest backup of the same organization and scope completed before ``backup`` (also an
    expired one, so that the caller can say why there is no change summary)."""
    same_scope = Backup.objects.filter(
        organization_id=backup.organization_id,
        all_ous=backup.all_ous,
        include_active=backup.include_active,
        include_inactive=backup.include_inactive,
        exclude_superseded=backup.exclude_superseded,
        status__in=(Backup.Status.COMPLETED, Backup.Status.EXPIRED),
        completed_at__lt=backup.completed_at,
    ).exclude(pk=backup.pk)
    ous = set(backup.ous.values_list("pk", flat=True))
    datasets = sorted(backup.datasets or [])
    for candidate in same_scope.order_by("-completed_at", "-pk").prefetch_related("ous")[:20]:
        if sorted(candidate.datasets or []) == datasets and {o.pk for o in candidate.ous.all()} == ous:
            return candidate
    return None


def changes_request(*, backup: Backup) -> BackupComparison | None:
    """After a backup completed: queue its change summary against the previous completed backup
    of the same scope. Without one (the first backup, or its file expired) a note says why."""
    previous = previous_backup(backup)
    if previous is None:
        return None
    if previous.status != Backup.Status.COMPLETED or not previous.file:
        BackupEvent.objects.create(
            backup=backup,
            status=backup.status,
            message=(
                f"No change summary: the previous backup “{previous.display_name}” has expired and its file is gone."
            ),
        )
        return None
    with transaction.atomic():
        comparison = BackupComparison.objects.create(
            organization_id=backup.organization_id,
            earlier=previous,
            later=backup,
            purpose=BackupComparison.Purpose.CHANGES,
            progress_total=_estimate(previous) + _estimate(backup),
        )
        _dispatch(comparison)
    return comparison


def comparison_claim(*, comparison_id: int) -> BackupComparison | None:
    """Take a pending comparison for this worker; None when another took it or it is gone."""
    now = timezone.now()
    claimed = BackupComparison.objects.filter(pk=comparison_id, status=BackupComparison.Status.PENDING).update(
        status=BackupComparison.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    return BackupComparison.objects.select_related("earlier", "later", "organization").get(pk=comparison_id)


class _Recorder:
    """Keeps the differences as entries, in batches, with the referenced rows' labels resolved
    per batch; reports progress (rows read) at most every second."""

    def __init__(self, comparison: BackupComparison) -> None:
        self.comparison = comparison
        self.batch: list[Difference] = []
        self.last_beat = 0.0

    def add(self, diff: Difference) -> None:
        self.batch.append(diff)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        labels = titles.ref_labels(self.comparison, self.batch)
        ComparisonEntry.objects.bulk_create(
            [
                ComparisonEntry(
                    comparison=self.comparison,
                    dataset=d.dataset,
                    model=d.model,
                    kind=d.kind,
                    record_pk=d.pk,
                    title=titles.full_title(d, labels)[:400],
                    label=d.label[:200],
                    details=d.details,
                )
                for d in self.batch
            ]
        )
        self.batch.clear()

    def progress(self, done: int) -> None:
        import time

        now = time.monotonic()
        if now - self.last_beat < 1.0:
            return
        self.last_beat = now
        BackupComparison.objects.filter(pk=self.comparison.pk).update(progress_done=done, heartbeat_at=timezone.now())


def compute(earlier: Backup, later: Backup | None, **kwargs: Any) -> CompareResult:
    """Compare without keeping anything (the ``backup compare`` command)."""
    left = ArchiveSide.open(earlier)
    try:
        right = _later_side(left, earlier, later)
        try:
            return compare(left, right, **kwargs)
        finally:
            right.close()
    finally:
        left.close()


def _later_side(left: ArchiveSide, earlier: Backup, later: Backup | None) -> ArchiveSide | LiveSide:
    if later is None:
        return LiveSide(earlier.organization, left.scope, left.datasets())
    return ArchiveSide.open(later)


def comparison_run(*, comparison: BackupComparison) -> BackupComparison:
    """Run a claimed comparison and keep its result, or fail it with a sentence."""
    # Log lines carry the id of the backup the comparison is about (the later one, if any).
    with log_context(backup_id=comparison.later_id or comparison.earlier_id):
        if comparison.status != BackupComparison.Status.RUNNING:
            raise ComparisonError(f"Comparison {comparison.pk} is {comparison.status}, not running.")
        recorder = _Recorder(comparison)
        try:
            result = compute(
                comparison.earlier, comparison.later, on_difference=recorder.add, progress=recorder.progress
            )
            recorder.flush()
        except Exception as exc:
            logger.exception("comparison %s failed", comparison.pk)
            return comparison_fail(comparison=comparison, reason=_reason(exc))
        return _complete(comparison, result)


def _reason(exc: BaseException) -> str:
    from backups.archive import ArchiveError

    if isinstance(exc, CompareError | ArchiveError | ComparisonError):
        return str(exc)
    return "The comparison stopped because of an internal error; try again later."


def _complete(comparison: BackupComparison, result: CompareResult) -> BackupComparison:
    from backups.compare.alerts import is_mass_change

    notes = []
    if result.skipped:
        from backups import datasets as ds

        labels = ", ".join(ds.REGISTRY[k].label for k in result.skipped)
        notes.append(f"Not compared, because only one side holds them: {labels}.")
    mass = is_mass_change(comparison.organization, result.summary, result.counts)
    with transaction.atomic():
        BackupComparison.objects.filter(pk=comparison.pk, status=BackupComparison.Status.RUNNING).update(
            status=BackupComparison.Status.COMPLETED,
            completed_at=timezone.now(),
            summary=result.summary,
            counts=result.counts,
            notes=notes,
            mass_change=mass,
            progress_done=result.rows_done,
            progress_total=max(result.rows_done, 1),
        )
        comparison.refresh_from_db()
        if comparison.purpose == BackupComparison.Purpose.CHANGES and comparison.later_id and mass:
            Backup.objects.filter(pk=comparison.later_id).update(mass_change=True)
    logger.info("comparison %s completed (mass change: %s)", comparison.pk, mass)
    if comparison.purpose == BackupComparison.Purpose.CHANGES and mass:
        from backups.compare.alerts import notify_mass_change

        notify_mass_change(comparison)
    return comparison


def comparison_fail(*, comparison: BackupComparison, reason: str) -> BackupComparison:
    """Fail a running comparison; what it kept so far is removed."""
    with transaction.atomic():
        updated = BackupComparison.objects.filter(pk=comparison.pk, status=BackupComparison.Status.RUNNING).update(
            status=BackupComparison.Status.FAILED, failed_at=timezone.now(), failure_reason=reason[:1000]
        )
        if updated:
            ComparisonEntry.objects.filter(comparison_id=comparison.pk).delete()
    comparison.refresh_from_db()
    return comparison


def comparisons_process(*, limit: int | None = None) -> int:
    """Run pending comparisons one after another (the queue run), and fail stale running ones."""
    cutoff = timezone.now() - settings.BACKUP_HEARTBEAT_STALE_AFTER
    stale = BackupComparison.objects.filter(status=BackupComparison.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    for comparison in stale:
        comparison_fail(comparison=comparison, reason="The worker running this comparison stopped; compare again.")
    done = 0
    while limit is None or done < limit:
        pending = BackupComparison.objects.filter(status=BackupComparison.Status.PENDING).order_by("pk").first()
        if pending is None:
            break
        claimed = comparison_claim(comparison_id=pending.pk)
        if claimed is not None:
            comparison_run(comparison=claimed)
            done += 1
    return done


def alert_settings_save(*, settings: ChangeAlertSettings, user: User, request: Any = None) -> ChangeAlertSettings:
    """Save an organization's change-alert thresholds (the Owner only; the view checks it too)."""
    from accounts.permissions import is_owner

    if not is_owner(user, settings.organization):
        raise ComparisonError("Only the Owner can change the change-alert thresholds.")
    with transaction.atomic():
        settings.updated_by = user
        settings.save()
        audit_log(
            action="backup.change_alerts",
            actor=user,
            organization=settings.organization,
            obj=settings,
            request=request,
            details={"enabled": settings.enabled, "percent": settings.percent, "min_records": settings.min_records},
        )
    return settings
