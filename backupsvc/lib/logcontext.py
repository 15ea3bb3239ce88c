"""Which backup or restore a log line is about.

``log_context(backup_id=..., restore_id=...)`` sets a context variable around a job; the
``LogContextFilter`` (on the handlers of ``settings.LOGGING``) copies it onto every record as
``backup_id`` / ``restore_id`` and as ``log_context``, the ``[restore=45 backup=123] `` prefix the
formatter prints. A context variable rather than a thread-local: it follows the code that runs
the job and is restored exactly when the block ends, also when contexts nest (a restore runs its
pre-restore backup inside its own context, so those lines carry both ids).

Only ids go into the context: never a password, a code or a key.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

# (("restore", 45), ("backup", 123)): outer job first.
_ids: contextvars.ContextVar[tuple[tuple[str, int], ...]] = contextvars.ContextVar("backupsvc_log_context", default=())


@contextlib.contextmanager
def log_context(*, backup_id: int | None = None, restore_id: int | None = None) -> Iterator[None]:
    """Tag every log record written inside the block with the backup and/or restore id."""
    ids = dict(_ids.get())
    if restore_id is not None:
        ids["restore"] = int(restore_id)
    if backup_id is not None:
        ids["backup"] = int(backup_id)
    token = _ids.set(tuple(ids.items()))
    try:
        yield
    finally:
        _ids.reset(token)


def current_ids() -> dict[str, int]:
    """The ids of the jobs running in this context, e.g. ``{"restore": 45, "backup": 123}``."""
    return dict(_ids.get())


class LogContextFilter(logging.Filter):
    """Adds ``backup_id``, ``restore_id`` (None outside a job) and ``log_context`` to each record.

    Ids passed explicitly (``logger.info(..., extra={"backup_id": 7})``) are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        for key in ("restore", "backup"):
            attr = f"{key}_id"
            if getattr(record, attr, None) is None:
                setattr(record, attr, ids.get(key))
        parts = [f"{key}={getattr(record, f'{key}_id')}" for key in ("restore", "backup")]
        shown = [p for p in parts if not p.endswith("=None")]
        record.log_context = f"[{' '.join(shown)}] " if shown else ""
        return True
