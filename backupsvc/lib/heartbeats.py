"""The one rule for a job whose worker died: its heartbeat went stale.

Backups and restores both record ``started_at`` and ``heartbeat_at``; a running job beats at
least every ``heartbeat_interval()`` seconds, and beat's sweeps fail a job whose last beat is
older than ``BACKUP_HEARTBEAT_STALE_AFTER``. A backup beats from its writer's progress; a
restore beats from a thread (``beating``), because most of its work happens inside one database
transaction, whose writes nobody else sees before it commits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """A job whose last beat is older than this is dead."""
    return (now or timezone.now()) - settings.BACKUP_HEARTBEAT_STALE_AFTER


def stale(now: dt.datetime | None = None) -> Q:
    """Running jobs (the caller filters the status) whose worker stopped beating."""
    cutoff = stale_before(now)
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def heartbeat_interval() -> float:
    """Seconds between beats: a tenth of the stale limit (a minute by default), so a few
    missed beats (a busy database) never make a live job look dead."""
    return max(settings.BACKUP_HEARTBEAT_STALE_AFTER.total_seconds() / 10, 0.05)


@contextlib.contextmanager
def beating(beat: Callable[[], bool], *, what: str, interval: float | None = None) -> Iterator[None]:
    """Call ``beat`` every ``interval`` seconds from a thread (its own database connection,
    in autocommit) while the block runs. ``beat`` returns False when the job is no longer
    running; beating then stops. A failed beat is logged and tried again at the next one: a
    dead process stops beating, a live one never stops because of one error."""
    interval = heartbeat_interval() if interval is None else interval
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not beat():
                        return
                except Exception:
                    logger.warning("%s: a heartbeat could not be recorded", what, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=run, name=f"heartbeat {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        # A beat waits at most for a lock the job's own transaction held until it ended.
        thread.join(timeout=30)
