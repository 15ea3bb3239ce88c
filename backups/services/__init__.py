"""Writes of the backup engine: request, cancel, claim, run, complete, fail, expire, sweep,
schedules. Views, tasks and the ``backup`` command call these; every state change is one
function here, claimed atomically, audited, and an illegal transition raises.

``request`` holds the request side (request, retry, cancel, expire), ``run`` the worker side
(claim, run, complete, fail, the sweeps), ``reasons`` how a failure is worded for the user."""

from backups.services.common import BackupAborted, BackupError, IllegalTransition
from backups.services.reasons import storage_failure
from backups.services.request import (
    MIN_USER_PASSWORD,
    backup_cancel,
    backup_expire,
    backup_request,
    backup_retry,
    backups_expire_due,
    resolve_ous,
    subscription_valid,
)
from backups.services.run import (
    WORKER_STOPPED,
    backup_claim,
    backup_complete,
    backup_fail,
    backup_run,
    backups_fail_stale,
    process_queue,
    worker_name,
)

__all__ = [
    "MIN_USER_PASSWORD",
    "WORKER_STOPPED",
    "BackupAborted",
    "BackupError",
    "IllegalTransition",
    "backup_cancel",
    "backup_claim",
    "backup_complete",
    "backup_expire",
    "backup_fail",
    "backup_request",
    "backup_retry",
    "backup_run",
    "backups_expire_due",
    "backups_fail_stale",
    "process_queue",
    "resolve_ous",
    "storage_failure",
    "subscription_valid",
    "worker_name",
]
