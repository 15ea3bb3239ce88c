"""The end-to-end suite's stack: PostgreSQL (the test database), Redis, S3 over HTTP, SMTP,
gunicorn in production mode, real Celery workers and beat. See tests/support/stack.py.

It runs in the PostgreSQL pass of ``make test`` (``.ci/run``); on SQLite it is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from tests.support.procs import Broker, database_url, worker_env
from tests.support.stack import Stack, collectstatic, running_stack


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Hashes that production's PBKDF2 hasher verifies (the iteration count travels in the
    hash), made quickly for the test users."""

    iterations = 1000


@pytest.fixture(autouse=True)
def _production_password_hashes(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["tests.e2e.conftest.QuickPBKDF2PasswordHasher"]


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static files collected once per test process, as the production image does."""
    root = tmp_path_factory.mktemp("static")
    env = {
        **worker_env(
            var_dir=root / "var",
            media_root=root / "media",
            database_url=f"sqlite:///{root / 'unused.sqlite3'}",
            broker=Broker("", {}),
        ),
        "BACKUPSVC_ENV": "production",
    }
    collectstatic(root, env)
    return root


@pytest.fixture
def stack(transactional_db, tmp_path: Path, settings, request) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    """Redis, S3, SMTP and gunicorn running; the test starts workers and beat. Request it before
    data fixtures: the test process stores fixture files in the stack's bucket too."""
    # Checked before asking for the URL: an in-memory SQLite database has none to give.
    if connection.vendor != "postgresql":
        pytest.skip("the end-to-end suite runs on PostgreSQL (the PostgreSQL pass of make test)")
    url = database_url()
    static_root = request.getfixturevalue("static_root")
    with running_stack(tmp_path, url, static_root) as running:
        running.use_in_this_process(settings)
        yield running
