"""The one rule for a job whose worker died: its heartbeat went stale.

Backups and restores both record ``started_at`` and ``heartbeat_at``; a running job beats at
least every ``heartbeat_interval()`` seconds, and beat's sweeps fail a job whose last beat is
older than ``BACKUP_HEARTBEAT_STALE_AFTER``. A backup beats from its writer's progress; a
restore beats from a thread (``beating``), because most of its work happens inside one database
transaction, whose writes nobody else sees before it commits.

On SQLite (the embedded set-up) one transaction at a time may write, so a beat cannot be
recorded while a restore's transaction runs (its own or another's): it fails with "database is
locked". A beat thread then marks, in a folder beside the database file, that its job is alive;
while any such mark is fresh, no job counts as stale (the job that looks dead may be the one
locked out), so the sweeps neither wait for the lock nor fail a job that is alive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)


def stale_before(now: dt.datetime | None = None) -> dt.datetime:
    """A job whose last beat is older than this is dead."""
    return (now or timezone.now()) - settings.BACKUP_HEARTBEAT_STALE_AFTER


def stale(now: dt.datetime | None = None) -> Q:
    """Running jobs (the caller filters the status) whose worker stopped beating; none while
    a job on SQLite is alive but locked out of recording its beats (``_locked_out_since``)."""
    cutoff = stale_before(now)
    if _locked_out_since(cutoff):
        logger.info("stale jobs: none counted, a job could not record its heartbeat (the database is busy)")
        return Q(pk__in=[])
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def _marks_folder() -> Path | None:
    """Where beat threads mark a job alive while the database may not take its beat: beside
    the SQLite database file, which every process of the installation shares. None on other
    databases (their beats wait for no other transaction) and on an in-memory SQLite database."""
    connection = connections["default"]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    return Path(f"{connection.settings_dict['NAME']}-heartbeats")


def _locked_out_since(cutoff: dt.datetime) -> bool:
    """Whether a beat thread marked its job alive after ``cutoff`` without recording the beat."""
    folder = _marks_folder()
    if folder is None or not folder.is_dir():
        return False
    since = cutoff.timestamp()
    for mark in folder.iterdir():
        try:
            if mark.stat().st_mtime > since:
                return True
        except FileNotFoundError:  # its job recorded a beat meanwhile
            continue
    return False


def _touch(mark: Path) -> None:
    try:
        mark.parent.mkdir(exist_ok=True)
        mark.touch()
    except OSError:  # the beat itself is still tried
        logger.warning("heartbeat mark %s could not be written", mark, exc_info=True)


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
    folder = _marks_folder()
    mark = None if folder is None else folder / f"{os.getpid()}-{threading.get_ident()}-{what.replace(' ', '-')}"

    def run() -> None:
        try:
            while not stop.wait(interval):
                if mark is not None:  # alive, whether or not SQLite takes the beat now
                    _touch(mark)
                try:
                    if not beat():
                        return
                    if mark is not None:
                        mark.unlink(missing_ok=True)
                except Exception:
                    logger.warning("%s: a heartbeat could not be recorded", what, exc_info=True)
        finally:
            if mark is not None:
                mark.unlink(missing_ok=True)
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=run, name=f"heartbeat {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        # A beat waits at most for a lock the job's own transaction held until it ended.
        thread.join(timeout=30)
