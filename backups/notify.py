"""Tell the requester that a backup finished: an email and an in-app message."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

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


def backup_notify_finished(backup: Backup) -> None:
    """Email and in-app message to the requester when a backup completed or failed.

    Scheduled backups have no requester; their failures go to the Owner. Mail trouble is
    logged, never raised: the backup's own state is already recorded.
    """
    from accounts.models import Membership

    recipient = backup.requested_by
    if recipient is None and backup.status == Backup.Status.FAILED:
        owner = Membership.objects.filter(organization=backup.organization, role=Membership.Role.OWNER).first()
        recipient = owner.user if owner else None
    if recipient is None:
        return
    path = reverse("backups:detail", args=[backup.pk])
    context = {"backup": backup, "organization": backup.organization, "url": settings.SITE_URL.rstrip("/") + path}
    if backup.status == Backup.Status.COMPLETED:
        title = f"Backup completed: {backup.display_name}"
        until = f"{backup.download_expires_at:%d %b %Y %H:%M}"
        body = f"{backup.document_count} documents. The download is available until {until}."
        level = "success"
    else:
        title = f"Backup failed: {backup.display_name}"
        body = f"Reason: {backup.failure_reason}. You can request a new backup."
        level = "danger"
    notification_send(user=recipient, organization=backup.organization, title=title, body=body, url=path, level=level)
    try:
        send_templated_mail(template="backups/email/backup_finished", to=[recipient.email], context=context)
    except Exception:
        logger.exception("backup %s: could not send the notification email", backup.pk)
