"""Ending this thread's PostgreSQL session from another one, as a server restart or a proxy
cutting the connection would."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a lost database connection is a PostgreSQL fault (the PostgreSQL pass of make test)")


def terminate_this_session() -> None:
    """``pg_terminate_backend`` of this thread's session, sent on another connection."""
    pid = connection.connection.info.backend_pid

    def terminate() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            connections.close_all()

    killer = threading.Thread(target=terminate)
    killer.start()
    killer.join()
