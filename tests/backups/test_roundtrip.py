"""Property: export random tenant content, import it into a new organization, export again,
and find the same logical content."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from decimal import Decimal

from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import Role
from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.export import write_archive
from backups.importer import import_archive
from backups.snapshot import logical_snapshot
from organizations import models as om
from organizations.services import system_roles_ensure
from tests import factories as f

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
names = st.text("abcdefghijklmnopqrstuvwxyzÄÖüß -'", min_size=1, max_size=30)
money = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)
days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 12, 31))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text("abcxyz_", max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def tenants(draw: st.DrawFn) -> dict:
    n_ous = draw(st.integers(1, 4))
    return {
        "facility_of_ou": [draw(st.none() | st.integers(0, 1)) for _ in range(n_ous)],
        "settings": draw(st.dictionaries(st.text("abcdefgh.", min_size=1, max_size=12), json_values, max_size=4)),
        "templates": draw(st.lists(st.tuples(names, text), max_size=3, unique_by=lambda t: t[0])),
        "billing_codes": draw(
            st.lists(st.tuples(st.text("ABCDEFG", min_size=1, max_size=5), money), max_size=3, unique_by=lambda t: t[0])
        ),
        "clients": draw(st.lists(st.tuples(names, st.integers(0, n_ous - 1)), max_size=4)),
        "matters": draw(st.lists(st.tuples(st.integers(0, 50), text, days), max_size=5)),
        "invoices": draw(st.lists(st.tuples(st.integers(0, 50), money, days, st.booleans()), max_size=4)),
        "time": draw(
            st.lists(st.tuples(st.integers(0, 50), st.integers(1, 600), st.none() | st.integers(0, 5)), max_size=5)
        ),
        "payments": draw(st.lists(st.tuples(st.integers(0, 50), money), max_size=4)),
        "documents": draw(
            st.lists(
                st.tuples(
                    st.integers(0, n_ous - 1),
                    st.sampled_from(["active", "inactive", "superseded"]),
                    st.lists(st.binary(max_size=3000), min_size=1, max_size=3),
                    names,
                ),
                max_size=5,
            )
        ),
        "custom_role": draw(st.booleans()),
    }


def build(spec: dict, idx: int) -> om.Organization:
    owner = f.UserFactory()
    org = f.OrganizationFactory(slug=f"src-{idx}")
    f.MembershipFactory(user=owner, organization=org, role="owner")
    facilities = [f.FacilityFactory(organization=org, code=f"F{i}") for i in range(2)]
    ous = [
        f.OUFactory(organization=org, code=f"OU{i}", facility=facilities[fi] if fi is not None else None)
        for i, fi in enumerate(spec["facility_of_ou"])
    ]
    reg = f.RegulationFactory(master_data_version=org.master_data_version)
    org.regulations.add(reg)
    for key, value in spec["settings"].items():
        om.OrganizationSetting.objects.create(organization=org, key=key, value=value)
    for name, body in spec["templates"]:
        om.Template.objects.create(organization=org, name=name, body=body)
    codes = [
        om.BillingCode.objects.create(organization=org, code=c, description="x", hourly_rate=r)
        for c, r in spec["billing_codes"]
    ]
    clients = [om.Client.objects.create(organization=org, ou=ous[ou], name=n) for n, ou in spec["clients"]]
    matters = []
    for i, (ci, title, opened) in enumerate(spec["matters"]):
        if clients:
            c = clients[ci % len(clients)]
            matters.append(
                om.Matter.objects.create(
                    organization=org, ou=c.ou, client=c, reference=f"M{i}", title=title, opened_on=opened
                )
            )
    invoices = []
    for i, (ci, total, issued, with_matter) in enumerate(spec["invoices"]):
        if clients:
            c = clients[ci % len(clients)]
            m = next((m for m in matters if m.client_id == c.pk), None) if with_matter else None
            invoices.append(
                om.Invoice.objects.create(
                    organization=org, client=c, matter=m, number=f"I{i}", issued_on=issued, due_on=issued, total=total
                )
            )
    for mi, minutes, code in spec["time"]:
        if matters:
            m = matters[mi % len(matters)]
            om.TimeEntry.objects.create(
                organization=org,
                matter=m,
                minutes=minutes,
                worked_on=dt.date(2026, 1, 1),
                user_email="a@b.test",
                billing_code=codes[code % len(codes)] if codes and code is not None else None,
            )
    for ii, amount in spec["payments"]:
        if invoices:
            om.Payment.objects.create(
                organization=org, invoice=invoices[ii % len(invoices)], amount=amount, received_on=dt.date(2026, 2, 2)
            )
    for i, (ou, status, contents, title) in enumerate(spec["documents"]):
        doc = om.ControlledDocument.objects.create(
            organization=org, ou=ous[ou], reference=f"D{i}", title=title, status=status
        )
        for n, data in enumerate(contents, start=1):
            v = om.DocumentVersion(
                document=doc, number=n, filename=f"{title}.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest()
            )
            v.file.save("x", ContentFile(data), save=False)
            v.save()
    if spec["custom_role"]:
        role = Role.objects.create(organization=org, name="Custom")
        f.OURoleAssignmentFactory(user=owner, ou=ous[0], role=role)
    f.OURoleAssignmentFactory(user=owner, ou=ous[-1], role=system_roles_ensure())
    return org


def export(org: om.Organization, password: str) -> io.BytesIO:
    sink = io.BytesIO()
    write_archive(
        organization=org, scope=ds.Scope(include_inactive=True), datasets=ds.all_keys(), sink=sink, password=password
    )
    sink.seek(0)
    return sink


class RoundTripTests(TestCase):
    counter = 0

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=tenants())
    def test_export_import_export_keeps_the_logical_content(self, spec: dict) -> None:
        RoundTripTests.counter += 1
        password = "round-trip-password-123"
        source = build(spec, RoundTripTests.counter)
        first = export(source, password)
        target = f.OrganizationFactory(
            slug=f"dst-{RoundTripTests.counter}",
            master_data_version=source.master_data_version,
            description="",
            license_identifier="",
            jurisdiction="",
            language_settings={},
            creation_wizard_data={},
        )
        f.MembershipFactory(user=f.UserFactory(), organization=target, role="owner")
        reader = ArchiveReader(first, password)
        reader.verify()
        import_archive(reader=reader, organization=target)
        target.refresh_from_db()
        self.assertEqual(logical_snapshot(source), logical_snapshot(target))
        # And the restored organization exports the same rows again.
        second = ArchiveReader(export(target, password), password)
        # Memberships are not copied wholesale (users are global and the target has its own Owner).
        counts = [r.manifest["row_counts"] for r in (second, reader)]
        for c in counts:
            c["users"].pop("membership")
        self.assertEqual(counts[0], counts[1])
