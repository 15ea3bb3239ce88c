"""/health/ and ``manage.py health``: database, broker, storage and the oldest waiting jobs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from backups.models import Backup
from backupsvc import health
from restores.models import Restore
from tests.support import s3

pytestmark = pytest.mark.django_db

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(client):  # type: ignore[no-untyped-def]
    response = client.get("/health/")
    assert response["Content-Type"] == "application/json"
    return response, json.loads(response.content)


def test_healthy_on_the_test_setup_for_an_anonymous_caller(client) -> None:  # type: ignore[no-untyped-def]
    response, body = _get(client)
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage", "jobs", "archive"}
    for name, check in body["checks"].items():
        assert check["ok"] is True, (name, check)
        assert isinstance(check["latency_ms"], float) and check["latency_ms"] >= 0
        assert "error" not in check
    assert body["checks"]["jobs"]["oldest_pending_backup_age_seconds"] is None
    assert body["checks"]["jobs"]["oldest_queued_restore_age_seconds"] is None
    # No session, no CSRF cookie, never cached.
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("backend", ["winzip_kdf", "cryptography"])
def test_the_key_derivation_in_use_is_reported_and_the_fallback_is_healthy(client, monkeypatch, backend) -> None:  # type: ignore[no-untyped-def]
    from backups.archive import crypto

    assert _get(client)[1]["checks"]["archive"]["kdf_backend"] == crypto.KDF_BACKEND  # what this process uses
    monkeypatch.setattr(crypto, "KDF_BACKEND", backend)  # as imported without the C extension, or with it
    response, body = _get(client)
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["archive"]["ok"] is True and body["checks"]["archive"]["kdf_backend"] == backend


def test_head_is_answered_and_post_refused(client) -> None:  # type: ignore[no-untyped-def]
    assert client.head("/health/").status_code == 200
    assert client.post("/health/").status_code == 405


def test_oldest_pending_backup_and_queued_restore_ages(client, cast) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    Backup.objects.create(organization=cast.org, requested_by=cast.owner, created_at=now - dt.timedelta(hours=2))
    # Finished and running jobs do not count, however old.
    Backup.objects.create(organization=cast.org, status=Backup.Status.COMPLETED, created_at=now - dt.timedelta(days=3))
    Backup.objects.create(
        organization=cast.other_org, status=Backup.Status.IN_PROGRESS, created_at=now - dt.timedelta(days=2)
    )
    Restore.objects.create(
        organization=cast.org,
        status=Restore.Status.QUEUED,
        created_at=now - dt.timedelta(hours=1),
        confirmed_at=now - dt.timedelta(minutes=5),
    )
    # Waiting for the Owner's code is not waiting for a worker.
    Restore.objects.create(organization=cast.other_org, created_at=now - dt.timedelta(days=1))
    response, body = _get(client)
    assert response.status_code == 200
    jobs = body["checks"]["jobs"]
    assert 7200 <= jobs["oldest_pending_backup_age_seconds"] < 7200 + 60
    assert 300 <= jobs["oldest_queued_restore_age_seconds"] < 300 + 60
    # Nothing tenant-specific in what anyone may read.
    text = response.content.decode()
    for private in (cast.org.name, cast.org.slug, cast.other_org.name, cast.owner.email):
        assert private not in text


def test_wizard_restore_without_confirmation_counts_from_its_creation(client) -> None:  # type: ignore[no-untyped-def]
    Restore.objects.create(
        kind=Restore.Kind.NEW_ORGANIZATION,
        status=Restore.Status.QUEUED,
        created_at=timezone.now() - dt.timedelta(minutes=10),
    )
    _response, body = _get(client)
    assert 600 <= body["checks"]["jobs"]["oldest_queued_restore_age_seconds"] < 660


def test_unhealthy_when_nothing_listens_on_the_broker_port(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = f"redis://:broker-password-123@127.0.0.1:{_dead_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    response, body = _get(client)
    assert response.status_code == 503
    assert body["status"] == "fail"
    broker = body["checks"]["broker"]
    assert broker["ok"] is False and broker["error"]
    assert broker["latency_ms"] < 5000
    assert all(body["checks"][name]["ok"] for name in ("database", "storage", "jobs"))
    assert "broker-password-123" not in response.content.decode()


def test_unhealthy_when_the_storage_folder_cannot_be_created(client, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the storage folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker)}},
    }
    response, body = _get(client)
    assert response.status_code == 503
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["storage"]["error"]
    assert body["checks"]["broker"]["ok"] and body["checks"]["database"]["ok"]


def test_unhealthy_when_s3_does_not_answer_and_the_key_stays_secret(client, settings) -> None:  # type: ignore[no-untyped-def]
    storage = s3.storage_settings(f"http://127.0.0.1:{_dead_port()}", "backupsvc-health")
    storage["OPTIONS"]["secret_key"] = "s3-secret-key-never-shown"
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    response, body = _get(client)
    assert response.status_code == 503
    assert body["checks"]["storage"]["ok"] is False
    assert "s3-secret-key-never-shown" not in response.content.decode()


def test_s3_storage_healthy_when_the_bucket_answers_and_unhealthy_when_it_is_missing(client, settings) -> None:  # type: ignore[no-untyped-def]
    with s3.moto_server() as endpoint:
        bucket = s3.create_bucket(endpoint)
        settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(endpoint, bucket)}
        response, body = _get(client)
        assert response.status_code == 200, body
        assert body["checks"]["storage"]["ok"] is True

        settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(endpoint, bucket + "-gone")}
        response, body = _get(client)
        assert response.status_code == 503
        assert "404" in body["checks"]["storage"]["error"]


def test_not_redirected_to_https(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/").status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_command_prints_the_report_and_exits_non_zero_when_unhealthy(settings, capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("health")
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok"

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_dead_port()}/0"
    with pytest.raises(SystemExit) as exited:
        call_command("health")
    assert exited.value.code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checks"]["broker"]["ok"] is False


@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set (.ci/run sets it)")
def test_broker_check_passes_against_real_redis(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = TEST_REDIS_URL
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    response, body = _get(client)
    assert response.status_code == 200, body
    assert body["checks"]["broker"]["ok"] is True


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A loopback port that takes connections (the kernel completes the handshake) and never
    says a word: a hung database, broker or store."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("dependency", ["database", "broker", "storage"])
def test_a_check_whose_dependency_hangs_fails_within_the_limit(client, settings, monkeypatch, dependency: str) -> None:  # type: ignore[no-untyped-def]
    """Every check is bounded by HEALTH_CHECK_TIMEOUT (plus a second's grace): the probe answers
    503 in time and names the check. Before, the database check ran on the request's own
    connection without any timeout, and a hung server hung the probe."""
    settings.HEALTH_CHECK_TIMEOUT = 1.0
    with _silent_server() as port:
        if dependency == "database":
            hung = {
                **connections["default"].settings_dict,
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "NAME": "backupsvc",
                "USER": "backupsvc",
                "PASSWORD": "database-password-123",
                "OPTIONS": {},
            }
            monkeypatch.setattr(health, "_database_settings", lambda: hung)
        elif dependency == "broker":
            settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        else:
            settings.STORAGES = {
                **settings.STORAGES,
                "default": s3.storage_settings(f"http://127.0.0.1:{port}", "backupsvc-health"),
            }
        started = time.monotonic()
        response, body = _get(client)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    check = body["checks"][dependency]
    assert check["ok"] is False and check["error"]
    # Given up after the limit plus a second's grace (2 s): by the probe's own timer, or by the
    # driver's timeout of the same length, whichever fires first on a loaded machine.
    assert check["error"] == "no answer within 2 s" or "timeout" in check["error"] or check["latency_ms"] < 2000, check
    assert check["latency_ms"] < 2000 + 1500, check
    assert elapsed < 2.0 + 3.0, f"the probe took {elapsed:.1f} s"
    if dependency == "database":
        assert body["checks"]["jobs"] == {
            "ok": False,
            "latency_ms": 0.0,
            "error": "not checked: the database did not answer",
        }
    assert "database-password-123" not in response.content.decode()
