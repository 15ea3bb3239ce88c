"""Tell the requester that a backup finished: an email and an in-app message."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services import notification_send
from backups.models import Backup

logger = logging.getLogger(__name__)


def send_templated_mail(*, template: str, to: list[str], context: dict[str, object]) -> None:
    """Send ``<template>_subject.txt`` / ``_body.txt`` / ``_body.html`` to ``to``."""
    subject = render_to_string(f"{template}_subject.txt", context).strip()
    text = render_to_string(f"{template}_body.txt", context)
    html = render_to_string(f"{template}_body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, to)
    message.attach_alternative(html, "text/html")
    message.send()


def recipients(backup: Backup) -> list[User]:
    """Who hears that a backup finished.

    - A requested backup: its requester.
    - A scheduled backup (decided in issue 12): completed, the schedule's creator while they
      still manage the organization's schedules (Owner or Admin), else the Owner; failed, the
      creator and the organization's Owner and Admins, since somebody must act on it.
    - Any other backup without a requester (an operator's command, a pre-restore backup): the
      Owner, on failure only.
    """
    from accounts.models import Membership
    from accounts.permissions import is_owner_or_admin

    if backup.requested_by is not None:
        return [backup.requested_by]
    org = backup.organization
    failed = backup.status == Backup.Status.FAILED
    managers = Membership.objects.filter(organization=org, user__is_active=True).select_related("user")
    owners = [m.user for m in managers if m.role == Membership.Role.OWNER]
    admins = [m.user for m in managers if m.role == Membership.Role.ADMIN]
    people: list[User] = []
    if backup.kind == Backup.Kind.SCHEDULED:
        creator = backup.schedule.created_by if backup.schedule is not None else None
        if creator is not None and creator.is_active and is_owner_or_admin(creator, org):
            people.append(creator)
        if failed:
            people += owners + admins
        elif not people:
            people += owners
    elif failed:
        people += owners
    unique: dict[int, User] = {}
    for person in people:
        unique.setdefault(person.pk, person)
    return list(unique.values())


def backup_notify_finished(backup: Backup) -> None:
    """Email and in-app message to ``recipients(backup)`` when a backup completed or failed.
    Mail trouble is logged, never raised: the backup's own state is already recorded."""
    for recipient in recipients(backup):
        _notify(backup, recipient)


def _notify(backup: Backup, recipient: User) -> None:
    path = reverse("backups:detail", args=[backup.pk])
    context = {"backup": backup, "organization": backup.organization, "url": settings.SITE_URL.rstrip("/") + path}
    if backup.status == Backup.Status.COMPLETED:
        title = f"Backup completed: {backup.display_name}"
        local = timezone.localtime(backup.download_expires_at)
        until = f"{local.day} {local:%b %Y %H:%M} ({timezone.get_current_timezone_name()})"
        body = f"{backup.document_count} documents. The download is available until {until}."
        level = "success"
    else:
        title = f"Backup failed: {backup.display_name}"
        reason = backup.failure_reason.strip()
        end = "" if reason[-1:] in ".!?" else "."
        body = f"{reason}{end} You can request a new backup."
        level = "danger"
    notification_send(user=recipient, organization=backup.organization, title=title, body=body, url=path, level=level)
    try:
        send_templated_mail(template="backups/email/backup_finished", to=[recipient.email], context=context)
    except Exception:
        logger.exception("backup %s: could not send the notification email", backup.pk)
