"""The organization wizard's *Restore from backup* path, for Site Admins: the extra first step,
*Backup selection* (a kept backup, or an uploaded file with its password), and the backup's logo.

The ordinary steps follow, pre-filled from the backup (``restores.wizard_steps``). The answers
live in the session until the review queues one restore that creates the organization and
restores into it in one transaction (``restores.services``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from backups.archive import ArchiveError
from backups.keys import PasswordUnavailable, unwrap_password
from backups.models import Backup
from backupsvc.lib.bodies import large_body_allowed
from organizations.wizard.display import describe_wizard_data
from organizations.wizard.flow import drop_logo, stepper
from restores import engine, services
from restores.forms import UploadForm, sniff_image
from restores.models import RestoreUpload
from restores.permissions import may_use_wizard
from restores.uploads import LimitedTemporaryFileUploadHandler

SESSION_KEY = "restore_wizard"


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """Anyone but a signed-in Site Admin: the sign-in page for a visitor, a 404 for a user.
    Reads the session only, never the request's body."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not may_use_wizard(request.user):  # type: ignore[arg-type]
        # Django's 404 page runs the CSRF check, which would parse the refused body; nothing of
        # this request is processed, so there is nothing for that check to protect.
        request.csrf_processing_done = True  # type: ignore[attr-defined]
        raise Http404
    return None


def site_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return wrapper


def _state(request: HttpRequest) -> dict[str, Any]:
    return request.session.setdefault(SESSION_KEY, {})  # type: ignore[no-any-return]


def _save(request: HttpRequest, state: dict[str, Any]) -> None:
    request.session[SESSION_KEY] = state
    request.session.modified = True


def _drop_logo(state: dict[str, Any]) -> None:
    drop_logo(state)


def restorable_backups() -> Any:
    return (
        Backup.objects.filter(status=Backup.Status.COMPLETED)
        .exclude(file="")
        .select_related("organization")
        .order_by("organization__name", "organization_id", "-completed_at", "-pk")
    )


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    from restores.wizard_steps import RESTORE

    return {"flow": RESTORE, "stepper": stepper(RESTORE, "backup", {}), "state": _state(request), **extra}


def _fresh(request: HttpRequest) -> None:
    """``?new=1``: start again (an unfinished wizard's uploaded logo is deleted)."""
    if request.GET.get("new"):
        _drop_logo(_state(request))
        _save(request, {})


@site_admin_required
def wizard_start(request: HttpRequest) -> HttpResponse:
    """*Add via wizard ▾ → Restore from backup*: choose where the backup comes from."""
    _fresh(request)
    return render(request, "restores/wizard/start.html", _context(request))


def _preview_of_backup(backup: Backup) -> dict[str, Any]:
    with engine.open_backup(backup) as reader:
        return engine.preview(reader)


@site_admin_required
def wizard_backup(request: HttpRequest) -> HttpResponse:
    """Step 1, *Backup selection*: backups grouped by organization, newest first, with a preview."""
    _fresh(request)
    state = _state(request)
    if request.method == "POST":
        backup = get_object_or_404(restorable_backups(), pk=request.POST.get("backup"))
        try:
            preview = _preview_of_backup(backup)
        except (ArchiveError, engine.RestoreRefused, PasswordUnavailable) as exc:
            messages.error(request, f"This backup cannot be read: {exc}")
            return redirect("restores:wizard_backup")
        _drop_logo(state)
        _save(request, {"source": {"type": "backup", "pk": backup.pk}, "preview": preview})
        return redirect("restores:wizard_profile")
    groups = [
        {"organization": org, "backups": list(items)}
        for org, items in groupby(restorable_backups(), key=lambda b: b.organization)
    ]
    selected = preview = error = None
    chosen = request.GET.get("preview") or (state.get("source") or {}).get("pk")
    if chosen and str(chosen).isdigit():
        selected = restorable_backups().filter(pk=chosen).first()
        if selected is not None:
            try:
                preview = _preview_of_backup(selected)
            except (ArchiveError, engine.RestoreRefused, PasswordUnavailable) as exc:
                error = str(exc)
    return render(
        request,
        "restores/wizard/backup.html",
        _context(
            request,
            groups=groups,
            selected=selected,
            preview=preview,
            preview_error=error,
            wizard_data=describe_wizard_data(((preview or {}).get("organization") or {}).get("creation_wizard_data")),
        ),
    )


@large_body_allowed
@csrf_exempt
def wizard_upload(request: HttpRequest) -> HttpResponse:
    """Step 1 from a file: streamed to a temporary file with the size limit checked as it
    streams. The order matters: who is asking is checked first, from the session alone, because
    the CSRF check reads the token from the body, which streams the file to disk; then the
    upload handlers are set (before anything reads the body), then CSRF is checked."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    handler = LimitedTemporaryFileUploadHandler(request)
    request.upload_handlers = [handler]
    return _wizard_upload(request, handler)


@csrf_protect
def _wizard_upload(request: HttpRequest, handler: LimitedTemporaryFileUploadHandler) -> HttpResponse:
    _fresh(request)
    form = UploadForm()
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if handler.too_large:
            form = UploadForm(request.POST)
            form.is_valid()
            form.add_error(
                "file",
                f"The file is larger than the limit of {handler.max_size:,} bytes (BACKUP_UPLOAD_MAX_SIZE); "
                "nothing was kept.",
            )
        elif form.is_valid():
            uploaded = form.cleaned_data["file"]
            try:
                upload = services.restore_upload_create(
                    user=request.user,  # type: ignore[arg-type]
                    path=uploaded.temporary_file_path(),
                    password=form.cleaned_data["password"],
                    original_name=uploaded.name,
                    request=request,
                )
            except services.RestoreError as exc:
                form.add_error("file", f"This file cannot be restored: {exc}")
            else:
                state = _state(request)
                _drop_logo(state)
                _save(
                    request,
                    {"source": {"type": "upload", "pk": upload.pk}, "preview": upload.manifest_summary},
                )
                messages.success(request, "The file was verified: every check and hash passed.")
                return redirect("restores:wizard_profile")
            finally:
                uploaded.close()
    return render(
        request, "restores/wizard/upload.html", _context(request, form=form), status=400 if form.errors else 200
    )


def _logo_response(reader: Any) -> HttpResponse:
    member = engine.logo_member(reader)
    if member is None:
        raise Http404
    data = reader.read_bytes(member)
    content_type = sniff_image(data[:16])
    if content_type is None:
        raise Http404  # not a raster image: never served inline (an SVG could carry script)
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response


@site_admin_required
def backup_logo(request: HttpRequest, backup_pk: int) -> HttpResponse:
    """The logo inside a backup, for the preview."""
    backup = get_object_or_404(restorable_backups(), pk=backup_pk)
    try:
        with engine.open_backup(backup) as reader:
            return _logo_response(reader)
    except (ArchiveError, engine.RestoreRefused, PasswordUnavailable) as exc:
        raise Http404 from exc


@site_admin_required
def upload_logo(request: HttpRequest, upload_pk: int) -> HttpResponse:
    upload = get_object_or_404(RestoreUpload, pk=upload_pk, uploaded_by=request.user)
    try:
        with engine.open_stored(upload.file.name, unwrap_password(upload.password_wrapped)) as reader:
            return _logo_response(reader)
    except (ArchiveError, engine.RestoreRefused, PasswordUnavailable) as exc:
        raise Http404 from exc
