"""Celery tasks: thin, take ids, call one service, and return quietly when there is nothing to do."""

from __future__ import annotations

import logging

from celery import shared_task

from backups import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def run_backup(backup_id: int) -> None:
    """Run one backup now (dispatched at request time when BACKUP_DISPATCH_IMMEDIATELY)."""
    backup = services.backup_claim(backup_id=backup_id)
    if backup is None:
        logger.info("backup %s: nothing to do (already taken, cancelled or gone)", backup_id)
        return
    services.backup_run(backup=backup)


@shared_task(acks_late=True, ignore_result=True)
def process_queue() -> None:
    """Run every pending backup (beat, every BACKUP_QUEUE_INTERVAL seconds)."""
    done = services.process_queue()
    if done:
        logger.info("backup queue: %s backup(s) processed", done)


@shared_task(ignore_result=True)
def expire_due() -> None:
    services.backups_expire_due()


@shared_task(ignore_result=True)
def sweep_stale() -> None:
    services.backups_fail_stale()


@shared_task(ignore_result=True)
def run_schedules() -> None:
    for backup in services.schedules_run_due():
        run_backup.delay(backup.pk)


@shared_task(acks_late=True, ignore_result=True)
def verify_backup(backup_id: int) -> None:
    """Verify one completed backup (the Verify button)."""
    from backups.models import Backup
    from backups.verify import backup_verify

    backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.COMPLETED).first()
    if backup is None:
        return
    backup_verify(backup=backup)


@shared_task(ignore_result=True)
def verify_latest() -> None:
    """Weekly: verify each organization's latest completed backup."""
    from backups.models import Backup

    latest: dict[int, int] = {}
    for pk, org_id in (
        Backup.objects.filter(status=Backup.Status.COMPLETED)
        .order_by("-completed_at")
        .values_list("pk", "organization_id")
    ):
        latest.setdefault(org_id, pk)
    for pk in latest.values():
        verify_backup.delay(pk)
