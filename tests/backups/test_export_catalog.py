"""The archive's catalog (index.csv) names every version by its document; the documents are
looked up in batches with one SQL statement, whatever each batch holds, so a large tenant's
worker does not keep a prepared statement per batch (SQLite's driver caches up to 128 of them
per connection: about 7 MB of an 8 GiB tenant's peak)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.db import connection

from backups import datasets as ds
from backups import export
from backups.archive import ArchiveReader
from organizations.models import ControlledDocument

pytestmark = pytest.mark.django_db

PASSWORD = "a-password-for-the-test"


def test_catalog_titles_every_version_with_the_same_statement_for_every_batch(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # 8 versions of 6 documents in pk order (A0-1 and A1-1 have two): two versions a batch
    # name one document in some batches and two in others.
    monkeypatch.setattr(export, "TITLE_BATCH", 2)
    table = ControlledDocument._meta.db_table
    lookups: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("SELECT") and f'FROM "{table}" WHERE "{table}"."id" IN (' in sql:
            lookups.append(sql)
        return execute(sql, params, many, context)

    sink = io.BytesIO()
    with connection.execute_wrapper(record):
        export.write_archive(
            organization=tenant.org,
            scope=ds.Scope(include_inactive=True),
            datasets=["documents"],
            sink=sink,
            password=PASSWORD,
        )
    assert len(lookups) == 4
    assert len(set(lookups)) == 1, lookups

    sink.seek(0)
    with ArchiveReader(sink, PASSWORD).open("index.csv") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read().decode("utf-8-sig"))))
    assert sorted((r["title"], r["version"], r["status"]) for r in rows) == [
        ("A0-1 Procedure A0-1", "1", "active"),
        ("A0-1 Procedure A0-1", "2", "active"),
        ("A0-2 Procedure A0-2", "1", "inactive"),
        ("A0-3 Procedure A0-3", "1", "superseded"),
        ("A1-1 Procedure A1-1", "1", "active"),
        ("A1-1 Procedure A1-1", "2", "active"),
        ("A1-2 Procedure A1-2", "1", "inactive"),
        ("A1-3 Procedure A1-3", "1", "superseded"),
    ]
    assert {r["ou"] for r in rows} == {tenant.ou_a.name, tenant.ou_b.name}
