"""The operators' *Unlock* action on restores, through the real Django admin changelist."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Notification
from organizations.models import Organization
from restores import services
from restores.models import Restore
from tests import factories as f
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import last_code

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:restores_restore_changelist"


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(f.UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True))
    return client


def _wrong(code: str) -> str:
    return "11111111" if code != "11111111" else "22222222"


def locked_request(backup, user) -> tuple[Restore, str]:  # type: ignore[no-untyped-def]
    """A request locked by five wrong codes, and the (still unexpired) code the Owner was sent."""
    restore = services.restore_request_code(backup=backup, user=user)
    code = last_code()
    for _ in range(5):
        with pytest.raises(services.RestoreError):
            services.restore_confirm(restore=restore, user=user, code=_wrong(code), password=DEMO_PASSWORD)
    restore.refresh_from_db()
    assert restore.status == Restore.Status.LOCKED and restore.attempts == 5
    return restore, code


def unlock(client: Client, *restores: Restore) -> tuple[Any, list[str]]:
    response = client.post(
        reverse(CHANGELIST),
        {"action": "unlock", "_selected_action": [r.pk for r in restores], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    return response, [str(m) for m in response.context["messages"]]


def test_a_locked_request_is_usable_again_with_a_new_code_only(tenant, full_backup, operator) -> None:  # type: ignore[no-untyped-def]
    locked, old_code = locked_request(full_backup, tenant.admin)
    # Two requests that are not locked: one cancelled here, one waiting in another organization.
    cancelled = Restore.objects.create(
        organization=tenant.org, backup=full_backup, requested_by=tenant.owner, status=Restore.Status.CANCELLED
    )
    waiting = Restore.objects.create(organization=tenant.other_org, requested_by=tenant.other_owner)
    untouched = list(Restore.objects.filter(pk__in=[cancelled.pk, waiting.pk]).order_by("pk").values())
    mail.outbox.clear()

    _, shown = unlock(operator, locked, cancelled, waiting)

    assert shown == [
        "1 restore request(s) unlocked: codes sent before no longer work, and the requester can ask for a new "
        "code, which goes to the Owner. 2 skipped because they were not locked."
    ]
    assert list(Restore.objects.filter(pk__in=[cancelled.pk, waiting.pk]).order_by("pk").values()) == untouched
    locked.refresh_from_db()
    assert locked.status == Restore.Status.AWAITING_CODE
    assert locked.attempts == 0 and locked.locked_at is None
    assert mail.outbox == []  # the operator neither sees nor sends a code
    entry = AuditLog.objects.get(action="restore.unlock")
    assert entry.actor_email == "ops@platform.test" and entry.object_id == str(locked.pk)
    assert entry.details["attempts"] == 5 and entry.details["codes_retired"] == 1
    told = Notification.objects.filter(title=f"Restore request #{locked.pk} unlocked")
    assert set(told.values_list("user__email", flat=True)) == {"owner@acme.test", "admin@acme.test"}

    # The code sent before the lock was still within its lifetime: it does not work again.
    with pytest.raises(services.RestoreError, match="expired"):
        services.restore_confirm(restore=locked, user=tenant.admin, code=old_code, password=DEMO_PASSWORD)

    # The requester asks for a new code on the request's page; it goes to the Owner.
    requester = Client()
    requester.force_login(tenant.admin)
    assert requester.post(reverse("restores:resend", args=[locked.pk])).status_code == 302
    assert [m.to for m in mail.outbox] == [["owner@acme.test"]]
    new_code = last_code(to="owner@acme.test")
    if new_code != old_code:
        wrong = requester.post(
            reverse("restores:confirm", args=[locked.pk]), {"code": old_code, "password": DEMO_PASSWORD}
        )
        assert wrong.status_code == 400 and b"The code is not correct. 4 attempt(s) left." in wrong.content
    ok = requester.post(reverse("restores:confirm", args=[locked.pk]), {"code": new_code, "password": DEMO_PASSWORD})
    assert ok.status_code == 302
    locked.refresh_from_db()
    assert locked.status == Restore.Status.QUEUED


def test_unlock_is_refused_while_another_request_waits_for_a_code(tenant, full_backup, operator) -> None:  # type: ignore[no-untyped-def]
    locked, _ = locked_request(full_backup, tenant.admin)
    services.restore_request_code(backup=full_backup, user=tenant.owner)  # a new request meanwhile

    _, shown = unlock(operator, locked)

    assert shown == [
        f"Not unlocked: Restore #{locked.pk}: another request of Acme Legal is waiting for a code.",
        "0 restore request(s) unlocked: codes sent before no longer work, and the requester can ask for a new "
        "code, which goes to the Owner. 0 skipped because they were not locked.",
    ]
    locked.refresh_from_db()
    assert locked.status == Restore.Status.LOCKED and locked.attempts == 5
    assert not AuditLog.objects.filter(action="restore.unlock").exists()


def test_unlock_is_refused_when_the_requester_may_no_longer_restore(tenant, full_backup, operator) -> None:  # type: ignore[no-untyped-def]
    locked, _ = locked_request(full_backup, tenant.admin)
    Organization.objects.filter(pk=tenant.org.pk).update(restore_policy=Organization.RestorePolicy.OWNER_ONLY)

    _, shown = unlock(operator, locked)

    assert shown[0] == (
        f"Not unlocked: Restore #{locked.pk}: admin@acme.test may no longer restore this organization from its backup."
    )
    locked.refresh_from_db()
    assert locked.status == Restore.Status.LOCKED


def test_only_staff_reach_the_action(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    locked, _ = locked_request(full_backup, tenant.admin)
    site_admin = Client()
    site_admin.force_login(tenant.site_admin)  # platform staff in the app, but not is_staff
    response = site_admin.post(reverse(CHANGELIST), {"action": "unlock", "_selected_action": [locked.pk]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    locked.refresh_from_db()
    assert locked.status == Restore.Status.LOCKED
