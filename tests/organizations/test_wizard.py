"""The standard organization-creation wizard (Site Admins): steps, validation, creation."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Membership
from organizations import services
from organizations.models import Organization
from organizations.wizard.display import describe_wizard_data
from organizations.wizard.flow import creation_wizard_data
from tests import factories as f

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"wizard logo" * 10


def url(step: str) -> str:
    return reverse(f"management:wizard_{step}")


@pytest.fixture
def admin(cast) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(cast.site_admin)
    assert client.get(reverse("management:wizard"))["Location"] == url("company")
    return client


def company(cast, **changes: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    data = {
        "name": "Harbour Law",
        "slug": "harbour-law",
        "legal_name": "Harbour Law LLP",
        "description": "Maritime and trade law.",
        "sector": "Legal",
        "employees": "11-50",
        "license_identifier": "SRA-1",
        "jurisdiction": "England and Wales",
        "master_data_version": cast.org.master_data_version.code,
        "default_language": "en",
        "available_languages": "en, fr",
        "owner_email": cast.owner.email,
    }
    data.update(changes)
    return data


STRUCTURE = {
    "facility-TOTAL_FORMS": "1",
    "facility-INITIAL_FORMS": "0",
    "facility-0-name": "Docklands",
    "facility-0-code": "DOCK",
    "ou-TOTAL_FORMS": "2",
    "ou-INITIAL_FORMS": "0",
    "ou-0-name": "Shipping",
    "ou-0-code": "SHIP",
    "ou-0-facility": "DOCK",
    "ou-1-name": "Trade",
    "ou-1-code": "TRADE",
    "ou-1-facility": "",
}


def walk(client: Client, cast, **company_changes: Any) -> None:  # type: ignore[no-untyped-def]
    """Answer every step up to the review."""
    regulation = f.RegulationFactory(master_data_version=cast.org.master_data_version, code="GDPR")
    assert client.post(url("company"), company(cast, **company_changes)).status_code == 302
    address = {"line1": "1 Quay", "postcode": "E14 1AA", "city": "London", "country": "GB"}
    assert client.post(url("address"), address).status_code == 302
    contact = {"name": "Hal Harbour", "email": "hal@harbour.test", "phone": "+44 20 0000"}
    assert client.post(url("contact"), contact).status_code == 302
    assert client.post(url("structure"), STRUCTURE).status_code == 302
    assert client.post(url("regulations"), {"regulations": [regulation.code]}).status_code == 302
    assert client.post(url("modules"), {"modules": ["documents", "billing"]}).status_code == 302


def test_the_wizard_creates_the_organization_with_its_answers(cast, admin) -> None:  # type: ignore[no-untyped-def]
    page = admin.get(url("company"))
    assert page.context["form"].initial["owner_email"] == cast.site_admin.email  # pre-filled: you
    walk(admin, cast, logo=SimpleUploadedFile("logo.png", PNG))
    review = admin.get(url("review")).content.decode()
    for text in ("Harbour Law LLP", "1 Quay, E14 1AA London, GB", "hal@harbour.test", "Docklands (DOCK)", "GDPR"):
        assert text in review, text
    assert "Billing and time recording" in review and "The logo you uploaded" in review
    response = admin.post(url("review"))
    org = Organization.objects.get(slug="harbour-law")
    assert response["Location"] == org.get_absolute_url()
    assert org.name == "Harbour Law" and org.master_data_version == cast.org.master_data_version
    assert org.language_settings == {"default": "en", "available": ["en", "fr"]}
    assert Membership.objects.get(organization=org, role=Membership.Role.OWNER).user == cast.owner
    assert list(org.regulations.values_list("code", flat=True)) == ["GDPR"]
    assert [(o.code, o.facility.code if o.facility else None) for o in org.ous.order_by("code")] == [
        ("SHIP", "DOCK"),
        ("TRADE", None),
    ]
    assert org.logo.read() == PNG
    data = org.creation_wizard_data
    assert data["company"] == {"legal_name": "Harbour Law LLP", "employees": "11-50", "sector": "Legal"}
    assert data["address"]["city"] == "London" and data["contact"]["name"] == "Hal Harbour"
    assert data["structure"] == {"enterprise": True, "facilities": ["Docklands"], "ous": ["Shipping", "Trade"]}
    assert data["modules"] == ["documents", "billing"] and data["completed_steps"][-1] == "review"
    assert AuditLog.objects.filter(action="organization.create", organization=org, actor=cast.site_admin).exists()
    assert admin.get(url("address"))["Location"] == url("company")  # the wizard was cleared


def test_each_step_says_what_is_wrong(cast, admin) -> None:  # type: ignore[no-untyped-def]
    refused = admin.post(
        url("company"),
        company(cast, slug="acme", owner_email="nobody@x.test", logo=SimpleUploadedFile("l.png", b"<svg/>")),
    )
    assert refused.status_code == 400
    errors = refused.context["form"].errors
    assert "already uses this address" in errors["slug"][0]
    assert "no active user" in errors["owner_email"][0]
    assert "PNG, JPEG, GIF or WebP" in errors["logo"][0]
    assert admin.post(url("company"), company(cast)).status_code == 302
    assert "city" in admin.post(url("address"), {"line1": "1 Quay"}).context["form"].errors
    admin.post(url("address"), {"line1": "1 Quay", "city": "London", "country": "GB"})
    assert "email" in admin.post(url("contact"), {"name": "x", "email": "not-an-email"}).context["form"].errors
    admin.post(url("contact"), {"name": "x", "email": "x@y.test"})
    bad = dict(STRUCTURE, **{"ou-1-code": "SHIP", "ou-0-facility": "NOPE"})
    text = admin.post(url("structure"), bad).content.decode()
    assert "same code" in text and "names facility code NOPE" in text
    none = dict(STRUCTURE, **{"ou-TOTAL_FORMS": "0"})
    assert "at least one organisational unit" in admin.post(url("structure"), none).content.decode()
    admin.post(url("structure"), STRUCTURE)
    admin.post(url("regulations"), {})
    assert "Choose at least one module." in admin.post(url("modules"), {}).content.decode()


def test_structure_rows_are_added_and_removed_without_losing_what_was_typed(cast, admin) -> None:  # type: ignore[no-untyped-def]
    admin.post(url("company"), company(cast))
    admin.post(url("address"), {"line1": "1 Quay", "city": "London", "country": "GB"})
    admin.post(url("contact"), {"name": "x", "email": "x@y.test"})
    added = admin.post(url("structure"), dict(STRUCTURE, structure_action="add-facility"))
    assert added.status_code == 200
    structure = added.context["structure"]
    assert len(structure.facilities.forms) == 2 and len(structure.ous.forms) == 2
    assert structure.facilities.forms[0]["name"].value() == "Docklands"
    removed = admin.post(url("structure"), dict(STRUCTURE, structure_action="remove-ou-0")).context["structure"]
    assert [form["code"].value() for form in removed.ous.forms] == ["TRADE"]


def test_a_later_step_waits_for_the_earlier_ones(cast, admin) -> None:  # type: ignore[no-untyped-def]
    assert admin.get(url("review"))["Location"] == url("company")
    admin.post(url("company"), company(cast))
    assert admin.get(url("structure"))["Location"] == url("address")


def test_a_failure_while_creating_leaves_nothing_behind(cast, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    walk(admin, cast)
    organizations = Organization.objects.count()

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.OrganisationalUnit.objects, "create", broken)
    with pytest.raises(RuntimeError):
        admin.post(url("review"))
    assert Organization.objects.count() == organizations
    assert not Organization.objects.filter(slug="harbour-law").exists()
    assert not Membership.objects.filter(organization__slug="harbour-law").exists()


def test_an_address_taken_meanwhile_is_a_sentence_not_an_error(cast, admin) -> None:  # type: ignore[no-untyped-def]
    walk(admin, cast)
    f.OrganizationFactory(slug="harbour-law")
    page = admin.post(url("review"), follow=True)
    assert "is taken by another organization" in page.content.decode()


def test_only_site_admins_open_the_wizard(cast) -> None:  # type: ignore[no-untyped-def]
    for user in (cast.owner, cast.admin, cast.member):
        client = Client()
        client.force_login(user)
        for step in ("company", "review"):
            assert client.get(url(step)).status_code == 404
            assert client.post(url(step), {}).status_code == 404
    anonymous = Client().get(url("company"))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_wizard_data_is_shown_as_labelled_fields() -> None:
    answers = {
        "company": {"legal_name": "L", "employees": "1-10", "sector": "S"},
        "address": {"line1": "1 Road", "city": "Town", "country": "GB"},
        "contact": {"name": "N", "email": "n@x.test"},
        "structure": {"facilities": [], "ous": [{"name": "Ops", "code": "OPS"}]},
        "modules": {"modules": ["documents"]},
    }
    items = dict(describe_wizard_data({**creation_wizard_data(answers), "size": "small"}))
    assert items["Legal name"] == "L" and items["Address"] == "1 Road, Town, GB"
    assert items["Structure"] == "Single site" and items["Organisational units"] == "Ops"
    assert items["Modules"] == "Controlled documents" and items["Size"] == "small"
    assert describe_wizard_data("not a dict") == []


def test_logos_of_abandoned_wizards_are_deleted_after_a_day(cast, admin) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from django.core.files.storage import default_storage

    from restores.tasks import cleanup_uploads

    admin.post(url("company"), company(cast, logo=SimpleUploadedFile("logo.png", PNG)))
    (kept,) = default_storage.listdir(services.WIZARD_UPLOADS)[1]
    assert services.wizard_uploads_cleanup() == 0  # still in use today
    assert services.wizard_uploads_cleanup(older_than=dt.timedelta(seconds=-1)) == 1
    assert default_storage.listdir(services.WIZARD_UPLOADS)[1] == []
    cleanup_uploads()  # the periodic task runs it too, and does not fail on an empty folder
    walk(admin, cast)  # the logo was answered before: the wizard says so instead of failing
    page = admin.post(url("review"), follow=True).content.decode()
    assert kept and "upload it again in the Company step" in page
