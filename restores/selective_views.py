"""The selective restore's preview: the records picked in a backup (browse pages, compare),
what restoring them would create, overwrite and skip, a choice per conflict, and the request
for the Owner's code (the code is then entered on the restore's page, as for an in-place one).

The backup comes from ``Backup.objects.visible_to``: another organization's is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import User
from backups.browse import selection
from backups.models import Backup
from restores.permissions import may_restore_in_place
from restores.selective.plan import SelectionError
from restores.selective.services import restore_selective_request, selection_options, selective_preview
from restores.services import RestoreError


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _options(request: HttpRequest, backup: Backup, data: Any) -> dict[str, Any]:
    choices = {key[2:]: value for key, value in data.items() if key.startswith("c-")}
    return selection_options(
        picks=selection.get(request.session, backup.pk),
        with_dependants=data.get("with_dependants") == "1",
        overwrite=data.get("overwrite") == "1",
        on_conflict=data.get("on_conflict", "skip"),
        choices=choices,
    )


@login_required
@require_http_methods(["GET", "POST"])
def selective_restore(request: HttpRequest, backup_pk: int) -> HttpResponse:
    """GET: the preview (options as query parameters); POST: ask the Owner for the code."""
    backup = get_object_or_404(Backup.objects.visible_to(_user(request)).select_related("organization"), pk=backup_pk)
    allowed = may_restore_in_place(_user(request), backup.organization)
    data = request.POST if request.method == "POST" else request.GET
    plan = None
    problem = ""
    try:
        options = _options(request, backup, data)
        if request.method == "POST":
            if not allowed:
                raise RestoreError(
                    "You may not restore this organization (see who may restore in its restore settings)."
                )
            restore = restore_selective_request(backup=backup, user=_user(request), options=options, request=request)
            selection.clear(request.session, backup.pk)
            messages.success(request, "The Owner was sent a code. Enter it below to restore the picked records.")
            return redirect(restore)
        plan = selective_preview(backup=backup, options=options)
    except (SelectionError, RestoreError) as exc:
        problem = str(exc)
        options = {"records": {}, "with_dependants": False, "overwrite": False, "on_conflict": "skip"}
    except Exception as exc:
        from restores.services.running import _reason

        problem = _reason(exc)
        options = {"records": {}, "with_dependants": False, "overwrite": False, "on_conflict": "skip"}
    context = {
        "backup": backup,
        "plan": plan,
        "options": options,
        "problem": problem,
        "allowed": allowed,
        "picked": selection.count(request.session, backup.pk),
        "totals": plan.totals() if plan else {},
        "sections": _sections(plan) if plan else [],
    }
    return render(request, "restores/selective.html", context)


def _sections(plan: Any) -> list[dict[str, Any]]:
    labels = {
        "create": "Will be re-created",
        "overwrite": "Will be overwritten with the backup's values",
        "unchanged": "Exist unchanged (nothing to do)",
        "left": "Still exist and are left as they are",
        "skip": "Will be skipped",
    }
    out = []
    for action, label in labels.items():
        items = plan.by_action(action)
        if items:
            out.append({"action": action, "label": label, "items": items})
    return out
