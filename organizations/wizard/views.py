"""Administration → Organization Management (Site Admins): the organizations, and the
standard creation wizard behind *+ Add via wizard*."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import Membership
from organizations.models import MasterDataVersion, Organization
from organizations.services import WIZARD_UPLOADS, OrganizationRefused, organization_create_from_wizard
from organizations.wizard import flow as wz
from organizations.wizard.display import review_sections
from organizations.wizard.forms import MODULES

NEW = wz.Flow(
    session_key="organization_wizard",
    url_names={key: f"management:wizard_{key}" for key in wz.STEPS},
    logo_prefix=WIZARD_UPLOADS,
    title="Add organization via wizard",
)
PAGE_SIZE = 25


def site_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in Site Admins only; anybody else signed in gets a 404 (the page is not theirs)."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not (user.is_active and getattr(user, "is_site_admin", False)):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@site_admin_required
def organization_list(request: HttpRequest) -> HttpResponse:
    """Every organization, searchable by name, address or Owner, with the wizard's split button."""
    query = request.GET.get("q", "").strip()
    organizations = (
        Organization.objects.for_user(request.user)  # type: ignore[arg-type]
        .select_related("master_data_version")
        .annotate(member_count=Count("memberships", distinct=True), ou_count=Count("ous", distinct=True))
        .order_by("name", "pk")
    )
    if query:
        organizations = organizations.filter(
            Q(name__icontains=query)
            | Q(slug__icontains=query)
            | Q(memberships__role=Membership.Role.OWNER, memberships__user__email__icontains=query)
        ).distinct()
    page = Paginator(organizations, PAGE_SIZE).get_page(request.GET.get("page"))
    owners = dict(
        Membership.objects.filter(organization__in=page.object_list, role=Membership.Role.OWNER).values_list(
            "organization_id", "user__email"
        )
    )
    return render(
        request,
        "organizations/management/list.html",
        {
            "page": page,
            "rows": [(org, owners.get(org.pk, "")) for org in page.object_list],
            "q": query,
            "query": urlencode({"q": query}) if query else "",
            "total": Organization.objects.count(),
        },
    )


@site_admin_required
def wizard_start(request: HttpRequest) -> HttpResponse:
    """*+ Add via wizard*: a fresh wizard (an earlier, unfinished one is dropped)."""
    wz.drop_logo(wz.state_of(request, NEW))
    wz.save_state(request, NEW, {"answers": {}})
    return redirect("management:wizard_company")


def _company_prefill(request: HttpRequest) -> dict[str, Any]:
    latest = MasterDataVersion.objects.order_by("-released_on").first()
    return {
        "owner_email": request.user.email,  # type: ignore[union-attr]
        "master_data_version": latest.code if latest else "",
        "default_language": "en",
        "available_languages": "en",
    }


def _step(key: str) -> Callable[[HttpRequest], HttpResponse]:
    @site_admin_required
    def view(request: HttpRequest) -> HttpResponse:
        answers = wz.state_of(request, NEW).get("answers") or {}
        prefill: dict[str, Callable[[], dict[str, Any]]] = {
            "company": lambda: _company_prefill(request),
            "address": dict,
            "contact": dict,
            "structure": lambda: {"facilities": [], "ous": [{}]},
            "regulations": lambda: {"regulations": []},
            "modules": lambda: {"modules": [key for key, _label in MODULES]},
        }
        form_kwargs, context = {}, {}
        if key == "regulations":
            code = (answers.get("company") or {}).get("master_data_version", "")
            form_kwargs["master_data"] = code
            context["master_data_version"] = MasterDataVersion.objects.filter(code=code).first()
        return wz.step_view(request, NEW, key, prefill=prefill[key], form_kwargs=form_kwargs, context=context)

    view.__name__ = f"wizard_{key}"
    view.__doc__ = f"The creation wizard's {wz.TITLES[key]} step."
    return view


wizard_company = _step("company")
wizard_address = _step("address")
wizard_contact = _step("contact")
wizard_structure = _step("structure")
wizard_regulations = _step("regulations")
wizard_modules = _step("modules")


@site_admin_required
def wizard_review(request: HttpRequest) -> HttpResponse:
    """The answers on one page; *Create organization* creates it in one transaction."""
    state = wz.state_of(request, NEW)
    answers = state.get("answers") or {}
    missing = wz.first_unanswered(answers, "review")
    if missing is not None:
        return redirect(NEW.url(missing))
    if request.method == "POST":
        try:
            organization = organization_create_from_wizard(
                answers=answers,
                creation_wizard_data=wz.creation_wizard_data(answers),
                created_by=request.user,  # type: ignore[arg-type]
                logo=state.get("logo", ""),
            )
        except OrganizationRefused as exc:
            messages.error(request, str(exc))
        else:
            wz.drop_logo(state)
            wz.save_state(request, NEW, {})
            messages.success(request, f"The organization {organization.name} was created.")
            return redirect(organization)
    mdv = MasterDataVersion.objects.filter(code=(answers.get("company") or {}).get("master_data_version")).first()
    return wz.render_step(
        request,
        NEW,
        "review",
        answers,
        sections=review_sections(
            NEW, answers, logo="The logo you uploaded" if state.get("logo") else "None", master_data=str(mdv or "")
        ),
        create_label="Create organization",
        back_url=reverse("management:wizard_modules"),
    )
