"""Telling a lost database connection from other failures, for the reasons users read."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError, connection


def connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` (or what it was raised from) says the database connection went away:
    the server ended the session (restart, ``pg_terminate_backend``: SQLSTATE 57P01-57P05), the
    connection failed (class 08), or the driver found it closed (no SQLSTATE at all)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InterfaceError):
            return True
        if isinstance(current, OperationalError):
            cause = current.__cause__
            state = getattr(cause, "sqlstate", None)
            if connection.vendor == "postgresql" and (state is None or state.startswith(("08", "57P"))):
                return True
        current = current.__cause__ or current.__context__
    return False


def forget_lost_connection(exc: BaseException | None = None) -> None:
    """After a lost connection, close this thread's connection so that the next query (the one
    recording the failure) opens a new one instead of failing on the dead one.

    With ``exc`` (the failure): when it says the connection was lost. Without, for a failure
    recorded apart from its exception (a stopped worker, the stale sweep, a caller that only has
    the reason): outside a transaction, when Django finds the connection unusable after an error
    (terminated, a restart, a proxy). Inside one the connection stays: it cannot be swapped under
    the transaction."""
    if exc is not None:
        if connection_lost(exc):
            connection.close()
    elif not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
