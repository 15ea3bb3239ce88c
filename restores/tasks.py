"""Celery tasks: thin, take ids, call one service, and return quietly when there is nothing to do."""

from __future__ import annotations

import logging

from celery import shared_task

from backupsvc.lib.logcontext import log_context
from restores import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def run_restore(restore_id: int) -> None:
    """Run one confirmed restore (queued by the code confirmation or the wizard)."""
    with log_context(restore_id=restore_id):
        restore = services.restore_claim(restore_id=restore_id)
        if restore is None:
            logger.info("restore %s: nothing to do (already taken, finished or gone)", restore_id)
            return
        services.restore_run(restore=restore)


@shared_task(acks_late=True, ignore_result=True)
def process_queue() -> None:
    """Run every queued restore (beat's safety net for a lost dispatch)."""
    done = services.process_queue()
    if done:
        logger.info("restore queue: %s restore(s) processed", done)


@shared_task(ignore_result=True)
def sweep_stale() -> None:
    services.restores_fail_stale()


@shared_task(ignore_result=True)
def cleanup_uploads() -> None:
    from organizations.services import wizard_uploads_cleanup

    services.uploads_cleanup()
    wizard_uploads_cleanup()  # the creation wizard's abandoned logos


@shared_task(acks_late=True, ignore_result=True)
def verify_backup(backup_id: int, user_id: int | None = None) -> None:
    """Verify a completed backup and rehearse its restore (the Verify button)."""
    from accounts.models import User
    from backups.models import Backup
    from backups.verify import VerificationNotChecked
    from restores.verify import backup_verify_and_rehearse

    with log_context(backup_id=backup_id):
        backup = Backup.objects.filter(pk=backup_id, status=Backup.Status.COMPLETED).first()
        if backup is None:
            return
        user = User.objects.filter(pk=user_id).first() if user_id else None
        try:
            backup_verify_and_rehearse(backup=backup, user=user)
        except VerificationNotChecked:
            return  # the storage could not be reached: the backup's timeline says so; no retry


@shared_task(ignore_result=True)
def verify_latest() -> None:
    """Weekly: verify and rehearse each organization's latest completed backup."""
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
