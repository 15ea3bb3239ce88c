"""Backup schedules (Owner and Admin): the list with each schedule's next run, create, edit,
delete. A schedule backs up the scope a request could (OUs, facilities, document filters, data
sets, with the request dialog's picker); none is offered to an organization without a valid
subscription, since its backups could not run. Times are in the server's time zone, shown."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.permissions import can_use_backups
from backups import selectors
from backups.forms import ScheduleForm
from backups.models import BackupSchedule
from backups.schedules import schedule_delete, schedule_save
from backups.services import BackupError
from organizations.models import Organization

NOT_SCHEDULER = "Backup schedules are managed by the organization's Owner and Admins."
NO_SUBSCRIPTION = (
    "This organization has no valid backup subscription, so no scheduled backup can run. "
    "Get a subscription first; the schedules page shows how."
)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "backups/forbidden.html", {"message": message}, status=403)


def _guard(request: HttpRequest) -> Organization | HttpResponse:
    """The current organization when the user manages its schedules, else the refusal."""
    org = getattr(request, "organization", None) or None
    if org is None or not selectors.can_administer(_user(request), org):
        return _forbidden(request, NOT_SCHEDULER)
    return org  # type: ignore[no-any-return]


def _time_zone() -> str:
    return timezone.get_current_timezone_name()


@login_required
@require_GET
def schedule_list(request: HttpRequest) -> HttpResponse:
    org = _guard(request)
    if isinstance(org, HttpResponse):
        return org
    schedules = (
        selectors.schedules_visible_to(_user(request))
        .filter(organization=org)
        .prefetch_related("ous", "facilities")
        .order_by("name")
    )
    rows = [(s, selectors.dataset_labels(s.datasets)) for s in schedules]
    return render(
        request,
        "backups/schedules.html",
        {
            "organization": org,
            "rows": rows,
            "subscription": selectors.subscription_state(org),
            "can_use_backups": can_use_backups(_user(request), org),
            "subscription_url": settings.SUBSCRIPTION_URL,
            "subscription_email": settings.SUBSCRIPTION_CONTACT_EMAIL,
            "time_zone": _time_zone(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def schedule_create(request: HttpRequest) -> HttpResponse:
    org = _guard(request)
    if isinstance(org, HttpResponse):
        return org
    if not selectors.subscription_state(org).valid:
        messages.error(request, NO_SUBSCRIPTION)
        return redirect("backups:schedules")
    return _schedule_form(request, BackupSchedule(organization=org), created=True)


@login_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(selectors.schedules_visible_to(_user(request)).select_related("organization"), pk=pk)
    return _schedule_form(request, schedule, created=False)


def _schedule_form(request: HttpRequest, schedule: BackupSchedule, *, created: bool) -> HttpResponse:
    user = _user(request)
    org = schedule.organization
    if request.method == "POST":
        form = ScheduleForm(request.POST, instance=schedule, user=user, organization=org)
        if form.is_valid():
            try:
                saved = schedule_save(
                    schedule=form.instance,
                    user=user,
                    ous=form.cleaned_data["ous"],
                    facilities=form.cleaned_data.get("facilities") or [],
                    request=request,
                )
            except BackupError as exc:
                form.add_error(None, str(exc))
            else:
                if saved.next_run_at:
                    local = timezone.localtime(saved.next_run_at)
                    when = f"next run {local.day} {local:%b %Y %H:%M} ({_time_zone()})"
                else:
                    when = "disabled, it will not run"
                messages.success(request, f"Schedule “{saved.name}” saved: {when}.")
                return redirect("backups:schedules")
    else:
        form = ScheduleForm(instance=schedule, user=user, organization=org)
    return render(
        request,
        "backups/schedule_form.html",
        {
            "form": form,
            "schedule": schedule,
            "created": created,
            "organization": org,
            "subscription": selectors.subscription_state(org),
            "dataset_dependencies": selectors.dataset_dependency_map(),
            "dataset_labels": selectors.dataset_label_map(),
            "time_zone": _time_zone(),
        },
    )


@login_required
@require_POST
def schedule_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    schedule = get_object_or_404(selectors.schedules_visible_to(_user(request)), pk=pk)
    name = schedule.name
    schedule_delete(schedule=schedule, user=_user(request), request=request)
    messages.success(request, f"Schedule “{name}” deleted. The backups it made stay.")
    return redirect("backups:schedules")
