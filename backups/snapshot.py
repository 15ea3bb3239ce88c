"""A logical, key-free picture of an organization's data, to compare two organizations.

Primary keys differ after a restore, so every reference is replaced by the canonical form of
the row it points to, and every stored file by its content's SHA-256. Two organizations hold
"the same data" when their snapshots are equal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.files.storage import Storage, default_storage

from backups import datasets as ds
from organizations.models import Organization

# Fields that legitimately differ between an organization and its restored copy.
PROFILE_IGNORED = ("id", "slug", "name", "created_at")


def _file_digest(storage: Storage, name: str | None) -> str | None:
    if not name:
        return None
    digest = hashlib.sha256()
    with storage.open(name, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def logical_snapshot(
    organization: Organization,
    *,
    datasets: list[str] | None = None,
    storage: Storage | None = None,
    skip: tuple[str, ...] = ("membership",),
) -> dict[str, list[str]]:
    """Every row of the organization's data sets in canonical, key-free form, sorted."""
    storage = storage or default_storage
    scope = ds.Scope(include_active=True, include_inactive=True, exclude_superseded=False)
    canonical: dict[str, dict[int, Any]] = {}
    snapshot: dict[str, list[str]] = {}
    for key in ds.resolve(datasets):
        for spec in ds.REGISTRY[key].models:
            if spec.key in skip:
                continue
            forms: dict[int, Any] = {}
            for row in spec.rows(organization, scope):
                row = dict(row)
                pk = row.pop("id")
                if spec.key == "profile":
                    for name in PROFILE_IGNORED:
                        row.pop(name, None)
                    row["logo"] = _file_digest(storage, row.get("logo"))
                for name, target in spec.refs.items():
                    row[name] = canonical.get(target, {}).get(row[name]) if row[name] is not None else None
                if spec.key == "ou_role":
                    row["ou"] = canonical.get("ou", {}).get(row["ou"])
                    row["role"] = canonical.get("role", {}).get(row["role"]) if row["role"] else None
                for name in spec.files:
                    row[name] = _file_digest(storage, row.get(name))
                form = json.dumps(row, sort_keys=True, default=str)
                forms[pk] = form
            canonical[spec.key] = forms
            snapshot[spec.key] = sorted(forms.values())
    return snapshot
