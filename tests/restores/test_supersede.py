"""One open request per organization, for in-place and selective restores alike: another
requester's valid code is waited for, and a new request supersedes one's own open request,
keeping its wrong entries (``restores.services.codes.supersede_open_request``)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import AuditLog, User
from backups.models import Backup
from organizations import models as om
from restores import services
from restores.models import Restore, RestoreCode
from restores.selective.services import restore_selective_request, selection_options
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import last_code, make_backup

pytestmark = pytest.mark.django_db

KINDS = ("in_place", "selective")


def open_request(kind: str, backup: Backup, user: User) -> Restore:
    """Ask for the Owner's code: for the whole backup in place, or for one picked template."""
    if kind == "in_place":
        return services.restore_request_code(backup=backup, user=user)
    template = om.Template.objects.filter(organization_id=backup.organization_id).order_by("pk").first()
    assert template is not None
    options = selection_options(picks={"template": {template.pk}}, with_dependants=False, overwrite=False)
    return restore_selective_request(backup=backup, user=user, options=options)


def enter_a_wrong_code(restore: Restore, user: User) -> None:
    wrong = "00000000" if last_code() != "00000000" else "11111111"
    with pytest.raises(services.RestoreError, match="The code is not correct"):
        services.restore_confirm(restore=restore, user=user, code=wrong, password=DEMO_PASSWORD)


@pytest.mark.parametrize("first", KINDS)
@pytest.mark.parametrize("second", KINDS)
def test_another_requester_waits_while_the_code_is_valid_then_supersedes_it(tenant, full_backup, first, second) -> None:  # type: ignore[no-untyped-def]
    waiting = open_request(first, full_backup, tenant.admin)
    enter_a_wrong_code(waiting, tenant.admin)
    with pytest.raises(services.RestoreError) as refused:
        open_request(second, full_backup, tenant.owner)
    until = timezone.localtime(waiting.codes.get().expires_at)
    assert str(refused.value) == (
        f"{tenant.admin} is waiting for a code to restore this organization (until {until:%H:%M}); try again later."
    )
    assert Restore.objects.get(pk=waiting.pk).status == Restore.Status.AWAITING_CODE
    assert not AuditLog.objects.filter(action="restore.superseded").exists()

    RestoreCode.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    new = open_request(second, full_backup, tenant.owner)
    old = Restore.objects.get(pk=waiting.pk)
    assert (old.status, old.failure_reason) == (Restore.Status.CANCELLED, "Superseded.")
    assert old.cancelled_at is not None
    assert (new.requested_by, new.kind, new.attempts) == (tenant.owner, second, 0)  # another's entries stay behind
    audit = AuditLog.objects.get(action="restore.superseded")
    assert (audit.actor, audit.organization, audit.object_id) == (tenant.owner, tenant.org, str(waiting.pk))


@pytest.mark.parametrize("first", KINDS)
@pytest.mark.parametrize("second", KINDS)
def test_a_new_request_supersedes_ones_own_and_keeps_its_wrong_entries(tenant, full_backup, first, second) -> None:  # type: ignore[no-untyped-def]
    other_backup = make_backup(tenant.org, tenant.owner)  # the same backup in place would re-send the code
    mine = open_request(first, full_backup, tenant.admin)
    enter_a_wrong_code(mine, tenant.admin)
    new = open_request(second, other_backup, tenant.admin)  # while the first code is still valid
    old = Restore.objects.get(pk=mine.pk)
    assert (old.status, old.failure_reason) == (Restore.Status.CANCELLED, "Superseded.")
    assert new.pk != mine.pk
    assert (new.requested_by, new.kind, new.backup, new.attempts) == (tenant.admin, second, other_backup, 1)
    audit = AuditLog.objects.get(action="restore.superseded")
    assert (audit.actor, audit.organization, audit.object_id) == (tenant.admin, tenant.org, str(mine.pk))
