"""The wizard's answers and captured creation-wizard data as labelled values (the review
step and the backup preview): never raw dictionaries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from organizations.wizard import forms as wf
from organizations.wizard.flow import TITLES, Flow


def _address_line(address: dict[str, Any]) -> str:
    parts = [
        address.get("line1"),
        address.get("line2"),
        " ".join(filter(None, [address.get("postcode"), address.get("city")])),
    ]
    return ", ".join(str(p) for p in [*parts, address.get("country")] if p)


def _ou_text(ou: dict[str, Any], facilities: dict[str, str]) -> str:
    where = f", {facilities.get(ou['facility'], ou['facility'])}" if ou.get("facility") else ""
    return f"{ou['name']} ({ou['code']}{where})"


def review_sections(flow: Flow, answers: dict[str, Any], *, logo: str, master_data: str) -> list[dict[str, Any]]:
    """The review step: every answer as a labelled value, grouped by step, with an Edit link."""
    company = answers.get("company") or {}
    address = answers.get("address") or {}
    contact = answers.get("contact") or {}
    structure = answers.get("structure") or {}
    facilities = {f["code"]: f["name"] for f in structure.get("facilities") or []}
    ous = [_ou_text(o, facilities) for o in structure.get("ous") or []]
    regulations = (answers.get("regulations") or {}).get("regulations") or []
    modules = (answers.get("modules") or {}).get("modules") or []

    def section(key: str, items: list[tuple[str, Any]]) -> dict[str, Any]:
        editable = key not in flow.readonly
        return {"title": TITLES[key], "url": flow.url(key) if editable else None, "items": items}

    return [
        section(
            "company",
            [
                ("Name", company.get("name")),
                ("Address in the app", company.get("slug")),
                ("Legal name", company.get("legal_name")),
                ("Description", company.get("description")),
                ("Sector", company.get("sector")),
                ("Employees", company.get("employees")),
                ("License identifier", company.get("license_identifier")),
                ("Jurisdiction", company.get("jurisdiction")),
                ("Master data version", master_data),
                ("Languages", _languages(company)),
                ("Logo", logo),
                ("Owner", company.get("owner_email")),
            ],
        ),
        section("address", [("Address", _address_line(address))]),
        section(
            "contact", [("Name", contact.get("name")), ("Email", contact.get("email")), ("Phone", contact.get("phone"))]
        ),
        section(
            "structure",
            [
                ("Facilities", ", ".join(f"{n} ({c})" for c, n in facilities.items())),
                ("Organisational units", "; ".join(ous)),
            ],
        ),
        section("regulations", [("Regulations", ", ".join(regulations) or "None")]),
        section("modules", [("Modules", ", ".join(wf.MODULE_LABELS.get(m, m) for m in modules))]),
    ]


def _languages(company: dict[str, Any]) -> str:
    default = company.get("default_language") or ""
    available = company.get("available_languages") or ""
    if default and available:
        return f"{default} (default); available: {available}"
    return default or available


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "" if value is None else str(value)


def _moment(value: Any) -> str:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime("%d %b %Y %H:%M")


def _label(key: str) -> str:
    return str(key).replace("_", " ").capitalize()


def describe_wizard_data(data: Any) -> list[tuple[str, str]]:
    """Captured ``creation_wizard_data`` as (label, text) pairs for a preview: the known parts
    (company, address, contact, structure, modules) in words, any other key by its name."""
    if not isinstance(data, dict):
        return []
    items: list[tuple[str, str]] = []
    company = data.get("company") if isinstance(data.get("company"), dict) else {}
    for key, label in (("legal_name", "Legal name"), ("sector", "Sector"), ("employees", "Employees")):
        if company.get(key):
            items.append((label, str(company[key])))
    address = data.get("address")
    if isinstance(address, dict) and address:
        items.append(("Address", _address_line(address)))
    contact = data.get("contact")
    if isinstance(contact, dict) and contact:
        items.append(("Contact", ", ".join(str(contact[k]) for k in ("name", "email", "phone") if contact.get(k))))
    structure = data.get("structure")
    if isinstance(structure, dict) and structure:
        kind = "Enterprise (facilities)" if structure.get("enterprise") else "Single site"
        facilities = _text(structure.get("facilities") or [])
        items.append(("Structure", f"{kind}{': ' + facilities if facilities else ''}"))
        if structure.get("ous"):
            items.append(("Organisational units", _text(structure["ous"])))
    modules = data.get("modules")
    if isinstance(modules, list):
        items.append(("Modules", ", ".join(wf.MODULE_LABELS.get(m, str(m)) for m in modules)))
    if data.get("completed_at"):
        items.append(("Wizard completed", _moment(data["completed_at"])))
    known = {"company", "address", "contact", "structure", "modules", "completed_at", "completed_steps"}
    items.extend((_label(k), _text(v)) for k, v in data.items() if k not in known)
    return items
