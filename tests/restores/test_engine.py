"""In-place restores: the data afterwards is the backup's; a failure anywhere changes nothing;
another organization is never touched; maintenance refuses changes; old and new formats."""

from __future__ import annotations

import contextvars
import io
from typing import Any

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.test import Client

from accounts.models import AuditLog, Notification
from backups import datasets as ds
from backups.archive import writer as writer_module
from backups.importer import import_archive
from backups.models import Backup
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores import engine, services, upgrades
from restores.inplace.plan import org_rows
from restores.maintenance import OrganizationInMaintenance, maintenance_off, maintenance_on
from restores.models import Restore
from tests import factories as f
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import add_document, confirmed_restore, db_state, make_backup, media_listing, run

pytestmark = pytest.mark.django_db


def change_everything(cast: Any) -> None:
    """Make today's data differ from the backup's in every data set."""
    org = cast.org
    org.description = "Changed after the backup"
    org.logo.save("logo", ContentFile(b"\x89PNG\r\n\x1a\nnew logo"))
    om.OrganizationSetting.objects.filter(organization=org, key="billing.currency").update(value={"code": "EUR"})
    om.OrganizationSetting.objects.create(organization=org, key="added.later", value=True)
    org.regulations.clear()
    om.Template.objects.create(organization=org, name="Added later")
    om.Client.objects.filter(organization=org).update(name="Renamed client")
    om.Payment.objects.filter(organization=org).delete()
    om.ControlledDocument.objects.filter(organization=org, reference="A0-2").delete()
    add_document(org, cast.ou_a, "NEW-1")
    added = om.OrganisationalUnit.objects.create(organization=org, name="Added OU", code="ADD")
    f.OURoleAssignmentFactory(user=cast.admin, ou=added)  # the Admin still sees whole-organization backups


def fail_at(monkeypatch: pytest.MonkeyPatch, stage: str, when: Any = None) -> None:
    def checkpoint(name: str, **info: Any) -> None:
        if name == stage and (when is None or when(info)):
            raise RuntimeError(f"injected failure at {stage}")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)


def test_the_organization_afterwards_holds_the_backups_data(
    tenant, full_backup, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    at_backup = logical_snapshot(tenant.org)
    change_everything(tenant)
    versions = om.DocumentVersion.objects.filter(document__organization=tenant.org)
    kept_files = dict(versions.exclude(document__reference="NEW-1").values_list("pk", "file"))
    added_file = versions.get(document__reference="NEW-1").file.name
    changed_logo = tenant.org.logo.name
    assert logical_snapshot(tenant.org) != at_backup
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        restore = run(confirmed_restore(full_backup, tenant.admin, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    assert callbacks  # the old files are deleted only once the restore committed
    tenant.org.refresh_from_db()
    assert logical_snapshot(tenant.org) == at_backup
    assert tenant.org.maintenance_since is None
    # The pre-restore backup holds the state just before, and is of kind pre-restore.
    pre = restore.pre_restore_backup
    assert pre is not None and pre.kind == Backup.Kind.PRE_RESTORE and pre.status == Backup.Status.COMPLETED
    assert pre.row_counts["templates"]["template"] == 2
    # Unchanged rows keep their stored files (same name, untouched); the changed logo and the
    # file of the document added since are gone (after the commit); the deleted document's
    # files came back in the restore's own folder.
    present = media_listing(exclude_prefix=("backups/",))
    assert changed_logo not in present and added_file not in present
    after = dict(versions.values_list("pk", "file"))
    assert {pk: name for pk, name in after.items() if pk in kept_files} == kept_files
    back = versions.filter(document__reference="A0-2").values_list("file", flat=True)
    assert back and all(f"/restore-{restore.pk}/" in name for name in back)
    assert restore.files_restored == len(back) + 1  # and the logo
    # Memberships: the Owner stays the Owner; the users are those of the backup.
    assert tenant.org.memberships.get(role="owner").user == tenant.owner
    # Every step audited; the Owner heard of the code and of the result.
    actions = list(AuditLog.objects.filter(object_id=str(restore.pk)).values_list("action", flat=True))
    for action in (
        "restore.request",
        "restore.code_sent",
        "restore.confirm",
        "restore.start",
        "restore.maintenance_on",
        "restore.pre_restore_backup",
        "restore.complete",
    ):
        assert action in actions
    subjects = [m.subject for m in mail.outbox if m.to == ["owner@acme.test"]]
    assert any(s.startswith("Restore code") for s in subjects) and any(
        s.startswith("Restore completed") for s in subjects
    )
    assert Notification.objects.filter(user=tenant.admin, title__contains="completed").exists()


def test_other_backups_keep_their_ou_scope(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    partial = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    partial.refresh_from_db()
    assert [ou.code for ou in partial.ous.all()] == ["LIT"]
    assert partial.ous.get().pk == tenant.ou_a.pk  # restored in place: the OU keeps its key


def test_a_restore_of_one_organization_changes_no_row_of_another(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    other = tenant.other_org
    f.SubscriptionFactory(organization=other)
    other_backup = make_backup(other)
    before = db_state(other)
    other_files = media_listing()
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED
    assert db_state(other) == before
    other_versions = om.DocumentVersion.objects.filter(document__organization=other).values_list("file", flat=True)
    after = media_listing()
    assert other_versions and all(after[name] == other_files[name] for name in other_versions)
    other_backup.refresh_from_db()
    assert other_backup.status == Backup.Status.COMPLETED


FAILURES = {
    "at the start": ("begin", None),
    "once the plan is made": ("planned", None),
    "after half the rows": ("row", lambda info: info["done"] >= info["total"] // 2),
    "after the files": ("dataset:clients", None),
    "while billing is written": ("dataset:billing", None),
    "after the old rows went": ("deleted", None),
    "after every row": ("imported", None),
    "during the final step": ("finalize", None),
}


@pytest.mark.parametrize("backup_scope", ["whole", "OU A, active documents"])
@pytest.mark.parametrize("where", list(FAILURES))
def test_a_failure_anywhere_leaves_data_and_files_as_before(
    tenant, full_backup, monkeypatch, where, backup_scope
) -> None:  # type: ignore[no-untyped-def]
    if backup_scope != "whole":  # a scope-exact restore of part of the organization
        full_backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a], include_inactive=False)
    change_everything(tenant)
    before_rows = db_state(tenant.org)
    before_snapshot = logical_snapshot(tenant.org)
    before_files = media_listing()
    stage, when = FAILURES[where]
    stored: list[str] = []
    original_save = FileSystemStorage.save

    def tracking_save(self: FileSystemStorage, name: str, content: Any, *args: Any, **kwargs: Any) -> str:
        saved = original_save(self, name, content, *args, **kwargs)
        stored.append(saved)
        return saved

    monkeypatch.setattr(FileSystemStorage, "save", tracking_save)
    fail_at(monkeypatch, stage, when)
    mail.outbox.clear()
    restore = run(confirmed_restore(full_backup, tenant.admin, DEMO_PASSWORD))
    assert restore.status == Restore.Status.FAILED
    assert "unexpected error" in restore.failure_reason
    assert db_state(tenant.org) == before_rows
    assert logical_snapshot(tenant.org) == before_snapshot
    assert media_listing() == before_files
    if where == "after the files" and backup_scope == "whole":
        assert any(name.startswith("documents/") for name in stored)  # files were written, then removed
    tenant.org.refresh_from_db()
    assert tenant.org.maintenance_since is None
    assert AuditLog.objects.filter(action="restore.fail", object_id=str(restore.pk)).exists()
    assert any(m.subject.startswith("Restore failed") and m.to == ["owner@acme.test"] for m in mail.outbox)


def test_a_damaged_archive_is_refused_before_anything_changes(tenant, full_backup, storage) -> None:  # type: ignore[no-untyped-def]
    path = storage.path(full_backup.file.name)
    with open(path, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    before = db_state(tenant.org)
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason and "unexpected" not in restore.failure_reason
    assert restore.pre_restore_backup is None  # refused before the maintenance window
    assert db_state(tenant.org) == before


def test_a_failing_pre_restore_backup_stops_the_restore(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backups.services import run as backup_run_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backup_run_module, "write_archive", broken)
    before = db_state(tenant.org)
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.FAILED
    assert "pre-restore backup failed" in restore.failure_reason
    assert db_state(tenant.org) == before


def test_a_pending_backup_is_run_before_the_pre_restore_backup(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from backups import services as backup_services

    pending, _ = backup_services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, label="Queued by hand"
    )
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    pending.refresh_from_db()
    assert pending.status == Backup.Status.COMPLETED
    assert restore.pre_restore_backup.completed_at >= pending.completed_at


def test_changes_are_refused_while_the_restore_runs(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, Any] = {}

    def checkpoint(name: str, **info: Any) -> None:
        if name != "deleted":
            return
        org = om.Organization.objects.get(pk=tenant.org.pk)
        seen["maintenance"] = org.maintenance_since

        def someone_else_saves() -> None:
            om.Template.objects.create(organization=tenant.org, name="Sneaked in")

        try:
            contextvars.Context().run(someone_else_saves)  # outside the engine's context
        except OrganizationInMaintenance as exc:
            seen["refused"] = str(exc)
        response = Client()
        response.force_login(tenant.owner)
        seen["page"] = response.get("/").content.decode()

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED
    assert seen["maintenance"] is not None
    assert "being restored" in seen["refused"]
    assert 'data-testid="maintenance-banner"' in seen["page"]
    assert not om.Template.objects.filter(name="Sneaked in").exists()


def test_maintenance_refuses_changes_and_ends(tenant) -> None:  # type: ignore[no-untyped-def]
    maintenance_on(tenant.org, "test")
    with pytest.raises(OrganizationInMaintenance):
        om.Template.objects.create(organization=tenant.org, name="Refused")
    version = om.DocumentVersion.objects.filter(document__organization=tenant.org).first()
    with pytest.raises(OrganizationInMaintenance):
        version.save()
    om.Template.objects.create(organization=tenant.other_org, name="Other organizations are not affected")
    maintenance_off(tenant.org)
    om.Template.objects.create(organization=tenant.org, name="Allowed again")


def test_every_registered_model_can_be_replaced(tenant) -> None:  # type: ignore[no-untyped-def]
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            org_rows(spec, tenant.org).count()  # raises for a model the engine cannot find


# ----------------------------------------------------------------------------------------------
# Compatibility


def test_a_backup_of_an_older_schema_is_restored(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import backups.export

    monkeypatch.setattr(
        backups.export,
        "current_schema",
        lambda: {"accounts": "0001_initial", "organizations": "0001_initial", "backups": "0001_initial"},
    )
    old = make_backup(tenant.org, tenant.owner)
    monkeypatch.undo()
    at_backup = logical_snapshot(tenant.org)
    change_everything(tenant)
    owner = type(tenant.owner).objects.get(pk=tenant.owner.pk)  # permissions are memoised per user object
    restore = run(confirmed_restore(old, owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    tenant.org.refresh_from_db()
    assert logical_snapshot(tenant.org) == at_backup


def test_a_backup_of_a_newer_schema_is_refused_clearly(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import backups.export

    real = backups.export.current_schema()
    monkeypatch.setattr(backups.export, "current_schema", lambda: {**real, "organizations": "0999_future"})
    newer = make_backup(tenant.org, tenant.owner)
    monkeypatch.undo()
    assert any("newer version" in p for p in services.in_place_problems(newer))
    with pytest.raises(services.RestoreError, match="newer version of the application"):
        services.restore_request_code(backup=newer, user=tenant.owner)


def test_a_backup_of_a_newer_format_is_refused_clearly(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(writer_module, "FORMAT", "backupsvc/2")
    newer = make_backup(tenant.org, tenant.owner)
    monkeypatch.undo()
    before = db_state(tenant.org)
    restore = run(confirmed_restore(newer, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.FAILED
    assert "newer version of the application" in restore.failure_reason
    assert db_state(tenant.org) == before


def test_older_formats_go_through_the_registered_upgraders(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class ClientNamesShout(upgrades.Upgrader):
        def manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
            manifest["upgraded"] = True
            return manifest

        def row(self, dataset: str, model: str, row: dict[str, Any]) -> dict[str, Any]:
            if model == "client":
                row["name"] = row["name"].upper()
            return row

    monkeypatch.setattr(upgrades, "UPGRADERS", {})
    upgrades.register(1)(ClientNamesShout)
    with engine.open_backup(full_backup) as reader:
        assert upgrades.upgraded(reader) is reader  # current: nothing to do
        newer = upgrades.upgraded(reader, current=2)  # as if the running code read format 2
        assert newer.manifest["upgraded"] and newer.manifest["format"].startswith("backupsvc/")
        target = om.Organization.objects.create(
            slug="upgraded", name="Upgraded", master_data_version=tenant.org.master_data_version
        )
        import_archive(reader=newer, organization=target)
    names = sorted(om.Client.objects.filter(organization=target).values_list("name", flat=True))
    assert names == sorted(
        n.upper() for n in om.Client.objects.filter(organization=tenant.org).values_list("name", flat=True)
    )
    with pytest.raises(LookupError, match="No upgrade from backup format 2"):
        upgrades.chain({"format": "backupsvc/1"}, current=3)


def test_rows_stream_through_upgraders_line_by_line() -> None:
    rows = [b'{"a": 1}\n', b'{"a": 2}\n']
    stream = io.BufferedReader(upgrades._RowStream(iter(rows)))
    assert stream.read() == b"".join(rows)
