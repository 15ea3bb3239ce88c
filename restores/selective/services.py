"""Writes of a selective restore: preview, ask for the Owner's code, run in the worker.

The request and its code follow the in-place restore's rules (``restores.services.codes``:
none while a restore of the organization is queued or running, one open request per
organization, codes bound to the request, limited attempts); the
selection and the choices are kept on the ``Restore`` (``options``) and planned again inside
the worker's transaction, so what is written is what the rows are when it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups import datasets as ds
from backups.importer import ImportResult, delete_files
from backups.models import Backup
from organizations.models import Organization
from restores import engine, upgrades
from restores.models import Restore
from restores.selective.plan import SelectionError, SelectivePlan, plan_selective
from restores.selective.write import Applied, apply_plan, lock_rows
from restores.services import running
from restores.services.codes import SAME_MOMENT, open_code_request, open_request_of, refuse_unless_may_restore
from restores.services.common import RestoreError
from restores.services.files import restore_files_folder
from restores.services.policy import lock_refusing_while_restoring

logger = logging.getLogger(__name__)

ON_CONFLICT = ("skip", "suffix")


def selection_options(
    *,
    picks: Mapping[str, set[int] | list[int]],
    with_dependants: bool,
    overwrite: bool,
    on_conflict: str = "skip",
    choices: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What a selective restore keeps on its ``Restore``: the picked records and the choices."""
    if on_conflict not in ON_CONFLICT:
        raise SelectionError("Choose to skip or to suffix records whose unique value is now taken.")
    return {
        "records": {key: sorted(int(i) for i in ids) for key, ids in picks.items() if ids},
        "with_dependants": bool(with_dependants),
        "overwrite": bool(overwrite),
        "on_conflict": on_conflict,
        "choices": {k: v for k, v in (choices or {}).items() if v in ON_CONFLICT},
    }


def _plan(organization: Organization, reader: Any, options: Mapping[str, Any]) -> SelectivePlan:
    return plan_selective(
        organization=organization,
        reader=upgrades.upgraded(reader),
        picks={k: set(v) for k, v in (options.get("records") or {}).items()},
        with_dependants=bool(options.get("with_dependants")),
        overwrite=bool(options.get("overwrite")),
        choices=options.get("choices") or {},
        on_conflict=options.get("on_conflict") or "skip",
    )


def selective_preview(*, backup: Backup, options: Mapping[str, Any], storage: Storage | None = None) -> SelectivePlan:
    """What the restore would create, overwrite and skip now, with the conflicts (writes nothing)."""
    if not (options.get("records") or {}):
        raise SelectionError("No records are picked.")
    with engine.open_backup(backup, storage) as reader:
        return _plan(backup.organization, reader, options)


def restore_selective_request(*, backup: Backup, user: User, options: dict[str, Any], request: Any = None) -> Restore:
    """Open a selective restore of ``backup``'s picked records and send the Owner a code."""
    org = Organization.objects.get(pk=backup.organization_id)
    refuse_unless_may_restore(backup=backup, user=user, organization=org, what="restore from it")
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise RestoreError("Only a completed backup whose file is still kept can be restored.")
    if not (options.get("records") or {}):
        raise RestoreError("No records are picked.")
    try:
        with transaction.atomic():
            lock_refusing_while_restoring(org.pk)
            restore = open_code_request(
                open_request_of(org),
                kind=Restore.Kind.SELECTIVE,
                organization=org,
                backup=backup,
                user=user,
                details={"backup": backup.pk, "kind": "selective", "selection": options},
                options=options,
                request=request,
            )
    except IntegrityError as exc:
        raise RestoreError(SAME_MOMENT) from exc
    logger.info("selective restore %s requested for organization %s from backup %s", restore.pk, org.pk, backup.pk)
    return restore


def affected_datasets(options: Mapping[str, Any]) -> list[str]:
    """The data sets of the picked models (with what they depend on): the pre-restore backup's scope."""
    keys = set(options.get("records") or {})
    chosen = [d.key for d in ds.REGISTRY.values() if any(spec.key in keys for spec in d.models)]
    if options.get("with_dependants"):
        for d in ds.REGISTRY.values():
            if set(d.depends_on) & set(chosen):
                chosen.append(d.key)
    return ds.resolve(chosen)


def apply_selective(*, restore: Restore, reader: Any, storage: Storage, result: ImportResult) -> Applied:
    """Plan, lock the live rows the plan touches or needs, write; call inside
    ``transaction.atomic()``. A row deleted by someone else between the plan and the lock makes
    a write fail (a reference to a missing row), which rolls the whole restore back."""
    org = restore.organization
    assert org is not None  # noqa: S101 - selective restores always have one
    # Waits for an in-place restore of the organization (it holds this row) and refuses while
    # one runs; users' own changes do not wait on this row.
    busy = (
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=org.pk)
        .values_list("maintenance_since", flat=True)
        .first()
    )
    if busy is not None:
        raise engine.RestoreRefused(
            "The organization is being restored in place; nothing was changed. Try again when that has finished."
        )
    plan = _plan(org, reader, restore.options)
    lock_rows(org, plan)
    engine.checkpoint("planned", organization=org)
    return apply_plan(
        organization=org,
        reader=upgrades.upgraded(reader),
        plan=plan,
        storage=storage,
        result=result,
        folder=restore_files_folder(restore),
        overwrite=bool(restore.options.get("overwrite")),
    )


def run_selective(restore: Restore, storage: Storage | None = None, *, pre_restore_backup: bool = True) -> Restore:
    """Run a claimed (running) selective restore: pre-restore backup of the affected data sets,
    then one transaction; on any failure nothing changes and the files stored are removed."""
    from restores.notify import notify_finished

    storage = storage or default_storage
    org = restore.organization
    assert org is not None  # noqa: S101
    backup = restore.backup
    try:
        if backup is None:
            raise engine.RestoreRefused("The backup of this restore no longer exists.")
        reader = engine.open_backup(backup, storage)
    except Exception as exc:
        return running._fail(restore, running._reason(exc))
    try:
        if pre_restore_backup:
            running._pre_restore_backup(restore, datasets=affected_datasets(restore.options))
        result = ImportResult()
        try:
            with transaction.atomic():
                applied = apply_selective(restore=restore, reader=reader, storage=storage, result=result)
                records = applied.record_list()
                totals = applied.plan.totals()
                done = Restore.objects.filter(pk=restore.pk, status=Restore.Status.RUNNING).update(
                    status=Restore.Status.COMPLETED,
                    completed_at=timezone.now(),
                    row_counts={"selective": totals, "records": records, **result.row_counts},
                    files_restored=len(result.stored_files),
                )
                if not done:
                    raise engine.RestoreRefused("The restore was stopped from outside while it ran.")
                restore.refresh_from_db()
                audit_log(
                    action="restore.complete",
                    organization=org,
                    obj=restore,
                    details={"backup": backup.pk, "kind": "selective", "totals": totals, "records": records},
                )
                engine.checkpoint("finalize", organization=org)
                old_files = applied.old_files
                transaction.on_commit(lambda: delete_files(old_files, storage))
        except BaseException:
            delete_files(result.stored_files, storage)
            raise
    except Exception as exc:
        logger.exception("selective restore %s of organization %s failed", restore.pk, org.pk)
        return running._fail(restore, running._reason(exc) if not isinstance(exc, SelectionError) else str(exc))
    finally:
        reader.close()
    logger.info("selective restore %s of organization %s completed", restore.pk, org.pk)
    notify_finished(restore)
    return restore
