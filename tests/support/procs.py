"""Real Celery worker processes for tests: environment, broker, start, wait, kill, clean up.

A worker sees what the test sees: the same database (the test database, by URL), the same
MEDIA_ROOT, the same key ring (so it can unwrap the archive passwords the test process
wrapped) and a broker private to the test (a Redis queue named after a random token, or a
filesystem broker in the test's own folder), so tests can run in parallel (``-n 2``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

ROOT = Path(__file__).resolve().parents[2]

# Variables of the calling environment a worker must not inherit: the test decides them.
_SCRUBBED_PREFIXES = (
    "DATABASE_URL",
    "CELERY_",
    "AWS_",
    "MEDIA_ROOT",
    "BACKUPSVC_",
    "SECRET_KEY",
    "BACKUP_",
    "RESTORE_CODE_KEY",
    "EMAIL_URL",
    "DJANGO_SETTINGS_MODULE",
)


def services_required() -> bool:
    """CI (.ci/run) sets REQUIRE_SERVICES=1: a missing peer is then a failure, not a skip."""
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (REQUIRE_SERVICES is set)")
    pytest.skip(reason)


# ------------------------------------------------------------------------------- database


def database_url(alias: str = "default") -> str:
    """A DATABASE_URL (django-environ syntax) for the database this test process uses now."""
    conn = connections[alias]
    sd = conn.settings_dict
    if conn.vendor == "sqlite":
        if conn.is_in_memory_db():
            raise RuntimeError("An in-memory SQLite database cannot be shared with another process.")
        return f"sqlite:///{Path(sd['NAME']).resolve()}"
    if conn.vendor == "postgresql":
        auth = quote(sd.get("USER") or "", safe="")
        if sd.get("PASSWORD"):
            auth += ":" + quote(sd["PASSWORD"], safe="")
        host = sd.get("HOST") or "127.0.0.1"
        port = sd.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{quote(sd['NAME'], safe='')}"
    raise RuntimeError(f"No DATABASE_URL for the {conn.vendor} backend.")


def wait_for_live_server_requests(timeout: float = 10.0) -> None:
    """Wait until no live-server request thread is running.

    pytest-django's live server shares the in-memory SQLite connection with its request
    threads, and each thread closes connections when its request ends. A request still in
    flight after a browser test (an htmx poll, say) would otherwise close a connection that a
    later test in this process is using.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any("process_request_thread" in t.name for t in threading.enumerate()):
            return
        time.sleep(0.05)


@contextlib.contextmanager
def sqlite_file_database(path: Path, alias: str = "default") -> Iterator[None]:
    """Move this process's in-memory SQLite test database to a file other processes can open.

    pytest-django's SQLite test database lives in memory, which a worker process cannot see.
    The migrated database is copied into ``path`` (SQLite's backup API) and the connection is
    pointed at the file until the context ends; then the in-memory database, kept open all
    along, is put back, so pytest-django flushes and later tests use it as usual. Use it in a
    ``transaction=True`` test, before any data is created.
    """
    conn = connections[alias]
    if conn.vendor != "sqlite" or not conn.is_in_memory_db():
        yield
        return
    if conn.in_atomic_block:
        raise RuntimeError("sqlite_file_database needs a transactional test (django_db(transaction=True)).")
    # Once the connection points at a file, a live-server thread finishing a request would
    # really close it under this test (an in-memory one it leaves open).
    wait_for_live_server_requests()
    conn.ensure_connection()
    memory = conn.connection
    target = sqlite3.connect(path)
    try:
        memory.backup(target)
    finally:
        target.close()
    original_name = conn.settings_dict["NAME"]
    conn.connection = None  # detached, not closed: closing would destroy the in-memory database
    conn.settings_dict["NAME"] = str(path)
    try:
        yield
    finally:
        BaseDatabaseWrapper.close(conn)
        conn.settings_dict["NAME"] = original_name
        conn.connection = memory


# --------------------------------------------------------------------------------- broker


@dataclass
class Broker:
    """A broker only this test uses: its queue names carry ``token``."""

    url: str
    transport_options: dict[str, Any]
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def is_redis(self) -> bool:
        return self.url.startswith("redis")

    def queue(self, name: str = "backups") -> str:
        return f"{name}-{self.token}"

    def send(self, task: str, *, queue: str, args: tuple[Any, ...] = ()) -> None:
        """Send ``task`` to ``queue`` as the web process or beat would."""
        from celery import Celery

        app = Celery("backupsvc-test-sender", set_as_current=False)
        app.conf.broker_url = self.url
        app.conf.broker_transport_options = self.transport_options
        try:
            app.send_task(task, args=list(args), queue=queue)
        finally:
            app.close()

    def cleanup(self) -> None:
        """Remove whatever this test left in a shared Redis (queues, unacked messages of killed
        workers, pidbox bindings). A filesystem broker lives in the test's tmp folder."""
        if not self.is_redis:
            return
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            for key in client.scan_iter(f"*{self.token}*"):
                client.delete(key)
            for key in client.scan_iter("_kombu.binding.*"):
                mine = [m for m in client.smembers(key) if self.token.encode() in m]
                if mine:
                    client.srem(key, *mine)
            for tag, payload in client.hgetall("unacked").items():
                if self.token.encode() in payload:
                    client.hdel("unacked", tag)
                    client.zrem("unacked_index", tag)
        finally:
            client.close()


def make_broker(var_dir: Path) -> Broker:
    """Redis at TEST_REDIS_URL when given (.ci/run sets it; it must then answer), else the
    embedded set-up's filesystem broker under ``var_dir``."""
    url = os.environ.get("TEST_REDIS_URL", "")
    if url:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            pytest.fail(f"TEST_REDIS_URL={url} does not answer: {exc}")
        finally:
            client.close()
        return Broker(url, {"visibility_timeout": 3600})
    # The same folders backupsvc.settings derives from BACKUPSVC_VAR_DIR for "filesystem://".
    queue_dir, processed_dir = var_dir / "celery" / "queue", var_dir / "celery" / "processed"
    control_dir = var_dir / "celery" / "control"
    for d in (queue_dir, processed_dir, control_dir):
        d.mkdir(parents=True, exist_ok=True)
    return Broker(
        "filesystem://",
        {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "processed_folder": str(processed_dir),
            "control_folder": str(control_dir),
            "store_processed": False,
        },
    )


# -------------------------------------------------------------------------------- workers


def worker_env(*, var_dir: Path, media_root: str | Path, database_url: str, broker: Broker) -> dict[str, str]:
    """The environment of a worker that shares this test's database, files and key ring."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "backupsvc.settings",
            "BACKUPSVC_ENV": "development",
            "BACKUPSVC_VAR_DIR": str(var_dir),
            "MEDIA_ROOT": str(media_root),
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker.url,
            "SECRET_KEY": settings.SECRET_KEY,
            "BACKUP_KEYS": ",".join(settings.BACKUP_KEYS),
            "RESTORE_CODE_KEY": settings.RESTORE_CODE_KEY,
            "BACKUP_DISPATCH_IMMEDIATELY": "false",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, tail: int = 80) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-tail:])

    def wait_ready(self, timeout: float = 60) -> None:
        """Until Celery says the worker consumes (``celery@<name> ready.``)."""
        wait_until(lambda: " ready." in self.output(tail=400), timeout, f"worker {self.name} ready", [self])

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 15) -> int:
        """Send ``sig`` to the worker's whole process group (main process and pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left of the group. Never raises."""
        try:
            if self.alive():
                self.kill(signal.SIGTERM, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # Pool children may outlive a dead main process: the group goes in any case.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)


def spawn(*, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> Worker:
    """Start ``cmd`` in its own process group (so it and its children can be killed together),
    logging to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name, proc, log)


def start_worker(*, name: str, queue: str, env: dict[str, str], log_dir: Path, concurrency: int = 1) -> Worker:
    """``celery -A backupsvc worker`` on ``queue``, in its own process group, logging to a file."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backupsvc",
        "worker",
        "--queues",
        queue,
        "--hostname",
        f"{name}@%h",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    return spawn(name=name, cmd=cmd, env=env, log_dir=log_dir)


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, workers: list[Worker] = (), interval: float = 0.1
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with the workers' logs if a
    worker died or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        for worker in workers:
            if not worker.alive():
                pytest.fail(f"worker {worker.name} exited ({worker.proc.returncode}) before {what}:\n{worker.output()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}\n{w.output()}" for w in workers)
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(interval)
