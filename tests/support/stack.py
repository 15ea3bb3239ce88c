"""The whole production topology on loopback, for the end-to-end suite.

One ``Stack`` is a set of real processes around the test's PostgreSQL database:

* Redis (``redis-server``, private to the test, on a free port) as the Celery broker;
* moto's S3 server (``moto_server``, a separate process) holding documents and archives;
* an SMTP server (aiosmtpd, in the test process) the tests read mail from;
* gunicorn serving the app with ``BACKUPSVC_ENV=production`` (secure cookies, HSTS, the SSL
  redirect: the client says it came through an HTTPS proxy, as a load balancer would);
* ``celery worker`` processes and ``celery beat``.

Every component can be stopped and started again (the fault tests do), on the same port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support import s3
from tests.support.mail import Inbox, smtp_server
from tests.support.net import free_port, wait_for_port
from tests.support.procs import ROOT, Broker, Worker, skip_or_fail, spawn, wait_until, worker_env
from tests.support.web import WebClient

CLOCKSHIFT = Path(__file__).resolve().parent / "clockshift"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        skip_or_fail("redis-server is not installed (.ci/run installs Debian's redis-server)")
    return str(found)


@dataclass
class Stack:
    tmp: Path
    database_url: str
    smtp: Inbox
    static_root: Path
    redis_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    bucket: str = "backupsvc-e2e"
    processes: dict[str, Worker] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)  # stopped on purpose: not a failure in wait()
    redis_persistent: bool = False

    # ------------------------------------------------------------------ configuration

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self, **extra: str) -> dict[str, str]:
        """Production settings, from environment variables only, as docker-compose.yml sets them."""
        env = worker_env(
            var_dir=self.tmp / "var",
            media_root=self.tmp / "media-unused",
            database_url=self.database_url,
            broker=Broker(self.redis_url, {}),
        )
        env.update(
            {
                "BACKUPSVC_ENV": "production",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SITE_URL": self.base_url,
                "STATIC_ROOT": str(self.static_root),
                "AWS_STORAGE_BUCKET_NAME": self.bucket,
                "AWS_S3_ENDPOINT_URL": self.s3_endpoint,
                "AWS_S3_REGION_NAME": s3.REGION,
                "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
                "EMAIL_URL": f"smtp://127.0.0.1:{self.smtp.port}",
                "BACKUP_DISPATCH_IMMEDIATELY": "true",
                "RESTORE_DISPATCH_IMMEDIATELY": "true",
                "BACKUP_QUEUE_INTERVAL": "2",
                # Botocore's retries would hide an unavailable store for a minute.
                "AWS_MAX_ATTEMPTS": "2",
                "AWS_RETRY_MODE": "standard",
            }
        )
        env.update(extra)
        return env

    def use_in_this_process(self, settings_fixture: Any) -> None:
        """Point the test process's default storage at the stack's bucket (fixture data, checks)."""
        from django.core.files.storage import default_storage
        from django.utils.functional import empty

        settings_fixture.STORAGES = {
            **settings_fixture.STORAGES,
            "default": s3.storage_settings(self.s3_endpoint, self.bucket),
        }
        default_storage._wrapped = empty

    # ------------------------------------------------------------------ components

    def _start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Worker:
        old = self.processes.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"{name} is already running")
        proc = spawn(name=name, cmd=cmd, env=env or self.env(), log_dir=self.tmp / "logs")
        self.processes[name] = proc
        self.stopped.discard(name)
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.processes.get(name)
        if proc is None:
            return
        self.stopped.add(name)
        if sig == signal.SIGTERM:
            proc.stop()
        else:
            proc.kill(sig)

    def start_redis(self) -> None:
        data = self.tmp / "redis"
        data.mkdir(exist_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.redis_persistent else []
        cmd = [redis_server_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--dir", str(data), *(persistence or ["--appendonly", "no"])]
        self._start("redis", cmd, env=dict(os.environ))
        wait_for_port(self.redis_port, what="redis-server")

    def start_s3(self) -> None:
        """moto's server, with the bucket (moto keeps objects in memory: a restart empties it)."""
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.s3_port)]
        self._start("s3", cmd, env=dict(os.environ))
        wait_for_port(self.s3_port, what="moto_server")
        self.s3_client().create_bucket(Bucket=self.bucket)

    def start_web(self, **extra_env: str) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "backupsvc.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}"]
        cmd += ["--workers", "2", "--timeout", "120", "--access-logfile", "-", "--chdir", str(ROOT)]
        proc = self._start("web", cmd, env=self.env(**extra_env))
        wait_for_port(self.web_port, timeout=60, what=f"gunicorn (log: {proc.log})")

    def start_worker(
        self,
        name: str = "worker",
        *,
        clock_shift: float = 0,
        concurrency: int = 1,
        env_changes: dict[str, str | None] | None = None,
        wait: bool = True,
    ) -> Worker:
        """A ``celery worker`` on the stack's queues. ``env_changes`` alters its environment (None
        removes a variable: a worker configured differently from the rest); ``wait=False`` returns
        before it is ready (start several at once, then ``wait_ready()`` each)."""
        env = self.env()
        for key, value in (env_changes or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        if clock_shift:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CLOCKSHIFT), env.get("PYTHONPATH")]))
            env["BACKUPSVC_TEST_CLOCK_SHIFT"] = str(clock_shift)
        cmd = [sys.executable, "-m", "celery", "-A", "backupsvc", "worker", "--queues", "default,backups"]
        cmd += ["--hostname", f"{name}@%h", "--pool", "prefork", "--concurrency", str(concurrency)]
        cmd += ["--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO"]
        worker = self._start(name, cmd, env=env)
        if wait:
            worker.wait_ready()
        return worker

    def start_beat(self) -> Worker:
        cmd = [sys.executable, "-m", "celery", "-A", "backupsvc", "beat", "--loglevel", "INFO"]
        cmd += ["--schedule", str(self.tmp / "celerybeat-schedule")]
        return self._start("beat", cmd)

    def pause(self, name: str) -> None:
        """Freeze a component's whole process group (SIGSTOP): it holds still wherever it is."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def stop_all(self) -> None:
        for proc in reversed(list(self.processes.values())):
            if proc.alive():  # a paused process would not see the SIGTERM of a warm shutdown
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
            proc.stop()

    # ------------------------------------------------------------------ peers

    def s3_client(self) -> Any:
        return s3.client(self.s3_endpoint)

    def object_keys(self, prefix: str = "") -> set[str]:
        listing = self.s3_client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"] for o in listing.get("Contents", [])}

    def unfinished_uploads(self) -> list[str]:
        listing = self.s3_client().list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in listing.get("Uploads", [])]

    def queued(self, queue: str = "backups") -> int:
        """Messages waiting in a Celery queue on the stack's Redis (every priority list)."""
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            return sum(int(client.llen(key)) for key in client.scan_iter(f"{queue}*"))
        finally:
            client.close()

    def client(self) -> WebClient:
        return WebClient(self.base_url)

    def send(self, task: str) -> None:
        """Send a task to the workers as beat would."""
        queue = settings.CELERY_TASK_ROUTES.get(task.rsplit(".", 1)[0] + ".*", {}).get("queue", "default")
        Broker(self.redis_url, {}).send(task, queue=queue)

    def wait(self, predicate: Any, timeout: float, what: str) -> Any:
        watched = [p for p in self.processes.values() if p.name != "redis" and p.name not in self.stopped]
        return wait_until(predicate, timeout, what, watched)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.processes.values())


def collectstatic(static_root: Path, env: dict[str, str]) -> None:
    """Production serves static files collected by whitenoise's manifest storage."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "--verbosity", "0"],
        cwd=ROOT,
        env={**env, "STATIC_ROOT": str(static_root)},
        check=True,
        timeout=120,
    )


@contextlib.contextmanager
def running_stack(
    tmp: Path, database_url: str, static_root: Path, *, redis_persistent: bool = False
) -> Iterator[Stack]:
    """Redis, S3, SMTP and gunicorn started; workers and beat are the test's to start."""
    if not database_url.startswith("postgres"):
        pytest.skip("the end-to-end suite runs on PostgreSQL (the PostgreSQL pass of make test)")
    with smtp_server() as inbox:
        stack = Stack(tmp, database_url, inbox, static_root, redis_persistent=redis_persistent)
        try:
            stack.start_redis()
            stack.start_s3()
            stack.start_web()
            yield stack
        finally:
            stack.stop_all()
