"""Account Backups pages: the list with its dialogs, details and downloads (schedules: ``schedule_views``).

Every backup is loaded through ``Backup.objects.visible_to`` (``selectors.visible_backups``), so
another organization's backup, or one including an OU the user may not back up, is a 404 on
every URL. Every rule shown by hiding a button is enforced here again; every change is a POST.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from accounts.models import User
from accounts.permissions import can_use_backups
from backups import downloads, rows, selectors
from backups.filters import SORTS, BackupFilter, sort_headers
from backups.forms import BackupRequestForm
from backups.models import Backup
from backups.services import (
    BackupError,
    IllegalTransition,
    backup_cancel,
    backup_expire,
    backup_request,
    storage_failure,
)
from backups.verify import NOT_CHECKED, not_checked_since_verified
from organizations.models import Organization

logger = logging.getLogger(__name__)

ACTIVE = (Backup.Status.PENDING, Backup.Status.IN_PROGRESS)
CHANGED_EVENT = "backups-changed"


# ----------------------------------------------------------------------------------------------
# Helpers


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _organization(request: HttpRequest) -> Organization | None:
    org = getattr(request, "organization", None)
    return org if org else None  # unwrap an empty SimpleLazyObject


def _may_use_page(request: HttpRequest, org: Organization | None) -> bool:
    user = _user(request)
    return bool(user.is_site_admin or (org is not None and can_use_backups(user, org)))


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "backups/forbidden.html", {"message": message}, status=403)


NO_PERMISSION = (
    "Account Backups need the permission Backups: Manage Account Backups in at least one OU of your "
    "organization. Ask your organization's Owner to assign you the Administration Editor role."
)
NOT_ADMIN = "Only the organization's Owner and Admins can do this."


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _back(request: HttpRequest, default: str) -> HttpResponse:
    nxt = request.POST.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(nxt)
    return redirect(default)


def _visible_backup(request: HttpRequest, pk: int) -> Backup:
    return get_object_or_404(
        selectors.visible_backups(_user(request)).select_related("organization", "requested_by"), pk=pk
    )


def _row_context(request: HttpRequest, backup: Backup) -> dict[str, Any]:
    return {
        "b": backup,
        "can_admin": selectors.can_administer(_user(request), backup.organization),
        "restore_enabled": selectors.restore_enabled(),
    }


def _toolbar_context(request: HttpRequest, org: Organization | None) -> dict[str, Any]:
    user = _user(request)
    pending = selectors.pending_backup(org)
    refusal = selectors.request_refusal(user, org, pending=pending)
    return {
        "organization": org,
        "subscription": selectors.subscription_state(org),
        "pending": pending,
        "can_request": not refusal,
        "refusal": refusal,
        "can_admin_org": org is not None and selectors.can_administer(user, org),
        "subscription_url": settings.SUBSCRIPTION_URL,
        "subscription_email": settings.SUBSCRIPTION_CONTACT_EMAIL,
    }


# ----------------------------------------------------------------------------------------------
# The list and its live parts


@login_required
@require_GET
def backup_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    org = _organization(request)
    if not _may_use_page(request, org):
        return _forbidden(request, NO_PERMISSION)
    queryset = selectors.list_queryset(user, org)
    params = request.GET.copy()
    params.setdefault("sort", "-date")
    filterset = BackupFilter(params, queryset=queryset, user=user, organization=org, request=request)
    page = Paginator(filterset.qs, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode([(k, v) for k, v in request.GET.items() if k != "page" and v])
    toolbar = _toolbar_context(request, org)
    sort = params["sort"] if params.get("sort") in SORTS else "-date"
    context = {
        **toolbar,
        "filter": filterset,
        "page": page,
        "query": query,
        "sort": sort,
        "headers": sort_headers(request.GET, sort),
        "hidden_count": 0 if page.object_list else selectors.hidden_backup_count(user, org),
        "is_filtered": filterset.is_filtered,
        "site_admin_view": user.is_site_admin,
        "can_admin": user.is_site_admin or toolbar["can_admin_org"],
        "restore_enabled": selectors.restore_enabled(),
    }
    return render(request, "backups/list.html", context)


@login_required
@require_GET
def backup_toolbar(request: HttpRequest) -> HttpResponse:
    """The subscription note and Request Backup button, re-fetched when a row's status changes."""
    org = _organization(request)
    if not _may_use_page(request, org):
        return _forbidden(request, NO_PERMISSION)
    return render(request, "backups/_toolbar.html", _toolbar_context(request, org))


@login_required
@require_GET
def backup_row(request: HttpRequest, pk: int) -> HttpResponse:
    """One table row; pending and in-progress rows poll this every two seconds."""
    backup = _visible_backup(request, pk)
    response = render(request, "backups/_row.html", _row_context(request, backup))
    was = request.GET.get("was")
    if was and was != backup.status:
        trigger_client_event(response, CHANGED_EVENT, {"id": backup.pk, "status": backup.status})
    return response


# ----------------------------------------------------------------------------------------------
# Request


@login_required
@require_http_methods(["GET", "POST"])
def backup_request_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    org = _organization(request)
    if org is None or not can_use_backups(user, org):
        return _forbidden(request, NO_PERMISSION)
    refusal = selectors.request_refusal(user, org)
    if request.method == "POST":
        form = BackupRequestForm(request.POST, user=user, organization=org)
        if form.is_valid():
            data = form.cleaned_data
            try:
                backup, _password = backup_request(
                    organization=org,
                    requested_by=user,
                    ous=data["ous"],
                    facilities=data.get("facilities") or (),
                    include_active=data["include_active"],
                    include_inactive=data["include_inactive"],
                    exclude_superseded=data["exclude_superseded"],
                    datasets=data["datasets"],
                    label=data["label"],
                    password=data["password"],
                    password_source=data["password_source"],
                    request=request,
                )
            except BackupError as exc:
                form.add_error(None, str(exc))
            else:
                # The password is never put in a message: messages live in the session.
                messages.success(
                    request,
                    f"Backup “{backup.display_name}” requested. {_when_it_starts(backup)} Keep the password "
                    "you copied: you need it to open the file.",
                )
                target = reverse("backups:list")
                return HttpResponseClientRedirect(target) if _is_htmx(request) else redirect(target)
    else:
        form = BackupRequestForm(user=user, organization=org)
    context = {
        "form": form,
        "organization": org,
        "refusal": refusal,
        "in_modal": _is_htmx(request),
        "dataset_dependencies": selectors.dataset_dependency_map(),
        "dataset_labels": selectors.dataset_label_map(),
    }
    template = "backups/_request_dialog.html" if _is_htmx(request) else "backups/request.html"
    return render(request, template, context)


def _when_it_starts(backup: Backup) -> str:
    """The flash message's sentence about the queue: the same words as the pending row."""
    note = rows.queue_note(backup)
    if settings.BACKUP_DISPATCH_IMMEDIATELY:
        return f"{note}."
    minutes = max(1, round(settings.BACKUP_QUEUE_INTERVAL / 60))
    return f"{note}, when the queue next runs (it runs every {minutes} minutes)."


# ----------------------------------------------------------------------------------------------
# One backup


@login_required
@require_GET
def backup_detail(request: HttpRequest, pk: int) -> HttpResponse:
    backup = _visible_backup(request, pk)
    context = {
        **_row_context(request, backup),
        "backup": backup,
        "events": backup.events.select_related("actor"),
        "ous": backup.ous.order_by("name"),
        "facilities": backup.facilities.order_by("name"),
        "datasets": selectors.dataset_rows(backup),
        "download_count": backup.downloads.count(),
        "comparisons": selectors.comparisons_of(_user(request), backup),
        "not_checked": not_checked_since_verified(backup),
    }
    return render(request, "backups/detail.html", context)


@login_required
@require_GET
def backup_history(request: HttpRequest, pk: int) -> HttpResponse:
    backup = _visible_backup(request, pk)
    context = {"backup": backup, "downloads": selectors.history_for(backup), "in_modal": _is_htmx(request)}
    template = "backups/_history_dialog.html" if _is_htmx(request) else "backups/history.html"
    return render(request, template, context)


@login_required
@require_safe
def backup_download(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream (local storage, with Range) or redirect to a presigned URL (S3); record it."""
    backup = _visible_backup(request, pk)
    if not backup.is_downloadable:
        return _unavailable(request, backup)
    try:
        return downloads.serve(request, backup, user=_user(request))
    except FileNotFoundError:
        logger.error("backup %s: archive %s missing from storage", backup.pk, backup.file.name)
        return _unavailable(request, backup, missing=True)
    except Exception as exc:
        if storage_failure(exc) is None:
            raise
        logger.warning("backup %s: the storage could not be reached for a download", backup.pk, exc_info=True)
        return _unavailable(request, backup, unreachable=True)


def _unavailable(
    request: HttpRequest, backup: Backup, *, missing: bool = False, unreachable: bool = False
) -> HttpResponse:
    """Why the file is not handed out: gone (410), not completed (409), storage down (503)."""
    expired = missing or backup.status == Backup.Status.EXPIRED or backup.status == Backup.Status.COMPLETED
    context = {"backup": backup, "missing": missing, "expired": expired, "unreachable": unreachable}
    status = 503 if unreachable else 410 if expired else 409
    response = render(request, "backups/download_unavailable.html", context, status=status)
    if unreachable:
        response["Retry-After"] = "60"
    return response


@login_required
@require_POST
def backup_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    backup = _visible_backup(request, pk)
    try:
        backup_cancel(backup=backup, user=_user(request), request=request)
    except IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Backup “{backup.display_name}” cancelled. You can request a new one.")
    return _back(request, reverse("backups:list"))


@login_required
@require_POST
def backup_expire_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Early clean-up: the file goes, the record and its download history stay."""
    backup = _visible_backup(request, pk)
    if not selectors.can_administer(_user(request), backup.organization):
        return _forbidden(request, NOT_ADMIN)
    try:
        backup_expire(backup=backup, user=_user(request), request=request, early=True)
    except IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Backup “{backup.display_name}” expired: its file was removed, its history stays.")
    return _back(request, reverse("backups:list"))


@login_required
@require_POST
def backup_verify_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a verification (decrypt, check every hash); eager when Celery runs tasks eagerly."""
    from backups.tasks import verify_backup

    backup = _visible_backup(request, pk)
    if not selectors.can_administer(_user(request), backup.organization):
        return _forbidden(request, NOT_ADMIN)
    if not backup.is_downloadable:
        messages.error(request, "Only a completed backup whose file is still stored can be verified.")
        return _back(request, reverse("backups:list"))
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        verify_backup.apply(args=[backup.pk])
        backup.refresh_from_db()
        not_checked = not_checked_since_verified(backup)
        if not_checked is not None:
            reason = not_checked.message.removeprefix(NOT_CHECKED)
            messages.warning(request, f"Backup “{backup.display_name}” could not be checked: {reason}")
        elif backup.verification_ok:
            messages.success(request, f"Backup “{backup.display_name}” verified: {backup.verification_message}")
        else:
            messages.error(
                request, f"Backup “{backup.display_name}” failed verification: {backup.verification_message}"
            )
    else:

        def enqueue() -> None:
            try:
                verify_backup.delay(backup.pk)
            except Exception:  # a broker outage: say so instead of a 500
                logger.exception("backup %s: could not queue verification", backup.pk)

        transaction.on_commit(enqueue)
        messages.info(
            request,
            f"Verification of “{backup.display_name}” started; the result appears under Last verified "
            "and on the backup's page.",
        )
    return _back(request, reverse("backups:list"))
