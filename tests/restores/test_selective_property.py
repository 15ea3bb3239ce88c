"""Property: after random changes (rows and files added, deleted, changed; references re-used),
restoring random picks of a backup (with or without dependants, overwrite on or off, conflicts
skipped or suffixed) makes exactly the planned records equal to the backup's and leaves every
other row and file of the organization, and of another organization, as it was; a record
skipped for a conflict or a missing parent is never half-written.

One backup; each example runs in a savepoint that is rolled back. Examples: the hypothesis
profile ``HYPOTHESIS_PROFILE`` (``ci``: 200, default; ``long``: 5,000)::

    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest tests/restores/test_selective_property.py -n 0
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
from typing import Any

import pytest
from django.db import transaction
from hypothesis import event, given, settings
from hypothesis import strategies as st

from backups import datasets as ds
from backups.browse.selection import SELECTABLE
from organizations import models as om
from restores import engine
from restores.inplace.plan import stream_rows
from tests import factories as f
from tests.restores.conftest import make_backup
from tests.restores.inplace_helpers import rows_by_key
from tests.restores.selective_helpers import restore_selected
from tests.restores.test_inplace_property import KINDS, PROFILE, _pick, mutate

pytestmark = pytest.mark.django_db

OWN_KINDS = ["client_delete", "matter_reuse", "doc_reuse", "version_reuse", "invoice_reuse"]
fresh = itertools.count(1)

picks = st.lists(st.tuples(st.sampled_from(sorted(SELECTABLE)), st.integers(0, 999)), min_size=1, max_size=6)
changes = st.lists(
    st.tuples(st.sampled_from(KINDS + OWN_KINDS * 4), st.integers(0, 999), st.integers(0, 999)), min_size=1, max_size=10
)


def _delete_matter(m: om.Matter) -> None:
    om.TimeEntry.objects.filter(matter=m).delete()
    om.Payment.objects.filter(invoice__matter=m).delete()
    om.TimeEntry.objects.filter(invoice__matter=m).update(invoice=None)
    om.Invoice.objects.filter(matter=m).delete()
    m.delete()


def mutate_more(cast: Any, kind: str, a: int, b: int) -> None:
    """Deletions with dependants, and unique values re-used by new rows (conflicts)."""
    org = cast.org
    n = next(fresh)
    if kind == "client_delete" and (c := _pick(om.Client.objects.filter(organization=org), a)):
        for m in om.Matter.objects.filter(client=c):
            _delete_matter(m)
        om.Payment.objects.filter(invoice__client=c).delete()
        om.TimeEntry.objects.filter(invoice__client=c).update(invoice=None)
        om.Invoice.objects.filter(client=c).delete()
        c.delete()
    elif kind == "matter_reuse" and (m := _pick(om.Matter.objects.filter(organization=org), a)):
        reference, client, ou = m.reference, m.client, m.ou
        _delete_matter(m)
        if b % 2:
            om.Matter.objects.create(
                organization=org, ou=ou, client=client, reference=reference, opened_on=dt.date(2026, 8, 1)
            )
    elif kind == "doc_reuse" and (d := _pick(om.ControlledDocument.objects.filter(organization=org), a)):
        reference, ou = d.reference, d.ou
        d.delete()
        if b % 2:
            om.ControlledDocument.objects.create(organization=org, ou=ou, reference=reference, title=f"Re-used {n}")
    elif kind == "version_reuse" and (
        v := _pick(om.DocumentVersion.objects.filter(document__organization=org).order_by("-number"), a)
    ):
        document, number = v.document, v.number
        v.delete()
        if b % 2:
            mutate_version(document, number, n)
    elif kind == "invoice_reuse" and (i := _pick(om.Invoice.objects.filter(organization=org), a)):
        number, client = i.number, i.client
        om.Payment.objects.filter(invoice=i).delete()
        i.delete()
        if b % 2:
            om.Invoice.objects.create(
                organization=org,
                client=client,
                number=number,
                issued_on=dt.date(2026, 9, 1),
                due_on=dt.date(2026, 9, 30),
                total=b,
            )
    elif kind not in OWN_KINDS:
        mutate(cast, kind, a, b)


def mutate_version(document: om.ControlledDocument, number: int, seed: int) -> None:
    from tests.restores.test_inplace_property import _version

    _version(document, number, seed)


def touch_rows(spec: ds.ModelSpec, organization: Any, pks: set[int]) -> None:
    """Change a plain text (or JSON) field of these rows, if they still exist."""
    from django.db import models

    from restores.inplace.plan import org_rows, unique_fields

    unique = {f for fields in unique_fields(spec.model) for f in fields}
    for name in spec.fields:
        fld = spec.model._meta.get_field(name)
        if name in unique or getattr(fld, "choices", None) or (getattr(fld, "max_length", None) or 99) < 12:
            continue
        if isinstance(fld, models.CharField | models.TextField):
            org_rows(spec, organization).filter(pk__in=pks).update(**{name: f"Touched {next(fresh)}"})
            return
        if isinstance(fld, models.JSONField):
            org_rows(spec, organization).filter(pk__in=pks).update(**{name: {"touched": next(fresh)}})
            return


def backup_rows(backup: Any) -> dict[str, dict[int, dict[str, Any]]]:
    with engine.open_backup(backup) as reader:
        return {
            spec.key: {int(r["id"]): r for r in stream_rows(reader, f"data/{d.key}/{spec.key}.jsonl")}
            for d in ds.REGISTRY.values()
            for spec in d.models
            if spec.key in SELECTABLE
        }


def _spec(key: str) -> ds.ModelSpec:
    return next(s for d in ds.REGISTRY.values() for s in d.models if s.key == key)


def equals_backup(key: str, live: dict[str, Any], row: dict[str, Any], after: dict[str, Any], override: dict) -> None:
    """The live row holds the backup's values (suffixed ones replaced; a nullable reference to a
    row that is not there after the restore is empty; files compared by content)."""
    spec = _spec(key)
    model = spec.model
    for name in spec.fields:
        want = override.get(name, row.get(name))
        assert ds.to_json(live[name]) == want or ds.from_json(model, name, want) == live[name], (key, name)
    for name, target in spec.refs.items():
        attname = model._meta.get_field(name).attname
        want = row.get(name)
        if want is not None and int(want) not in after[target]:
            want = None
        assert live[attname] == want, (key, row["id"], name)
    for name in spec.files:
        assert live[f"{name}__sha256"] == (row.get("sha256") if key == "document_version" else live[f"{name}__sha256"])


def test_a_selective_restore_changes_exactly_the_planned_records(tenant) -> None:  # type: ignore[no-untyped-def]
    other_client = f.ClientFactory(organization=tenant.other_org, ou=tenant.other_org.ous.first())
    f.MatterFactory(organization=tenant.other_org, ou=other_client.ou, client=other_client, reference="M-0")
    backup = make_backup(tenant.org, tenant.owner)
    in_backup = backup_rows(backup)

    seen: collections.Counter[str] = collections.Counter()

    @settings(settings.get_profile(PROFILE))
    @given(
        chosen=picks,
        mutations=changes,
        with_dependants=st.booleans(),
        overwrite=st.booleans(),
        suffix=st.booleans(),
        touch=st.booleans(),
    )
    def example(
        chosen: list[tuple[str, int]],
        mutations: list,
        with_dependants: bool,
        overwrite: bool,
        suffix: bool,
        touch: bool,
    ):  # type: ignore[no-untyped-def]
        savepoint = transaction.savepoint()
        try:
            for kind, a, b in mutations:
                mutate_more(tenant, kind, a, b)
            selection: dict[str, set[int]] = {}
            for key, index in chosen:
                pks = sorted(in_backup[key])
                if pks:
                    selection.setdefault(key, set()).add(pks[index % len(pks)])
            if not selection:
                return
            if touch:  # change the picked records that still exist, so overwriting has work to do
                for key, pks in selection.items():
                    touch_rows(_spec(key), tenant.org, pks)
            before = rows_by_key(tenant.org)
            other_before = rows_by_key(tenant.other_org)
            applied = restore_selected(
                backup,
                selection,
                with_dependants=with_dependants,
                overwrite=overwrite,
                on_conflict="suffix" if suffix else "skip",
            )
            after = rows_by_key(tenant.org)
            assert rows_by_key(tenant.other_org) == other_before
            plan = applied.plan
            event(f"conflicts: {'yes' if plan.conflicts else 'no'}")
            seen["examples"] += 1
            seen["conflicts"] += bool(plan.conflicts)
            for action, n in plan.totals().items():
                seen[action] += bool(n)
            assert not any(applied.new_keys.values()), "keys are free in one database: originals come back"
            written: dict[str, set[int]] = {}
            for item in plan.all_items():
                key, pk = item.key, item.pk
                if item.why == "picked":
                    assert pk in selection[key]
                if item.action in ("create", "overwrite") or (item.action == "unchanged"):
                    written.setdefault(key, set()).add(pk)
                    override = plan.overrides.get(key, {}).get(pk, {})
                    equals_backup(key, after[key][pk], in_backup[key][pk], after, override)
                if item.action == "create":
                    assert pk not in before[key]
                if item.action in ("left", "unchanged", "skip") and pk in before[key]:
                    assert after[key][pk] == before[key][pk], (key, pk, item.action)
                if item.action == "skip":
                    assert item.reason
                    assert pk in before[key] or pk not in after[key], f"skipped {key} #{pk} half-written"
            picked_pairs = {(k, pk) for k, pks in selection.items() for pk in pks}
            assert picked_pairs <= {(i.key, i.pk) for i in plan.all_items()}
            for key, rows in before.items():
                for pk, row in rows.items():
                    assert pk in after[key], f"{key} #{pk} was deleted"
                    if pk not in written.get(key, set()):
                        assert after[key][pk] == row, f"{key} #{pk} was not picked and changed"
                created = set(after[key]) - set(rows)
                assert created <= {i.pk for i in plan.by_action("create") if i.key == key}, key
        finally:
            transaction.savepoint_rollback(savepoint)
            tenant.org.refresh_from_db()

    example()
    print("examples with:", dict(seen))  # shown with -s: how often each case came up
