"""Every log line written while a backup or restore runs carries its id, and no secret is logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from backups import services as backup_services
from backups.keys import unwrap_password
from backups.models import Backup
from backups.tasks import run_backup
from backupsvc.lib.logcontext import LogContextFilter, current_ids, log_context
from restores import services as restore_services
from restores.models import Restore
from restores.tasks import run_restore
from tests.backups import conftest as backup_fixtures
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import last_code

pytestmark = pytest.mark.django_db

# The backup tests' tenant: every data set has rows, documents have files.
tenant = backup_fixtures.tenant


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Captured:
    """Records and lines, formatted as settings.LOGGING formats them on the console."""

    handler: _Collect
    formatter: logging.Formatter
    marks: dict[str, int] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        self.marks[name] = len(self.handler.records)

    def records(self, start: str | None = None, end: str | None = None) -> list[logging.LogRecord]:
        first = self.marks[start] if start else 0
        last = self.marks[end] if end else len(self.handler.records)
        return self.handler.records[first:last]

    def lines(self) -> list[str]:
        return [self.formatter.format(r) for r in self.handler.records]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Everything logged at DEBUG and above, through the filter and format of settings.LOGGING."""
    handler = _Collect()
    handler.addFilter(LogContextFilter())
    formatter = logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"])
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield Captured(handler, formatter)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _backup(tenant) -> tuple[Backup, str]:  # type: ignore[no-untyped-def]
    backup, password = backup_services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, include_inactive=True, dispatch=False
    )
    return backup, password


def test_the_console_handler_of_settings_uses_the_filter_and_shows_the_ids() -> None:
    handler = settings.LOGGING["handlers"]["console"]
    assert "job_ids" in handler["filters"]
    assert "%(log_context)s" in settings.LOGGING["formatters"][handler["formatter"]]["format"]
    configured = [h for h in logging.getLogger().handlers if any(isinstance(f, LogContextFilter) for f in h.filters)]
    assert configured, "settings.LOGGING is not applied to the root logger"


def test_log_context_nests_and_is_restored() -> None:
    assert current_ids() == {}
    with log_context(restore_id=45):
        with log_context(backup_id=123):
            assert current_ids() == {"restore": 45, "backup": 123}
            record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
            LogContextFilter().filter(record)
            assert (record.restore_id, record.backup_id) == (45, 123)
            assert record.log_context == "[restore=45 backup=123] "
        assert current_ids() == {"restore": 45}
    assert current_ids() == {}


def test_every_line_of_a_backup_task_carries_the_backup_id(tenant, captured) -> None:  # type: ignore[no-untyped-def]
    backup, password = _backup(tenant)
    captured.mark("start")
    run_backup(backup.pk)
    captured.mark("end")
    logging.getLogger("backups.services").info("after the task")
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason

    during = captured.records("start", "end")
    messages = [r.getMessage() for r in during]
    assert any("writing archive" in m for m in messages) and any("completed" in m for m in messages)
    assert all(r.backup_id == backup.pk for r in during), [(r.name, r.getMessage()) for r in during]
    assert all(r.restore_id is None for r in during)
    lines = captured.lines()
    assert all(f"[backup={backup.pk}] " in line for line in lines[captured.marks["start"] : captured.marks["end"]])
    # Outside the task, no id.
    last = captured.handler.records[-1]
    assert last.getMessage() == "after the task" and last.backup_id is None and "[backup=" not in lines[-1]
    assert not any(password in line for line in lines)


def test_a_failed_backup_logs_its_id_with_the_reason(tenant, captured, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    backup, _password = _backup(tenant)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_services.run, "write_archive", broken)
    captured.mark("start")
    run_backup(backup.pk)
    failures = [r for r in captured.records("start") if r.levelno >= logging.WARNING]
    assert failures and all(r.backup_id == backup.pk for r in failures)
    assert any("No space left" in captured.formatter.format(r) for r in failures)


def test_every_line_of_a_restore_task_carries_the_restore_id_and_no_secret_is_logged(tenant, captured) -> None:  # type: ignore[no-untyped-def]
    backup, archive_password = _backup(tenant)
    run_backup(backup.pk)
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason
    assert unwrap_password(backup.password_wrapped) == archive_password

    restore = restore_services.restore_request_code(backup=backup, user=tenant.owner)
    code = last_code()
    wrong_code = "13572468" if code != "13572468" else "24681357"
    with pytest.raises(restore_services.RestoreError):
        restore_services.restore_confirm(restore=restore, user=tenant.owner, code=wrong_code, password=DEMO_PASSWORD)
    restore = restore_services.restore_confirm(restore=restore, user=tenant.owner, code=code, password=DEMO_PASSWORD)
    assert restore.status == Restore.Status.QUEUED

    captured.mark("start")
    run_restore(restore.pk)
    captured.mark("end")
    restore.refresh_from_db()
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason

    during = captured.records("start", "end")
    assert any("completed" in r.getMessage() for r in during)
    assert all(r.restore_id == restore.pk for r in during), [(r.name, r.getMessage()) for r in during]
    # The pre-restore backup runs inside the restore: its lines carry both ids.
    pre = restore.pre_restore_backup
    assert pre is not None
    pre_lines = [r for r in during if r.backup_id == pre.pk]
    assert any("writing archive" in r.getMessage() for r in pre_lines)
    formatted = captured.lines()
    assert any(f"[restore={restore.pk} backup={pre.pk}] " in line for line in formatted)
    assert all(f"[restore={restore.pk}" in line for line in formatted[captured.marks["start"] : captured.marks["end"]])

    # Nothing secret in any line of the whole flow (request, wrong and right code, runs).
    pre_password = unwrap_password(pre.password_wrapped)
    secrets = [archive_password, pre_password, code, wrong_code, DEMO_PASSWORD, settings.SECRET_KEY]
    secrets += [settings.RESTORE_CODE_KEY, *settings.BACKUP_KEYS]
    for line in formatted:
        for secret in secrets:
            assert secret not in line, f"a secret was logged: {line!r}"
