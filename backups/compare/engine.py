"""Merge two sides' rows in primary-key order into added / removed / changed records.

Direction: from the earlier side (a backup) to the later one (now, or a later backup). *Added*
exists only in the later side, *removed* only in the earlier, *changed* in both with different
field values. Memory stays flat: one row of each side is held at a time (the few models whose
rows are not written in key order, the profile and the regulation catalog, are small and sorted
in memory).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from backups import datasets as ds
from backups.compare.sides import CompareError, Side

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
KINDS = (ADDED, REMOVED, CHANGED)
SHORT_VALUE = 80  # longer values are named, not shown
PROGRESS_EVERY = 500
SORTED_IN_MEMORY = frozenset({"profile", "regulation", "role"})


@dataclass
class Difference:
    dataset: str
    model: str
    kind: str
    pk: int
    title: str
    ref: int | None = None  # the primary key of the row whose label goes before the title
    label: str = ""  # how rows referring to this one name it
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        return [d["field"] for d in self.details]


@dataclass
class CompareResult:
    summary: dict[str, dict[str, dict[str, int]]]  # dataset -> model -> {added, removed, changed}
    counts: dict[str, dict[str, dict[str, int]]]  # dataset -> model -> {earlier, later} rows
    skipped: list[str]  # data sets only one side holds
    rows_done: int  # rows read, both sides together

    def total(self, kind: str) -> int:
        return sum(c[kind] for per in self.summary.values() for c in per.values())


def _short(value: Any) -> bool:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return len(text) <= SHORT_VALUE


class _Fields:
    """How one model's rows are compared: plain values directly; stored files by content hash,
    never by their opaque member name (a version's own ``sha256`` field already covers its file)."""

    def __init__(self, spec: ds.ModelSpec) -> None:
        self.spec = spec
        self.files = () if "sha256" in spec.fields else tuple(spec.files) + (("logo",) if spec.key == "profile" else ())
        skipped = set(spec.files) | {"logo", "id"}
        if spec.exporter is None:
            self.plain: tuple[str, ...] | None = tuple(
                n for n in (*spec.fields, *spec.refs, *spec.user_refs) if n not in skipped
            )
        else:
            self.plain = None  # custom rows: every key they carry
        self.skipped = skipped

    def differences(
        self, before: dict[str, Any], earlier: Side, after: dict[str, Any], later: Side
    ) -> list[dict[str, Any]]:
        names = self.plain
        if names is None:
            names = tuple(sorted((set(before) | set(after)) - self.skipped))
        details = [_detail(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]
        for name in self.files:
            old, new = earlier.file_hash(before.get(name)), later.file_hash(after.get(name))
            if old != new:
                details.append({"field": name, "old": _hash_text(old), "new": _hash_text(new)})
        return details


def _hash_text(digest: str | None) -> str | None:
    return f"file {digest[:12]}…" if digest else None


def _detail(name: str, old: Any, new: Any) -> dict[str, Any]:
    if _short(old) and _short(new):
        return {"field": name, "old": old, "new": new}
    return {"field": name, "long": True}


def _ordered(rows: Iterator[dict[str, Any]], spec: ds.ModelSpec, where: str) -> Iterator[dict[str, Any]]:
    if spec.key in SORTED_IN_MEMORY:
        yield from sorted(rows, key=lambda r: int(r["id"]))
        return
    last: int | None = None
    for row in rows:
        pk = int(row["id"])
        if last is not None and pk <= last:
            raise CompareError(f"The {spec.key} rows of {where} are not in key order; they cannot be compared.")
        last = pk
        yield row


def _title(spec: ds.ModelSpec, row: dict[str, Any]) -> tuple[str, int | None, str]:
    ref = None
    if spec.title_ref is not None:
        value = row.get(spec.title_ref[0])
        ref = int(value) if isinstance(value, int) else None
    return spec.row_title(row)[:300], ref, spec.row_label(row)[:200]


def diff_model(
    dataset: str, spec: ds.ModelSpec, earlier: Side, later: Side, counts: dict[str, int]
) -> Iterator[Difference]:
    """The differences of one model; ``counts`` gets the rows seen on each side."""
    fields = _Fields(spec)
    left = _ordered(earlier.rows(dataset, spec), spec, earlier.description)
    right = _ordered(later.rows(dataset, spec), spec, later.description)
    a = next(left, None)
    b = next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and int(a["id"]) < int(b["id"])):
            assert a is not None  # noqa: S101 - the loop condition
            counts["earlier"] += 1
            yield Difference(dataset, spec.key, REMOVED, int(a["id"]), *_title(spec, a))
            a = next(left, None)
        elif a is None or int(b["id"]) < int(a["id"]):
            counts["later"] += 1
            yield Difference(dataset, spec.key, ADDED, int(b["id"]), *_title(spec, b))
            b = next(right, None)
        else:
            counts["earlier"] += 1
            counts["later"] += 1
            details = fields.differences(a, earlier, b, later)
            if details:
                title, ref, label = _title(spec, b)
                yield Difference(dataset, spec.key, CHANGED, int(b["id"]), title, ref, label, details)
            else:
                yield Difference(dataset, spec.key, "", int(b["id"]), "")  # the same: counted, not kept
            a = next(left, None)
            b = next(right, None)


def compare(
    earlier: Side,
    later: Side,
    *,
    on_difference: Callable[[Difference], None] = lambda d: None,
    progress: Callable[[int], None] = lambda n: None,
) -> CompareResult:
    """Compare every data set both sides hold, model by model, in registry order."""
    theirs = set(later.datasets())
    mine = set(earlier.datasets())
    keys = [k for k in ds.REGISTRY if k in mine and k in theirs]
    skipped = [k for k in ds.REGISTRY if (k in mine) != (k in theirs)]
    summary: dict[str, dict[str, dict[str, int]]] = {}
    counts: dict[str, dict[str, dict[str, int]]] = {}
    done = 0
    for key in keys:
        summary[key] = {}
        counts[key] = {}
        for spec in ds.REGISTRY[key].models:
            tally = dict.fromkeys(KINDS, 0)
            seen = {"earlier": 0, "later": 0}
            for steps, diff in enumerate(diff_model(key, spec, earlier, later, seen), start=1):
                if steps % PROGRESS_EVERY == 0:
                    progress(done + seen["earlier"] + seen["later"])
                if diff.kind:
                    tally[diff.kind] += 1
                    on_difference(diff)
            done += seen["earlier"] + seen["later"]
            summary[key][spec.key] = tally
            counts[key][spec.key] = seen
    progress(done)
    return CompareResult(summary=summary, counts=counts, skipped=skipped, rows_done=done)
