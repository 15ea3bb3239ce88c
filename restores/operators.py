"""Operators' restores from the server shell (``manage.py restore``).

The Owner's code protects the web path; whoever runs ``manage.py`` on the server is already
trusted with the database, so an operator's in-place restore needs no code. It is the same
scope-exact restore (pre-restore backup first, one transaction, maintenance banner), run
synchronously, and audited as the operator (a staff user named by email).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups.models import Backup
from backups.services import worker_name
from organizations.models import Organization
from restores.models import Restore
from restores.services import RestoreError, in_place_problems, restore_run
from restores.services.policy import lock_refusing_while_restoring

logger = logging.getLogger(__name__)


def operator_for(email: str) -> User:
    """The active staff user (operator) with this email; ``RestoreError`` otherwise."""
    operator = User.objects.filter(email__iexact=email.strip(), is_active=True, is_staff=True).first()
    if operator is None:
        raise RestoreError(f"There is no active operator (staff user) with the email {email}.")
    return operator


def _start_operator_restore(
    kind: str, *, backup: Backup, operator: User, options: dict[str, Any] | None = None, via: str
) -> Restore:
    """Create ``operator``'s restore of ``backup`` as running (this process runs it), audited
    in the same transaction. Refused (``RestoreError``) while a restore of the organization is
    queued or running, under the organization's row lock as the web requests are."""
    org = backup.organization
    now = timezone.now()
    details: dict[str, Any] = {"backup": backup.pk, "via": via}
    if options is not None:
        details["selection"] = options
    try:
        with transaction.atomic():
            lock_refusing_while_restoring(org.pk)
            restore = Restore.objects.create(
                kind=kind,
                status=Restore.Status.RUNNING,
                organization=org,
                backup=backup,
                requested_by=operator,
                options=options if options is not None else {},
                confirmed_at=now,
                started_at=now,
                worker=worker_name(),
            )
            audit_log(action="restore.operator_start", actor=operator, organization=org, obj=restore, details=details)
    except IntegrityError as exc:
        raise RestoreError("A restore of this organization was started at the same moment.") from exc
    logger.info("restore %s of organization %s started by operator %s", restore.pk, org.pk, operator.pk)
    return restore


def _finish_operator_restore(restore: Restore, *, operator: User) -> Restore:
    audit_log(
        action="restore.operator_finish",
        actor=operator,
        organization=restore.organization,
        obj=restore,
        details={"backup": restore.backup_id, "status": restore.status, "reason": restore.failure_reason},
    )
    return restore


def restore_in_place_by_operator(*, backup: Backup, operator: User) -> Restore:
    """Restore ``backup`` over its organization now, in this process, as ``operator``.

    Returns the finished restore (completed or failed: its ``failure_reason`` says why; the
    organization is then as it was). Raises ``RestoreError`` when it cannot start.
    """
    problems = in_place_problems(backup)
    if problems:
        raise RestoreError(" ".join(problems))
    restore = _start_operator_restore(
        Restore.Kind.IN_PLACE, backup=backup, operator=operator, via="manage.py restore in-place"
    )
    return _finish_operator_restore(restore_run(restore=restore), operator=operator)


def restore_selective_by_operator(*, backup: Backup, operator: User, options: dict[str, Any]) -> Restore:
    """Restore picked records of ``backup`` into its organization now, in this process, as
    ``operator`` (pre-restore backup of the affected data sets, one transaction, audited)."""
    from restores.selective.services import run_selective

    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise RestoreError("Only a completed backup whose file is still kept can be restored.")
    restore = _start_operator_restore(
        Restore.Kind.SELECTIVE, backup=backup, operator=operator, options=options, via="manage.py restore selective"
    )
    return _finish_operator_restore(run_selective(restore), operator=operator)


def restore_from_file_by_operator(
    *, path: str, password: str, slug: str, operator: User, owner_email: str = "", name: str = ""
) -> Restore:
    """Disaster recovery: a downloaded archive into a new organization, now, in this process,
    with the wizard's engine (``restore_upload_create`` verifies every hash first, then
    ``restore_new_organization``'s restore runs here). The operator must be a Site Admin."""
    from restores import engine
    from restores.services import restore_claim, restore_new_organization, restore_upload_create

    if Organization.objects.filter(slug=slug).exists():
        raise RestoreError(f"An organization with the slug “{slug}” already exists.")
    upload = restore_upload_create(user=operator, path=path, password=password, original_name=path.rsplit("/", 1)[-1])
    captured = (upload.manifest_summary or {}).get("organization") or {}
    profile = engine.NewOrganization(
        name=name or captured.get("name") or slug,
        slug=slug,
        owner_email=owner_email or operator.email,
        description=captured.get("description") or "",
        license_identifier=captured.get("license_identifier") or "",
        jurisdiction=captured.get("jurisdiction") or "",
        language_settings=captured.get("language_settings") or {},
        creation_wizard_data=captured.get("creation_wizard_data") or {},
    )
    from django.conf import settings

    dispatch = getattr(settings, "RESTORE_DISPATCH_IMMEDIATELY", True)
    settings.RESTORE_DISPATCH_IMMEDIATELY = False  # run here, not in a worker
    try:
        restore = restore_new_organization(user=operator, profile=profile, upload=upload)
    finally:
        settings.RESTORE_DISPATCH_IMMEDIATELY = dispatch
    claimed = restore_claim(restore_id=restore.pk)
    if claimed is None:
        raise RestoreError(f"Restore #{restore.pk} was taken by a worker; follow it in the admin.")
    return restore_run(restore=claimed)
