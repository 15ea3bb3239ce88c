"""*Restore from backup*: the organization wizard's ordinary steps after *Backup selection*,
pre-filled from the chosen backup (``restores.wizard``), through ``organizations.wizard.flow``.

What differs from the standard creation: the master data version is the backup's; the logo is
the backup's unless a new one is uploaded; Structure and Regulations are read-only, because the
backup's facilities, OUs and regulations come with its data (editing them here could only
contradict the restored records); the review queues one restore that creates the organization
and restores into it in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from organizations.services import unique_slug
from organizations.wizard import flow as wz
from organizations.wizard.display import review_sections
from restores import engine, services
from restores.models import RestoreUpload
from restores.wizard import SESSION_KEY, restorable_backups, site_admin_required

RESTORE = wz.Flow(
    session_key=SESSION_KEY,
    url_names={
        "company": "restores:wizard_profile",
        "address": "restores:wizard_address",
        "contact": "restores:wizard_contact",
        "structure": "restores:wizard_structure",
        "regulations": "restores:wizard_regulations",
        "modules": "restores:wizard_modules",
        "review": "restores:wizard_confirm",
    },
    logo_prefix="restore-uploads/",
    title="Restore from backup",
    before=(("Backup selection", "restores:wizard_backup"),),
    restore=True,
    readonly=frozenset({"structure", "regulations"}),
)


def _source(request: HttpRequest) -> tuple[dict[str, Any], dict[str, Any]] | None:
    state = wz.state_of(request, RESTORE)
    if not state.get("source") or not state.get("preview"):
        return None
    return state["source"], state["preview"]


def _captured(preview: dict[str, Any]) -> dict[str, Any]:
    return preview.get("organization") or {}


def _prefill(request: HttpRequest, key: str, preview: dict[str, Any]) -> dict[str, Any]:
    """A step's answers as the backup has them."""
    captured = _captured(preview)
    from_wizard = wz.prefill_from_wizard_data(captured.get("creation_wizard_data"))
    if key == "company":
        languages = captured.get("language_settings") or {}
        languages = languages if isinstance(languages, dict) else {}
        available = languages.get("available")
        return {
            "name": captured.get("name", ""),
            "slug": unique_slug(captured.get("name") or ""),
            "description": captured.get("description") or "",
            "license_identifier": captured.get("license_identifier") or "",
            "jurisdiction": captured.get("jurisdiction") or "",
            "master_data_version": preview.get("master_data_version") or "",
            "default_language": languages.get("default", ""),
            "available_languages": ", ".join(available) if isinstance(available, list) else "",
            "owner_email": request.user.email,  # type: ignore[union-attr]
            **from_wizard["company"],
        }
    if key == "structure":
        return dict(preview.get("structure") or {"facilities": [], "ous": []})
    if key == "regulations":
        return {"regulations": [r["code"] for r in preview.get("regulations") or []]}
    return from_wizard.get(key, {})


def _step(key: str) -> Callable[[HttpRequest], HttpResponse]:
    @site_admin_required
    def view(request: HttpRequest) -> HttpResponse:
        found = _source(request)
        if found is None:
            return redirect("restores:wizard")
        source, preview = found
        name = _captured(preview).get("name", "")
        context: dict[str, Any] = {"source_note": f"Pre-filled from the backup of {name}; change anything you need."}
        form_kwargs: dict[str, Any] = {}
        if key == "company":
            form_kwargs["fixed_master_data"] = preview.get("master_data_version") or ""
            context["logo_help"] = (
                "Leave empty to use the logo from the backup." if preview.get("has_logo") else "The backup has no logo."
            )
            if source.get("type") == "upload":
                context["back_url"] = reverse("restores:wizard_upload")
        if key == "structure":
            context["structure_in_backup"] = any(d.get("key") == "structure" for d in preview.get("datasets") or [])
        if key == "regulations":
            unknown = [r["code"] for r in preview.get("regulations") or [] if not r.get("known")]
            context.update(
                regulations=preview.get("regulations") or [],
                unknown=unknown,
                blocked=bool(unknown),
                master_data_version=preview.get("master_data_version"),
            )
        return wz.step_view(
            request,
            RESTORE,
            key,
            prefill=lambda: _prefill(request, key, preview),
            form_kwargs=form_kwargs,
            context=context,
        )

    view.__name__ = f"wizard_{key}"
    view.__doc__ = f"The restore's {wz.TITLES[key]} step, pre-filled from the backup."
    return view


wizard_profile = _step("company")
wizard_address = _step("address")
wizard_contact = _step("contact")
wizard_structure = _step("structure")
wizard_regulations = _step("regulations")
wizard_modules = _step("modules")


def new_organization(answers: dict[str, Any], preview: dict[str, Any], logo: str) -> engine.NewOrganization:
    """The restore's options: the edited answers over the backup's profile."""
    captured = _captured(preview)
    company = answers["company"]
    languages = dict(captured.get("language_settings") or {})
    if company.get("default_language") or "default" in languages:
        languages["default"] = company.get("default_language", "")
    available = [code for code in company.get("available_languages", "").split(", ") if code]
    if available or "available" in languages:
        languages["available"] = available
    return engine.NewOrganization(
        name=company["name"],
        slug=company["slug"],
        owner_email=company["owner_email"],
        description=company.get("description", ""),
        license_identifier=company.get("license_identifier", ""),
        jurisdiction=company.get("jurisdiction", ""),
        language_settings=languages,
        creation_wizard_data=wz.creation_wizard_data(answers, base=captured.get("creation_wizard_data") or {}),
        logo=logo,
    )


@site_admin_required
def wizard_confirm(request: HttpRequest) -> HttpResponse:
    """Review: every answer; *Create organization and restore* queues the one restore."""
    found = _source(request)
    if found is None:
        return redirect("restores:wizard")
    source, preview = found
    state = wz.state_of(request, RESTORE)
    answers = state.get("answers") or {}
    missing = wz.first_unanswered(answers, "review")
    if missing is not None:
        return redirect(RESTORE.url(missing))
    if request.method == "POST":
        backup = upload = None
        if source["type"] == "backup":
            backup = restorable_backups().filter(pk=source["pk"]).first()
        else:
            upload = RestoreUpload.objects.filter(pk=source["pk"], uploaded_by=request.user).first()
        if backup is None and upload is None:
            messages.error(request, "The chosen backup is no longer available; choose another.")
            return redirect("restores:wizard_backup")
        try:
            restore = services.restore_new_organization(
                user=request.user,  # type: ignore[arg-type]
                profile=new_organization(answers, preview, state.get("logo", "")),
                backup=backup,
                upload=upload,
                request=request,
            )
        except services.RestoreError as exc:
            messages.error(request, str(exc))
        else:
            wz.save_state(request, RESTORE, {})  # the uploaded logo now belongs to the restore
            messages.success(request, "The organization is being created from the backup.")
            return redirect(restore)
    name = _captured(preview).get("name", "")
    if source["type"] == "backup":
        source_label = f"Backup of {name} taken {preview.get('created_display', '')}"
    else:
        source_label = f"Uploaded backup file of {name}"
    logo = (
        "The new logo you uploaded"
        if state.get("logo")
        else ("The logo from the backup" if preview.get("has_logo") else "None")
    )
    return wz.render_step(
        request,
        RESTORE,
        "review",
        answers,
        sections=review_sections(RESTORE, answers, logo=logo, master_data=preview.get("master_data_version") or ""),
        source_label=source_label,
        datasets=[d["label"] for d in preview.get("datasets") or []],
        create_label="Create organization and restore",
        back_url=RESTORE.url("modules"),
    )
