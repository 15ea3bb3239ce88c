"""``manage.py backup audit-storage [--fix]`` on local storage: every completed backup's file
exists with its recorded size, every file under backups/ belongs to a backup; findings are kept
for the admin and mailed to the operators; nothing is deleted without --fix."""

from __future__ import annotations

import io

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client

from backups.models import Backup, StorageFinding
from tests import factories as f
from tests.restores.conftest import make_backup

pytestmark = pytest.mark.django_db


def audit(*args: str) -> tuple[str, str | None]:
    out = io.StringIO()
    try:
        call_command("backup", "audit-storage", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def open_findings() -> set[tuple[str, str]]:
    return set(StorageFinding.objects.filter(resolved_at__isnull=True).values_list("kind", "name"))


def test_audit_finds_missing_resized_and_orphan_files_mails_them_and_fixes_only_when_asked(cast, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ADMINS = [("Operators", "ops@platform.test")]
    intact = make_backup(cast.org, cast.owner)
    missing = make_backup(cast.org, cast.owner)
    f.SubscriptionFactory(organization=cast.other_org)
    resized = make_backup(cast.other_org, cast.other_owner)
    default_storage.delete(missing.file.name)
    with open(default_storage.path(resized.file.name), "ab") as fh:
        fh.write(b"appended")
    stray = default_storage.save("backups/stray.zip", ContentFile(b"belongs to nobody"))
    # Normal, not findings: a running backup's partial file, a failed one's file awaiting the sweep.
    running = Backup.objects.create(organization=cast.org, status=Backup.Status.IN_PROGRESS, file="backups/running.zip")
    default_storage.save(running.file.name, ContentFile(b"partial"))
    failed = Backup.objects.create(organization=cast.other_org, status=Backup.Status.FAILED, file="backups/failed.zip")
    default_storage.save(failed.file.name, ContentFile(b"partial"))
    mail.outbox.clear()  # the backups' own notifications
    assert audit()[1]  # findings open: a non-zero exit

    expected = {
        (StorageFinding.Kind.MISSING, missing.file.name),
        (StorageFinding.Kind.SIZE, resized.file.name),
        (StorageFinding.Kind.ORPHAN, stray),
    }
    assert open_findings() == expected
    resized_finding = StorageFinding.objects.get(kind=StorageFinding.Kind.SIZE)
    assert resized_finding.backup == resized and resized_finding.stored_size == resized.size + len(b"appended")
    assert intact.file.name not in {name for _kind, name in open_findings()}
    # Mailed to the operators, once; nothing deleted.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@platform.test"]
    assert mail.outbox[0].subject == "Storage audit: 3 new findings"
    for _kind, name in expected:
        assert name in mail.outbox[0].body
    assert default_storage.exists(stray) and default_storage.exists(running.file.name)

    # Again: the same findings, not new rows, no new mail, and a non-zero exit for scripts.
    output, error = audit()
    assert error == (
        "3 finding(s) open (Django admin: Storage findings). Run with --fix to delete orphan files and abort "
        "orphan uploads."
    )
    assert f"Found: A file under the backups prefix belongs to no backup: {stray}" in output
    assert StorageFinding.objects.count() == 3 and len(mail.outbox) == 1

    # --fix deletes the orphan only; the running backup's and the failed one's files stay.
    output, error = audit("--fix")
    assert f"Fixed: A file under the backups prefix belongs to no backup: {stray}" in output
    assert not default_storage.exists(stray)
    assert default_storage.exists(running.file.name) and default_storage.exists(failed.file.name)
    assert default_storage.exists(intact.file.name) and default_storage.exists(resized.file.name)
    assert open_findings() == expected - {(StorageFinding.Kind.ORPHAN, stray)}
    assert StorageFinding.objects.get(name=stray).resolution == "Deleted by audit-storage --fix."
    assert error and error.startswith("2 finding(s) open")

    # The operators' list in the Django admin.
    client = Client()
    client.force_login(f.UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True))
    page = client.get("/admin/backups/storagefinding/").content.decode()
    assert missing.file.name in page and resized.file.name in page


def test_a_finding_that_went_away_is_resolved_and_a_clean_storage_exits_zero(cast, settings) -> None:  # type: ignore[no-untyped-def]
    make_backup(cast.org, cast.owner)
    stray = default_storage.save("backups/stray.zip", ContentFile(b"belongs to nobody"))
    settings.ADMINS = []
    f.UserFactory(email="staff@platform.test", is_staff=True)  # no ADMINS: the staff are mailed
    assert audit()[1]
    assert mail.outbox[-1].to == ["staff@platform.test"]
    default_storage.delete(stray)  # removed by hand
    output, error = audit()
    assert error is None and output.endswith("No finding open.\n")
    assert StorageFinding.objects.get(name=stray).resolution == "No longer found by the audit."


def test_the_audit_runs_weekly_in_beat() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["backups-audit-storage"]
    assert entry == {"task": "backups.tasks.audit_storage", "schedule": 7 * 24 * 3600.0}
