"""The Owner's code: who gets it, how long and how often it works, and that it is never stored."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from accounts.models import AuditLog, Notification
from organizations.models import Organization
from restores import services
from restores.codes import CODE_DIGITS, code_digest, code_matches
from restores.models import Restore, RestoreCode
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import last_code, make_backup
from tests.support.procs import sqlite_file_database

pytestmark = pytest.mark.django_db


def request_code(backup, user):  # type: ignore[no-untyped-def]
    return services.restore_request_code(backup=backup, user=user)


def confirm(restore, user, code, password=DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    return services.restore_confirm(restore=restore, user=user, code=code, password=password)


def test_the_code_goes_to_the_owner_only(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    mail.outbox.clear()
    restore = request_code(full_backup, tenant.admin)
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    code = last_code()
    assert len(code) == CODE_DIGITS and code.isdigit()
    assert "admin@acme.test" in mail.outbox[0].subject  # the Owner learns who asked
    html = mail.outbox[0].alternatives[0][0]
    assert code in html
    # In-app: the Owner is told a code was sent; the message itself holds no code.
    owner_note = Notification.objects.get(user=tenant.owner, title__startswith="Restore code")
    assert "Restore code requested" in owner_note.title and code not in owner_note.body
    assert not Notification.objects.filter(user=tenant.admin).exists()
    assert restore.status == Restore.Status.AWAITING_CODE
    assert AuditLog.objects.filter(action="restore.code_sent", object_id=str(restore.pk)).exists()


def test_the_database_never_holds_the_code_in_clear(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    first = last_code()
    with pytest.raises(services.RestoreError):
        confirm(restore, tenant.admin, "00000000" if first != "00000000" else "11111111")
    restore = services.restore_resend_code(restore=Restore.objects.get(pk=restore.pk), user=tenant.admin)
    second = last_code()
    confirm(restore, tenant.admin, second)
    codes = {first, second}
    # Every column of every table (the restore tables and all others: notifications, audit log).
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                for code in codes:
                    assert code not in text, f"{table} holds the code"
    digests = set(RestoreCode.objects.values_list("digest", flat=True))
    assert len(digests) == 2 and all(len(d) == 64 for d in digests)


def test_an_expired_code_is_refused(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    RestoreCode.objects.filter(restore=restore).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(services.RestoreError, match="expired"):
        confirm(restore, tenant.admin, code)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.AWAITING_CODE and restore.attempts == 0


def test_the_code_lives_for_the_configured_lifetime(tenant, full_backup, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RESTORE_CODE_LIFETIME = dt.timedelta(minutes=10)
    before = timezone.now()
    restore = request_code(full_backup, tenant.admin)
    sent = restore.codes.get()
    assert before + dt.timedelta(minutes=10) <= sent.expires_at <= timezone.now() + dt.timedelta(minutes=10)


def test_a_used_code_is_refused(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    confirm(restore, tenant.admin, code)
    with pytest.raises(services.RestoreError, match="already been used"):
        confirm(restore, tenant.admin, code)
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.QUEUED
    assert RestoreCode.objects.get(restore=restore).used_at is not None


def test_a_code_for_another_backup_is_refused(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    other_backup = make_backup(tenant.org, tenant.owner)
    first = request_code(full_backup, tenant.admin)
    code_for_first = last_code()
    # Switching to another backup retires the first request; its code is worth nothing here.
    second = request_code(other_backup, tenant.admin)
    assert Restore.objects.get(pk=first.pk).status == Restore.Status.CANCELLED
    with pytest.raises(services.RestoreError, match="code is not correct"):
        confirm(second, tenant.admin, code_for_first)
    with pytest.raises(services.RestoreError, match="cancelled"):
        confirm(Restore.objects.get(pk=first.pk), tenant.admin, code_for_first)
    # The binding is in the HMAC itself: the same code for another backup has another digest.
    sent = second.codes.get()
    bound = {"restore_id": second.pk, "organization_id": tenant.org.pk, "requester_id": tenant.admin.pk}
    assert code_matches(sent.digest, backup_id=other_backup.pk, code=last_code(), **bound)
    assert not code_matches(sent.digest, backup_id=full_backup.pk, code=last_code(), **bound)


def test_a_code_for_another_requester_is_refused(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    # The Owner reads the code but cannot use the Admin's request with it.
    with pytest.raises(services.RestoreError, match="someone else"):
        confirm(restore, tenant.owner, code)
    sent = restore.codes.get()
    bound = {"restore_id": restore.pk, "backup_id": full_backup.pk, "organization_id": tenant.org.pk}
    assert code_matches(sent.digest, requester_id=tenant.admin.pk, code=code, **bound)
    assert not code_matches(sent.digest, requester_id=tenant.owner.pk, code=code, **bound)
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.AWAITING_CODE


def test_a_sixth_attempt_is_refused_even_with_the_right_code(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    wrong = "11111111" if code != "11111111" else "22222222"
    mail.outbox.clear()
    for n in range(1, 6):
        with pytest.raises(services.RestoreError) as info:
            confirm(restore, tenant.admin, wrong)
        assert (f"{5 - n} attempt(s) left" in str(info.value)) if n < 5 else ("cancelled" in str(info.value))
    restore.refresh_from_db()
    assert restore.status == Restore.Status.LOCKED and restore.attempts == 5
    with pytest.raises(services.RestoreError, match="cancelled after 5 wrong entries"):
        confirm(restore, tenant.admin, code)
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.LOCKED
    # The Owner was told, by email and in-app; the lockout is audited.
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    assert "wrong entries" in mail.outbox[0].subject
    assert Notification.objects.filter(user=tenant.owner, title__startswith="Restore request locked").exists()
    assert AuditLog.objects.filter(action="restore.locked").count() == 1
    assert AuditLog.objects.filter(action="restore.code_wrong").count() == 5


def test_a_wrong_password_counts_as_a_wrong_entry(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    with pytest.raises(services.RestoreError, match=r"password is not correct\. 4 attempt"):
        confirm(restore, tenant.admin, last_code(), password="not-my-password")
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.AWAITING_CODE


def test_a_new_code_does_not_reset_the_count_and_retires_the_old_one(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    old = last_code()
    for _ in range(2):
        with pytest.raises(services.RestoreError):
            confirm(restore, tenant.admin, "99999999" if old != "99999999" else "88888888")
    again = services.restore_resend_code(restore=Restore.objects.get(pk=restore.pk), user=tenant.admin)
    assert again.pk == restore.pk and again.attempts == 2
    new = last_code()
    if new != old:
        with pytest.raises(services.RestoreError, match="2 attempt"):
            confirm(restore, tenant.admin, old)
    # Asking for the same backup through the start page keeps the count too.
    assert request_code(full_backup, tenant.admin).attempts == (3 if new != old else 2)


def test_an_organization_gets_at_most_three_codes_an_hour(tenant, full_backup, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RESTORE_CODES_PER_HOUR = 3
    restore = request_code(full_backup, tenant.admin)
    services.restore_resend_code(restore=restore, user=tenant.admin)
    services.restore_resend_code(restore=restore, user=tenant.admin)
    assert restore.codes.count() == 3
    with pytest.raises(services.RestoreError, match="3 restore codes in the last hour"):
        services.restore_resend_code(restore=restore, user=tenant.admin)
    # An hour later the organization may have codes again.
    RestoreCode.objects.update(created_at=timezone.now() - dt.timedelta(minutes=61))
    services.restore_resend_code(restore=restore, user=tenant.admin)
    assert restore.codes.count() == 4


def test_another_requester_waits_while_a_code_is_valid(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    request_code(full_backup, tenant.admin)
    with pytest.raises(services.RestoreError, match="is waiting for a code"):
        request_code(full_backup, tenant.owner)
    RestoreCode.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert request_code(full_backup, tenant.owner).requested_by == tenant.owner


def test_members_and_owner_only_policy(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(services.RestoreError, match="may not see this backup"):
        request_code(full_backup, tenant.member)
    with pytest.raises(services.RestoreError, match="Only the Owner"):
        services.restore_policy_set(organization=tenant.org, user=tenant.admin, policy="owner_only")
    services.restore_policy_set(organization=tenant.org, user=tenant.owner, policy="owner_only")
    assert Organization.objects.get(pk=tenant.org.pk).restore_policy == "owner_only"
    tenant.org.refresh_from_db()
    with pytest.raises(services.RestoreError, match="may not restore"):
        request_code(full_backup, tenant.admin)
    assert request_code(full_backup, tenant.owner).requested_by == tenant.owner
    assert AuditLog.objects.filter(action="restore.policy", details__to="owner_only").exists()


def test_a_backup_of_some_ous_can_be_restored_in_place(tenant) -> None:  # type: ignore[no-untyped-def]
    partial = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    assert services.in_place_problems(partial) == []
    assert request_code(partial, tenant.owner).status == Restore.Status.AWAITING_CODE


def test_a_backup_without_the_data_sets_depending_on_its_own_is_refused(tenant) -> None:  # type: ignore[no-untyped-def]
    structure_only = make_backup(tenant.org, tenant.owner, datasets=["structure"])
    with pytest.raises(services.RestoreError, match="depend on it"):
        request_code(structure_only, tenant.owner)
    settings_only = make_backup(tenant.org, tenant.owner, datasets=["settings"])
    assert request_code(settings_only, tenant.owner).status == Restore.Status.AWAITING_CODE


def test_the_digest_is_an_hmac_with_the_server_key(settings) -> None:  # type: ignore[no-untyped-def]
    bound = {"restore_id": 1, "backup_id": 2, "organization_id": 3, "requester_id": 4, "code": "12345678"}
    settings.RESTORE_CODE_KEY = "key-one"
    one = code_digest(**bound)
    settings.RESTORE_CODE_KEY = "key-two"
    assert code_digest(**bound) != one
    assert "12345678" not in one


@pytest.fixture
def file_db(transactional_db, tmp_path):  # type: ignore[no-untyped-def]
    """Threads need real locking: the in-memory test database moves to a file (WAL, busy timeout)."""
    with sqlite_file_database(tmp_path / "db.sqlite3"):
        yield


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_of_the_right_code_start_one_restore(file_db, tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait()
            confirm(Restore.objects.get(pk=restore.pk), tenant.admin, code)
            outcomes.append("queued")
        except services.RestoreError as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("queued") == 1, outcomes
    assert any("already been used" in o for o in outcomes), outcomes
    assert Restore.objects.filter(status=Restore.Status.QUEUED).count() == 1
    assert AuditLog.objects.filter(action="restore.confirm").count() == 1
    # And a claim by two workers runs it once.
    claims = [services.restore_claim(restore_id=restore.pk), services.restore_claim(restore_id=restore.pk)]
    assert claims[0] is not None and claims[1] is None


def test_no_in_place_request_while_a_selective_restore_is_queued(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from restores.selective.services import restore_selective_request, selection_options

    template = tenant.org.templates.first()
    options = selection_options(picks={"template": {template.pk}}, with_dependants=False, overwrite=False)
    selective = restore_selective_request(backup=full_backup, user=tenant.owner, options=options)
    confirm(selective, tenant.owner, last_code())
    sent = len(mail.outbox)
    with pytest.raises(services.RestoreError, match=r"^A restore of this organization is already queued or running\.$"):
        request_code(full_backup, tenant.admin)
    assert len(mail.outbox) == sent
    assert list(Restore.objects.values_list("kind", "status")) == [(Restore.Kind.SELECTIVE, Restore.Status.QUEUED)]


def test_the_code_of_an_in_place_request_is_refused_while_an_operators_restore_runs(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = request_code(full_backup, tenant.admin)
    code = last_code()
    operators = Restore.objects.create(  # manage.py restore selective, started in another process
        kind=Restore.Kind.SELECTIVE,
        status=Restore.Status.RUNNING,
        organization=tenant.org,
        backup=full_backup,
        requested_by=tenant.owner,
    )
    with pytest.raises(services.RestoreError, match=r"^A restore of this organization is already queued or running\.$"):
        confirm(restore, tenant.admin, code)
    restore.refresh_from_db()
    assert (restore.status, restore.attempts) == (Restore.Status.AWAITING_CODE, 0)
    assert list(Restore.objects.filter(status__in=Restore.ACTIVE_STATUSES)) == [operators]
    assert not AuditLog.objects.filter(action="restore.confirm").exists()
