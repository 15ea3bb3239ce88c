"""The *Request an Account Backup* dialog: what it offers, the two password choices, validation
errors and refusals shown in the dialog, and nothing created on any error."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
from django.utils import timezone

from backups.forms import sign_generated_password
from backups.keys import unwrap_password
from backups.models import Backup
from tests import factories as f
from tests.backups.test_views_access import login, make_backup

pytestmark = pytest.mark.django_db

URL = "/backups/request/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def _dialog(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get(URL, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def _generated(page: str) -> tuple[str, str]:
    password = re.search(r'id="generated-password" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="generated_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return html.unescape(password), html.unescape(token)


def _post(client, token: str = "", **data):  # type: ignore[no-untyped-def]
    payload = {
        "label": "Pre-Year-End Close",
        "include_active": "on",
        "datasets": ["profile", "settings", "documents", "billing"],
        "password_choice": "generated",
        "generated_token": token,
        **data,
    }
    return client.post(URL, payload, **HTMX)


def test_dialog_offers_everything_the_seeds_ask_for(cast) -> None:  # type: ignore[no-untyped-def]
    page = _dialog(login(cast.owner))
    assert "Request an Account Backup" in page
    assert 'name="label"' in page
    assert "Limit export to the following OUs" in page and "Litigation (LIT)" in page and "Finance (FIN)" in page
    assert 'name="facilities"' not in page  # not an enterprise organization
    assert re.search(r'name="include_active"[^>]*checked', page)  # ticked by default
    assert 'name="include_inactive"' in page and 'name="exclude_superseded"' in page
    for label in ("Select visible", "Invert visible", "Clear", "Cancel", "Search data sets"):
        assert label in page
    depends = json.loads(html.unescape(re.search(r'data-depends="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
    assert depends["billing"] == ["clients", "templates"] and depends["clients"] == ["structure"]
    assert page.count('name="datasets"') == 9 and page.count("checked") >= 9  # all ticked by default
    password, token = _generated(page)
    assert len(password) >= 30 and token
    assert "Copy password" in page and 'data-copy-target="#generated-password"' in page
    assert "forget this password" in page
    assert "names of the files inside the .zip and their sizes" in page
    assert "Agree &amp; Generate Backup" in page


def test_dialog_offers_only_ous_the_user_may_back_up(cast) -> None:  # type: ignore[no-untyped-def]
    page = _dialog(login(cast.editor_a))
    assert "Litigation (LIT)" in page and "Finance (FIN)" not in page


def test_enterprise_organizations_get_a_facility_filter(cast) -> None:  # type: ignore[no-untyped-def]
    site = f.FacilityFactory(organization=cast.org, name="London office", code="LDN")
    cast.ou_a.facility = site
    cast.ou_a.save()
    client = login(cast.owner)
    page = _dialog(client)
    assert 'name="facilities"' in page and "London office" in page
    assert "Type to filter facilities" in page
    _, token = _generated(page)
    response = _post(client, token, facilities=[site.pk])
    assert response.status_code == 200 and response["HX-Redirect"] == "/backups/"
    backup = Backup.objects.get()
    assert not backup.all_ous and set(backup.ous.all()) == {cast.ou_a}
    assert list(backup.facilities.all()) == [site]
    # An editor of OU B only is not offered the facility of OU A.
    editor_b = f.UserFactory()
    f.MembershipFactory(user=editor_b, organization=cast.org)
    f.OURoleAssignmentFactory(user=editor_b, ou=cast.ou_b)
    assert "London office" not in _dialog(login(editor_b))


def test_request_with_the_generated_password(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.editor)
    password, token = _generated(_dialog(client))
    response = _post(client, token, include_inactive="on", ous=[cast.ou_a.pk])
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/backups/"
    backup = Backup.objects.get()
    assert backup.status == Backup.Status.PENDING and backup.requested_by == cast.editor
    assert backup.label == "Pre-Year-End Close"
    assert unwrap_password(backup.password_wrapped) == password
    assert backup.password_source == Backup.PasswordSource.GENERATED
    assert backup.include_active and backup.include_inactive and not backup.exclude_superseded
    assert list(backup.ous.all()) == [cast.ou_a] and not backup.all_ous
    # Dependencies pulled in: billing needs clients and templates, which need structure.
    assert backup.datasets == [
        "profile",
        "settings",
        "structure",
        "documents",
        "clients",
        "templates",
        "billing",
    ]
    listing = client.get("/backups/").content.decode()
    assert "Pre-Year-End Close" in listing and "requested" in listing
    assert password not in listing  # never shown again


def test_request_with_own_password(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    _, token = _generated(_dialog(client))
    own = "my own long passphrase"
    response = _post(client, token, password_choice="own", own_password=own, own_password_repeat=own)
    assert response["HX-Redirect"] == "/backups/"
    backup = Backup.objects.get()
    assert unwrap_password(backup.password_wrapped) == own
    assert backup.password_source == Backup.PasswordSource.USER
    assert backup.all_ous


def test_without_htmx_the_dialog_is_a_page_and_success_redirects(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    page = client.get(URL).content.decode()
    assert "<html" in page and 'data-testid="request-page"' in page and "hx-post" not in page
    _, token = _generated(page)
    response = client.post(URL, {"datasets": ["profile"], "password_choice": "generated", "generated_token": token})
    assert response.status_code == 302 and response["Location"] == "/backups/"
    assert Backup.objects.get().datasets == ["profile"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"password_choice": "own", "own_password": "short", "own_password_repeat": "short"}, "at least 12"),
        (
            {"password_choice": "own", "own_password": "long enough password", "own_password_repeat": "different one!"},
            "The two passwords differ",
        ),
        ({"datasets": []}, "Pick at least one data set"),
        ({"include_active": ""}, "Include active or inactive controlled documents"),
        ({"label": "x" * 121}, "at most 120 characters"),
    ],
    ids=["short-password", "password-mismatch", "no-datasets", "no-document-status", "long-label"],
)
def test_validation_errors_are_shown_in_the_dialog_and_nothing_is_created(cast, data, message: str) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    password, token = _generated(_dialog(client))
    response = _post(client, token, **data)
    assert response.status_code == 200 and "HX-Redirect" not in response
    page = response.content.decode()
    assert message in html.unescape(page)
    assert 'id="request-form"' in page  # the dialog again, not a page
    assert _generated(page)[0] == password  # the same generated password is kept
    assert Backup.objects.count() == 0


def test_ou_the_user_may_not_back_up_is_refused(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.editor_a)
    _, token = _generated(_dialog(client))
    response = _post(client, token, ous=[cast.ou_b.pk])
    assert "Select a valid choice" in response.content.decode()
    assert Backup.objects.count() == 0


def test_a_tampered_generated_password_is_refused(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    _, token = _generated(_dialog(client))
    forged = sign_generated_password("chosen-by-attacker", cast.editor)  # another user's token
    for bad in (token + "x", forged, ""):
        response = _post(client, bad)
        page = html.unescape(response.content.decode())
        assert "could not be confirmed" in page
        assert _generated(page)[0] != "chosen-by-attacker"
    assert Backup.objects.count() == 0


def test_service_refusal_is_shown_and_nothing_created_while_a_backup_is_pending(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    _, token = _generated(_dialog(client))
    pending = make_backup(cast.org, Backup.Status.PENDING)
    page = _dialog(client)
    assert "already pending" in page and re.search(r'data-testid="agree-generate"\s+disabled', page)
    response = _post(client, token)
    assert 'data-testid="request-errors"' in response.content.decode()
    assert "A backup of this organization is already pending." in html.unescape(response.content.decode())
    assert list(Backup.objects.all()) == [pending]


def test_requests_are_refused_without_a_valid_subscription(cast) -> None:  # type: ignore[no-untyped-def]
    sub = cast.org.subscription
    sub.starts_on = timezone.localdate() - dt.timedelta(days=400)
    sub.ends_on = timezone.localdate() - dt.timedelta(days=1)
    sub.save()
    client = login(cast.owner)
    page = _dialog(client)
    assert "no valid backup subscription" in page
    _, token = _generated(page)
    response = _post(client, token)
    assert "This organization has no valid backup subscription." in html.unescape(response.content.decode())
    assert Backup.objects.count() == 0


def test_users_without_the_permission_cannot_request(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.member)
    token = sign_generated_password("whatever-password-123", cast.member)
    response = client.post(URL, {"datasets": ["profile"], "password_choice": "generated", "generated_token": token})
    assert response.status_code == 403
    assert Backup.objects.count() == 0


def test_an_own_password_is_never_echoed_back(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    _, token = _generated(_dialog(client))
    own = "secret passphrase 42"
    response = _post(client, token, password_choice="own", own_password=own, own_password_repeat=own, datasets=[])
    assert "Pick at least one data set" in response.content.decode()
    assert own not in response.content.decode()
    assert Backup.objects.count() == 0
