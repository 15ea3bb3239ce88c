"""When a pending backup starts, as the row and the flash message say it: computed from the beat
schedule of the queue (multiples of BACKUP_QUEUE_INTERVAL since the epoch), or at once."""

from __future__ import annotations

import datetime as dt

import pytest

from backups.models import Backup
from backups.rows import queue_note
from backupsvc.lib.queue import AlignedEvery, next_aligned_run

UTC = dt.UTC


def at(hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, 1, hour, minute, second, tzinfo=UTC)


def test_next_run_is_the_next_quarter_hour() -> None:
    assert next_aligned_run(at(13, 3), 900) == at(13, 15)
    assert next_aligned_run(at(13, 15), 900) == at(13, 30)  # strictly after
    assert next_aligned_run(at(13, 59, 59), 900) == at(14, 0)


def test_beat_schedule_is_due_at_those_times_only() -> None:
    schedule = AlignedEvery(900, nowfun=lambda: at(13, 14, 59))
    due, wait = schedule.is_due(at(13, 1))
    assert not due and wait == pytest.approx(1)
    schedule = AlignedEvery(900, nowfun=lambda: at(13, 15, 0))
    due, wait = schedule.is_due(at(13, 1))
    assert due and wait == pytest.approx(900)


@pytest.mark.parametrize(
    ("now", "note"),
    [
        (at(13, 3), "Starts within about 12 minutes"),
        (at(13, 14, 30), "Starts within a minute"),
        (at(13, 0, 1), "Starts within about 15 minutes"),
    ],
)
def test_pending_row_tells_when_the_queue_runs(settings, now: dt.datetime, note: str) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_DISPATCH_IMMEDIATELY = False
    settings.BACKUP_QUEUE_INTERVAL = 900
    assert queue_note(Backup(created_at=now - dt.timedelta(seconds=1)), now) == note


def test_a_backup_the_last_run_missed_waits_for_a_worker(settings) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_DISPATCH_IMMEDIATELY = False
    settings.BACKUP_QUEUE_INTERVAL = 900
    assert queue_note(Backup(created_at=at(12, 40)), at(13, 3)).startswith("Waiting for a free worker")


def test_immediate_dispatch_starts_now_unless_every_worker_is_busy(settings) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_DISPATCH_IMMEDIATELY = True
    assert queue_note(Backup(created_at=at(13, 2, 50)), at(13, 3)) == "Starting now"
    assert queue_note(Backup(created_at=at(13, 0)), at(13, 3)).startswith("Waiting for a free worker")
