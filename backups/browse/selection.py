"""The records a user picked in a backup (the browse pages, the compare's drill-down), kept in
their session until they preview and restore them. Keys are ``dataset.model`` registry keys'
model part (``client``) with the record's id in the backup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backups import datasets as ds

MAX_RECORDS = 20_000

# Models a selective restore can bring back: plain tenant rows (not the profile, regulations,
# roles, memberships or OU role assignments, which are organization-wide settings).
SELECTABLE = tuple(spec.key for dataset in ds.REGISTRY.values() for spec in dataset.models if spec.queryset is not None)


def _key(backup_id: int) -> str:
    return f"selective-{backup_id}"


def get(session: Any, backup_id: int) -> dict[str, list[int]]:
    return {k: list(v) for k, v in (session.get(_key(backup_id)) or {}).items() if k in SELECTABLE}


def count(session: Any, backup_id: int) -> int:
    return sum(len(v) for v in get(session, backup_id).values())


def add(session: Any, backup_id: int, model: str, ids: Iterable[int]) -> int:
    """Add records; returns how many were new. Unknown models raise ``ValueError``."""
    if model not in SELECTABLE:
        raise ValueError(f"Records of {model} cannot be restored one by one.")
    chosen = get(session, backup_id)
    have = set(chosen.get(model, []))
    new = [i for i in ids if i not in have]
    if sum(len(v) for v in chosen.values()) + len(new) > MAX_RECORDS:
        raise ValueError(f"At most {MAX_RECORDS} records can be picked for one restore.")
    chosen[model] = sorted(have | set(new))
    session[_key(backup_id)] = chosen
    return len(new)


def remove(session: Any, backup_id: int, model: str, ids: Iterable[int]) -> None:
    chosen = get(session, backup_id)
    left = set(chosen.get(model, [])) - set(ids)
    if left:
        chosen[model] = sorted(left)
    else:
        chosen.pop(model, None)
    session[_key(backup_id)] = chosen


def clear(session: Any, backup_id: int) -> None:
    session.pop(_key(backup_id), None)


def parse(values: Iterable[str]) -> dict[str, set[int]]:
    """``model:id`` strings (the form's checkboxes, the command's --records) by model.

    ``dataset.model:id`` is accepted too. Raises ``ValueError`` with a sentence."""
    out: dict[str, set[int]] = {}
    for value in values:
        value = value.strip()
        if not value:
            continue
        key, _, pk = value.rpartition(":")
        model = key.rpartition(".")[2]
        if model not in SELECTABLE or not pk.isdigit():
            raise ValueError(f"“{value}” is not a record that can be restored (expected dataset.model:id).")
        out.setdefault(model, set()).add(int(pk))
    return out
