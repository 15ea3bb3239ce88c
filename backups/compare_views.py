"""Compare pages: start a comparison from a backup's details, follow its progress, read the
result per data set and model, drill down into the records, download them as CSV; and the
change-alert thresholds (the Owner changes them, Admins read them).

Backups come from ``Backup.objects.visible_to`` and comparisons from
``BackupComparison.objects.visible_to``: another organization's is a 404.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRefresh

from accounts.models import User
from accounts.permissions import is_owner, is_owner_or_admin
from backups.browse import selection
from backups.compare import services
from backups.compare.alerts import alert_settings, model_label
from backups.compare.display import summary_rows
from backups.forms import ChangeAlertForm
from backups.models import Backup, BackupComparison, ComparisonEntry

PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _backups(request: HttpRequest) -> Any:
    return Backup.objects.visible_to(_user(request)).select_related("organization")


def _comparison(request: HttpRequest, pk: int) -> BackupComparison:
    qs = BackupComparison.objects.visible_to(_user(request)).select_related("earlier", "later", "organization")
    return get_object_or_404(qs, pk=pk)


# ----------------------------------------------------------------------------------------------
# Starting one


@login_required
@require_http_methods(["GET", "POST"])
def compare_start(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: choose what to compare the backup with; POST (``with``: "now" or a backup id): start."""
    backup = get_object_or_404(_backups(request), pk=pk)
    others = (
        _backups(request)
        .filter(organization=backup.organization, status=Backup.Status.COMPLETED)
        .exclude(pk=backup.pk)
        .exclude(file="")
        .order_by("-created_at", "-pk")
    )
    if request.method == "POST":
        choice = request.POST.get("with", "now")
        other = None
        if choice != "now":
            try:
                other = get_object_or_404(others, pk=int(choice))
            except ValueError:
                raise Http404 from None
        try:
            comparison = services.comparison_request(
                backup=backup, other=other, requested_by=_user(request), request=request
            )
        except services.ComparisonError as exc:
            messages.error(request, str(exc))
            return redirect(backup)
        return redirect(comparison)
    page = Paginator(others, 25).get_page(request.GET.get("page"))
    return render(request, "backups/compare_start.html", {"backup": backup, "page": page})


# ----------------------------------------------------------------------------------------------
# The result


def _entries(comparison: BackupComparison, model: str, kind: str, query: str) -> Any:
    entries = ComparisonEntry.objects.filter(comparison=comparison)
    if model:
        entries = entries.filter(model=model)
    if kind in ComparisonEntry.Kind.values:
        entries = entries.filter(kind=kind)
    if query:
        entries = entries.filter(title__icontains=query)
    return entries.order_by("model", "kind", "record_pk")


@login_required
@require_GET
def comparison_detail(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = _comparison(request, pk)
    model = request.GET.get("model", "")
    kind = request.GET.get("kind", "")
    query = request.GET.get("q", "").strip()[:100]
    context: dict[str, Any] = {
        "comparison": comparison,
        "summary": summary_rows(comparison) if comparison.status == BackupComparison.Status.COMPLETED else [],
        "totals": comparison.totals(),
        "model": model,
        "kind": kind,
        "q": query,
        "kinds": ComparisonEntry.Kind.choices,
    }
    if model and comparison.status == BackupComparison.Status.COMPLETED:
        context["model_label"] = model_label(model)
        context["page"] = Paginator(_entries(comparison, model, kind, query), PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        context["query"] = urlencode({k: v for k, v in (("model", model), ("kind", kind), ("q", query)) if v})
        # Records of the backup (removed or changed since) can be picked for a selective restore.
        context["pickable"] = comparison.with_now and model in selection.SELECTABLE
        context["picked"] = selection.count(request.session, comparison.earlier_id)
    return render(request, "backups/comparison.html", context)


@login_required
@require_GET
def comparison_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress bar, polled by htmx while the comparison runs; the page reloads when done."""
    comparison = _comparison(request, pk)
    if not comparison.is_active and getattr(request, "htmx", False):
        return HttpResponseClientRefresh()
    return render(request, "backups/_comparison_progress.html", {"comparison": comparison})


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(entries: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["data set", "model", "change", "id", "record", "fields", "details"])
    for e in entries.iterator(chunk_size=2000):
        fields = ", ".join(d.get("field", "") for d in e.details or [])
        details = "; ".join(_detail_text(d) for d in e.details or [])
        yield writer.writerow(
            [e.dataset, e.model, e.kind, e.record_pk, _safe_cell(e.title), fields, _safe_cell(details)]
        )


def _detail_text(detail: dict[str, Any]) -> str:
    if detail.get("long"):
        return f"{detail.get('field')}: changed (long value)"
    return f"{detail.get('field')}: {detail.get('old')!s} → {detail.get('new')!s}"


def _safe_cell(text: str) -> str:
    """No formula injection when the file is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@require_GET
def comparison_csv(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = _comparison(request, pk)
    if comparison.status != BackupComparison.Status.COMPLETED:
        raise Http404
    entries = _entries(comparison, request.GET.get("model", ""), request.GET.get("kind", ""), request.GET.get("q", ""))
    response = StreamingHttpResponse(_csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="comparison-{comparison.pk}.csv"'
    return response


@login_required
@require_GET
def backup_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """The backup's change summary against the previous backup (the list's mass-change marker)."""
    backup = get_object_or_404(_backups(request), pk=pk)
    comparison = (
        BackupComparison.objects.visible_to(_user(request))
        .filter(later=backup, purpose=BackupComparison.Purpose.CHANGES)
        .order_by("-created_at", "-pk")
        .first()
    )
    if comparison is None:
        messages.info(request, "This backup has no change summary against a previous backup.")
        return redirect(backup)
    return redirect(comparison)


# ----------------------------------------------------------------------------------------------
# Change-alert thresholds


@login_required
@require_http_methods(["GET", "POST"])
def alert_settings_view(request: HttpRequest) -> HttpResponse:
    """The current organization's mass-change thresholds: the Owner changes them, Admins read them."""
    org = getattr(request, "organization", None) or None
    user = _user(request)
    if org is None or not is_owner_or_admin(user, org):
        raise Http404
    can_change = is_owner(user, org)
    current = alert_settings(org)
    form = ChangeAlertForm(request.POST or None, instance=current)
    if request.method == "POST":
        if not can_change:
            messages.error(request, "Only the Owner can change the change-alert thresholds.")
            return redirect("backups:alert_settings")
        if form.is_valid():
            services.alert_settings_save(settings=form.instance, user=user, request=request)
            messages.success(request, "Saved: the change-alert thresholds apply from the next backup.")
            return redirect("backups:alert_settings")
    if not can_change:
        for fld in form.fields.values():
            fld.disabled = True
    return render(
        request,
        "backups/alert_settings.html",
        {"organization": org, "form": form, "can_change": can_change, "saved": isinstance(current.pk, int)},
    )
