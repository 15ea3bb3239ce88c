from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import PasswordChangeView
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from accounts.forms import CrispyPasswordChangeForm
from accounts.models import Notification
from accounts.services import audit_log, notifications_mark_read


class AuditedPasswordChangeView(PasswordChangeView):
    template_name = "accounts/password_change.html"
    form_class = CrispyPasswordChangeForm
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form: CrispyPasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        audit_log(action="auth.password_change", actor=form.user, request=self.request)
        return response


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    qs = Notification.objects.filter(user=request.user).select_related("organization")
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "accounts/notifications.html", {"page": page})


@login_required
@require_POST
def notification_mark_read(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("id")
    ids = [int(raw)] if raw and raw.isdigit() else None
    count = notifications_mark_read(user=request.user, ids=ids)  # type: ignore[arg-type]
    if ids is None:
        messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} as read.")
    return redirect("accounts:notifications")
