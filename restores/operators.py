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

logger = logging.getLogger(__name__)


def operator_for(email: str) -> User:
    """The active staff user (operator) with this email; ``RestoreError`` otherwise."""
    operator = User.objects.filter(email__iexact=email.strip(), is_active=True, is_staff=True).first()
    if operator is None:
        raise RestoreError(f"There is no active operator (staff user) with the email {email}.")
    return operator


def restore_in_place_by_operator(*, backup: Backup, operator: User) -> Restore:
    """Restore ``backup`` over its organization now, in this process, as ``operator``.

    Returns the finished restore (completed or failed: its ``failure_reason`` says why; the
    organization is then as it was). Raises ``RestoreError`` when it cannot start.
    """
    problems = in_place_problems(backup)
    if problems:
        raise RestoreError(" ".join(problems))
    org = backup.organization
    now = timezone.now()
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=org.pk).first()
            active = Restore.objects.filter(
                organization=org, kind=Restore.Kind.IN_PLACE, status__in=Restore.ACTIVE_STATUSES
            )
            if active.exists():
                raise RestoreError("A restore of this organization is already queued or running.")
            restore = Restore.objects.create(
                kind=Restore.Kind.IN_PLACE,
                status=Restore.Status.RUNNING,
                organization=org,
                backup=backup,
                requested_by=operator,
                confirmed_at=now,
                started_at=now,
                worker=worker_name(),
            )
            audit_log(
                action="restore.operator_start",
                actor=operator,
                organization=org,
                obj=restore,
                details={"backup": backup.pk, "via": "manage.py restore in-place"},
            )
    except IntegrityError as exc:
        raise RestoreError("A restore of this organization was started at the same moment.") from exc
    logger.info("restore %s of organization %s started by operator %s", restore.pk, org.pk, operator.pk)
    restore = restore_run(restore=restore)
    audit_log(
        action="restore.operator_finish",
        actor=operator,
        organization=org,
        obj=restore,
        details={"backup": backup.pk, "status": restore.status, "reason": restore.failure_reason},
    )
    return restore


def restore_selective_by_operator(*, backup: Backup, operator: User, options: dict[str, Any]) -> Restore:
    """Restore picked records of ``backup`` into its organization now, in this process, as
    ``operator`` (pre-restore backup of the affected data sets, one transaction, audited)."""
    from restores.selective.services import run_selective

    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise RestoreError("Only a completed backup whose file is still kept can be restored.")
    now = timezone.now()
    with transaction.atomic():
        restore = Restore.objects.create(
            kind=Restore.Kind.SELECTIVE,
            status=Restore.Status.RUNNING,
            organization=backup.organization,
            backup=backup,
            requested_by=operator,
            options=options,
            confirmed_at=now,
            started_at=now,
            worker=worker_name(),
        )
        audit_log(
            action="restore.operator_start",
            actor=operator,
            organization=backup.organization,
            obj=restore,
            details={"backup": backup.pk, "via": "manage.py restore selective", "selection": options},
        )
    restore = run_selective(restore)
    audit_log(
        action="restore.operator_finish",
        actor=operator,
        organization=backup.organization,
        obj=restore,
        details={"backup": backup.pk, "status": restore.status, "reason": restore.failure_reason},
    )
    return restore


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
