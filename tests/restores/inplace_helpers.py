"""Helpers of the scope-exact restore tests: run the engine directly (as the worker does,
without the pre-restore backup) and picture rows with their primary keys."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from backups import datasets as ds
from backups.importer import ImportResult, delete_files
from backups.models import Backup
from organizations.models import Organization
from restores import engine, inplace
from restores.inplace.plan import org_rows
from restores.maintenance import maintenance_writes


def restore_in_place(
    backup: Backup, folder: str = "restore-test", *, verify: bool = True, remove_old_files: bool = True
) -> inplace.Replaced:
    """The scope-exact restore of ``backup`` over its organization, committed (tests that roll
    the database back afterwards keep the replaced files: rows rolled back still use them)."""
    with engine.open_backup(backup) as reader:
        if verify:
            reader.verify()
        result = ImportResult()
        try:
            with maintenance_writes(backup.organization_id), transaction.atomic():
                target = Organization.objects.select_related("master_data_version").get(pk=backup.organization_id)
                replaced = inplace.replace_in_scope(organization=target, reader=reader, result=result, folder=folder)
        except BaseException:
            delete_files(result.stored_files)
            raise
    if remove_old_files:
        delete_files(replaced.old_files)
    return replaced


_digests: dict[tuple[str, str], str] = {}


def digest(name: str) -> str | None:
    """The SHA-256 of a stored file (remembered by name and storage location: stored files
    are never rewritten under the same name)."""
    if not name:
        return None
    key = (str(default_storage.location), name)  # type: ignore[attr-defined]
    if key not in _digests:
        with default_storage.open(name, "rb") as fh:
            _digests[key] = hashlib.sha256(fh.read()).hexdigest()
    return _digests[key]


def rows_by_key(organization: Organization) -> dict[str, dict[int, dict[str, Any]]]:
    """Every row of every data-set model of the organization, by model key and primary key,
    with every column (files by name and content digest)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            if spec.key == "regulation":
                out[spec.key] = {pk: {} for pk in organization.regulations.values_list("pk", flat=True)}
                continue
            rows: dict[int, dict[str, Any]] = {}
            for values in org_rows(spec, organization).values():
                row = dict(values)
                for name in spec.files + (("logo",) if spec.key == "profile" else ()):
                    row[f"{name}__sha256"] = digest(row[name])
                if spec.key == "profile":
                    row.pop("maintenance_since", None)
                    row.pop("maintenance_reason", None)
                rows[row["id"]] = row
            out[spec.key] = rows
    return out
