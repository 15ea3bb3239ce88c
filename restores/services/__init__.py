"""Writes of restores: ask for a code, confirm it, cancel, claim and run a restore, the wizard's
restore into a new organization, uploads, and the organization's restore policy.

Every state change is one function here, claimed with a conditional ``UPDATE`` (so two
submissions of the right code start exactly one restore), audited in the same transaction,
and an illegal transition raises ``RestoreError`` with a sentence for the user.

The package's modules: ``codes`` (the Owner's code: request, resend, confirm, cancel, unlock),
``running`` (claim, run, fail, the stale sweep, the heartbeat), ``files`` (the restore's own
folder of stored files), ``new_organization`` (the wizard and its uploads) and ``policy`` (who
may restore). Callers import the public names from here; the private helpers (and patches of
them in tests) live in the module that uses them.
"""

from restores.services.codes import (
    in_place_problems,
    restore_cancel,
    restore_confirm,
    restore_request_code,
    restore_resend_code,
    restore_unlock,
)
from restores.services.common import RestoreError
from restores.services.files import restore_files_folder
from restores.services.new_organization import restore_new_organization, restore_upload_create, uploads_cleanup
from restores.services.policy import restore_policy_set
from restores.services.running import process_queue, restore_claim, restore_run, restores_fail_stale

__all__ = [
    "RestoreError",
    "in_place_problems",
    "process_queue",
    "restore_cancel",
    "restore_claim",
    "restore_confirm",
    "restore_files_folder",
    "restore_new_organization",
    "restore_policy_set",
    "restore_request_code",
    "restore_resend_code",
    "restore_run",
    "restore_unlock",
    "restore_upload_create",
    "restores_fail_stale",
    "uploads_cleanup",
]
