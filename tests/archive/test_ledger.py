"""The writer's off-heap bookkeeping: names stay unique however many members came before."""

from __future__ import annotations

import pytest

from backups.archive.ledger import Ledger, NameSet


def test_a_repeated_name_is_refused_after_many_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NameSet, "_SPILL", 8)  # a sorted run every 8 names
    monkeypatch.setattr(NameSet, "_MAX_RUNS", 3)  # runs merged into one past 3
    names = NameSet()
    assert all(names.add(f"files/{i:05d}") for i in range(100))
    assert len(names._runs) <= 4 and sum(len(run) for run in names._runs) + len(names._recent) == 100
    assert not names.add("files/00003")  # long merged into the sorted array
    assert not names.add("files/00099")  # still among the recent ones
    assert names.add("files/00100")


def test_manifest_entries_are_read_back_in_order_as_one_json_list() -> None:
    ledger = Ledger()
    ledger.record(b"A", {"path": "files/a", "size": 1, "sha256": "0" * 64})
    ledger.record(b"M", None)  # the manifest's own header: not listed
    ledger.record(b"B", {"path": "files/ü", "size": 2, "sha256": "1" * 64})
    listed = b"[" + b"".join(ledger.manifest_members()) + b"]"
    assert listed.decode() == (
        '[{"path":"files/a","size":1,"sha256":"'
        + "0" * 64
        + '"},{"path":"files/ü","size":2,"sha256":"'
        + "1" * 64
        + '"}]'
    )
    assert b"".join(ledger.central_blocks(2)) == b"AMB"
    assert ledger.count == 3
    ledger.close()
