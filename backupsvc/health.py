"""Health of one installation, for load balancers, docker healthchecks and operators.

``GET /health/`` (no login) and ``manage.py health`` report the same JSON: the database
(``SELECT 1``), the Celery broker (connect and ping), the default storage (the bucket on S3, the
folder locally) and the age of the oldest backup and restore waiting for a worker. HTTP 200 when
every check passes, 503 otherwise.

Nothing tenant-specific is reported (no organization, no id), and error messages are cleaned of
credentials, because anyone who reaches the port may read them. The job ages are figures, not a
check: a queue that waits for beat is normal, and taking every web server out of a load balancer
because the workers are behind would make things worse. Each check is bounded by
``HEALTH_CHECK_TIMEOUT`` so a hung dependency cannot hang the probe: the database, broker and
storage checks run in threads the probe stops waiting for (the database on a connection of its
own, with connect and statement timeouts), and the job ages run only once the database answered,
under a statement timeout.

``archive`` reports, as a fact that never fails the check, which PBKDF2 the archives' key
derivation uses: ``winzip_kdf`` (the C extension ``native/winzip-kdf``) or ``cryptography``
(the fallback, about four times the CPU a member), so an operator sees a worker that runs
without the extension.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.db.utils import load_backend
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

PROBE_KEY = "health/probe"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


@dataclass
class Check:
    ok: bool
    latency_ms: float
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "latency_ms": self.latency_ms}
        if self.error:
            out["error"] = self.error
        out.update(self.details)
        return out


def _secrets() -> list[str]:
    """Values that must never appear in a reported error."""
    found = [settings.SECRET_KEY, settings.RESTORE_CODE_KEY, *settings.BACKUP_KEYS]
    options = settings.STORAGES["default"].get("OPTIONS", {})
    found += [options.get("secret_key") or "", options.get("access_key") or ""]
    found.append(settings.DATABASES["default"].get("PASSWORD") or "")
    for url in (settings.CELERY_BROKER_URL, getattr(settings, "EMAIL_URL", "")):
        match = re.search(r"://[^/@\s]*:([^/@\s]+)@", url or "")
        if match:
            found.append(match.group(1))
    return [s for s in found if s and len(s) >= 4]


def safe_error(exc: BaseException) -> str:
    """The exception as one short line, without credentials in URLs or any configured secret."""
    message = str(exc).strip().splitlines()
    text = f"{exc.__class__.__name__}: {message[0]}" if message else exc.__class__.__name__
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text[:300]


def _timed(check: Callable[[], dict[str, Any] | None], timeout: float | None = None) -> Check:
    """Run a check, in a daemon thread when it may block (``timeout``), and time it."""
    started = time.monotonic()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["details"] = check() or {}
        except Exception as exc:
            outcome["error"] = safe_error(exc)

    if timeout is None:
        run()
    else:
        worker = threading.Thread(target=run, name="health-check", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            outcome["error"] = f"no answer within {timeout:g} s"
    latency = round((time.monotonic() - started) * 1000, 1)
    if "error" in outcome:
        return Check(ok=False, latency_ms=latency, error=outcome["error"])
    return Check(ok=True, latency_ms=latency, details=outcome.get("details", {}))


def _database_settings() -> dict[str, Any]:
    return dict(connections["default"].settings_dict)


def check_database(timeout: float) -> None:
    """``SELECT 1`` on a connection of its own (not the request's, which a hung server would
    hold), with the probe's connect and statement timeouts on PostgreSQL."""
    settings_dict = _database_settings()
    backend = load_backend(settings_dict["ENGINE"])
    if "postgresql" in settings_dict["ENGINE"]:
        # libpq counts whole seconds, at least 2.
        options = {**settings_dict.get("OPTIONS", {}), "connect_timeout": max(2, math.ceil(timeout))}
        options["options"] = f"{options.get('options', '')} -c statement_timeout={int(timeout * 1000)}".strip()
        settings_dict["OPTIONS"] = options
    probe = backend.DatabaseWrapper(settings_dict, alias="health-probe")
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        probe.close()


def check_broker(timeout: float) -> None:
    """Connect to the broker Celery uses and ping it (Redis), or check its folders (filesystem)."""
    from kombu import Connection

    url = settings.CELERY_BROKER_URL
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    if not url.startswith("filesystem://"):
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False)
    with Connection(url, connect_timeout=timeout, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0)  # one attempt: the probe reports, it does not wait
        channel = conn.default_channel
        client = getattr(channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()
        elif url.startswith("filesystem://"):
            for key in ("data_folder_in", "data_folder_out"):
                folder = options.get(key)
                if folder and not os.access(folder, os.W_OK | os.X_OK):
                    raise OSError(f"the broker's {key} is not writable")


def check_storage(timeout: float) -> None:
    """The default storage answers: a HEAD on the bucket (S3), the folder is writable (local
    files), else an ``exists()`` on a probe key."""
    from django.core.files.storage import FileSystemStorage, storages

    storage: Any = storages["default"]
    if isinstance(storage, FileSystemStorage):
        # The folder appears with the first file stored; a fresh installation is healthy.
        os.makedirs(storage.location, exist_ok=True)
        if not os.access(storage.location, os.W_OK | os.X_OK):
            raise OSError("the storage folder is not writable")
        return
    bucket_name = getattr(storage, "bucket_name", None)
    if bucket_name:
        _s3_client(storage, timeout).head_bucket(Bucket=bucket_name)
        return
    storage.exists(PROBE_KEY)


_s3_clients: dict[tuple[Any, ...], Any] = {}
_s3_clients_lock = threading.Lock()


def _s3_client(storage: Any, timeout: float) -> Any:
    """A client for the storage's bucket with the probe's short timeouts and no retries, made
    once per process and configuration (making a boto3 client takes most of a second)."""
    from botocore.config import Config

    key = (
        storage.endpoint_url,
        storage.region_name,
        storage.access_key,
        storage.secret_key,
        storage.security_token,
        storage.session_profile,
        storage.use_ssl,
        str(storage.verify),
        timeout,
    )
    with _s3_clients_lock:
        if key not in _s3_clients:
            config = Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"}
            )
            if getattr(storage, "client_config", None) is not None:
                config = storage.client_config.merge(config)
            _s3_clients[key] = storage._create_session().client(
                "s3",
                region_name=storage.region_name,
                use_ssl=storage.use_ssl,
                endpoint_url=storage.endpoint_url,
                verify=storage.verify,
                config=config,
            )
        return _s3_clients[key]


def job_ages(timeout: float) -> dict[str, int | None]:
    """Seconds since the oldest pending backup was requested and since the oldest queued restore
    was confirmed (None when nothing waits)."""
    from backups.models import Backup
    from restores.models import Restore

    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [int(timeout * 1000)])
        oldest_backup = Backup.objects.pending().aggregate(oldest=Min("created_at"))["oldest"]
        oldest_restore = Restore.objects.filter(status=Restore.Status.QUEUED).aggregate(
            oldest=Min(Coalesce("confirmed_at", "created_at"))
        )["oldest"]

    def age(moment: Any) -> int | None:
        return None if moment is None else max(0, int((now - moment).total_seconds()))

    return {
        "oldest_pending_backup_age_seconds": age(oldest_backup),
        "oldest_queued_restore_age_seconds": age(oldest_restore),
    }


def archive_facts() -> dict[str, str]:
    """Which key derivation the archives use (``backups.archive.crypto.KDF_BACKEND``); both work."""
    from backups.archive import crypto

    return {"kdf_backend": crypto.KDF_BACKEND}


def health_report() -> tuple[bool, dict[str, Any]]:
    """Run every check; (healthy, the JSON-ready report)."""
    timeout = float(getattr(settings, "HEALTH_CHECK_TIMEOUT", 3.0))
    checks = {
        "database": _timed(lambda: check_database(timeout), timeout + 1),
        "broker": _timed(lambda: check_broker(timeout), timeout + 1),
        "storage": _timed(lambda: check_storage(timeout), timeout + 1),
    }
    if checks["database"].ok:
        # On the request's connection (it sees what the request sees), bounded on PostgreSQL.
        checks["jobs"] = _timed(lambda: job_ages(timeout))
    else:
        checks["jobs"] = Check(ok=False, latency_ms=0.0, error="not checked: the database did not answer")
    checks["archive"] = _timed(archive_facts)
    healthy = all(c.ok for c in checks.values())
    return healthy, {
        "status": "ok" if healthy else "fail",
        "checked_at": timezone.now().isoformat(timespec="seconds"),
        "checks": {name: c.as_dict() for name, c in checks.items()},
    }


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Unauthenticated: load balancers call it. No session, no CSRF, nothing tenant-specific."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)
