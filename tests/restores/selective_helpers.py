"""Helpers of the selective restore tests: plan and write a selection directly (as the worker
does, without the pre-restore backup)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from backups.importer import ImportResult, delete_files
from backups.models import Backup
from organizations.models import Organization
from restores import engine
from restores.selective.plan import SelectivePlan
from restores.selective.services import _plan, selection_options
from restores.selective.write import Applied, apply_plan, lock_rows


def preview(backup: Backup, picks: dict[str, set[int]], **opts: Any) -> SelectivePlan:
    options = selection_options(picks=picks, **{"with_dependants": False, "overwrite": False, **opts})
    with engine.open_backup(backup) as reader:
        return _plan(Organization.objects.get(pk=backup.organization_id), reader, options)


def restore_selected(backup: Backup, picks: dict[str, set[int]], **opts: Any) -> Applied:
    options = selection_options(picks=picks, **{"with_dependants": False, "overwrite": False, **opts})
    result = ImportResult()
    with engine.open_backup(backup) as reader:
        try:
            with transaction.atomic():
                org = Organization.objects.get(pk=backup.organization_id)
                plan = _plan(org, reader, options)
                lock_rows(org, plan)
                applied = apply_plan(
                    organization=org,
                    reader=reader,
                    plan=plan,
                    storage=default_storage,
                    result=result,
                    folder="restore-selective-test",
                    overwrite=options["overwrite"],
                )
        except BaseException:
            delete_files(result.stored_files)
            raise
    delete_files(applied.old_files)
    return applied
