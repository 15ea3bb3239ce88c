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


def forget_lost_connection(exc: BaseException) -> None:
    """After a lost connection, close this thread's connection so that the next query (the one
    recording the failure) opens a new one instead of failing on the dead one."""
    if connection_lost(exc):
        connection.close()
