"""``seed_demo``'s service: master data, users, organizations, records and documents.

The rule is "add what is missing, change nothing that exists": every row is looked up by its
natural key (version code, e-mail, org slug, OU code, reference, invoice number, ...) and only
created when absent, so a second run adds nothing and never overwrites what people changed
while trying the demo. Passwords are set when a demo user is created.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Membership, OURoleAssignment, Role, User
from backupsvc.lib.sizes import human_size
from organizations.demo import catalog, images
from organizations.demo.catalog import DEMO_PASSWORD, OrgSpec, UserSpec
from organizations.demo.documents import plan_documents, seed_documents
from organizations.demo.records import seed_records
from organizations.demo.text import Corpus
from organizations.models import (
    BillingCode,
    DocumentVersion,
    Facility,
    MasterDataVersion,
    OrganisationalUnit,
    Organization,
    OrganizationSetting,
    Regulation,
    Subscription,
    Template,
)
from organizations.services import organization_create, system_roles_ensure

Log = Callable[[str], None]


@dataclass(frozen=True)
class SeedOptions:
    """What to build. ``documents``/``gigabytes`` apply to the organization ``org`` only."""

    seed: int = catalog.DEFAULT_SEED
    org: str = "acme"
    documents: int | None = None
    gigabytes: float | None = None
    batch_size: int = 200


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    actor: str
    organizations: str


@dataclass
class OrgSummary:
    slug: str
    name: str
    subscription: str
    counts: dict[str, int]


@dataclass
class SeedReport:
    logins: list[Login] = field(default_factory=list)
    organizations: list[OrgSummary] = field(default_factory=list)
    files_created: int = 0
    bytes_created: int = 0
    seconds: float = 0.0


def seed_master_data() -> dict[str, MasterDataVersion]:
    """The master data versions and their regulation catalogs."""
    versions = {}
    for spec in catalog.MASTER_DATA:
        mdv, _ = MasterDataVersion.objects.get_or_create(
            code=spec.code, defaults={"name": spec.name, "released_on": spec.released_on}
        )
        known = set(mdv.regulations.values_list("code", flat=True))
        Regulation.objects.bulk_create(
            [
                Regulation(master_data_version=mdv, code=r.code, title=r.title, jurisdiction=r.jurisdiction)
                for r in spec.regulations
                if r.code not in known
            ]
        )
        versions[spec.code] = mdv
    return versions


def seed_users() -> dict[str, User]:
    """One user per actor; the demo password is set only when the user is created."""
    password = make_password(DEMO_PASSWORD)  # hashed once: hashing is deliberately slow
    users = {}
    for spec in catalog.USERS:
        user, _ = User.objects.get_or_create(
            email=spec.email,
            defaults={
                "full_name": spec.full_name,
                "password": password,
                "is_site_admin": spec.is_site_admin,
                "is_staff": spec.is_staff,
                "is_superuser": spec.is_superuser,
            },
        )
        users[spec.email] = user
    return users


def _members(spec: OrgSpec) -> list[tuple[UserSpec, str]]:
    return [(u, role) for u in catalog.USERS for slug, role in u.memberships if slug == spec.slug]


def _owner_email(spec: OrgSpec) -> str:
    return next(u.email for u, role in _members(spec) if role == Membership.Role.OWNER)


def _profile(spec: OrgSpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "license_identifier": spec.license_identifier,
        "jurisdiction": spec.jurisdiction,
        "language_settings": {"default": "en", "available": list(spec.languages)},
        "creation_wizard_data": spec.wizard,
        "created_at": spec.created_at,
    }


def _settings(spec: OrgSpec) -> dict[str, Any]:
    return {
        "billing.currency": spec.currency,
        "billing.payment_terms_days": 30,
        "billing.vat_rate": "19.0" if spec.currency == "EUR" else "20.0",
        "documents.review_interval_days": 365 if spec.slug != "nordwind" else 730,
        "documents.reference_prefix": f"{spec.prefix}-DOC",
        "notifications.digest": {"enabled": True, "frequency": "weekly", "weekday": "monday", "hour": 8},
        "locale.date_format": "DD.MM.YYYY" if spec.currency == "EUR" else "DD/MM/YYYY",
        "security.session_timeout_minutes": 30,
    }


def _templates(spec: OrgSpec) -> list[tuple[str, str, str]]:
    sign = f"Kind regards,\n{spec.name}"
    return [
        (
            "Engagement letter",
            Template.Kind.LETTER,
            "Dear {{ client.name }},\n\n"
            f"Thank you for instructing {spec.name} on {{{{ matter.title }}}}.\n\n{sign}",
        ),
        (
            "Standard invoice",
            Template.Kind.INVOICE,
            "Invoice {{ invoice.number }} for {{ matter.reference }}: {{ invoice.total }} due {{ invoice.due_on }}.",
        ),
        (
            "Payment reminder",
            Template.Kind.EMAIL,
            "Invoice {{ invoice.number }} is overdue. "
            f"Please arrange payment at your earliest convenience.\n\n{sign}",
        ),
        (
            "Document review reminder",
            Template.Kind.EMAIL,
            "{{ document.reference }} {{ document.title }} is due for review on {{ review_date }}.",
        ),
        (
            "Policy template",
            Template.Kind.DOCUMENT,
            "1. Purpose\n2. Scope\n3. Responsibilities\n4. Procedure\n5. Records\n6. Review",
        ),
    ]


def _ensure_membership(organization: Organization, user: User, role: str, log: Log) -> None:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is not None:
        return
    # The database allows one Owner; if somebody else holds it now, the demo owner joins as Admin.
    if (
        role == Membership.Role.OWNER
        and Membership.objects.filter(organization=organization, role=Membership.Role.OWNER).exists()
    ):
        log(f"  {organization.slug}: ownership was transferred; {user.email} joins as Admin")
        role = Membership.Role.ADMIN
    Membership.objects.create(organization=organization, user=user, role=role)


@transaction.atomic
def seed_organization(
    *,
    spec: OrgSpec,
    users: dict[str, User],
    versions: dict[str, MasterDataVersion],
    editor_role: Role,
    seed: int,
    log: Log,
) -> tuple[Organization, list[OrganisationalUnit]]:
    """One organization with its profile, logo, structure, members, subscription and records.

    Returns the organization and its demo OUs (in catalog order).
    """
    mdv = versions[spec.master_data]
    organization = Organization.objects.filter(slug=spec.slug).first()
    if organization is None:
        organization = organization_create(
            name=spec.name,
            owner=users[_owner_email(spec)],
            master_data_version=mdv,
            slug=spec.slug,
            **_profile(spec),
        )
        organization.regulations.set(mdv.regulations.filter(code__in=spec.regulations))
    if not organization.logo or not organization.logo.storage.exists(organization.logo.name):
        organization.logo.save("logo.png", ContentFile(images.logo_png(spec.name, spec.colour)), save=False)
        organization.save(update_fields=["logo"])

    if spec.has_subscription:
        today = timezone.localdate()
        Subscription.objects.get_or_create(
            organization=organization,
            defaults={
                "starts_on": today - dt.timedelta(days=300 if spec.slug == "acme" else 120),
                "ends_on": today + dt.timedelta(days=120 if spec.slug == "acme" else 75),
                "notes": "Demo subscription (seed_demo).",
            },
        )

    facilities = {
        code: Facility.objects.get_or_create(organization=organization, code=code, defaults={"name": name})[0]
        for code, name in spec.facilities
    }
    ous = [
        OrganisationalUnit.objects.get_or_create(
            organization=organization,
            code=ou.code,
            defaults={"name": ou.name, "facility": facilities[ou.facility] if ou.facility else None},
        )[0]
        for ou in spec.ous
    ]

    for user_spec, role in _members(spec):
        _ensure_membership(organization, users[user_spec.email], role, log)
    for user_spec in catalog.USERS:
        for slug, scope in user_spec.editor_in:
            if slug != spec.slug:
                continue
            for ou in ous:
                if scope == "all" or (ou.facility_id and ou.facility_id == facilities[scope].pk):
                    OURoleAssignment.objects.get_or_create(user=users[user_spec.email], ou=ou, role=editor_role)

    for key, value in _settings(spec).items():
        OrganizationSetting.objects.get_or_create(organization=organization, key=key, defaults={"value": value})
    for name, kind, body in _templates(spec):
        Template.objects.get_or_create(
            organization=organization,
            name=name,
            defaults={"kind": kind, "body": body, "updated_at": spec.created_at + dt.timedelta(days=30)},
        )
    codes = [
        BillingCode.objects.get_or_create(
            organization=organization, code=code, defaults={"description": description, "hourly_rate": rate}
        )[0]
        for code, description, rate in spec.billing_codes
    ]
    seed_records(
        organization=organization,
        spec=spec,
        ous=ous,
        codes=codes,
        people=_people(spec),
        seed=seed,
    )
    return organization, ous


def _people(spec: OrgSpec) -> list[str]:
    return [u.email for u, _ in _members(spec)] + list(spec.fee_earners)


def summarize(organization: Organization) -> OrgSummary:
    """Row counts and stored bytes of one organization."""
    org = (
        Organization.objects.filter(pk=organization.pk)
        .annotate(
            n_facilities=Count("facilities", distinct=True),
            n_ous=Count("ous", distinct=True),
            n_members=Count("memberships", distinct=True),
            n_regulations=Count("regulations", distinct=True),
        )
        .get()
    )
    documents = organization.documents.all()
    versions = DocumentVersion.objects.filter(document__organization=organization)
    counts = {
        "facilities": org.n_facilities,
        "OUs": org.n_ous,
        "members": org.n_members,
        "regulations": org.n_regulations,
        "settings": organization.settings.count(),
        "templates": organization.templates.count(),
        "billing codes": organization.billing_codes.count(),
        "clients": organization.clients.count(),
        "matters": organization.matters.count(),
        "invoices": organization.invoices.count(),
        "time entries": organization.time_entries.count(),
        "payments": organization.payments.count(),
        "documents": documents.count(),
        "active": documents.filter(status="active").count(),
        "inactive": documents.filter(status="inactive").count(),
        "superseded": documents.filter(status="superseded").count(),
        "versions": versions.count(),
        "stored bytes": versions.aggregate(s=Sum("size"))["s"] or 0,
    }
    subscription = Subscription.objects.filter(organization=organization).first()
    if subscription is None:
        state = "none"
    elif subscription.is_valid():
        state = f"valid until {subscription.ends_on:%Y-%m-%d}"
    else:
        state = f"not valid ({subscription.starts_on:%Y-%m-%d} to {subscription.ends_on:%Y-%m-%d})"
    return OrgSummary(organization.slug, organization.name, state, counts)


def logins() -> list[Login]:
    """The demo logins, as printed."""
    rows = []
    for spec in catalog.USERS:
        orgs = ", ".join(f"{slug} ({role})" for slug, role in spec.memberships) or (
            "none (sees all)" if spec.is_site_admin else "none"
        )
        rows.append(Login(spec.email, DEMO_PASSWORD, spec.actor, orgs))
    return rows


def seed_demo(options: SeedOptions, log: Log | None = None) -> SeedReport:
    """Build (or complete) the demo data set; see the module docstring for the rules."""
    say: Log = log or (lambda _message: None)
    started = time.monotonic()
    if options.org not in catalog.ORG_SLUGS:
        raise ValueError(f"Unknown demo organization {options.org!r}; choose one of {', '.join(catalog.ORG_SLUGS)}.")
    corpus = Corpus(options.seed)
    editor_role = system_roles_ensure()
    with transaction.atomic():
        versions = seed_master_data()
        users = seed_users()
    report = SeedReport(logins=logins())
    for spec in catalog.ORGANIZATIONS:
        organization, ous = seed_organization(
            spec=spec, users=users, versions=versions, editor_role=editor_role, seed=options.seed, log=say
        )
        scaled = spec.slug == options.org
        count = options.documents if scaled and options.documents is not None else spec.documents
        target = int(options.gigabytes * 1e9) if scaled and options.gigabytes else None
        plans = plan_documents(
            spec=spec,
            seed=options.seed,
            count=count,
            ous=ous,
            people=_people(spec),
            corpus=corpus,
        )
        stats = seed_documents(
            organization=organization,
            plans=plans,
            corpus=corpus,
            seed=options.seed,
            target_bytes=target,
            batch_size=options.batch_size,
            progress=say,
        )
        report.files_created += stats.versions_created
        report.bytes_created += stats.bytes_created
        say(
            f"{spec.slug}: {stats.documents_created} documents and {stats.versions_created} versions added "
            f"({human_size(stats.bytes_created)})"
        )
        report.organizations.append(summarize(organization))
    report.seconds = time.monotonic() - started
    return report
