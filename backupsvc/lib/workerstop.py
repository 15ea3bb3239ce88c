"""Stopping a Celery worker without losing track of the job it runs.

A worker asked to stop (SIGTERM: ``docker stop``, systemd, honcho on Ctrl-C) makes a warm
shutdown: it takes no new job and waits for the running ones. A backup can run for hours, so
whatever supervises the worker gave up first and killed it (honcho after 5 s, Docker after its
grace period), and the backup stayed "In progress" until the stale sweep failed it.

So a long job runs inside :func:`stoppable` and calls :func:`raise_if_stopping` at its progress
points (the backup's heartbeat, the restore engine's checkpoints). Once the worker is stopping,
that raises :class:`WorkerStopping`, which fails the job like any other error: partial file
removed, nothing of a restore applied, and the reason kept ("The worker was stopped while this
backup ran; request it again."). The job is not requeued: a backup requested again is one
click, and a job that silently came back later would surprise whoever stopped the worker.

When a worker is "stopping":

- a prefork pool process that receives SIGTERM while it runs a job. honcho (``make run``) and
  ``tests/support`` signal the whole process group, pool processes included: at once.
- otherwise (``docker stop``, systemd, Ctrl-C in a terminal signal the main process only) the
  main process waits ``WORKER_STOP_GRACE_SECONDS`` (0 in development, 60 in production) so that a
  job about to finish can finish, then marks itself stopping (threads and solo pools) and sends
  SIGTERM to its pool processes (prefork).

An idle pool process ignores SIGTERM, as in Celery's own ``REMAP_SIGTERM`` mode: the main process
closes the pool. It used to die on it, sometimes holding the pool's job-queue lock, and the main
process then waited on that lock for ever at exit: the "hang on a lock" seen with ``make run``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)


class WorkerStopping(Exception):
    """Raised inside a running job when its worker is stopping."""


_stopping = threading.Event()
_local = threading.local()
_in_pool_process = False


def stop_requested() -> bool:
    """True once this worker process is stopping (a loop of jobs ends there)."""
    return _stopping.is_set()


def raise_if_stopping() -> None:
    """At a job's progress point: raise ``WorkerStopping`` with the job's reason when the
    worker is stopping. Outside :func:`stoppable` (a command, a test, the web) it does nothing."""
    reasons = getattr(_local, "reasons", None)
    if reasons and _stopping.is_set():
        raise WorkerStopping(reasons[-1])


@contextlib.contextmanager
def stoppable(reason: str) -> Iterator[None]:
    """Run a long job so that a stopping worker fails it with ``reason`` at its next progress point."""
    reasons: list[str] = _local.__dict__.setdefault("reasons", [])
    handler_installed = False
    if _in_pool_process and not reasons and threading.current_thread() is threading.main_thread():
        _stopping.clear()  # a pool process lives on after a stop that was not the worker's
        # billiard replaces a pool process's own SIGTERM handlers after worker_process_init, so
        # the handler goes in for the job's time only.
        signal.signal(signal.SIGTERM, _on_sigterm)
        handler_installed = True
    reasons.append(reason)
    try:
        yield
    finally:
        reasons.pop()
        if handler_installed:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _on_sigterm(signum: int, frame: Any) -> None:
    _stopping.set()


def pool_process_started(**kwargs: Any) -> None:
    """``worker_process_init``: a new prefork pool process ignores SIGTERM while idle (SIG_IGN,
    not a Python handler, is the one billiard leaves in place)."""
    global _in_pool_process
    _in_pool_process = True
    _stopping.clear()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main_process_shutting_down(sig: str = "", how: str = "", **kwargs: Any) -> None:
    """``worker_shutting_down`` (main process): after the grace period, stop the running jobs.
    Runs in a signal handler, so it only starts a timer thread."""
    from django.conf import settings

    grace = float(getattr(settings, "WORKER_STOP_GRACE_SECONDS", 0)) if how == "Warm" else 0.0
    timer = threading.Timer(grace, _stop_jobs)
    timer.daemon = True
    timer.start()


def _stop_jobs() -> None:
    _stopping.set()
    from billiard.process import active_children

    for child in active_children():
        with contextlib.suppress(ProcessLookupError, TypeError):
            os.kill(child.pid, signal.SIGTERM)
