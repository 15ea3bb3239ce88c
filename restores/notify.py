"""Mail and in-app messages of restores. The code itself travels by email only.

The in-app message tells the Owner that a code was requested and sent to their address, but
does not hold the code: notifications are rows anybody with database or Django-admin access
could read, and the code must never be stored in clear (only its HMAC is).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, User
from accounts.services import notification_send
from backups.notify import send_templated_mail
from organizations.models import Organization
from restores.models import Restore

logger = logging.getLogger(__name__)


def owner_of(organization: Organization) -> User | None:
    membership = (
        Membership.objects.filter(organization=organization, role=Membership.Role.OWNER).select_related("user").first()
    )
    return membership.user if membership else None


def _context(restore: Restore, **extra: Any) -> dict[str, Any]:
    path = reverse("restores:detail", args=[restore.pk])
    return {
        "restore": restore,
        "organization": restore.organization,
        "backup": restore.backup,
        "requester": restore.requested_by,
        "url": settings.SITE_URL.rstrip("/") + path,
        "path": path,
        **extra,
    }


def send_code(*, restore: Restore, owner: User, code: str, expires_at: Any) -> None:
    """Email the code to the Owner and leave an in-app message (without the code). Raises when
    the email cannot be sent, so that the caller's transaction creates no code nobody got."""
    context = _context(
        restore,
        code=code,
        expires_at=timezone.localtime(expires_at),
        lifetime=int(settings.RESTORE_CODE_LIFETIME.total_seconds() // 60),
    )
    send_templated_mail(template="restores/email/restore_code", to=[owner.email], context=context)
    requester = restore.requested_by.email if restore.requested_by else "someone"
    notification_send(
        user=owner,
        organization=restore.organization,
        title=f"Restore code requested for {restore.organization}",
        body=(
            f"{requester} asked to restore the backup “{restore.backup}”. The code was sent to {owner.email} and "
            f"is valid until {timezone.localtime(expires_at):%H:%M}. Share it only if you want this restore to run."
        ),
        url=context["path"],
        level="warning",
    )


def _mail_quietly(template: str, to: list[str], context: dict[str, Any], restore: Restore) -> None:
    try:
        send_templated_mail(template=template, to=to, context=context)
    except Exception:
        logger.exception("restore %s: could not send the %s email", restore.pk, template)


def notify_locked(restore: Restore) -> None:
    """The Owner hears that a request was cancelled after too many wrong entries."""
    owner = owner_of(restore.organization) if restore.organization else None
    if owner is None:
        return
    context = _context(restore, attempts=restore.attempts)
    notification_send(
        user=owner,
        organization=restore.organization,
        title=f"Restore request locked: {restore.attempts} wrong entries",
        body=f"The restore request of {restore.requested_by} was cancelled after {restore.attempts} wrong entries.",
        url=context["path"],
        level="danger",
    )
    _mail_quietly("restores/email/restore_locked", [owner.email], context, restore)


def notify_finished(restore: Restore) -> None:
    """The Owner (email and in-app) and the requester (in-app) hear how a restore ended."""
    ok = restore.status == Restore.Status.COMPLETED
    context = _context(restore, ok=ok)
    target = restore.organization
    if restore.kind == Restore.Kind.SELECTIVE:
        title = f"Restore of selected records of {target} {'completed' if ok else 'failed'}"
    elif restore.kind == Restore.Kind.IN_PLACE:
        title = f"Restore of {target} {'completed' if ok else 'failed'}"
    else:
        title = f"Restore into a new organization {'completed' if ok else 'failed'}"
    body = (
        f"The data of “{restore.backup or restore.upload}” is now in place."
        if ok
        else f"{restore.failure_reason} {'Nothing was changed.' if target else 'No organization was created.'}"
    )
    recipients: dict[int, User] = {}
    owner = owner_of(target) if target else None
    if owner is not None:
        recipients[owner.pk] = owner
    if restore.requested_by is not None:
        recipients.setdefault(restore.requested_by.pk, restore.requested_by)
    for user in recipients.values():
        notification_send(
            user=user,
            organization=target,
            title=title,
            body=body,
            url=context["path"],
            level="success" if ok else "danger",
        )
    for user in recipients.values():
        _mail_quietly("restores/email/restore_finished", [user.email], context, restore)
