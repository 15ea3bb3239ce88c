"""Planning a selective restore (read-only): which records come back, how, and what clashes.

Memory: the picked records' rows (with their needs and dependants) and sets of keys; the
archive's members are streamed, one pass per model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models

from backups import datasets as ds
from backups.browse.selection import SELECTABLE
from organizations.models import Organization
from restores.inplace.plan import chunks, member_of, org_rows, stream_rows, unique_fields

CREATE, OVERWRITE, UNCHANGED, LEFT, SKIP = "create", "overwrite", "unchanged", "left", "skip"
SUFFIX = "restored"


class SelectionError(Exception):
    """The selection cannot be planned (a record not in the backup); a sentence."""


@dataclass
class Item:
    key: str
    pk: int
    title: str
    why: str  # "picked", "needed", "dependant"
    action: str = CREATE
    reason: str = ""
    label: str = ""  # the model's name, for people ("document version")


@dataclass
class Conflict:
    key: str
    pk: int
    title: str
    what: str  # "matter reference “M-1”"
    suffixed: str | None  # the value it would get, or None when only skipping is possible
    choice: str = "skip"

    @property
    def id(self) -> str:
        return f"{self.key}:{self.pk}"


@dataclass
class SelectivePlan:
    specs: list[tuple[str, ds.ModelSpec]]
    items: dict[str, dict[int, Item]] = field(default_factory=dict)
    rows: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    live: dict[str, set[int]] = field(default_factory=dict)  # live keys the plan touches or needs
    conflicts: list[Conflict] = field(default_factory=list)
    overrides: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def all_items(self) -> Iterator[Item]:
        for _dataset, spec in self.specs:
            yield from self.items.get(spec.key, {}).values()

    def by_action(self, action: str) -> list[Item]:
        return [item for item in self.all_items() if item.action == action]

    def to_write(self, key: str) -> dict[int, dict[str, Any]]:
        """Keys of ``key`` rows to apply, with their replaced values (suffixed unique values)."""
        return {
            pk: self.overrides.get(key, {}).get(pk, {})
            for pk, item in self.items.get(key, {}).items()
            if item.action in (CREATE, OVERWRITE)
        }

    def record_list(self) -> list[dict[str, Any]]:
        """Every record and what happens to it (for the audit log and the restore's record)."""
        return [
            {"model": i.key, "id": i.pk, "title": i.title, "action": i.action, "why": i.why, "reason": i.reason}
            for i in self.all_items()
        ]

    def totals(self) -> dict[str, int]:
        out = {CREATE: 0, OVERWRITE: 0, UNCHANGED: 0, LEFT: 0, SKIP: 0}
        for item in self.all_items():
            out[item.action] += 1
        return out


def selectable_specs(reader: Any) -> list[tuple[str, ds.ModelSpec]]:
    """(data set, spec) of the models a selective restore handles, present in the archive, in
    dependency order."""
    names = set(reader.names)
    return [
        (dataset.key, spec)
        for dataset in ds.REGISTRY.values()
        for spec in dataset.models
        if spec.key in SELECTABLE and member_of(dataset.key, spec) in names
    ]


def _required(spec: ds.ModelSpec, name: str) -> bool:
    return not spec.model._meta.get_field(name).null


def _live_keys(spec: ds.ModelSpec, organization: Organization, pks: set[int]) -> set[int]:
    found: set[int] = set()
    for batch in chunks(sorted(pks)):
        found.update(org_rows(spec, organization).filter(pk__in=batch).values_list("pk", flat=True))
    return found


def plan_selective(
    *,
    organization: Organization,
    reader: Any,
    picks: Mapping[str, set[int]],
    with_dependants: bool,
    overwrite: bool,
    choices: Mapping[str, str] | None = None,
    on_conflict: str = "skip",
) -> SelectivePlan:
    """What restoring ``picks`` (model key -> ids in the backup) would do. Writes nothing."""
    choices = choices or {}
    specs = selectable_specs(reader)
    plan = SelectivePlan(specs=specs)
    by_key = {spec.key: (dataset, spec) for dataset, spec in specs}
    wanted: dict[str, dict[int, str]] = {key: {} for key in by_key}
    for key, ids in picks.items():
        if key not in by_key:
            raise SelectionError(f"The backup holds no {key.replace('_', ' ')} records to restore.")
        for pk in ids:
            wanted[key][int(pk)] = "picked"

    if with_dependants:  # parents come first in the registry: one pass in order follows chains
        for dataset, spec in specs:
            required = [(n, t) for n, t in spec.refs.items() if t in wanted and _required(spec, n)]
            if not required or not any(wanted[t] for _, t in required):
                continue
            for row in stream_rows(reader, member_of(dataset, spec)):
                pk = int(row["id"])
                if pk not in wanted[spec.key] and any(
                    row.get(n) is not None and int(row[n]) in wanted[t] for n, t in required
                ):
                    wanted[spec.key][pk] = "dependant"

    # Children before parents: a record's rows, then the parents it needs that are gone.
    missing_parent: dict[str, dict[int, str]] = {}
    for dataset, spec in reversed(specs):
        keys = wanted[spec.key]
        if not keys:
            continue
        rows: dict[int, dict[str, Any]] = {}
        for row in stream_rows(reader, member_of(dataset, spec)):
            if int(row["id"]) in keys:
                rows[int(row["id"])] = row
        absent = set(keys) - set(rows)
        if absent:
            raise SelectionError(
                f"The backup holds no {spec.key.replace('_', ' ')} with id {', '.join(map(str, sorted(absent)))}."
            )
        plan.rows[spec.key] = rows
        plan.live[spec.key] = plan.live.get(spec.key, set()) | _live_keys(spec, organization, set(rows))
        for name, target in spec.refs.items():
            targets = {int(r[name]) for r in rows.values() if r.get(name) is not None}
            if not targets or target not in by_key:
                continue
            live = _live_keys(by_key[target][1], organization, targets)
            plan.live[target] = plan.live.get(target, set()) | live
            if not _required(spec, name):
                continue
            for row in rows.values():
                value = row.get(name)
                if value is None or int(value) in live or int(value) in wanted[target]:
                    continue
                wanted[target][int(value)] = "needed"
        for name, target in spec.refs.items():
            if target in by_key or not _required(spec, name):
                continue
            # A required parent of a model that is not in the backup (an OU of a partial backup).
            live = _live_keys(_spec_of(target), organization, {int(r[name]) for r in rows.values() if r.get(name)})
            plan.live[target] = plan.live.get(target, set()) | live
            for pk, row in rows.items():
                if row.get(name) is not None and int(row[name]) not in live:
                    missing_parent.setdefault(spec.key, {})[pk] = (
                        f"its {name} no longer exists and is not in the backup"
                    )

    # Parents first: decide each record, skipping those whose required parent cannot be there.
    planned_values: dict[str, set[tuple[Any, ...]]] = {}
    for _dataset, spec in specs:
        rows = plan.rows.get(spec.key, {})
        if not rows:
            continue
        items = plan.items.setdefault(spec.key, {})
        titles = _titles(plan, spec, rows, organization)
        holders = _unique_holders(spec, organization, rows)
        for pk, row in sorted(rows.items()):
            item = Item(spec.key, pk, titles[pk], wanted[spec.key][pk], label=str(spec.model._meta.verbose_name))
            items[pk] = item
            reason = missing_parent.get(spec.key, {}).get(pk) or _parent_problem(plan, spec, row)
            if reason:
                item.action, item.reason = SKIP, reason
                continue
            if pk in plan.live[spec.key]:
                item.action = (
                    OVERWRITE if overwrite and _changed(spec, organization, row) else (UNCHANGED if overwrite else LEFT)
                )
            if item.action in (CREATE, OVERWRITE):
                _check_unique(plan, spec, organization, item, row, choices, on_conflict, planned_values, holders)
    return plan


def _spec_of(key: str) -> ds.ModelSpec:
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            if spec.key == key:
                return spec
    raise LookupError(key)


def _titles(
    plan: SelectivePlan, spec: ds.ModelSpec, rows: dict[int, dict[str, Any]], organization: Organization
) -> dict[int, str]:
    titles = {pk: spec.row_title(row) for pk, row in rows.items()}
    if spec.title_ref is None:
        return titles
    ref_field, target = spec.title_ref
    target_spec = _spec_of(target)
    labels = {pk: target_spec.row_label(row) for pk, row in plan.rows.get(target, {}).items()}
    for pk, row in rows.items():
        ref = row.get(ref_field)
        label = labels.get(int(ref)) if ref is not None else None
        if label is None and ref is not None:
            label = _live_label(target_spec, organization, int(ref))
        titles[pk] = f"{label or ''} {titles[pk]}".strip()
    return titles


def _live_label(spec: ds.ModelSpec, organization: Organization, pk: int) -> str | None:
    values = org_rows(spec, organization).filter(pk=pk).values(*spec.fields).first()
    if values is None:
        return None
    return spec.row_label({k: ds.to_json(v) for k, v in values.items()})


def _parent_problem(plan: SelectivePlan, spec: ds.ModelSpec, row: dict[str, Any]) -> str:
    """Why a record cannot come back: a required parent that is skipped (and not live)."""
    for name, target in spec.refs.items():
        value = row.get(name)
        if value is None or not _required(spec, name):
            continue
        value = int(value)
        if value in plan.live.get(target, set()):
            continue
        parent = plan.items.get(target, {}).get(value)
        if parent is None:
            return f"its {name} #{value} no longer exists and is not in the backup"
        if parent.action == SKIP:
            return f"its {name} “{parent.title}” is skipped"
    return ""


def _changed(spec: ds.ModelSpec, organization: Organization, row: dict[str, Any]) -> bool:
    """Whether the live row differs from the backup's (fields, references, users, file hash)."""
    model = spec.model
    attnames = [model._meta.get_field(n).attname for n in spec.refs]
    users = [f"{n}__email" for n in spec.user_refs]
    columns = [*spec.fields, *attnames, *users]
    live = org_rows(spec, organization).filter(pk=int(row["id"])).values_list(*columns).first()
    if live is None:
        return True
    wanted = [ds.from_json(model, n, row.get(n)) for n in spec.fields]
    wanted += [None if row.get(n) is None else int(row[n]) for n in spec.refs]
    wanted += [row.get(n) for n in spec.user_refs]
    return list(live) != wanted


def _unique_holders(
    spec: ds.ModelSpec, organization: Organization, rows: dict[int, dict[str, Any]]
) -> dict[tuple[str, ...], dict[tuple[Any, ...], set[int]]]:
    """Per unique constraint: the live rows holding the values these backup rows carry (one
    query per constraint and chunk, not one per row)."""
    model = spec.model
    found: dict[tuple[str, ...], dict[tuple[Any, ...], set[int]]] = {}
    for fields in unique_fields(model):
        attnames = [model._meta.get_field(f).attname for f in fields]
        holders: dict[tuple[Any, ...], set[int]] = {}
        firsts = sorted({r.get(fields[0]) for r in rows.values() if r.get(fields[0]) is not None}, key=str)
        for batch in chunks(firsts):
            qs = org_rows(spec, organization).filter(**{f"{attnames[0]}__in": batch})
            for pk, *values in qs.values_list("pk", *attnames):
                holders.setdefault(tuple(values), set()).add(pk)
        found[fields] = holders
    return found


def _check_unique(
    plan: SelectivePlan,
    spec: ds.ModelSpec,
    organization: Organization,
    item: Item,
    row: dict[str, Any],
    choices: Mapping[str, str],
    on_conflict: str,
    planned: dict[str, set[tuple[Any, ...]]],
    holders: dict[tuple[str, ...], dict[tuple[Any, ...], set[int]]],
) -> None:
    model = spec.model
    for fields in unique_fields(model):
        refs = [f for f in fields if f in spec.refs]
        if any(row.get(f) is None or int(row[f]) not in plan.live.get(spec.refs[f], set()) for f in refs):
            continue  # the row goes under a parent that is re-created: no live row can clash
        values = tuple(int(row[f]) if f in refs else row.get(f) for f in fields)
        clash = bool(holders.get(fields, {}).get(values, set()) - {item.pk})
        planned.setdefault(spec.key, set())
        if not clash and values not in planned[spec.key]:
            planned[spec.key].add(values)
            continue
        plain = [f for f in fields if f not in refs]
        what = " and ".join(f"{model._meta.get_field(f).verbose_name} “{row.get(f)}”" for f in plain)
        suffixable = len(plain) == 1 and isinstance(model._meta.get_field(plain[0]), models.CharField)
        suffixed = _suffixed(spec, organization, plain[0], str(row.get(plain[0])), planned) if suffixable else None
        conflict = Conflict(spec.key, item.pk, item.title, f"{what} is now used by another record", suffixed)
        conflict.choice = choices.get(conflict.id, on_conflict)
        if conflict.choice == "suffix" and suffixed is not None:
            plan.overrides.setdefault(spec.key, {}).setdefault(item.pk, {})[plain[0]] = suffixed
            planned[spec.key].add((suffixed,))
            item.reason = f"restored as “{suffixed}”"
        else:
            conflict.choice = "skip"
            item.action, item.reason = SKIP, f"its {what} is now used by another record"
        plan.conflicts.append(conflict)
        if item.action == SKIP:
            return


def _suffixed(spec: ds.ModelSpec, organization: Organization, name: str, value: str, planned: dict[str, Any]) -> str:
    max_length = spec.model._meta.get_field(name).max_length or 255
    n = 1
    while True:
        tail = f"-{SUFFIX}" if n == 1 else f"-{SUFFIX}-{n}"
        candidate = value[: max_length - len(tail)] + tail
        taken = org_rows(spec, organization).filter(**{name: candidate}).exists()
        if not taken and (candidate,) not in planned.get(spec.key, set()):
            return candidate
        n += 1
