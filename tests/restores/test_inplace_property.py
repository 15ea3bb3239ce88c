"""Property: for random backup scopes (data sets by OUs by document-status filters) and random
changes made after the backup (rows and files added, deleted and changed in every data set
and OU, documents moved between OUs, statuses changed), the scope-exact in-place restore
leaves every row and file outside the scope as it was (primary keys, every column and the
files' bytes) and makes the scope equal to the backup.

Examples share one organization: each runs in a savepoint that is rolled back. The number
of examples comes from the hypothesis profile ``HYPOTHESIS_PROFILE``: ``ci`` (default, 200
examples, about a minute on SQLite) or ``long`` (5,000 examples)::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/restores/test_inplace_property.py -n 0
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from accounts.models import Membership, OURoleAssignment, Role
from backups import datasets as ds
from organizations import models as om
from restores import engine
from restores.inplace.plan import manifest_scope, scope_rows, stream_rows
from tests import factories as f
from tests.restores.conftest import make_backup
from tests.restores.inplace_helpers import restore_in_place, rows_by_key

pytestmark = pytest.mark.django_db

PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]  # no "explain": slow here
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), phases=PHASES, derandomize=False
)
settings.register_profile(
    "dev",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=PHASES,
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck), phases=PHASES
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

# Valid in-place scopes: the structure data set goes with every data set that depends on it.
WHOLE_ORG = ["profile", "settings", "regulations"]  # templates: billing depends on them
WITH_STRUCTURE = ["structure", "users", "documents", "clients", "billing", "templates"]
STATUSES = ["active", "inactive", "superseded"]
KINDS = [
    "doc_add",
    "doc_delete",
    "doc_title",
    "doc_status",
    "doc_move",
    "version_file",
    "version_add",
    "version_delete",
    "client_add",
    "client_rename",
    "client_move",
    "matter_add",
    "matter_title",
    "invoice_add",
    "invoice_total",
    "invoice_delete",
    "payment_add",
    "payment_delete",
    "entry_add",
    "entry_minutes",
    "entry_delete",
    "template_add",
    "template_rename",
    "template_delete",
    "setting_add",
    "setting_change",
    "setting_delete",
    "code_add",
    "code_rate",
    "ou_add",
    "ou_rename",
    "facility_add",
    "role_add",
    "ou_role_add",
    "ou_role_delete",
    "member_role",
    "profile_description",
    "logo_change",
    "regulation_toggle",
]


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        datasets = WITH_STRUCTURE + draw(st.lists(st.sampled_from(["profile", "settings", "regulations"]), unique=True))
        ous = draw(st.sampled_from(["all", "a", "b"]))
    else:
        datasets = draw(st.lists(st.sampled_from(WHOLE_ORG), min_size=1, unique=True))
        ous = "all"
    statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=1, unique=True))
    return {"datasets": datasets, "ous": ous, "statuses": statuses}


mutations = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 999), st.integers(0, 999)), min_size=1, max_size=12
)
fresh = itertools.count(1)


def _pick(qs: Any, index: int) -> Any:
    rows = list(qs.order_by("pk"))
    return rows[index % len(rows)] if rows else None


def _content(seed: int) -> bytes:
    return f"content {seed} ".encode() * 20 + os.urandom(16)


def _version(doc: om.ControlledDocument, number: int, seed: int) -> None:
    data = _content(seed)
    v = om.DocumentVersion(
        document=doc, number=number, filename=f"v{number}.txt", size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    v.file.save("x", ContentFile(data), save=False)
    v.save()


def mutate(cast: Any, kind: str, a: int, b: int) -> None:
    org = cast.org
    n = next(fresh)
    ous = list(om.OrganisationalUnit.objects.filter(organization=org).order_by("pk"))
    ou = ous[a % len(ous)]
    docs = om.ControlledDocument.objects.filter(organization=org)
    if kind == "doc_add":
        doc = om.ControlledDocument.objects.create(
            organization=org, ou=ou, reference=f"NEW-{n}", title=f"New {n}", status=STATUSES[b % 3]
        )
        _version(doc, 1, n)
    elif kind == "doc_delete" and (doc := _pick(docs, a)):
        doc.delete()
    elif kind == "doc_title" and (doc := _pick(docs, a)):
        docs.filter(pk=doc.pk).update(title=f"Retitled {n}")
    elif kind == "doc_status" and (doc := _pick(docs, a)):
        docs.filter(pk=doc.pk).update(status=STATUSES[b % 3])
    elif kind == "doc_move" and (doc := _pick(docs, b)):
        docs.filter(pk=doc.pk).update(ou=ou)
    elif kind == "version_file" and (v := _pick(om.DocumentVersion.objects.filter(document__organization=org), a)):
        data = _content(n)
        v.file.save("x", ContentFile(data), save=False)
        v.size, v.sha256 = len(data), hashlib.sha256(data).hexdigest()
        v.save()
    elif kind == "version_add" and (doc := _pick(docs, a)):
        _version(doc, 100 + n, n)
    elif kind == "version_delete" and (v := _pick(om.DocumentVersion.objects.filter(document__organization=org), a)):
        v.delete()
    elif kind == "client_add":
        om.Client.objects.create(organization=org, ou=ou, name=f"Client {n}")
    elif kind == "client_rename" and (c := _pick(om.Client.objects.filter(organization=org), b)):
        om.Client.objects.filter(pk=c.pk).update(name=f"Renamed {n}")
    elif kind == "client_move" and (c := _pick(om.Client.objects.filter(organization=org), b)):
        om.Client.objects.filter(pk=c.pk).update(ou=ou)
    elif kind == "matter_add" and (c := _pick(om.Client.objects.filter(organization=org), b)):
        om.Matter.objects.create(
            organization=org, ou=c.ou, client=c, reference=f"M-{n}", title="New", opened_on=dt.date(2026, 1, 1)
        )
    elif kind == "matter_title" and (m := _pick(om.Matter.objects.filter(organization=org), a)):
        om.Matter.objects.filter(pk=m.pk).update(title=f"Retitled {n}", status="closed")
    elif kind == "invoice_add" and (m := _pick(om.Matter.objects.filter(organization=org), a)):
        om.Invoice.objects.create(
            organization=org,
            client=m.client,
            matter=m if b % 2 else None,
            number=f"INV-{n}",
            issued_on=dt.date(2026, 6, 1),
            due_on=dt.date(2026, 6, 30),
            total=Decimal(b),
        )
    elif kind == "invoice_total" and (i := _pick(om.Invoice.objects.filter(organization=org), a)):
        om.Invoice.objects.filter(pk=i.pk).update(total=Decimal(b) / 4, status="paid")
    elif kind == "invoice_delete" and (i := _pick(om.Invoice.objects.filter(organization=org), a)):
        i.delete()
    elif kind == "payment_add" and (i := _pick(om.Invoice.objects.filter(organization=org), a)):
        om.Payment.objects.create(organization=org, invoice=i, amount=Decimal(b), received_on=dt.date(2026, 7, 1))
    elif kind == "payment_delete" and (p := _pick(om.Payment.objects.filter(organization=org), a)):
        p.delete()
    elif kind == "entry_add" and (m := _pick(om.Matter.objects.filter(organization=org), a)):
        # Any invoice, even one of another OU's client: references may cross the scope.
        invoice = _pick(om.Invoice.objects.filter(organization=org), b)
        om.TimeEntry.objects.create(
            organization=org,
            matter=m,
            invoice=invoice,
            user_email="x@acme.test",
            worked_on=dt.date(2026, 7, 2),
            minutes=b,
        )
    elif kind == "entry_minutes" and (t := _pick(om.TimeEntry.objects.filter(organization=org), a)):
        om.TimeEntry.objects.filter(pk=t.pk).update(minutes=b, description=f"Changed {n}")
    elif kind == "entry_delete" and (t := _pick(om.TimeEntry.objects.filter(organization=org), a)):
        t.delete()
    elif kind == "template_add":
        om.Template.objects.create(organization=org, name=f"Template {n}", body="x" * b)
    elif kind == "template_rename" and (t := _pick(om.Template.objects.filter(organization=org), a)):
        om.Template.objects.filter(pk=t.pk).update(name=f"Renamed {n}")
    elif kind == "template_delete" and (t := _pick(om.Template.objects.filter(organization=org), a)):
        t.delete()
    elif kind == "setting_add":
        om.OrganizationSetting.objects.create(organization=org, key=f"added.{n}", value={"n": b})
    elif kind == "setting_change" and (s := _pick(om.OrganizationSetting.objects.filter(organization=org), a)):
        om.OrganizationSetting.objects.filter(pk=s.pk).update(value=[b, "changed"])
    elif kind == "setting_delete" and (s := _pick(om.OrganizationSetting.objects.filter(organization=org), a)):
        s.delete()
    elif kind == "code_add":
        om.BillingCode.objects.create(organization=org, code=f"C{n}", description="new", hourly_rate=Decimal(b))
    elif kind == "code_rate" and (c := _pick(om.BillingCode.objects.filter(organization=org), a)):
        om.BillingCode.objects.filter(pk=c.pk).update(hourly_rate=Decimal(b) + Decimal("0.5"))
    elif kind == "ou_add":
        om.OrganisationalUnit.objects.create(organization=org, name=f"OU {n}", code=f"OU{n}")
    elif kind == "ou_rename":
        om.OrganisationalUnit.objects.filter(pk=ou.pk).update(name=f"Renamed {n}")
    elif kind == "facility_add":
        site = om.Facility.objects.create(organization=org, name=f"Site {n}", code=f"S{n}")
        om.OrganisationalUnit.objects.filter(pk__in=[ou.pk, ous[b % len(ous)].pk]).update(facility=site)
    elif kind == "role_add":
        Role.objects.create(organization=org, name=f"Role {n}")
    elif kind == "ou_role_add":
        role = _pick(Role.objects.filter(organization=org), b)
        if role is not None:
            OURoleAssignment.objects.get_or_create(user=cast.member, ou=ou, role=role)
    elif kind == "ou_role_delete" and (r := _pick(OURoleAssignment.objects.filter(ou__organization=org), a)):
        r.delete()
    elif kind == "member_role":
        Membership.objects.filter(organization=org, user=cast.member).update(role=["admin", "member"][b % 2])
    elif kind == "profile_description":
        om.Organization.objects.filter(pk=org.pk).update(description=f"Changed {n}")
    elif kind == "logo_change":
        org.logo.save("logo", ContentFile(_content(n)))
    elif kind == "regulation_toggle":
        reg = _pick(om.Regulation.objects.filter(master_data_version=org.master_data_version), a)
        if reg is not None and org.regulations.filter(pk=reg.pk).exists():
            org.regulations.remove(reg)
        elif reg is not None:
            org.regulations.add(reg)


# Columns a backup does not carry (a re-created row gets the model's default).
NOT_CARRIED = ("file", "logo", "created_at")
CARRIES_CREATED_AT = ("profile", "document", "document_version", "client")


def _as_backed_up(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as the backup defines it: a re-stored file has a new name but the same bytes;
    memberships and OU role assignments travel without their creation time."""
    dropped = ("file", "logo") if key in CARRIES_CREATED_AT else NOT_CARRIED
    return {k: v for k, v in row.items() if k not in dropped}


def backed_up(backup: Any) -> tuple[ds.Scope, list[str], dict[str, set[int]]]:
    """The backup's scope, data sets and primary keys per model, read from its archive."""
    with engine.open_backup(backup) as reader:
        keys = reader.manifest["scope"]["datasets"]
        pks = {
            spec.key: {int(r["id"]) for r in stream_rows(reader, f"data/{key}/{spec.key}.jsonl")}
            for key in keys
            for spec in ds.REGISTRY[key].models
        }
        return manifest_scope(reader.manifest), keys, pks


def in_scope_before(cast: Any, scope: ds.Scope, keys: list[str], in_backup: dict[str, set[int]]) -> dict[str, set[int]]:
    """Rows in the backup's scope before the restore, by the registry's querysets (and the
    rows of in-scope parents): the only rows the restore may delete."""
    found: dict[str, set[int]] = {}
    for key in keys:
        for spec in ds.REGISTRY[key].models:
            if spec.key in ("profile", "regulation"):
                continue
            pks = set(scope_rows(spec, cast.org, scope).values_list("pk", flat=True))
            if spec.parent:
                target = spec.refs[spec.parent]
                parents = found[target] | in_backup[target]
                attname = spec.model._meta.get_field(spec.parent).attname
                pks |= set(spec.model.objects.filter(**{f"{attname}__in": parents}).values_list("pk", flat=True))
            found[spec.key] = pks
    return found


def check(
    cast: Any,
    keys: list[str],
    in_backup: dict[str, set[int]],
    in_scope: dict[str, set[int]],
    at_backup: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    replaced: Any,
) -> None:
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            key = spec.key
            if dataset.key not in keys:
                assert after[key] == before[key], f"{key} is outside the backup and changed"
                continue
            if key == "profile":
                assert _as_backed_up(key, after[key][cast.org.pk]) == _as_backed_up(key, at_backup[key][cast.org.pk])
                continue
            if key == "regulation":
                assert set(after[key]) == set(at_backup[key])
                continue
            backed = in_backup[key]
            for pk in backed:
                assert pk in after[key], f"{key} #{pk} of the backup did not come back"
                assert _as_backed_up(key, after[key][pk]) == _as_backed_up(key, at_backup[key][pk]), (key, pk)
            kept = 0
            for pk, row in before[key].items():
                if pk in backed:
                    continue
                if pk in after[key]:
                    # Outside the backup: as it was, file names and bytes included.
                    assert after[key][pk] == row, f"{key} #{pk} outside the backup changed"
                    kept += pk in in_scope[key]
                else:
                    assert pk in in_scope[key], f"{key} #{pk} outside the scope was deleted"
            assert kept == sum((replaced.kept.get(key) or {}).values()), key
            assert set(after[key]) <= backed | set(before[key]), f"{key}: rows from nowhere"


def test_the_restore_touches_exactly_the_backups_scope(tenant) -> None:  # type: ignore[no-untyped-def]
    for extra in range(3):
        f.RegulationFactory(master_data_version=tenant.org.master_data_version, code=f"EXTRA-{extra}")

    @settings(settings.get_profile(PROFILE))
    @given(scope=scopes(), changes=mutations)
    def example(scope: dict[str, Any], changes: list[tuple[str, int, int]]) -> None:
        savepoint = transaction.savepoint()
        try:
            ous = {"all": [], "a": [tenant.ou_a], "b": [tenant.ou_b]}[scope["ous"]]
            backup = make_backup(
                tenant.org,
                tenant.owner,
                datasets=scope["datasets"],
                ous=ous,
                include_active="active" in scope["statuses"],
                include_inactive="inactive" in scope["statuses"],
                exclude_superseded="superseded" not in scope["statuses"],
            )
            at_backup = rows_by_key(tenant.org)
            for kind, a, b in changes:
                mutate(tenant, kind, a, b)
            tenant.org.refresh_from_db()
            before = rows_by_key(tenant.org)
            backup_scope, keys, in_backup = backed_up(backup)
            in_scope = in_scope_before(tenant, backup_scope, keys, in_backup)
            replaced = restore_in_place(backup, verify=False, remove_old_files=False)
            tenant.org.refresh_from_db()
            after = rows_by_key(tenant.org)
            check(tenant, keys, in_backup, in_scope, at_backup, before, after, replaced)
        finally:
            transaction.savepoint_rollback(savepoint)
            tenant.org.refresh_from_db()

    example()
