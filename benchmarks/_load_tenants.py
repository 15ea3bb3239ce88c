"""The load test's tenants (benchmarks/load_bench.py): per organization an Owner, an Admin, an
OU editor and a member, 3 to 6 OUs (facilities for every fourth), a subscription, a daily
schedule, a few clients and matters, all with bulk inserts; then one real backup each, made
through the services a worker runs. Imported once Django is set up (in the seeding child)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, OURoleAssignment, User
from backups.models import Backup, BackupSchedule
from backups.services import backup_claim, backup_request, backup_run
from organizations.demo.seeder import seed_master_data
from organizations.models import (
    Client,
    Facility,
    Matter,
    OrganisationalUnit,
    Organization,
    OrganizationSetting,
    Subscription,
)
from organizations.services import system_roles_ensure

FIRST_NAMES = ["Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars"]
LAST_NAMES = ["Adler", "Brennan", "Castillo", "Dufour", "Engel", "Fischer", "Grant", "Holm", "Ivers", "Jansen"]
FIRMS = ["Legal", "Partners", "Advisory", "Chambers", "Notaries", "Tax & Audit", "Consulting", "Law"]


@dataclass
class Tenants:
    organizations: list[Organization]
    ous: dict[int, list[OrganisationalUnit]]  # by organization pk
    users: dict[int, dict[str, User]]  # by organization pk, then role
    schedules: dict[int, BackupSchedule]  # by organization pk


def create_tenants(orgs: int, now: dt.datetime, hashed: str) -> Tenants:
    """``orgs`` organizations with their users (every one with the password hash ``hashed``)."""
    editor = system_roles_ensure()
    mdv = max(seed_master_data().values(), key=lambda v: v.released_on)

    with transaction.atomic():
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    slug=f"load-{i:03d}",
                    name=f"{LAST_NAMES[i % len(LAST_NAMES)]} {FIRMS[i % len(FIRMS)]} {i:03d}",
                    description="A load-test tenant.",
                    license_identifier=f"LIC-L{i:05d}",
                    jurisdiction="England and Wales" if i % 2 else "Germany",
                    master_data_version=mdv,
                    language_settings={"default": "en", "available": ["en", "de"]},
                    creation_wizard_data={"size": "small", "sector": "legal"},
                    created_at=now - dt.timedelta(days=400 - i),
                )
                for i in range(orgs)
            ]
        )
        today = timezone.localdate()
        Subscription.objects.bulk_create(
            Subscription(
                organization=o, starts_on=today - dt.timedelta(days=200), ends_on=today + dt.timedelta(days=165)
            )
            for o in organizations
        )
        facilities: dict[int, list[Facility]] = {}
        for i, o in enumerate(organizations):
            if i % 4 == 0:  # an enterprise account: two sites
                facilities[o.pk] = [Facility(organization=o, name=f"Site {n}", code=f"S{n}") for n in (1, 2)]
        Facility.objects.bulk_create(f for fs in facilities.values() for f in fs)
        ous: dict[int, list[OrganisationalUnit]] = {}
        for i, o in enumerate(organizations):
            sites = facilities.get(o.pk, [])
            ous[o.pk] = [
                OrganisationalUnit(
                    organization=o,
                    name=["Head office", "Litigation", "Corporate", "Private clients", "Tax", "Employment"][n],
                    code=f"OU{n + 1}",
                    facility=sites[n % 2] if sites else None,
                )
                for n in range(3 + i % 4)
            ]
        OrganisationalUnit.objects.bulk_create(ou for group in ous.values() for ou in group)

        roles = ("owner", "admin", "editor", "member")
        users: dict[int, dict[str, User]] = {}
        for i, o in enumerate(organizations):
            users[o.pk] = {
                role: User(
                    email=f"{role}.{o.slug}@load.test",
                    full_name=f"{FIRST_NAMES[(i + n) % len(FIRST_NAMES)]} {LAST_NAMES[(i * 3 + n) % len(LAST_NAMES)]}",
                    password=hashed,
                )
                for n, role in enumerate(roles)
            }
        User.objects.bulk_create(u for group in users.values() for u in group.values())
        member_role = {"owner": Membership.Role.OWNER, "admin": Membership.Role.ADMIN}
        Membership.objects.bulk_create(
            Membership(user=u, organization_id=org_pk, role=member_role.get(role, Membership.Role.MEMBER))
            for org_pk, group in users.items()
            for role, u in group.items()
        )
        assignments = []
        for i, o in enumerate(organizations):
            group, units = users[o.pk], ous[o.pk]
            # The Admin holds Manage Account Backups in every OU, except in every fifth
            # organization (all OUs but the last: sees only backups scoped to the others).
            admin_ous = units[:-1] if i % 5 == 3 else units
            assignments += [OURoleAssignment(user=group["admin"], ou=ou, role=editor) for ou in admin_ous]
            assignments.append(OURoleAssignment(user=group["editor"], ou=units[0], role=editor))
        OURoleAssignment.objects.bulk_create(assignments)
        OrganizationSetting.objects.bulk_create(
            OrganizationSetting(organization=o, key=key, value=value)
            for o in organizations
            for key, value in (
                ("billing.currency", "GBP"),
                ("billing.payment_terms_days", 30),
                ("security.session_timeout_minutes", 30),
            )
        )
        clients = Client.objects.bulk_create(
            Client(organization=o, ou=ous[o.pk][n % len(ous[o.pk])], name=f"Client {n + 1} of {o.name}")
            for o in organizations
            for n in range(4)
        )
        Matter.objects.bulk_create(
            Matter(
                organization_id=c.organization_id,
                ou_id=c.ou_id,
                client=c,
                reference=f"M-{c.pk:06d}",
                title=f"Matter for {c.name}",
                opened_on=today - dt.timedelta(days=90),
            )
            for c in clients
        )
        schedules = {
            s.organization_id: s
            for s in BackupSchedule.objects.bulk_create(
                BackupSchedule(organization=o, created_by=users[o.pk]["owner"], keep_last=14) for o in organizations
            )
        }
    return Tenants(organizations, ous, users, schedules)


def real_archives(tenants: Tenants) -> dict[int, Backup]:
    """One real archive per organization, through the services a worker runs."""
    users = tenants.users
    real: dict[int, Backup] = {}
    for o in tenants.organizations:
        requested, _ = backup_request(
            organization=o, requested_by=users[o.pk]["owner"], label="Baseline", dispatch=False
        )
        claimed = backup_claim(backup_id=requested.pk)
        if claimed is None:
            raise RuntimeError(f"backup {requested.pk} could not be claimed")
        done = backup_run(backup=claimed)
        if done.status != Backup.Status.COMPLETED:
            raise RuntimeError(f"backup {done.pk} of {o.slug} ended {done.status}: {done.failure_reason}")
        real[o.pk] = done
    return real
