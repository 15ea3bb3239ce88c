"""Celery tasks: thin, take ids, call one service, and return quietly when there is nothing to do."""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from backups import services
from backupsvc.lib.logcontext import log_context

REHEARSE_TASK = "restores.tasks.verify_backup"  # every hash, then the restore rehearsed in a rolled-back transaction
logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def run_backup(backup_id: int) -> None:
    """Run one backup now (dispatched at request time when BACKUP_DISPATCH_IMMEDIATELY)."""
    with log_context(backup_id=backup_id):
        backup = services.backup_claim(backup_id=backup_id)
        if backup is None:
            logger.info("backup %s: nothing to do (already taken, cancelled or gone)", backup_id)
            return
        services.backup_run(backup=backup)


@shared_task(acks_late=True, ignore_result=True)
def process_queue() -> None:
    """Run every pending backup, then every pending comparison (beat, every BACKUP_QUEUE_INTERVAL
    seconds)."""
    from backups.compare.services import comparisons_process

    done = services.process_queue()
    if done:
        logger.info("backup queue: %s backup(s) processed", done)
    compared = comparisons_process()
    if compared:
        logger.info("backup queue: %s comparison(s) processed", compared)


@shared_task(acks_late=True, ignore_result=True)
def run_comparison(comparison_id: int) -> None:
    """Run one comparison (a user's, or a backup's change summary)."""
    from backups.compare import services as compare_services

    comparison = compare_services.comparison_claim(comparison_id=comparison_id)
    if comparison is None:
        logger.info("comparison %s: nothing to do (already taken or gone)", comparison_id)
        return
    compare_services.comparison_run(comparison=comparison)


@shared_task(ignore_result=True)
def expire_due() -> None:
    services.backups_expire_due()


@shared_task(ignore_result=True)
def sweep_stale() -> None:
    services.backups_fail_stale()


@shared_task(ignore_result=True)
def run_schedules() -> None:
    from backups.schedules import schedules_run_due

    for backup in schedules_run_due():
        run_backup.delay(backup.pk)


@shared_task(acks_late=True, ignore_result=True)
def verify_backup(backup_id: int) -> None:
    """Verify one completed backup (the Verify button): every hash, then a rehearsed restore.

    The rehearsal is the restores app's task; it is run here through Celery's task registry by
    name, so the backups app does not import restores (restores builds on backups, not back)."""
    current_app.loader.import_default_modules()  # every app's tasks (a worker has them already)
    current_app.tasks[REHEARSE_TASK](backup_id)


@shared_task(ignore_result=True)
def audit_storage() -> None:
    """Weekly: the backups' records against the objects in storage; findings to the operators."""
    from backups.audit import storage_audit

    storage_audit()
