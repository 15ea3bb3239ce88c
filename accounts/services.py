"""Writes of the accounts app: audit entries and in-app notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import AuditLog, Notification, User

if TYPE_CHECKING:
    from organizations.models import Organization


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address. Behind a proxy, REMOTE_ADDR is set from X-Forwarded-For by it."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_log(
    *,
    action: str,
    actor: User | None = None,
    organization: Organization | None = None,
    obj: models.Model | None = None,
    request: HttpRequest | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """Record a security-relevant action. Call it inside the transaction of the change."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user  # type: ignore[assignment]
    return AuditLog.objects.create(
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        organization=organization,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        ip_address=client_ip(request),
        details=details or {},
    )


def notification_send(
    *,
    user: User,
    title: str,
    body: str = "",
    url: str = "",
    organization: Organization | None = None,
    level: str = "info",
) -> Notification:
    """Put a message in the user's in-app inbox."""
    return Notification.objects.create(
        user=user, organization=organization, title=title, body=body, url=url, level=level
    )


@transaction.atomic
def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when ids is None)."""
    qs = Notification.objects.filter(user=user).unread()
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())
