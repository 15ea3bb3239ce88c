"""The Owner's code for an in-place restore: ask for it, send it again, enter it, cancel the
request, and reopen a request locked after too many wrong entries.

The rules of an open request (who may ask, one request waiting per organization, another
requester's valid code is waited for, one's own request is superseded with its wrong entries)
are here once: the selective restore's request (``restores.selective.services``) follows them
through ``refuse_unless_may_restore`` and ``open_code_request`` (``supersede_open_request``),
and asking, asking again and entering the code all refuse while a restore of the organization
is queued or running (``restores.services.policy.lock_refusing_while_restoring``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log, notification_send
from backups.archive import ArchiveError
from backups.archive.manifest import check_schema
from backups.export import current_schema
from backups.models import Backup
from organizations.models import Organization
from restores import engine
from restores.codes import code_digest, code_matches, generate_code, normalize
from restores.models import Restore, RestoreCode
from restores.notify import notify_locked, owner_of, send_code
from restores.permissions import may_change_restore_policy, may_restore_in_place
from restores.services.common import RestoreError, _dispatch, logger
from restores.services.policy import lock_refusing_while_restoring

HOUR = dt.timedelta(hours=1)
SAME_MOMENT = "Another restore request of this organization was made at the same moment."


def in_place_problems(backup: Backup) -> list[str]:
    """Why this backup cannot be restored over its organization, from what the backup recorded."""
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        return ["Only a completed backup whose file is still kept can be restored."]
    problems = []
    try:
        check_schema((backup.captured or {}).get("schema"), current_schema())
    except ArchiveError as exc:
        problems.append(str(exc))
    return problems + engine.in_place_problems(
        organization=backup.organization,
        datasets=list(backup.datasets),
        master_data_version=(backup.captured or {}).get("master_data_version"),
    )


def _issue_code(restore: Restore, *, request: Any = None) -> RestoreCode:
    """Create a new code for an open request (retiring the previous) and send it to the Owner."""
    org = restore.organization
    assert org is not None  # noqa: S101 - in-place restores always have one
    now = timezone.now()
    recent = list(
        RestoreCode.objects.filter(organization=org, created_at__gt=now - HOUR)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= settings.RESTORE_CODES_PER_HOUR:
        again = timezone.localtime(recent[0] + HOUR)
        raise RestoreError(
            f"This organization has been sent {len(recent)} restore codes in the last hour, the most allowed; "
            f"you can ask for another at {again:%H:%M}."
        )
    owner = owner_of(org)
    if owner is None:
        raise RestoreError("This organization has no Owner to send the code to.")
    code = generate_code()
    expires = now + settings.RESTORE_CODE_LIFETIME
    sent = RestoreCode.objects.create(
        restore=restore,
        organization=org,
        digest=code_digest(
            restore_id=restore.pk,
            backup_id=restore.backup_id,
            organization_id=org.pk,
            requester_id=restore.requested_by_id,
            code=code,
        ),
        created_at=now,
        expires_at=expires,
        sent_to=owner.email,
    )
    audit_log(
        action="restore.code_sent",
        actor=restore.requested_by,
        organization=org,
        obj=restore,
        request=request,
        details={"backup": restore.backup_id, "sent_to": owner.email, "expires_at": expires.isoformat()},
    )
    try:
        send_code(restore=restore, owner=owner, code=code, expires_at=expires)
    except Exception as exc:
        logger.exception("restore %s: the code could not be sent", restore.pk)
        raise RestoreError("The code could not be sent to the Owner (the mail server refused it); try again.") from exc
    return sent


def refuse_unless_may_restore(*, backup: Backup, user: User, organization: Organization, what: str) -> None:
    """Raise ``RestoreError`` unless ``user`` may see ``backup`` and restore ``organization``
    (``what``: how the refusal names the restore, "restore it" or "restore from it")."""
    if not Backup.objects.visible_to(user).filter(pk=backup.pk).exists():
        raise RestoreError(f"You may not see this backup, so you cannot {what}.")
    if not may_restore_in_place(user, organization):
        raise RestoreError("You may not restore this organization (see who may restore in its restore settings).")


def open_request_of(organization: Organization) -> Restore | None:
    """The organization's request waiting for a code (a database constraint allows one)."""
    return Restore.objects.filter(organization=organization, status=Restore.Status.AWAITING_CODE).first()


def supersede_open_request(
    open_request: Restore, *, organization: Organization, user: User, request: Any = None
) -> int:
    """Cancel ``open_request`` ("Superseded.") for a new request of ``user``, and return the
    wrong entries the new request carries over (the same requester keeps those made so far;
    another requester starts at zero).

    Refused while another requester's code is still valid: they are waiting for it. Call inside
    the transaction that holds the organization's row lock.
    """
    latest = open_request.codes.first()
    if open_request.requested_by_id != user.pk and latest is not None and not latest.is_expired:
        until = timezone.localtime(latest.expires_at)
        raise RestoreError(
            f"{open_request.requested_by} is waiting for a code to restore this organization "
            f"(until {until:%H:%M}); try again later."
        )
    carried = open_request.attempts if open_request.requested_by_id == user.pk else 0
    Restore.objects.filter(pk=open_request.pk, status=Restore.Status.AWAITING_CODE).update(
        status=Restore.Status.CANCELLED, cancelled_at=timezone.now(), failure_reason="Superseded."
    )
    audit_log(action="restore.superseded", actor=user, organization=organization, obj=open_request, request=request)
    return carried


def open_code_request(
    open_request: Restore | None,
    *,
    kind: str,
    organization: Organization,
    backup: Backup,
    user: User,
    details: dict[str, Any],
    options: dict[str, Any] | None = None,
    request: Any = None,
) -> Restore:
    """Open a request of ``kind`` waiting for the Owner's code, superseding ``open_request``
    (the organization's open one, if any: ``supersede_open_request``), audited with ``details``,
    and send the code. Call inside the transaction that holds the organization's row lock; a
    request opened at the same moment elsewhere raises ``IntegrityError``."""
    carried = 0
    if open_request is not None:
        carried = supersede_open_request(open_request, organization=organization, user=user, request=request)
    restore = Restore.objects.create(
        kind=kind,
        organization=organization,
        backup=backup,
        requested_by=user,
        options=options if options is not None else {},
        attempts=carried,
    )
    audit_log(
        action="restore.request", actor=user, organization=organization, obj=restore, request=request, details=details
    )
    _issue_code(restore, request=request)
    return restore


def restore_request_code(*, backup: Backup, user: User, request: Any = None) -> Restore:
    """Open a restore request for ``backup`` over its organization and send the Owner a code.

    Asking again for the same backup re-sends a code on the same request: the count of wrong
    entries is kept. At most ``RESTORE_CODES_PER_HOUR`` codes per organization and hour.
    """
    org = Organization.objects.select_related("master_data_version").get(pk=backup.organization_id)
    refuse_unless_may_restore(backup=backup, user=user, organization=org, what="restore it")
    problems = in_place_problems(backup)
    if problems:
        raise RestoreError(" ".join(problems))
    try:
        with transaction.atomic():
            # Serialize requests of one organization (rate limit, one open request).
            lock_refusing_while_restoring(org.pk)
            open_request = open_request_of(org)
            if (
                open_request is not None
                and open_request.kind == Restore.Kind.IN_PLACE
                and (open_request.backup_id, open_request.requested_by_id) == (backup.pk, user.pk)
            ):  # asked again for the same backup: a new code on the same request
                _issue_code(open_request, request=request)
                return open_request
            restore = open_code_request(
                open_request,
                kind=Restore.Kind.IN_PLACE,
                organization=org,
                backup=backup,
                user=user,
                details={"backup": backup.pk},
                request=request,
            )
    except IntegrityError as exc:
        raise RestoreError(SAME_MOMENT) from exc
    logger.info("restore %s requested for organization %s from backup %s", restore.pk, org.pk, backup.pk)
    return restore


def restore_resend_code(*, restore: Restore, user: User, request: Any = None) -> Restore:
    """A new code for an open request (the count of wrong entries stays)."""
    if restore.backup is None:
        raise RestoreError("The backup of this request no longer exists.")
    if restore.requested_by_id != user.pk:
        raise RestoreError("Only the person who asked for this restore can ask for a new code.")
    if restore.status != Restore.Status.AWAITING_CODE:
        raise RestoreError(f"This restore request is {restore.get_status_display().lower()}; no new code can be sent.")
    if restore.kind == Restore.Kind.SELECTIVE:  # the same request, with its picked records
        with transaction.atomic():
            lock_refusing_while_restoring(restore.organization_id)
            _issue_code(restore, request=request)
        return restore
    return restore_request_code(backup=restore.backup, user=user, request=request)


def restore_confirm(*, restore: Restore, user: User, code: str, password: str, request: Any = None) -> Restore:
    """Accept the Owner's code and the requester's password, and queue the restore.

    Refusals raise ``RestoreError``; wrong entries are counted (and committed) first, and the
    ``RESTORE_CODE_MAX_ATTEMPTS``-th locks the request. The claim is a conditional ``UPDATE``
    of the request and of the code, so the right code submitted twice queues one restore.
    """
    refusal = ""
    locked = False
    with transaction.atomic():
        if restore.organization_id is not None:  # one restore of the organization at a time
            lock_refusing_while_restoring(restore.organization_id, other_than=restore)
        current = Restore.objects.select_for_update().get(pk=restore.pk)
        if current.requested_by_id != user.pk:
            raise RestoreError("This restore request was made by someone else; only they can enter its code.")
        if current.status == Restore.Status.LOCKED:
            raise RestoreError(
                f"This restore request was cancelled after {current.attempts} wrong entries. Ask for a new restore."
            )
        if current.status in (Restore.Status.QUEUED, Restore.Status.RUNNING, Restore.Status.COMPLETED):
            raise RestoreError("This code has already been used: the restore was started.")
        if current.status != Restore.Status.AWAITING_CODE:
            raise RestoreError(f"This restore request is {current.get_status_display().lower()}.")
        latest = current.codes.first()
        if latest is None:
            raise RestoreError("No code was sent for this request yet.")
        if latest.used_at is not None:
            raise RestoreError("This code has already been used.")
        if latest.is_expired:
            raise RestoreError("The code has expired. Ask for a new one.")
        password_ok = user.check_password(password)
        code_ok = code_matches(
            latest.digest,
            restore_id=current.pk,
            backup_id=current.backup_id,
            organization_id=current.organization_id,
            requester_id=user.pk,
            code=normalize(code),
        )
        if password_ok and code_ok:
            now = timezone.now()
            claimed = Restore.objects.filter(pk=current.pk, status=Restore.Status.AWAITING_CODE).update(
                status=Restore.Status.QUEUED, confirmed_at=now
            )
            used = RestoreCode.objects.filter(pk=latest.pk, used_at__isnull=True).update(used_at=now)
            if not (claimed and used):
                raise RestoreError("This code has already been used: the restore was started.")
            current.refresh_from_db()
            audit_log(
                action="restore.confirm", actor=user, organization=current.organization, obj=current, request=request
            )
            _dispatch("run_restore", current.pk)
            logger.info("restore %s confirmed by %s", current.pk, user.pk)
            return current
        Restore.objects.filter(pk=current.pk).update(attempts=F("attempts") + 1)
        current.refresh_from_db()
        what = "code" if not code_ok else "password"
        audit_log(
            action="restore.code_wrong",
            actor=user,
            organization=current.organization,
            obj=current,
            request=request,
            details={"attempts": current.attempts, "wrong": what},
        )
        if current.attempts >= settings.RESTORE_CODE_MAX_ATTEMPTS:
            Restore.objects.filter(pk=current.pk, status=Restore.Status.AWAITING_CODE).update(
                status=Restore.Status.LOCKED, locked_at=timezone.now()
            )
            current.refresh_from_db()
            audit_log(
                action="restore.locked", actor=user, organization=current.organization, obj=current, request=request
            )
            locked = True
            refusal = (
                f"That was the {current.attempts}th wrong entry: this restore request is cancelled and the Owner "
                "was told. Ask for a new restore if you still need one."
            )
        else:
            wrong = "The code is not correct" if not code_ok else "Your password is not correct"
            refusal = f"{wrong}. {current.attempts_left} attempt(s) left."
    if locked:
        notify_locked(current)
    raise RestoreError(refusal)


def restore_cancel(*, restore: Restore, user: User, request: Any = None) -> Restore:
    """Cancel an open request (the requester or the Owner)."""
    org = restore.organization
    if restore.requested_by_id != user.pk and not (org and may_change_restore_policy(user, org)):
        raise RestoreError("Only the requester or the Owner can cancel this restore request.")
    with transaction.atomic():
        updated = Restore.objects.filter(pk=restore.pk, status=Restore.Status.AWAITING_CODE).update(
            status=Restore.Status.CANCELLED, cancelled_at=timezone.now()
        )
        if not updated:
            restore.refresh_from_db()
            raise RestoreError(
                f"This restore request is {restore.get_status_display().lower()}; it cannot be cancelled."
            )
        restore.refresh_from_db()
        audit_log(action="restore.cancel", actor=user, organization=org, obj=restore, request=request)
    return restore


def restore_unlock(*, restore: Restore, user: User | None = None, request: Any = None) -> Restore:
    """Reopen a request locked after too many wrong entries (operators, in the Django admin).

    The request waits for a code again with its count of wrong entries back at zero, and every
    code sent for it is retired first: no code sent before the lock works again. The requester
    asks for a new code, which goes to the Owner as always, so the restore still needs the
    Owner's code. Refused (``RestoreError``) unless the request is locked, its requester may
    still restore from its backup, and no other request of the organization waits for a code.
    """
    try:
        with transaction.atomic():
            current = Restore.objects.select_for_update().get(pk=restore.pk)
            if current.status != Restore.Status.LOCKED:
                raise RestoreError(f"Restore #{current.pk} is {current.get_status_display().lower()}, not locked.")
            org, requester, backup = current.organization, current.requested_by, current.backup
            if org is None or requester is None or backup is None:
                raise RestoreError(f"Restore #{current.pk}: its organization, requester or backup is gone.")
            restorable = Backup.objects.visible_to(requester).filter(pk=backup.pk, status=Backup.Status.COMPLETED)
            if not may_restore_in_place(requester, org) or not restorable.exclude(file="").exists():
                raise RestoreError(
                    f"Restore #{current.pk}: {requester} may no longer restore this organization from its backup."
                )
            if Restore.objects.filter(organization=org, status=Restore.Status.AWAITING_CODE).exists():
                raise RestoreError(f"Restore #{current.pk}: another request of {org} is waiting for a code.")
            now = timezone.now()
            retired = RestoreCode.objects.filter(restore=current, used_at__isnull=True, expires_at__gt=now).update(
                expires_at=now
            )
            details = {
                "attempts": current.attempts,
                "locked_at": current.locked_at.isoformat() if current.locked_at else None,
                "codes_retired": retired,
            }
            Restore.objects.filter(pk=current.pk, status=Restore.Status.LOCKED).update(
                status=Restore.Status.AWAITING_CODE, attempts=0, locked_at=None
            )
            current.refresh_from_db()
            audit_log(
                action="restore.unlock", actor=user, organization=org, obj=current, request=request, details=details
            )
            body = (
                f"An operator reopened the restore request of {requester} that was locked after "
                f"{details['attempts']} wrong entries. Codes sent before no longer work; a new one goes to the Owner."
            )
            owner = owner_of(org)
            for recipient in {u.pk: u for u in (owner, requester) if u is not None}.values():
                notification_send(
                    user=recipient,
                    organization=org,
                    title=f"Restore request #{current.pk} unlocked",
                    body=body,
                    url=current.get_absolute_url(),
                    level="warning",
                )
    except IntegrityError as exc:  # another request was opened at the same moment
        raise RestoreError(
            f"Restore #{restore.pk}: another request of this organization is waiting for a code."
        ) from exc
    logger.info("restore %s unlocked by %s", current.pk, user.pk if user else None)
