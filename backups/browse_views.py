"""Browse pages: a backup's content without downloading it, its records, one record, a
version's file streamed out of the archive, and the records picked for a selective restore.

Backups come from ``Backup.objects.visible_to``: another organization's is a 404 on every URL.
A backup that keeps no wrapped copy of its password asks for it (POST, kept for the session
wrapped with the key ring, never in a URL).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.models import User
from backups.browse import files, reading, selection
from backups.keys import unwrap_password, wrap_password
from backups.models import Backup

logger = logging.getLogger(__name__)

PER_PAGE = 25


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _backup(request: HttpRequest, pk: int) -> Backup:
    return get_object_or_404(Backup.objects.visible_to(_user(request)).select_related("organization"), pk=pk)


def _session_key(backup: Backup) -> str:
    return f"browse-password-{backup.pk}"


def _open(request: HttpRequest, backup: Backup) -> Any:
    wrapped = request.session.get(_session_key(backup)) if reading.needs_password(backup) else None
    return reading.open_reader(backup, password=unwrap_password(wrapped) if wrapped else None)


def _spec(model: str) -> tuple[str, Any]:
    try:
        return reading.find_spec(model)
    except LookupError:
        raise Http404 from None


def _problem(request: HttpRequest, backup: Backup, exc: reading.BrowseError) -> HttpResponse:
    if isinstance(exc, reading.PasswordNeeded):
        return render(
            request,
            "backups/browse_password.html",
            {"backup": backup, "error": str(exc), "next": request.get_full_path()},
        )
    return render(request, "backups/browse_unavailable.html", {"backup": backup, "reason": str(exc)}, status=409)


def _context(request: HttpRequest, backup: Backup, **extra: Any) -> dict[str, Any]:
    return {"backup": backup, "picked": selection.count(request.session, backup.pk), **extra}


@login_required
@require_http_methods(["GET", "POST"])
def browse_index(request: HttpRequest, pk: int) -> HttpResponse:
    """The backup's content per data set and model (counts from the manifest). POST: the
    password of a backup protected only by the user's own password."""
    backup = _backup(request, pk)
    if request.method == "POST":
        password = request.POST.get("password", "")
        try:
            reading.open_reader(backup, password=password).close()
        except reading.BrowseError as exc:
            return _problem(request, backup, exc)
        request.session[_session_key(backup)] = wrap_password(password)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = reverse("backups:browse", args=[backup.pk])
        return redirect(target)
    try:
        reader = _open(request, backup)
    except reading.BrowseError as exc:
        return _problem(request, backup, exc)
    try:
        content = reading.contents(reader.manifest)
    finally:
        reader.close()
    return render(request, "backups/browse.html", _context(request, backup, content=content))


@login_required
@require_safe
def browse_model(request: HttpRequest, pk: int, model: str) -> HttpResponse:
    """One model's records by title, searchable and paginated (one scan of its member)."""
    backup = _backup(request, pk)
    dataset, spec = _spec(model)
    query = request.GET.get("q", "").strip()[:200]
    try:
        number = int(request.GET.get("page", "1"))
    except ValueError:
        number = 1
    try:
        reader = _open(request, backup)
    except reading.BrowseError as exc:
        return _problem(request, backup, exc)
    try:
        page = reading.page(reader, dataset, spec, query=query, number=number, per_page=PER_PAGE)
    finally:
        reader.close()
    picked = set(selection.get(request.session, backup.pk).get(spec.key, []))
    context = _context(
        request,
        backup,
        spec=spec,
        dataset=dataset,
        label=reading.model_label(spec),
        page=page,
        q=query,
        query=urlencode({"q": query}) if query else "",
        selectable=spec.key in selection.SELECTABLE,
        picked_here=picked,
    )
    return render(request, "backups/browse_model.html", context)


@login_required
@require_safe
def browse_record(request: HttpRequest, pk: int, model: str, record: int) -> HttpResponse:
    """One record, read-only: its fields, the records it refers to and those that refer to it."""
    backup = _backup(request, pk)
    dataset, spec = _spec(model)
    try:
        reader = _open(request, backup)
    except reading.BrowseError as exc:
        return _problem(request, backup, exc)
    try:
        row = reading.find_row(reader, dataset, spec, record)
        if row is None:
            raise Http404("No such record in this backup.")
        title = reading.full_titles(reader, spec, [row])[0]
        parents, children = reading.related(reader, spec, row)
    finally:
        reader.close()
    context = _context(
        request,
        backup,
        spec=spec,
        label=reading.model_label(spec),
        single=reading.record_label(spec),
        row=row,
        title=title,
        fields=reading.field_rows(spec, row),
        parents=parents,
        children=children,
        has_file=bool(spec.files and isinstance(row.get(spec.files[0]), dict)),
        selectable=spec.key in selection.SELECTABLE,
        is_picked=record in selection.get(request.session, backup.pk).get(spec.key, []),
    )
    return render(request, "backups/browse_record.html", context)


@login_required
@require_safe
def browse_file(request: HttpRequest, pk: int, model: str, record: int) -> HttpResponse:
    """A record's stored file, decrypted and verified on the server (see ``backups.browse.files``)."""
    backup = _backup(request, pk)
    dataset, spec = _spec(model)
    if not spec.files:
        raise Http404
    try:
        reader = _open(request, backup)
    except reading.BrowseError as exc:
        return _problem(request, backup, exc)
    streaming = False
    try:
        row = reading.find_row(reader, dataset, spec, record)
        if row is None:
            raise Http404("No such record in this backup.")
        try:
            member = files.member_file(
                reader.manifest,
                row,
                spec.files[0],
                name=str(row.get("filename") or ""),
                content_type=str(row.get("content_type") or ""),
            )
            if member.size <= files.VERIFY_FIRST_LIMIT:
                response: HttpResponse | StreamingHttpResponse = HttpResponse(
                    files.read_verified(reader, member), content_type=member.content_type
                )
            else:
                response = StreamingHttpResponse(
                    files.stream_verified(reader, member, backup_id=backup.pk), content_type=member.content_type
                )
                streaming = True
        except files.FileUnavailable as exc:
            logger.error("backup %s: file of %s #%s not served: %s", backup.pk, spec.key, record, exc)
            return render(
                request, "backups/browse_unavailable.html", {"backup": backup, "reason": str(exc)}, status=502
            )
    finally:
        if not streaming:
            reader.close()
    response["Content-Length"] = str(member.size)
    response["Content-Disposition"] = content_disposition_header(True, member.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def browse_select(request: HttpRequest, pk: int) -> HttpResponse:
    """Add records to (or remove them from, or clear) the selection for a selective restore:
    checked boxes (``records`` as ``model:id``), or every result of a search (``all_results``)."""
    backup = _backup(request, pk)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("backups:browse", args=[backup.pk])
    action = request.POST.get("action", "add")
    if action == "clear":
        selection.clear(request.session, backup.pk)
        messages.info(request, "The selection is empty.")
        return redirect(target)
    try:
        picked = selection.parse(request.POST.getlist("records"))
        if request.POST.get("all_results"):
            model = request.POST.get("model", "")
            dataset, spec = _spec(model)
            try:
                reader = _open(request, backup)
            except reading.BrowseError as exc:
                return _problem(request, backup, exc)
            try:
                page = reading.page(
                    reader, dataset, spec, query=request.POST.get("q", "").strip()[:200], per_page=1, with_ids=True
                )
            finally:
                reader.close()
            picked.setdefault(spec.key, set()).update(page.matching_ids)
        added = 0
        for model, ids in picked.items():
            if action == "remove":
                selection.remove(request.session, backup.pk, model, ids)
            else:
                added += selection.add(request.session, backup.pk, model, ids)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect(target)
    if action != "remove":
        total = selection.count(request.session, backup.pk)
        messages.success(request, f"{added} record(s) added; {total} picked for a selective restore.")
    return redirect(target)
