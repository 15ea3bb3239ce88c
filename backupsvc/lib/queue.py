"""When the backup queue runs next, computed the same way beat schedules it.

Beat runs ``backups.tasks.process_queue`` at every multiple of ``BACKUP_QUEUE_INTERVAL`` seconds
since the Unix epoch (``AlignedEvery``), not "every N seconds since beat started", so the page
can tell a requester when their backup starts without asking beat: with the default 15 minutes
that is :00, :15, :30 and :45 of every hour.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from celery.schedules import schedstate
from celery.schedules import schedule as celery_schedule


def next_aligned_run(now: dt.datetime, interval: float) -> dt.datetime:
    """The first multiple of ``interval`` seconds since the epoch strictly after ``now``."""
    stamp = now.timestamp()
    slot = math.floor(stamp / interval) + 1
    return dt.datetime.fromtimestamp(slot * interval, tz=dt.UTC)


class AlignedEvery(celery_schedule):
    """A beat schedule due at every multiple of ``interval`` seconds since the epoch (UTC)."""

    def __init__(self, interval: float, **kwargs: Any) -> None:
        self.interval = float(interval)
        super().__init__(run_every=dt.timedelta(seconds=self.interval), **kwargs)

    def is_due(self, last_run_at: dt.datetime) -> schedstate:
        now = self.now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        if last_run_at.tzinfo is None:
            last_run_at = last_run_at.replace(tzinfo=dt.UTC)
        due_at = next_aligned_run(last_run_at, self.interval)
        if now >= due_at:
            return schedstate(True, (next_aligned_run(now, self.interval) - now).total_seconds())
        return schedstate(False, (due_at - now).total_seconds())

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self.interval,)

    def __repr__(self) -> str:
        return f"<aligned every {self.interval:g} s>"
