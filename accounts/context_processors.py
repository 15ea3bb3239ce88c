from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Notification


def notifications(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"unread_notifications": Notification.objects.filter(user=user).unread().count()}
