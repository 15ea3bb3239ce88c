"""Clients, matters, invoices, time entries and payments of one demo organization.

The whole plan is drawn from one seeded generator per organization, then only the rows whose
natural key is missing are inserted (in bulk). Running it again inserts nothing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.db import models
from django.utils.text import slugify

from organizations.demo.catalog import ANCHOR_DATE, OrgSpec
from organizations.models import (
    BillingCode,
    Client,
    Invoice,
    Matter,
    OrganisationalUnit,
    Organization,
    Payment,
    TimeEntry,
)

M = TypeVar("M", bound=models.Model)
BATCH = 500
_CENT = Decimal("0.01")

_ACTIVITIES = (
    "Telephone call with client",
    "Drafting correspondence",
    "Review of documents",
    "Preparing attendance note",
    "Meeting with counterparty",
    "Research and file note",
    "Reconciling ledger",
    "Preparing schedules",
    "Internal case review",
    "Email correspondence",
)
_STREETS = ("High Street", "Station Road", "Church Lane", "Mill Road", "King Street", "Queens Avenue")


def ensure_rows(
    model: type[M], existing: models.QuerySet[M], key: Sequence[str], rows: Iterable[dict[str, Any]]
) -> dict[tuple[Any, ...], int]:
    """Insert the rows whose natural ``key`` is not yet stored; return key -> primary key for all.

    ``key`` names concrete columns (``matter_id``, not ``matter``) so nothing is fetched twice.
    """
    known: dict[tuple[Any, ...], int] = {tuple(r[:-1]): r[-1] for r in existing.values_list(*key, "pk")}
    missing: dict[tuple[Any, ...], M] = {}
    for row in rows:
        k = tuple(row[f] for f in key)
        if k not in known and k not in missing:
            missing[k] = model(**row)
    created = model.objects.bulk_create(list(missing.values()), batch_size=BATCH)
    for k, obj in zip(missing, created, strict=True):
        known[k] = obj.pk
    return known


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _phone(spec: OrgSpec, rng: random.Random) -> str:
    if spec.currency == "EUR":
        return f"+49 40 555 {rng.randint(1000, 9999)}"
    return f"+44 20 7946 0{rng.randint(100, 999)}"  # Ofcom's range reserved for fiction


def seed_records(
    *,
    organization: Organization,
    spec: OrgSpec,
    ous: Sequence[OrganisationalUnit],
    codes: Sequence[BillingCode],
    people: Sequence[str],
    seed: int,
) -> None:
    """Create the organization's practice and billing records that are missing."""
    rng = random.Random(f"{seed}:{spec.slug}:records")
    org_id = organization.pk

    # Clients, unique by name within the organization.
    client_rows: list[dict[str, Any]] = []
    names: set[str] = set()
    for ou in ous:
        for _ in range(spec.clients_per_ou):
            name = f"{rng.choice(spec.client_stems)} {rng.choice(spec.client_suffixes)}"
            while name in names:
                name = f"{rng.choice(spec.client_stems)} {rng.choice(spec.client_suffixes)}"
            names.add(name)
            client_rows.append(
                {
                    "organization_id": org_id,
                    "ou_id": ou.pk,
                    "name": name,
                    "email": f"info@{slugify(name)[:40]}.example",
                    "phone": _phone(spec, rng),
                    "address": f"{rng.randint(1, 220)} {rng.choice(_STREETS)}\n{rng.choice(spec.client_stems)}",
                    "created_at": dt.datetime.combine(
                        ANCHOR_DATE - dt.timedelta(days=rng.randint(400, 1200)), dt.time(10), tzinfo=dt.UTC
                    ),
                }
            )
    clients = ensure_rows(Client, Client.objects.filter(organization=organization), ("name",), client_rows)

    matter_rows: list[dict[str, Any]] = []
    entry_rows: list[dict[str, Any]] = []
    invoice_rows: list[dict[str, Any]] = []
    # Invoice links are resolved after the invoices exist: entry index -> invoice number.
    billed: dict[int, str] = {}
    payment_plans: list[tuple[str, dt.date, Decimal, str]] = []  # invoice number, day, amount, status
    matter_seq = invoice_seq = 0
    for crow in client_rows:
        for _ in range(rng.randint(1, 3)):
            matter_seq += 1
            reference = f"{spec.prefix}-M{matter_seq:05d}"
            opened = ANCHOR_DATE - dt.timedelta(days=rng.randint(20, 900))
            closed = opened + dt.timedelta(days=rng.randint(30, 400)) if rng.random() < 0.3 else None
            if closed and closed > ANCHOR_DATE:
                closed = None
            matter_rows.append(
                {
                    "organization_id": org_id,
                    "ou_id": crow["ou_id"],
                    "client_id": clients[(crow["name"],)],
                    "reference": reference,
                    "title": f"{rng.choice(spec.matter_topics)} - {crow['name'].split(' ')[0]}",
                    "status": Matter.Status.CLOSED if closed else Matter.Status.OPEN,
                    "opened_on": opened,
                    "closed_on": closed,
                }
            )
            last_day = closed or ANCHOR_DATE
            span = max((last_day - opened).days, 1)
            entries: list[dict[str, Any]] = []
            seen: set[tuple[Any, ...]] = set()
            for _ in range(rng.randint(3, 12)):
                code = rng.choice(codes)
                row = {
                    "organization_id": org_id,
                    "matter_ref": reference,
                    "billing_code_id": code.pk,
                    "user_email": rng.choice(people),
                    "worked_on": opened + dt.timedelta(days=rng.randint(0, span)),
                    "minutes": 6 * rng.randint(1, 40),
                    "description": rng.choice(_ACTIVITIES),
                    "rate": code.hourly_rate,
                }
                k = (row["worked_on"], row["user_email"], row["description"])
                if k not in seen:
                    seen.add(k)
                    entries.append(row)
            entries.sort(key=lambda r: r["worked_on"])
            first_index = len(entry_rows)
            entry_rows.extend(entries)
            # Bill what is older than a month, in one or two invoices.
            billable = [i for i, r in enumerate(entries) if r["worked_on"] < ANCHOR_DATE - dt.timedelta(days=30)]
            if not billable or rng.random() > 0.85:
                continue
            parts = 2 if len(billable) > 3 and rng.random() < 0.5 else 1
            cut = len(billable) // parts
            for p in range(parts):
                chunk = billable[p * cut : None if p == parts - 1 else (p + 1) * cut]
                invoice_seq += 1
                number = f"{spec.prefix}-INV-{invoice_seq:05d}"
                issued = max(entries[i]["worked_on"] for i in chunk) + dt.timedelta(days=5)
                due = issued + dt.timedelta(days=30)
                total = _money(
                    sum((Decimal(entries[i]["minutes"]) / 60 * entries[i]["rate"] for i in chunk), Decimal())
                )
                if due < ANCHOR_DATE - dt.timedelta(days=10):
                    status = rng.choices(["paid", "issued", "void"], weights=[80, 15, 5])[0]
                else:
                    status = rng.choice(["issued", "draft"])
                invoice_rows.append(
                    {
                        "organization_id": org_id,
                        "client_id": clients[(crow["name"],)],
                        "matter_ref": reference,
                        "number": number,
                        "issued_on": issued,
                        "due_on": due,
                        "status": status,
                        "currency": spec.currency,
                        "total": total,
                    }
                )
                for i in chunk:
                    billed[first_index + i] = number
                payment_plans.append((number, issued, total, status))

    matters = ensure_rows(Matter, Matter.objects.filter(organization=organization), ("reference",), matter_rows)
    for row in invoice_rows:
        row["matter_id"] = matters[(row.pop("matter_ref"),)]
    invoices = ensure_rows(Invoice, Invoice.objects.filter(organization=organization), ("number",), invoice_rows)
    for index, row in enumerate(entry_rows):
        row["matter_id"] = matters[(row.pop("matter_ref"),)]
        row["invoice_id"] = invoices[(billed[index],)] if index in billed else None
    ensure_rows(
        TimeEntry,
        TimeEntry.objects.filter(organization=organization),
        ("matter_id", "worked_on", "user_email", "description"),
        entry_rows,
    )

    payment_rows: list[dict[str, Any]] = []
    for number, issued, total, status in payment_plans:
        if status == "paid":
            amounts = [total] if rng.random() < 0.8 else [_money(total / 2), total - _money(total / 2)]
        elif status == "issued" and rng.random() < 0.3:
            amounts = [_money(total * Decimal("0.4"))]
        else:
            continue
        day = issued
        for k, amount in enumerate(amounts, start=1):
            day = min(day + dt.timedelta(days=rng.randint(5, 40)), ANCHOR_DATE)
            payment_rows.append(
                {
                    "organization_id": org_id,
                    "invoice_id": invoices[(number,)],
                    "amount": amount,
                    "received_on": day,
                    "method": rng.choices(["bank", "card", "cash"], weights=[80, 18, 2])[0],
                    "reference": f"{number}/{k}",
                }
            )
    ensure_rows(Payment, Payment.objects.filter(organization=organization), ("reference",), payment_rows)
