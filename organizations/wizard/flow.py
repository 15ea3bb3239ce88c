"""The wizard's steps as a small session wizard, shared by the standard creation and by the
restores app's *Restore from backup* (which adds its *Backup selection* step first and fixes
some answers from the backup).

The answers live in the session, one JSON-ready dict per step, until the review step creates
the organization. A step can only be opened once the steps before it are answered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from organizations.wizard import forms as wf

TITLES = {
    "company": "Company",
    "address": "Address",
    "contact": "Contact",
    "structure": "Structure",
    "regulations": "Regulations",
    "modules": "Modules",
    "review": "Review",
}
STEPS = tuple(TITLES)
FORMS: dict[str, type[wf.StepForm]] = {
    "company": wf.CompanyForm,
    "address": wf.AddressForm,
    "contact": wf.ContactForm,
    "regulations": wf.RegulationsForm,
    "modules": wf.ModulesForm,
}


@dataclass(frozen=True)
class Flow:
    """One way through the steps: where its answers live and how its steps are addressed."""

    session_key: str
    url_names: dict[str, str]  # step key -> URL name
    logo_prefix: str  # storage folder of a logo uploaded in the company step
    title: str
    before: tuple[tuple[str, str], ...] = ()  # (title, URL name) of steps before "company"
    restore: bool = False
    readonly: frozenset[str] = field(default_factory=frozenset)

    def url(self, key: str) -> str:
        return reverse(self.url_names[key])


def state_of(request: HttpRequest, flow: Flow) -> dict[str, Any]:
    return request.session.setdefault(flow.session_key, {})  # type: ignore[no-any-return]


def save_state(request: HttpRequest, flow: Flow, state: dict[str, Any]) -> None:
    request.session[flow.session_key] = state
    request.session.modified = True


def drop_logo(state: dict[str, Any]) -> None:
    """Delete the logo uploaded in an abandoned or finished wizard (a temporary file)."""
    logo = state.get("logo") or (state.get("profile") or {}).get("logo")
    if logo and default_storage.exists(logo):
        default_storage.delete(logo)


def stepper(flow: Flow, current: str, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The stepper's entries: title, state (done, current, todo) and a link to answered steps."""
    if current not in STEPS:  # a step before "company" (the restore's Backup selection)
        entries = [{"title": title, "state": "current", "url": None} for title, _name in flow.before]
        return entries + [{"title": TITLES[key], "state": "todo", "url": None} for key in STEPS]
    entries = [{"title": title, "state": "done", "url": reverse(name)} for title, name in flow.before]
    reached = True
    for key in STEPS:
        if key == current:
            entries.append({"title": TITLES[key], "state": "current", "url": None})
            reached = False
        else:
            done = reached and key in answers
            entries.append(
                {"title": TITLES[key], "state": "done" if done else "todo", "url": flow.url(key) if done else None}
            )
    return entries


def first_unanswered(answers: dict[str, Any], before: str) -> str | None:
    for key in STEPS[: STEPS.index(before)]:
        if key not in answers:
            return key
    return None


def next_step(key: str) -> str:
    return STEPS[STEPS.index(key) + 1]


def previous_url(flow: Flow, key: str) -> str:
    index = STEPS.index(key)
    if index == 0:
        return reverse(flow.before[-1][1]) if flow.before else reverse("management:organizations")
    return flow.url(STEPS[index - 1])


def render_step(
    request: HttpRequest, flow: Flow, key: str, answers: dict[str, Any], status: int = 200, **context: Any
) -> HttpResponse:
    return render(
        request,
        f"organizations/wizard/{key}.html",
        {
            "flow": flow,
            "step_key": key,
            "step_title": TITLES[key],
            "stepper": stepper(flow, key, answers),
            "back_url": previous_url(flow, key),
            "answers": answers,
            "readonly": key in flow.readonly,
            **context,
        },
        status=status,
    )


def step_view(
    request: HttpRequest,
    flow: Flow,
    key: str,
    *,
    prefill: Callable[[], dict[str, Any]],
    form_kwargs: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """GET shows the step (its answers, else ``prefill()``), POST validates it, keeps the
    answers and moves on. Read-only steps keep ``prefill()`` as their answers."""
    state = state_of(request, flow)
    answers = state.setdefault("answers", {})
    missing = first_unanswered(answers, key)
    if missing is not None:
        return redirect(flow.url(missing))
    context = dict(context or {})
    initial = answers.get(key) or prefill()
    if key in flow.readonly:
        if request.method == "POST" and not context.get("blocked"):
            answers[key] = initial
            save_state(request, flow, state)
            return redirect(flow.url(next_step(key)))
        return render_step(request, flow, key, answers, initial=initial, **context)
    if key == "structure":
        return _structure_step(request, flow, state, initial, context)
    form_class = FORMS[key]
    posted = request.method == "POST"  # an empty POST (no box ticked) is still a submission
    form = form_class(
        request.POST if posted else None, request.FILES if posted else None, initial=initial, **(form_kwargs or {})
    )
    if request.method == "POST" and form.is_valid():
        before = (answers.get(key) or {}).get("master_data_version")
        answers[key] = form.answers()
        if key == "company":
            _keep_logo(form, flow, state)
            if before and before != answers[key].get("master_data_version"):
                answers.pop("regulations", None)  # chosen from another version's catalog
        save_state(request, flow, state)
        return redirect(flow.url(next_step(key)))
    return render_step(
        request,
        flow,
        key,
        answers,
        status=400 if form.errors else 200,
        form=form,
        new_logo=state.get("logo"),
        **context,
    )


def _keep_logo(form: wf.StepForm, flow: Flow, state: dict[str, Any]) -> None:
    logo = form.cleaned_data.get("logo")
    if logo:
        drop_logo(state)
        state["logo"] = default_storage.save(f"{flow.logo_prefix}logo-{uuid.uuid4().hex}", logo)


def _structure_step(
    request: HttpRequest, flow: Flow, state: dict[str, Any], initial: dict[str, Any], context: dict[str, Any]
) -> HttpResponse:
    answers = state["answers"]
    if request.method != "POST":
        return render_step(request, flow, "structure", answers, structure=wf.Structure(initial=initial), **context)
    structure = wf.Structure(request.POST)
    edited = structure.edited(request.POST.get("structure_action", ""))
    if edited is not None:
        return render_step(request, flow, "structure", answers, structure=edited, **context)
    if structure.is_valid():
        answers["structure"] = structure.answers()
        save_state(request, flow, state)
        return redirect(flow.url("regulations"))
    return render_step(request, flow, "structure", answers, status=400, structure=structure, **context)


def _parts(answers: dict[str, Any]) -> dict[str, Any]:
    company = answers.get("company") or {}
    structure = answers.get("structure") or {}
    facilities = structure.get("facilities") or []
    return {
        "company": {k: company.get(k, "") for k in ("legal_name", "employees", "sector")},
        "address": dict(answers.get("address") or {}),
        "contact": dict(answers.get("contact") or {}),
        "structure": {
            "enterprise": bool(facilities),
            "facilities": [f["name"] for f in facilities],
            "ous": [o["name"] for o in structure.get("ous") or []],
        },
        "modules": list((answers.get("modules") or {}).get("modules") or []),
    }


def creation_wizard_data(answers: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The answers in the shape organizations keep (and backups capture) as
    ``creation_wizard_data``: company, address, contact, structure, modules.

    With ``base`` (a restore: the backup's data), the backup's data is kept and only what the
    user changed is written over it: an unedited restore keeps the profile exactly as backed
    up, and the structure stays the backup's (its facilities and OUs are restored as they were).
    """
    parts = _parts(answers)
    if base is None:
        return {**parts, "completed_steps": list(STEPS), "completed_at": timezone.now().isoformat(timespec="seconds")}
    data = dict(base)
    for name in ("company", "address", "contact"):
        merged = dict(base[name]) if isinstance(base.get(name), dict) else {}
        merged.update({k: v for k, v in parts[name].items() if v or k in merged})
        if merged:
            data[name] = merged
    if parts["modules"] != base.get("modules") and (parts["modules"] or "modules" in base):
        data["modules"] = parts["modules"]
    return data


def prefill_from_wizard_data(data: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Initial answers of the address, contact and modules steps (and the company step's
    extra fields) from captured ``creation_wizard_data``; unknown shapes give empty fields."""
    data = data if isinstance(data, dict) else {}

    def part(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    modules = data.get("modules")
    known = [m for m in modules if m in wf.MODULE_LABELS] if isinstance(modules, list) else []
    company = part("company")
    return {
        "company": {k: str(company.get(k) or "") for k in ("legal_name", "employees", "sector")},
        "address": {k: str(v) for k, v in part("address").items() if k in wf.AddressForm.base_fields},
        "contact": {k: str(v) for k, v in part("contact").items() if k in wf.ContactForm.base_fields},
        "modules": {"modules": known},
    }
