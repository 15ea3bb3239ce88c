"""The Account Backups list: columns, badges, sorting, filters, grouping for Site Admins,
pagination, empty states, subscription notes, the Request Backup button, the menu item, the
restore link, live rows, and a constant number of queries whatever the number of rows."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backups.models import Backup, BackupEvent
from backups.verify import NOT_CHECKED
from tests import factories as f
from tests.backups.test_views_access import login, make_backup

pytestmark = pytest.mark.django_db

LIST = "/backups/"


def _row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="backup-(\d+)"', html)]


def test_row_shows_every_column(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, requested_by=cast.editor, label="Pre-Year-End Close", ous=(cast.ou_a,))
    html = login(cast.owner).get(LIST).content.decode()
    row = html[html.index(f'id="backup-{backup.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Pre-Year-End Close" in row
    assert "Completed" in row
    assert backup.created_at.strftime("%Y") in row
    assert cast.editor.get_full_name() in row
    assert "Manual" in row
    assert "Litigation" in row and "All OUs" not in row
    assert ">3<" in row  # document count
    assert "4.0 KiB" in row  # size, in the unit system of every page and the CLI
    assert timezone.localtime(backup.download_expires_at).strftime("%Y") in row
    assert "Never" in row  # last verified
    assert reverse("backups:download", args=[backup.pk]) in row
    assert reverse("backups:history", args=[backup.pk]) in row
    assert reverse("backups:detail", args=[backup.pk]) in row
    assert reverse("backups:cancel", args=[backup.pk]) not in row  # completed: no trash icon


def test_all_ous_and_generated_name(cast) -> None:  # type: ignore[no-untyped-def]
    make_backup(cast.org, Backup.Status.PENDING)
    html = login(cast.owner).get(LIST).content.decode()
    assert "All OUs" in html
    assert "Manual backup " in html  # the generated name when there is no label


def test_status_badges_and_actions_follow_the_status(cast) -> None:  # type: ignore[no-untyped-def]
    failed = make_backup(cast.org, Backup.Status.FAILED, failure_reason="Disk full on the worker")
    pending = make_backup(cast.org, Backup.Status.PENDING)
    expired = make_backup(cast.org, Backup.Status.EXPIRED)
    html = login(cast.owner).get(LIST).content.decode()
    assert ">Disk full on the worker.</div>" in html  # the failure reason, a sentence under the badge
    assert reverse("backups:cancel", args=[pending.pk]) in html
    for b in (failed, expired):
        assert reverse("backups:download", args=[b.pk]) not in html
        assert reverse("backups:cancel", args=[b.pk]) not in html
        assert reverse("backups:history", args=[b.pk]) in html  # history: always
    assert "Expired" in html and "Failed" in html and "Pending" in html


def test_pending_and_running_rows_poll_and_finished_rows_do_not(cast) -> None:  # type: ignore[no-untyped-def]
    running = make_backup(
        cast.org, Backup.Status.IN_PROGRESS, progress_items_done=3, progress_items_total=12, progress_bytes_total=0
    )
    done = make_backup(cast.org)
    html = login(cast.owner).get(LIST).content.decode()
    row_url = reverse("backups:row", args=[running.pk])
    assert f'hx-get="{row_url}?was=in_progress" hx-trigger="every 2s"' in html
    assert "3 of 12 items" in html and '<progress max="100" value="25"' in html
    done_row = html[html.index(f'id="backup-{done.pk}"') :].split(">", 1)[0]
    assert "hx-trigger" not in done_row


def test_row_partial_turns_final_and_announces_the_change(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING)
    client = login(cast.owner)
    url = reverse("backups:row", args=[backup.pk])
    response = client.get(url + "?was=pending", HTTP_HX_REQUEST="true")
    assert "every 2s" in response.content.decode()
    assert "HX-Trigger" not in response
    Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.CANCELLED)
    response = client.get(url + "?was=pending", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith("<tr") and "hx-trigger" not in html and "Cancelled" in html
    assert "backups-changed" in response["HX-Trigger"]


def test_sorting(cast) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    small = make_backup(cast.org, content=b"x" * 10, created_at=now - dt.timedelta(days=2), requested_by=cast.owner)
    big = make_backup(cast.org, content=b"x" * 5000, created_at=now - dt.timedelta(days=1), requested_by=cast.editor)
    sched = make_backup(cast.org, Backup.Status.FAILED, kind=Backup.Kind.SCHEDULED, created_at=now)
    client = login(cast.owner)
    assert _row_ids(client.get(LIST).content.decode()) == [sched.pk, big.pk, small.pk]  # newest first
    assert _row_ids(client.get(LIST + "?sort=date").content.decode()) == [small.pk, big.pk, sched.pk]
    assert _row_ids(client.get(LIST + "?sort=-size").content.decode())[:2] == [big.pk, small.pk]
    # Backups without a size yet (failed, pending) come last in both directions.
    assert _row_ids(client.get(LIST + "?sort=size").content.decode()) == [small.pk, big.pk, sched.pk]
    assert _row_ids(client.get(LIST + "?sort=type").content.decode()) == [big.pk, small.pk, sched.pk]
    assert _row_ids(client.get(LIST + "?sort=status").content.decode()) == [big.pk, small.pk, sched.pk]
    by_user = _row_ids(client.get(LIST + "?sort=user").content.decode())
    assert by_user.index(big.pk) < by_user.index(small.pk)  # editor@ before owner@


def test_filters(cast) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    old = make_backup(cast.org, created_at=now - dt.timedelta(days=30), requested_by=cast.owner)
    only_b = make_backup(cast.org, Backup.Status.FAILED, ous=(cast.ou_b,), requested_by=cast.editor)
    sched = make_backup(cast.org, Backup.Status.CANCELLED, kind=Backup.Kind.SCHEDULED, ous=(cast.ou_a,))
    client = login(cast.owner)

    def ids(query: str) -> set[int]:
        return set(_row_ids(client.get(LIST + "?" + query).content.decode()))

    since = (now - dt.timedelta(days=5)).date().isoformat()
    until = (now - dt.timedelta(days=5)).date().isoformat()
    assert ids(f"date_from={since}") == {only_b.pk, sched.pk}
    assert ids(f"date_to={until}") == {old.pk}
    assert ids(f"user={cast.editor.pk}") == {only_b.pk}
    assert ids("kind=scheduled") == {sched.pk}
    assert ids("status=failed") == {only_b.pk}
    assert ids(f"ou={cast.ou_a.pk}") == {old.pk, sched.pk}  # the all-OU backup includes OU A
    html = client.get(LIST + "?status=expired").content.decode()
    assert "No backup matches these filters" in html and "Clear the filters" in html


def test_site_admin_sees_every_organization_grouped_newest_first_and_filters_by_organization(cast) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    a_old = make_backup(cast.org, created_at=now - dt.timedelta(days=2))
    a_new = make_backup(cast.org, created_at=now - dt.timedelta(days=1))
    other = make_backup(cast.other_org, created_at=now)
    client = login(cast.site_admin)
    html = client.get(LIST).content.decode()
    assert _row_ids(html) == [a_new.pk, a_old.pk, other.pk]  # Acme Legal, then Other Org
    assert html.count('data-testid="org-group"') == 2
    assert 'name="organization"' in html
    assert _row_ids(client.get(f"{LIST}?organization={cast.other_org.pk}").content.decode()) == [other.pk]
    # Sorting keeps the grouping.
    assert _row_ids(client.get(LIST + "?sort=date").content.decode()) == [a_old.pk, a_new.pk, other.pk]
    # Others have no organization filter.
    assert 'name="organization"' not in login(cast.owner).get(LIST).content.decode()


def test_editor_of_one_ou_sees_only_backups_of_that_ou(cast) -> None:  # type: ignore[no-untyped-def]
    mine = make_backup(cast.org, ous=(cast.ou_a,))
    make_backup(cast.org, ous=(cast.ou_a, cast.ou_b))
    make_backup(cast.org)
    assert _row_ids(login(cast.editor_a).get(LIST).content.decode()) == [mine.pk]


def test_paginated_by_25(cast) -> None:  # type: ignore[no-untyped-def]
    for _ in range(27):
        make_backup(cast.org, Backup.Status.CANCELLED)
    client = login(cast.owner)
    first = client.get(LIST).content.decode()
    assert len(_row_ids(first)) == 25 and "Page 1 of 2" in first
    second = client.get(LIST + "?page=2&status=cancelled").content.decode()
    assert len(_row_ids(second)) == 2
    assert "?status=cancelled&amp;sort=" in second or "status=cancelled" in second  # filters kept


def test_empty_state_says_what_to_do(cast) -> None:  # type: ignore[no-untyped-def]
    html = login(cast.owner).get(LIST).content.decode()
    assert "No backups yet" in html and "Request Backup" in html and "regular backups" in html


def test_subscription_expiry_is_always_shown(cast) -> None:  # type: ignore[no-untyped-def]
    html = login(cast.editor).get(LIST).content.decode()
    ends = cast.org.subscription.ends_on
    assert f"valid until <strong>{ends.day} {ends:%B %Y}</strong>" in html


def test_without_a_valid_subscription_the_page_explains_and_links(cast, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SUBSCRIPTION_URL = "https://shop.example/backups"
    settings.SUBSCRIPTION_CONTACT_EMAIL = "sales@shop.example"
    sub = cast.org.subscription
    sub.starts_on = timezone.localdate() - dt.timedelta(days=60)
    sub.ends_on = timezone.localdate() - dt.timedelta(days=1)
    sub.save()
    done = make_backup(cast.org)  # completed before: still downloadable
    html = login(cast.owner).get(LIST).content.decode()
    assert "is not active" in html
    assert 'href="https://shop.example/backups"' in html and 'href="mailto:sales@shop.example?subject=' in html
    assert 'data-testid="request-backup"' not in html
    assert reverse("backups:download", args=[done.pk]) in html
    sub.delete()
    html = login(cast.owner).get(LIST).content.decode()
    assert "has no backup subscription" in html and 'data-testid="request-backup"' not in html


def test_request_button_hidden_while_a_backup_is_pending(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    assert 'data-testid="request-backup"' in client.get(LIST).content.decode()
    make_backup(cast.org, Backup.Status.PENDING)
    html = client.get(LIST).content.decode()
    assert 'data-testid="request-backup"' not in html and 'data-testid="pending-note"' in html
    # The toolbar partial (re-fetched when a row changes) follows the same rule.
    assert 'data-testid="request-backup"' not in client.get(reverse("backups:toolbar")).content.decode()


def test_menu_item_for_permission_holders_and_site_admins_only(cast) -> None:  # type: ignore[no-untyped-def]
    link = f'href="{LIST}"'
    for user in (cast.owner, cast.admin, cast.editor, cast.editor_a, cast.site_admin):
        assert link in login(user).get("/").content.decode(), user.email
    for user in (cast.member,):
        assert link not in login(user).get("/").content.decode(), user.email


def test_restore_link_for_owners_and_admins_only(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    html = login(cast.owner).get(LIST).content.decode()
    assert f'href="/restores/backup/{backup.pk}/"' in html
    # Not for users who may not restore (Owner and Admin only).
    assert 'data-testid="restore"' not in login(cast.editor).get(LIST).content.decode()


def _make_rows(cast, n: int) -> None:  # type: ignore[no-untyped-def]
    users = [cast.owner, cast.editor, f.UserFactory(), f.UserFactory()]
    for i in range(n):
        ous = () if i % 3 == 0 else ((cast.ou_a,) if i % 3 == 1 else (cast.ou_a, cast.ou_b))
        status = [Backup.Status.COMPLETED, Backup.Status.FAILED, Backup.Status.EXPIRED, Backup.Status.CANCELLED][i % 4]
        backup = make_backup(cast.org, status, ous=ous, requested_by=users[i % 4], failure_reason="x", label=f"B{i}")
        if status == Backup.Status.COMPLETED and i % 8 == 0:  # a verification that could not check it
            BackupEvent.objects.create(backup=backup, status=status, message=f"{NOT_CHECKED}Storage error: …")


@pytest.mark.parametrize("viewer", ["owner", "site_admin"])
def test_constant_number_of_queries_for_5_and_100_rows(cast, settings, viewer: str) -> None:  # type: ignore[no-untyped-def]
    user = getattr(cast, viewer)

    def count(per_page_rows: int) -> tuple[int, int]:
        client = login(user)
        client.get(LIST)  # warm-up (session, caches)
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(LIST + "?page=1")
        assert response.status_code == 200
        return len(ctx.captured_queries), len(_row_ids(response.content.decode()))

    _make_rows(cast, 5)
    small, rows_small = count(5)
    _make_rows(cast, 95)
    make_backup(cast.other_org, Backup.Status.EXPIRED)
    large, rows_large = count(100)
    assert rows_small == 5 and rows_large == 25  # a full page
    assert small == large, (small, large)
    # And with every row on one page.
    from backups import selectors

    selectors_page_size = selectors.PAGE_SIZE
    try:
        selectors.PAGE_SIZE = 200
        all_rows, rows_all = count(101)
    finally:
        selectors.PAGE_SIZE = selectors_page_size
    assert rows_all >= 100
    assert all_rows == small, (small, all_rows)
    # Rows whose last verification could not check the archive say so, from the same query.
    assert 'data-testid="not-checked"' in login(user).get(LIST).content.decode()


def test_sortable_headers_keep_the_filters_and_mark_the_current_sort(cast) -> None:  # type: ignore[no-untyped-def]
    make_backup(cast.org)
    html = login(cast.owner).get(LIST, {"status": "completed", "sort": "-size", "page": "1"}).content.decode()
    size = re.search(
        r'<th scope="col" class="text-nowrap text-end" aria-sort="descending"><a class="sort-link" href="([^"]+)"', html
    )
    assert size is not None
    assert size.group(1) == "?status=completed&amp;sort=size"  # the filter stays, the page goes, the order flips
    created = re.search(
        r'<th scope="col" class="text-nowrap"><a class="sort-link" href="([^"]+)"[^>]*data-testid="sort-created-at"',
        html,
    )
    assert created is not None and created.group(1) == "?status=completed&amp;sort=-date"
    assert html.count("aria-sort=") == 1
