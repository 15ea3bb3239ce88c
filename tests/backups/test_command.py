"""``manage.py backup``: create, process, list, verify, export and decrypt, and their refusals."""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import AuditLog
from backups.keys import unwrap_password
from backups.models import Backup, BackupEvent
from organizations.models import DocumentVersion

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@dataclass
class Output:
    out: str
    err: str


def run(*args: str) -> Output:
    out, err = StringIO(), StringIO()
    call_command("backup", *args, stdout=out, stderr=err)
    return Output(out.getvalue(), err.getvalue())


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PASSWORD + "\n")
    return path


@pytest.fixture
def completed(tenant, password_file: Path) -> Backup:  # type: ignore[no-untyped-def]
    """A completed backup of the tenant (every data set, inactive documents included), own password."""
    backup_id = int(run("create", "--org", "acme", "--include-inactive", "--password-file", str(password_file)).out)
    run("process")
    backup = Backup.objects.get(pk=backup_id)
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason
    return backup


def _stored_path(backup: Backup) -> Path:
    return Path(default_storage.path(backup.file.name))


# ---------------------------------------------------------------------------------------- create


def test_create_prints_only_the_id_and_uses_the_password_file(tenant, password_file, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    result = run("create", "--org", "acme", "--label", "Before audit", "--password-file", str(password_file))
    assert result.out.strip().isdigit() and result.out == result.out.strip() + "\n"
    backup = Backup.objects.get(pk=int(result.out))
    assert backup.status == Backup.Status.PENDING and backup.label == "Before audit" and backup.requested_by is None
    assert backup.all_ous and backup.include_active and not backup.include_inactive
    assert backup.password_source == Backup.PasswordSource.USER
    assert unwrap_password(backup.password_wrapped) == PASSWORD
    assert PASSWORD not in result.out + result.err + caplog.text


def test_create_names_the_operator_as_the_list_shows_it(tenant, password_file) -> None:  # type: ignore[no-untyped-def]
    """Not "System": the list's Created by says who ran the command (--operator, else the login)."""
    import getpass

    backup_id = int(
        run("create", "--org", "acme", "--operator", "ops@acme.test", "--password-file", str(password_file)).out
    )
    assert Backup.objects.get(pk=backup_id).requester_display == "Operator ops@acme.test via command line"
    Backup.objects.filter(pk=backup_id).update(status=Backup.Status.CANCELLED)
    backup_id = int(run("create", "--org", "acme", "--password-file", str(password_file)).out)
    assert Backup.objects.get(pk=backup_id).requester_display == f"Operator {getpass.getuser()} via command line"


def test_create_writes_the_generated_password_to_a_new_private_file(tenant, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "generated.txt"
    result = run("create", "--org", "acme", "--password-out", str(secret))
    backup = Backup.objects.get(pk=int(result.out))
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().strip()
    assert len(password) >= 20 and unwrap_password(backup.password_wrapped) == password
    assert backup.password_source == Backup.PasswordSource.GENERATED
    assert str(secret) in result.err and "not shown anywhere else" in result.err
    assert password not in result.out + result.err + caplog.text


def test_create_dispatches_a_worker_only_once_the_password_is_saved(tenant, tmp_path, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backups import tasks

    settings.BACKUP_DISPATCH_IMMEDIATELY = True
    secret = tmp_path / "generated.txt"
    seen: list[tuple[int, bool]] = []
    monkeypatch.setattr(tasks.run_backup, "delay", lambda pk: seen.append((pk, bool(secret.read_text()))))
    backup_id = int(run("create", "--org", "acme", "--password-out", str(secret)).out)
    assert seen == [(backup_id, True)]


def test_create_keeps_the_backup_queued_when_no_worker_can_be_reached(tenant, tmp_path, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backups import tasks

    def unreachable(pk: int) -> None:
        raise ConnectionError("broker down")

    settings.BACKUP_DISPATCH_IMMEDIATELY = True
    monkeypatch.setattr(tasks.run_backup, "delay", unreachable)
    secret = tmp_path / "generated.txt"
    result = run("create", "--org", "acme", "--password-out", str(secret))
    assert Backup.objects.get(pk=int(result.out)).status == Backup.Status.PENDING
    assert "stays queued" in result.err and secret.read_text().strip()


def test_create_without_a_password_option_refuses_and_queues_nothing(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=r"--password-file FILE .* or --password-out FILE"):
        run("create", "--org", "acme")
    assert not Backup.objects.exists()


def test_create_never_overwrites_an_existing_password_out_file(tenant, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "keep.txt"
    secret.write_text("precious")
    with pytest.raises(CommandError, match="already exists"):
        run("create", "--org", "acme", "--password-out", str(secret))
    assert secret.read_text() == "precious" and not Backup.objects.exists()


def test_refused_request_removes_the_password_out_file(tenant, tmp_path, password_file) -> None:  # type: ignore[no-untyped-def]
    run("create", "--org", "acme", "--password-file", str(password_file))
    secret = tmp_path / "second.txt"
    with pytest.raises(CommandError, match="already pending"):
        run("create", "--org", "acme", "--password-out", str(secret))
    assert not secret.exists() and Backup.objects.count() == 1


def test_create_limits_ous_data_sets_and_document_statuses(tenant, password_file) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "create",
        "--org",
        "acme",
        "--ous",
        "LIT",
        "--datasets",
        "documents",
        "--no-active",
        "--include-inactive",
        "--exclude-superseded",
        "--password-file",
        str(password_file),
    )
    backup = Backup.objects.get(pk=int(result.out))
    assert set(backup.ous.all()) == {tenant.ou_a} and not backup.all_ous
    assert "documents" in backup.datasets and "billing" not in backup.datasets
    assert (backup.include_active, backup.include_inactive, backup.exclude_superseded) == (False, True, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "nope"], "There is no organization with the slug 'nope'."),
        (["--org", "acme", "--ous", "LIT,XYZ"], "has no OU with the code\\(s\\) XYZ."),
        (["--org", "acme", "--datasets", "documents,bogus"], "Unknown data set\\(s\\): bogus."),
    ],
)
def test_create_refuses_unknown_names(tenant, password_file, args, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=message):
        run("create", *args, "--password-file", str(password_file))
    assert not Backup.objects.exists()


def test_create_refuses_a_short_or_missing_password_file(tenant, tmp_path) -> None:  # type: ignore[no-untyped-def]
    short = tmp_path / "short.txt"
    short.write_text("tiny\n")
    with pytest.raises(CommandError, match="at least 12 characters"):
        run("create", "--org", "acme", "--password-file", str(short))
    with pytest.raises(CommandError, match="does not exist"):
        run("create", "--org", "acme", "--password-file", str(tmp_path / "missing.txt"))
    assert not Backup.objects.exists()


def test_bad_arguments_are_one_clear_error(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="argument ID: 'abc' is not a whole number"):
        run("verify", "abc")
    with pytest.raises(CommandError, match="invalid choice"):
        run("list", "--status", "lost")


# --------------------------------------------------------------------------------- process, list


def test_process_runs_the_queue_and_prints_each_status(tenant, password_file) -> None:  # type: ignore[no-untyped-def]
    backup_id = int(run("create", "--org", "acme", "--password-file", str(password_file)).out)
    result = run("process")
    assert result.out.splitlines() == ["Processed 1 backup(s).", f"{backup_id}  acme  completed"]
    assert Backup.objects.get(pk=backup_id).status == Backup.Status.COMPLETED
    assert run("process").out.strip() == "Processed 0 backup(s)."


def test_process_exits_non_zero_when_a_backup_failed(tenant, password_file) -> None:  # type: ignore[no-untyped-def]
    default_storage.delete(DocumentVersion.objects.filter(document__organization=tenant.org).first().file.name)
    backup_id = int(run("create", "--org", "acme", "--password-file", str(password_file)).out)
    with pytest.raises(CommandError, match="1 of 1 backup\\(s\\) failed"):
        run("process")
    assert Backup.objects.get(pk=backup_id).status == Backup.Status.FAILED


def test_list_shows_the_backup_and_filters(completed) -> None:  # type: ignore[no-untyped-def]
    lines = run("list").out.splitlines()
    assert lines[0].split() == ["ID", "ORGANIZATION", "KIND", "STATUS", "CREATED", "DOCUMENTS", "SIZE", "EXPIRES"]
    row = lines[2].split()
    assert row[:4] == [str(completed.pk), "acme", "manual", "completed"]
    assert row[6] == "6"  # documents: active, inactive and superseded in two OUs
    assert timezone.localtime(completed.download_expires_at).strftime("%Y-%m-%d") in lines[2]
    assert run("list", "--status", "pending").out.strip() == "No backups."
    assert run("list", "--org", "other").out.strip() == "No backups."
    assert str(completed.pk) in run("list", "--org", "acme", "--status", "completed").out
    with pytest.raises(CommandError, match="no organization with the slug 'gone'"):
        run("list", "--org", "gone")


# ---------------------------------------------------------------------------------------- verify


def test_verify_ok_is_recorded(completed, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    result = run("verify", str(completed.pk))
    assert result.out.startswith("OK: ") and "members, manifest backupsvc/1" in result.out
    completed.refresh_from_db()
    assert completed.verification_ok is True and completed.last_verified_at is not None
    assert completed.verification_message in result.out
    assert AuditLog.objects.filter(action="backup.verify", object_id=str(completed.pk), details__ok=True).exists()
    assert BackupEvent.objects.filter(backup=completed, message__startswith="Verified:").exists()
    assert PASSWORD not in caplog.text


def test_verify_of_a_tampered_archive_fails_and_is_recorded(completed) -> None:  # type: ignore[no-untyped-def]
    path = _stored_path(completed)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match=f"Backup {completed.pk} failed verification: ") as excinfo:
        run("verify", str(completed.pk))
    completed.refresh_from_db()
    assert completed.verification_ok is False and completed.last_verified_at is not None
    assert completed.verification_message and completed.verification_message in str(excinfo.value)
    assert AuditLog.objects.filter(action="backup.verify", object_id=str(completed.pk), details__ok=False).exists()


def test_verify_of_a_missing_archive_fails_and_is_recorded(completed) -> None:  # type: ignore[no-untyped-def]
    _stored_path(completed).unlink()
    with pytest.raises(CommandError, match="missing from storage"):
        run("verify", str(completed.pk))
    completed.refresh_from_db()
    assert completed.verification_ok is False


def test_verify_refuses_unknown_and_unfinished_backups(tenant, password_file) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=r"There is no backup with id 999999\."):
        run("verify", "999999")
    backup_id = run("create", "--org", "acme", "--password-file", str(password_file)).out.strip()
    with pytest.raises(CommandError, match=r"Only a completed backup can be verified; backup \d+ is Pending\."):
        run("verify", backup_id)
    assert Backup.objects.get(pk=backup_id).last_verified_at is None


# ---------------------------------------------------------------------------------------- export


def test_export_copies_the_archive_byte_for_byte(completed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out" / "backup.zip"
    target.parent.mkdir()
    result = run("export", str(completed.pk), "--out", str(target))
    assert target.read_bytes() == _stored_path(completed).read_bytes()
    assert completed.sha256 in result.out
    assert [p.name for p in target.parent.iterdir()] == ["backup.zip"]  # no temporary file left
    assert AuditLog.objects.filter(action="backup.export", object_id=str(completed.pk)).exists()


def test_export_never_overwrites_without_force(completed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "backup.zip"
    target.write_bytes(b"mine")
    with pytest.raises(CommandError, match="already exists; use --force"):
        run("export", str(completed.pk), "--out", str(target))
    assert target.read_bytes() == b"mine"
    run("export", str(completed.pk), "--out", str(target), "--force")
    assert target.read_bytes() == _stored_path(completed).read_bytes()


def test_export_refuses_expired_unfinished_and_unknown_backups(completed, tmp_path, password_file) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "backup.zip"
    with pytest.raises(CommandError, match=r"There is no backup with id 999999\."):
        run("export", "999999", "--out", str(target))
    pending_id = run("create", "--org", "acme", "--password-file", str(password_file)).out.strip()
    with pytest.raises(CommandError, match="is Pending; only a completed backup can be exported"):
        run("export", pending_id, "--out", str(target))
    Backup.objects.filter(pk=completed.pk).update(download_expires_at=timezone.now())
    with pytest.raises(CommandError, match=r"download period of backup \d+ is over"):
        run("export", str(completed.pk), "--out", str(target))
    Backup.objects.filter(pk=completed.pk).update(status=Backup.Status.EXPIRED, file="")
    with pytest.raises(CommandError, match="has expired; its archive was deleted"):
        run("export", str(completed.pk), "--out", str(target))
    assert not target.exists()


def test_export_refuses_a_stored_archive_that_no_longer_matches(completed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _stored_path(completed)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    target = tmp_path / "backup.zip"
    with pytest.raises(CommandError, match="does not match its recorded SHA-256"):
        run("export", str(completed.pk), "--out", str(target))
    assert list(tmp_path.glob("*backup.zip*")) == []


# --------------------------------------------------------------------------------------- decrypt


def test_decrypt_extracts_the_stored_documents(completed, tmp_path, password_file) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "backup.zip"
    run("export", str(completed.pk), "--out", str(archive))
    dest = tmp_path / "restored"
    result = run("decrypt", str(archive), "--password-file", str(password_file), "--out", str(dest))
    assert result.out.startswith("Extracted ") and "index.html" in result.out
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["backup"]["id"] == completed.pk
    lines = (dest / "data" / "documents" / "document_version.jsonl").read_text().splitlines()
    versions = [json.loads(line) for line in lines if line]
    assert len(versions) == 8
    for row in versions:
        stored = DocumentVersion.objects.get(pk=row["id"])
        with default_storage.open(stored.file.name, "rb") as fh:
            assert (dest / row["file"]["member"]).read_bytes() == fh.read()
    assert (dest / "index.html").exists()


def test_decrypt_with_a_wrong_password_fails_cleanly(completed, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password at all\n")
    dest = tmp_path / "restored"
    with pytest.raises(CommandError, match=r"^The password is not correct for this backup\.$"):
        run("decrypt", str(_stored_path(completed)), "--password-file", str(wrong), "--out", str(dest))
    assert not dest.exists() or not any(dest.iterdir())


def test_decrypt_refuses_missing_files(completed, tmp_path, password_file) -> None:  # type: ignore[no-untyped-def]
    dest = str(tmp_path / "restored")
    with pytest.raises(CommandError, match="There is no file at"):
        run("decrypt", str(tmp_path / "nothing.zip"), "--password-file", str(password_file), "--out", dest)
    with pytest.raises(CommandError, match=r"The password file .* does not exist\."):
        run("decrypt", str(_stored_path(completed)), "--password-file", str(tmp_path / "none"), "--out", dest)


def test_decrypt_refuses_a_folder_with_the_same_files(completed, tmp_path, password_file) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "restored"
    dest.mkdir()
    (dest / "manifest.json").write_text("mine")
    with pytest.raises(CommandError, match="already exists; extract into an empty folder"):
        run("decrypt", str(_stored_path(completed)), "--password-file", str(password_file), "--out", str(dest))
    assert (dest / "manifest.json").read_text() == "mine" and os.listdir(dest) == ["manifest.json"]
