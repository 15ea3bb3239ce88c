"""In-place restore pages, restore settings, and the Verify action.

Backups are loaded through ``Backup.objects.visible_to`` and restores through
``Restore.objects.visible_to``: a forgotten check is a 404, not a leak.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import is_owner, is_owner_or_admin
from backups.compare.display import latest_with_now, summary_rows
from backups.models import Backup
from restores import services
from restores.forms import ConfirmForm, PolicyForm
from restores.inplace.summary import restore_summary
from restores.models import Restore
from restores.permissions import may_change_restore_policy, may_restore_in_place


def _backups(request: HttpRequest) -> Any:
    return Backup.objects.visible_to(request.user).select_related("organization__master_data_version")  # type: ignore[arg-type]


def _restores(request: HttpRequest) -> Any:
    return Restore.objects.visible_to(request.user).select_related(  # type: ignore[arg-type]
        "organization", "backup", "requested_by", "pre_restore_backup", "upload"
    )


@login_required
def restore_start(request: HttpRequest, backup_pk: int) -> HttpResponse:
    """The warning page: what will be overwritten, and *Send code to the Owner*."""
    backup = get_object_or_404(_backups(request), pk=backup_pk)
    org = backup.organization
    if not may_restore_in_place(request.user, org):  # type: ignore[arg-type]
        return render(request, "restores/denied.html", {"backup": backup, "organization": org}, status=403)
    problems = services.in_place_problems(backup)
    if request.method == "POST" and not problems:
        try:
            restore = services.restore_request_code(backup=backup, user=request.user, request=request)  # type: ignore[arg-type]
        except services.RestoreError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "A code was sent to the Owner. Enter it below when you have it.")
            return redirect(restore)
    comparison = latest_with_now(backup)
    waiting = (
        _restores(request)
        .filter(organization=org, status=Restore.Status.AWAITING_CODE, backup=backup, requested_by=request.user)
        .first()
    )
    return render(
        request,
        "restores/start.html",
        {
            "backup": backup,
            "organization": org,
            "problems": problems,
            "summary": restore_summary(backup),
            "comparison": comparison,
            "comparison_rows": summary_rows(comparison) if comparison and comparison.status == "completed" else [],
            "waiting": waiting,
            "is_owner": is_owner(request.user, org),  # type: ignore[arg-type]
        },
    )


def _detail_context(request: HttpRequest, restore: Restore, form: ConfirmForm | None = None) -> dict[str, Any]:
    latest = restore.codes.first()
    return {
        "restore": restore,
        "form": form or ConfirmForm(),
        "is_requester": restore.requested_by_id == request.user.pk,
        "latest_code": latest,
        "code_lifetime_minutes": int(settings.RESTORE_CODE_LIFETIME.total_seconds() // 60),
        "may_cancel": restore.status == Restore.Status.AWAITING_CODE
        and (
            restore.requested_by_id == request.user.pk
            or (restore.organization and may_change_restore_policy(request.user, restore.organization))  # type: ignore[arg-type]
        ),
    }


@login_required
def restore_detail(request: HttpRequest, pk: int) -> HttpResponse:
    restore = get_object_or_404(_restores(request), pk=pk)
    context = _detail_context(request, restore)
    if request.headers.get("HX-Request"):
        return render(request, "restores/_status.html", context)
    return render(request, "restores/detail.html", context)


@login_required
@require_POST
def restore_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    restore = get_object_or_404(_restores(request), pk=pk)
    form = ConfirmForm(request.POST)
    if form.is_valid():
        try:
            services.restore_confirm(
                restore=restore,
                user=request.user,  # type: ignore[arg-type]
                code=form.cleaned_data["code"],
                password=form.cleaned_data["password"],
                request=request,
            )
        except services.RestoreError as exc:
            form.add_error(None, str(exc))
            restore.refresh_from_db()
        else:
            messages.success(request, "Code accepted. The restore is queued and will start shortly.")
            return redirect(restore)
    return render(request, "restores/detail.html", _detail_context(request, restore, form), status=400)


@login_required
@require_POST
def restore_resend(request: HttpRequest, pk: int) -> HttpResponse:
    restore = get_object_or_404(_restores(request), pk=pk)
    try:
        services.restore_resend_code(restore=restore, user=request.user, request=request)  # type: ignore[arg-type]
    except services.RestoreError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "A new code was sent to the Owner; the previous one no longer works.")
    return redirect(restore)


@login_required
@require_POST
def restore_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    restore = get_object_or_404(_restores(request), pk=pk)
    try:
        services.restore_cancel(restore=restore, user=request.user, request=request)  # type: ignore[arg-type]
    except services.RestoreError as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, "The restore request was cancelled.")
    return redirect(restore)


@login_required
def restore_settings(request: HttpRequest) -> HttpResponse:
    """Who may restore the current organization; the Owner changes it, Admins read it."""
    org = request.organization or None  # type: ignore[attr-defined]
    if org is None or not is_owner_or_admin(request.user, org):  # type: ignore[arg-type]
        raise Http404
    can_change = may_change_restore_policy(request.user, org)  # type: ignore[arg-type]
    form = PolicyForm(request.POST or None, initial={"restore_policy": org.restore_policy})
    if request.method == "POST":
        if not can_change:
            messages.error(request, "Only the Owner can choose who may restore this organization.")
            return redirect("restores:settings")
        if form.is_valid():
            try:
                services.restore_policy_set(
                    organization=org,
                    user=request.user,  # type: ignore[arg-type]
                    policy=form.cleaned_data["restore_policy"],
                    request=request,
                )
            except services.RestoreError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "Saved: " + org.get_restore_policy_display() + " may start restores.")
            return redirect("restores:settings")
    if not can_change:
        form.fields["restore_policy"].disabled = True
    recent = _restores(request).filter(organization=org)[:20]
    return render(
        request,
        "restores/settings.html",
        {"organization": org, "form": form, "can_change": can_change, "recent": recent},
    )


@login_required
@require_POST
def backup_verify(request: HttpRequest, backup_pk: int) -> HttpResponse:
    """Verify a backup and rehearse its restore. Queued for a worker; run at once when this
    installation does not dispatch tasks (tests, a single process)."""
    backup = get_object_or_404(_backups(request), pk=backup_pk, status=Backup.Status.COMPLETED)
    if getattr(settings, "RESTORE_DISPATCH_IMMEDIATELY", True):
        from restores.tasks import verify_backup

        verify_backup.delay(backup.pk, request.user.pk)
        messages.info(request, "Verification started: the archive is checked and its restore rehearsed.")
    else:
        from backups.verify import VerificationNotChecked
        from restores.verify import backup_verify_and_rehearse

        try:
            backup = backup_verify_and_rehearse(backup=backup, user=request.user, request=request)  # type: ignore[arg-type]
        except VerificationNotChecked as exc:
            messages.warning(request, str(exc))
        else:
            level = messages.success if backup.verification_ok else messages.error
            level(request, backup.verification_message)
    return redirect(backup)
