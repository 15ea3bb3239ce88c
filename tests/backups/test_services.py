"""The backup engine's services: request rules, lifecycle, archive content, expiry, sweeps."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditLog, Notification
from backups import schedules, services
from backups.archive import ArchiveReader
from backups.keys import unwrap_password
from backups.models import Backup
from tests import factories as f

pytestmark = pytest.mark.django_db


def _run_all() -> None:
    services.process_queue()


def _read_rows(reader: ArchiveReader, name: str) -> list[dict]:
    with reader.open(name) as fh:
        return [json.loads(line) for line in fh.read().splitlines() if line]


def test_request_and_run_produces_a_verified_archive(tenant, tmp_path) -> None:  # type: ignore[no-untyped-def]
    backup, password = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, label="Pre year end", include_inactive=True, dispatch=False
    )
    assert backup.status == "pending" and backup.all_ous
    assert password not in backup.password_wrapped and unwrap_password(backup.password_wrapped) == password
    _run_all()
    backup.refresh_from_db()
    assert backup.status == "completed", backup.failure_reason
    assert backup.document_count == 6  # active + inactive + superseded in two OUs
    assert backup.download_expires_at - backup.completed_at == dt.timedelta(days=14)
    assert len(backup.sha256) == 64 and backup.size == default_storage.size(backup.file.name)
    assert "acme" not in backup.file.name.lower() and "pre" not in backup.file.name.lower()
    with default_storage.open(backup.file.name, "rb") as fh:
        reader = ArchiveReader(fh, password)
        manifest = reader.verify()
        assert manifest["organization"]["name"] == "Acme Legal"
        docs = _read_rows(reader, "data/documents/document.jsonl")
        assert {d["reference"] for d in docs} == {"A0-1", "A0-2", "A0-3", "A1-1", "A1-2", "A1-3"}
        assert all("OTHER" not in d["reference"] for d in docs)
        versions = _read_rows(reader, "data/documents/document_version.jsonl")
        assert len(versions) == 8
        for v in versions:
            with reader.open(v["file"]["member"]) as member, default_storage.open(_stored_name(v), "rb") as original:
                assert member.read() == original.read()
        assert b"A0-1" in b"".join([reader.open("index.csv").read()])
    # Names in the zip carry no tenant data.
    names = [m["path"] for m in manifest["members"]]
    assert not any("Acme" in n or "A0-1" in n for n in names)
    # Requester is told, by email and in-app.
    assert Notification.objects.filter(user=tenant.owner, title__startswith="Backup completed").exists()
    assert mail.outbox and mail.outbox[-1].to == [tenant.owner.email]
    assert AuditLog.objects.filter(action="backup.complete", object_id=str(backup.pk)).exists()


def _stored_name(version_row: dict) -> str:
    from organizations.models import DocumentVersion

    return DocumentVersion.objects.get(sha256=version_row["sha256"], number=version_row["number"]).file.name


def test_document_filters_choose_statuses(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _pw = services.backup_request(
        organization=tenant.org,
        requested_by=tenant.owner,
        include_active=True,
        include_inactive=False,
        exclude_superseded=True,
        dispatch=False,
    )
    _run_all()
    backup.refresh_from_db()
    assert backup.document_count == 2


def test_ou_limited_backup_holds_only_those_ous(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, pw = services.backup_request(
        organization=tenant.org, requested_by=tenant.editor_a, include_inactive=True, dispatch=False
    )
    # No OUs chosen: every OU the requester may back up (only OU A for editor_a).
    assert set(backup.ous.all()) == {tenant.ou_a} and not backup.all_ous
    _run_all()
    backup.refresh_from_db()
    with default_storage.open(backup.file.name, "rb") as fh:
        reader = ArchiveReader(fh, pw)
        reader.verify()
        assert {d["reference"][:2] for d in _read_rows(reader, "data/documents/document.jsonl")} == {"A0"}
        assert [o["code"] for o in _read_rows(reader, "data/structure/ou.jsonl")] == ["LIT"]
        assert {i["number"] for i in _read_rows(reader, "data/billing/invoice.jsonl")} == {"INV-0"}


def test_requester_needs_the_permission_in_every_chosen_ou(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(services.BackupError, match="do not hold Backups: Manage Account Backups in Finance"):
        services.backup_request(organization=tenant.org, requested_by=tenant.editor_a, ous=[tenant.ou_a, tenant.ou_b])
    assert not Backup.objects.exists()


def test_foreign_ou_is_refused(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(services.BackupError, match="this organization only"):
        services.backup_request(organization=tenant.org, requested_by=tenant.owner, ous=[tenant.other_org.ous.get()])


def test_facility_without_chosen_ous_means_all_its_ous(tenant) -> None:  # type: ignore[no-untyped-def]
    fac = f.FacilityFactory(organization=tenant.org, name="London")
    tenant.ou_a.facility = fac
    tenant.ou_a.save()
    extra = f.OUFactory(organization=tenant.org, facility=fac, code="LDN2")
    backup, _ = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, facilities=[fac], dispatch=False
    )
    assert set(backup.ous.all()) == {tenant.ou_a, extra}
    assert list(backup.facilities.all()) == [fac]


def test_one_pending_backup_per_organization(tenant) -> None:  # type: ignore[no-untyped-def]
    services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    with pytest.raises(services.BackupError, match="already pending"):
        services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    # The database refuses it even when the check is bypassed.
    with pytest.raises(IntegrityError), transaction.atomic():
        Backup.objects.create(organization=tenant.org, status="pending")


def test_subscription_required(tenant) -> None:  # type: ignore[no-untyped-def]
    sub = tenant.org.subscription
    sub.ends_on = timezone.localdate() - dt.timedelta(days=1)
    sub.starts_on = sub.ends_on - dt.timedelta(days=30)
    sub.save()
    with pytest.raises(services.BackupError, match="no valid backup subscription"):
        services.backup_request(organization=tenant.org, requested_by=tenant.owner)


def test_user_password_must_be_long_enough(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(services.BackupError, match="at least 12 characters"):
        services.backup_request(organization=tenant.org, requested_by=tenant.owner, password="short")
    backup, pw = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, password="my own long passphrase", dispatch=False
    )
    assert pw == "my own long passphrase" and backup.password_source == "user"


def test_generated_password_is_strong_and_grouped(tenant) -> None:  # type: ignore[no-untyped-def]
    import math

    _, pw = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    groups = pw.split("-")
    assert len(groups) >= 4
    alphabet = set("".join(groups))
    # At least 128 bits: the generator's alphabet and length, not just this sample.
    from backups.archive import crypto

    assert len("".join(groups)) * math.log2(len(crypto.PASSWORD_ALPHABET)) >= 128
    assert alphabet <= set(crypto.PASSWORD_ALPHABET)


def test_unknown_dataset_is_refused(tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(services.BackupError, match="Unknown data set: nope"):
        services.backup_request(organization=tenant.org, requested_by=tenant.owner, datasets=["nope"])


def test_datasets_pull_in_their_dependencies(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, datasets=["billing"], dispatch=False
    )
    assert backup.datasets == ["structure", "clients", "templates", "billing"]


def test_cancel_only_while_pending(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    services.backup_cancel(backup=backup, user=tenant.owner)
    assert backup.status == "cancelled" and backup.cancelled_at
    with pytest.raises(services.IllegalTransition):
        services.backup_cancel(backup=backup, user=tenant.owner)
    # A new request is allowed after cancelling.
    services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)


def test_claim_is_exclusive(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    first = services.backup_claim(backup_id=backup.pk)
    assert first is not None and first.status == "in_progress"
    assert services.backup_claim(backup_id=backup.pk) is None
    assert services.backup_claim() is None
    with pytest.raises(services.IllegalTransition):
        services.backup_cancel(backup=backup, user=tenant.owner)


def test_failure_keeps_reason_removes_file_and_allows_a_new_request(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    # A stored document vanished from storage: the writer cannot read it.
    from organizations.models import DocumentVersion

    victim = DocumentVersion.objects.filter(document__organization=tenant.org).first()
    default_storage.delete(victim.file.name)
    before = set(_all_files())
    _run_all()
    backup.refresh_from_db()
    assert backup.status == "failed" and backup.failure_reason
    assert not backup.file
    assert set(_all_files()) <= before  # no partial archive left behind
    assert Notification.objects.filter(user=tenant.owner, title__startswith="Backup failed").exists()
    services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)


def _all_files() -> list[str]:
    import os

    root = default_storage.location
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]


def test_expiry_deletes_the_file_and_keeps_the_record(tenant, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    _run_all()
    backup.refresh_from_db()
    name = backup.file.name
    assert services.backups_expire_due() == 0
    later = timezone.now() + dt.timedelta(days=14, minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.backups_expire_due(now=later) == 1
    backup.refresh_from_db()
    assert backup.status == "expired" and not backup.file and backup.expired_at
    assert not default_storage.exists(name)
    assert not backup.is_downloadable


def test_stale_sweep_fails_a_job_whose_worker_died(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    claimed = services.backup_claim()
    assert claimed is not None
    assert services.backups_fail_stale() == 0
    assert services.backups_fail_stale(now=timezone.now() + dt.timedelta(minutes=11)) == 1
    backup.refresh_from_db()
    assert backup.status == "failed" and "stopped responding" in backup.failure_reason


def test_schedule_queues_and_keeps_a_rolling_history(tenant, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from backups.models import BackupSchedule

    schedule = schedules.schedule_save(
        schedule=BackupSchedule(organization=tenant.org, frequency="daily", time_of_day=dt.time(2, 0), keep_last=2),
        user=tenant.owner,
    )
    assert schedule.next_run_at > timezone.now()
    now = schedule.next_run_at
    kept = []
    for day in range(3):
        moment = now + dt.timedelta(days=day, seconds=1)
        queued = schedules.schedules_run_due(now=moment)
        assert len(queued) == 1 and queued[0].kind == "scheduled"
        assert schedules.schedules_run_due(now=moment) == []  # the same run is not queued twice
        with django_capture_on_commit_callbacks(execute=True):
            _run_all()
        kept.append(queued[0].pk)
    statuses = dict(Backup.objects.filter(pk__in=kept).values_list("pk", "status"))
    assert [statuses[pk] for pk in kept] == ["expired", "completed", "completed"]


def test_weekly_schedule_next_run(tenant) -> None:  # type: ignore[no-untyped-def]
    from backups.models import BackupSchedule

    s = BackupSchedule(organization=tenant.org, frequency="weekly", weekday=0, time_of_day=dt.time(3, 30))
    after = timezone.make_aware(dt.datetime(2026, 11, 22, 12, 0))  # a Sunday
    assert s.compute_next_run(after) == timezone.make_aware(dt.datetime(2026, 11, 23, 3, 30))
    assert s.compute_next_run(timezone.make_aware(dt.datetime(2026, 11, 23, 3, 30))).day == 30


def test_retry_of_a_failed_backup_keeps_scope_and_password(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, pw = services.backup_request(organization=tenant.org, requested_by=tenant.editor_a, dispatch=False)
    services.backup_claim()
    services.backups_fail_stale(now=timezone.now() + dt.timedelta(hours=1))
    backup.refresh_from_db()
    retry = services.backup_retry(backup=backup, user=tenant.owner)
    assert retry.status == "pending" and set(retry.ous.all()) == {tenant.ou_a}
    assert unwrap_password(retry.password_wrapped) == pw
    with pytest.raises(services.IllegalTransition):
        services.backup_retry(backup=retry, user=tenant.owner)


def test_a_backup_whose_ous_were_all_deleted_is_only_for_whole_organization_users(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.editor_a, dispatch=False)
    assert backup in Backup.objects.visible_to(tenant.editor_a)
    backup.ous.clear()  # e.g. the OU was removed since
    assert backup not in Backup.objects.visible_to(tenant.editor_a)
    assert backup in Backup.objects.visible_to(tenant.owner)


def test_plain_text_mail_shows_names_as_written(tenant) -> None:  # type: ignore[no-untyped-def]
    """Subjects and text bodies are not HTML: "&" stays "&" (the HTML part escapes it)."""
    tenant.org.name = "Smith & Jones <Legal>"
    tenant.org.save()
    services.backup_request(organization=tenant.org, requested_by=tenant.owner, label="Q&A")
    assert services.process_queue() == 1
    sent = mail.outbox[-1]
    assert sent.subject == "Backup completed: Q&A (Smith & Jones <Legal>)"
    assert 'The backup "Q&A" of Smith & Jones <Legal> is ready.' in sent.body
    html = sent.alternatives[0].content if hasattr(sent.alternatives[0], "content") else sent.alternatives[0][0]
    assert "Smith &amp; Jones &lt;Legal&gt;" in html
