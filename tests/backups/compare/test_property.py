"""Property: after a backup with a random scope (data sets, OUs, document filters), random
mutations (add, delete, change rows and files across data sets and OUs) are exactly what the
compare with now reports: every mutation inside the scope, nothing outside it.

200 examples by default (CI); ``COMPARE_EXAMPLES=5000`` for the longer run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from backups import datasets as ds
from backups.compare.services import comparison_claim, comparison_request, comparison_run
from backups.models import Backup
from backups.services import backup_claim, backup_request, backup_run
from organizations import models as om
from tests import factories as f

EXAMPLES = int(os.environ.get("COMPARE_EXAMPLES", "200"))
STATUSES = ("active", "inactive", "superseded")
OPS = (
    "add_setting",
    "change_setting",
    "delete_setting",
    "add_template",
    "change_template",
    "delete_template",
    "add_client",
    "change_client",
    "delete_payment",
    "change_invoice",
    "add_document",
    "change_document",
    "delete_document",
    "change_version_file",
    "add_facility",
    "change_ou",
)

scopes = st.fixed_dictionaries(
    {
        "datasets": st.lists(st.sampled_from(list(ds.REGISTRY)), max_size=4, unique=True),
        "ous": st.none() | st.lists(st.integers(0, 1), min_size=1, max_size=2, unique=True),
        "include_active": st.booleans(),
        "include_inactive": st.booleans(),
        "exclude_superseded": st.booleans(),
    }
)
mutations = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1), st.integers(0, 2)), max_size=8)


def _file(data: bytes) -> tuple[ContentFile, str]:
    return ContentFile(data), hashlib.sha256(data).hexdigest()


def _document(org: Any, ou: Any, ref: str, status: str) -> om.ControlledDocument:
    doc = om.ControlledDocument.objects.create(organization=org, ou=ou, reference=ref, title=f"T {ref}", status=status)
    content, digest = _file(ref.encode())
    version = om.DocumentVersion(document=doc, number=1, filename="f.txt", size=len(ref), sha256=digest)
    version.file.save("f", content, save=False)
    version.save()
    return doc


class CompareReportsExactlyTheMutations(TestCase):
    def _tenant(self) -> tuple[Any, list[Any]]:
        org = f.OrganizationFactory(slug="prop")
        f.SubscriptionFactory(organization=org)
        owner = f.UserFactory()
        f.MembershipFactory(user=owner, organization=org, role="owner")
        facility = f.FacilityFactory(organization=org, code="F0")
        ous = [f.OUFactory(organization=org, code=f"OU{i}", facility=facility if i == 0 else None) for i in range(2)]
        for i in range(3):
            om.OrganizationSetting.objects.create(organization=org, key=f"s{i}", value=i)
            om.Template.objects.create(organization=org, name=f"tpl{i}", body="b")
        for i, ou in enumerate(ous):
            for status in STATUSES:
                _document(org, ou, f"D{i}-{status}", status)
            matter = f.MatterFactory(organization=org, ou=ou, reference=f"M{i}")
            invoice = om.Invoice.objects.create(
                organization=org,
                client=matter.client,
                matter=matter,
                number=f"I{i}",
                issued_on=dt.date(2026, 1, 1),
                due_on=dt.date(2026, 2, 1),
                total=Decimal("10.00"),
            )
            om.Payment.objects.create(
                organization=org, invoice=invoice, amount=Decimal("5.00"), received_on=dt.date(2026, 2, 2)
            )
        return org, ous

    def _backup(self, org: Any, ous: list[Any], scope: dict[str, Any]) -> Backup:
        backup, _ = backup_request(
            organization=org,
            requested_by=None,
            datasets=scope["datasets"] or None,
            ous=[ous[i] for i in scope["ous"]] if scope["ous"] is not None else (),
            include_active=scope["include_active"],
            include_inactive=scope["include_inactive"],
            exclude_superseded=scope["exclude_superseded"],
        )
        done = backup_run(backup=backup_claim(backup_id=backup.pk))  # type: ignore[arg-type]
        assert done.status == Backup.Status.COMPLETED, done.failure_reason
        return done

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scope=scopes, ops=mutations)
    def test_compare_reports_exactly_the_mutations(
        self, scope: dict[str, Any], ops: list[tuple[str, int, int]]
    ) -> None:
        org, ous = self._tenant()
        backup = self._backup(org, ous, scope)
        keys = set(backup.datasets)
        limited = scope["ous"] is not None and len(scope["ous"]) < len(ous)  # every OU chosen: all OUs
        in_ous = {ous[i].pk for i in scope["ous"]} if limited else {o.pk for o in ous}
        statuses = set(
            ds.Scope(
                include_active=scope["include_active"],
                include_inactive=scope["include_inactive"],
                exclude_superseded=scope["exclude_superseded"],
            ).document_statuses()
        )
        expected: dict[tuple[str, int], str] = {}

        def note(model: str, pk: int, kind: str, inside: bool) -> None:
            if not inside:
                return
            before = expected.get((model, pk))
            if kind == "removed" and before == "added":
                del expected[(model, pk)]
            elif kind == "changed" and before in ("added", "changed"):
                return
            else:
                expected[(model, pk)] = kind

        for n, (op, i, k) in enumerate(ops):
            ou = ous[i]
            ou_in = ou.pk in in_ous
            if op == "add_setting":
                row = om.OrganizationSetting.objects.create(organization=org, key=f"new{n}", value=n)
                note("setting", row.pk, "added", "settings" in keys)
            elif op in ("change_setting", "delete_setting"):
                row = om.OrganizationSetting.objects.filter(organization=org, key=f"s{k}").first()
                if row is None:
                    continue
                if op == "change_setting":
                    row.value = {"changed": n}
                    row.save()
                    note("setting", row.pk, "changed", "settings" in keys)
                else:
                    note("setting", row.pk, "removed", "settings" in keys)
                    row.delete()
            elif op == "add_template":
                row = om.Template.objects.create(organization=org, name=f"new{n}", body="x")
                note("template", row.pk, "added", "templates" in keys)
            elif op in ("change_template", "delete_template"):
                row = om.Template.objects.filter(organization=org, name=f"tpl{k}").first()
                if row is None:
                    continue
                if op == "change_template":
                    om.Template.objects.filter(pk=row.pk).update(body=f"changed {n}")
                    note("template", row.pk, "changed", "templates" in keys)
                else:
                    note("template", row.pk, "removed", "templates" in keys)
                    row.delete()
            elif op == "add_client":
                row = f.ClientFactory(organization=org, ou=ou)
                note("client", row.pk, "added", "clients" in keys and ou_in)
            elif op == "change_client":
                row = om.Client.objects.filter(organization=org, ou=ou).order_by("pk").first()
                om.Client.objects.filter(pk=row.pk).update(phone=f"+1 {n}")
                note("client", row.pk, "changed", "clients" in keys and ou_in)
            elif op == "delete_payment":
                row = om.Payment.objects.filter(organization=org, invoice__matter__ou=ou).first()
                if row is None:
                    continue
                note("payment", row.pk, "removed", "billing" in keys and ou_in)
                row.delete()
            elif op == "change_invoice":
                row = om.Invoice.objects.get(organization=org, number=f"I{i}")
                om.Invoice.objects.filter(pk=row.pk).update(due_on=dt.date(2027, 1, 1 + n))
                note("invoice", row.pk, "changed", "billing" in keys and ou_in)
            elif op == "add_document":
                status = STATUSES[k]
                doc = _document(org, ou, f"N{n}", status)
                inside = "documents" in keys and ou_in and status in statuses
                note("document", doc.pk, "added", inside)
                note("document_version", doc.versions.get().pk, "added", inside)
            elif op in ("change_document", "delete_document", "change_version_file"):
                doc = om.ControlledDocument.objects.filter(organization=org, ou=ou, status=STATUSES[k]).first()
                if doc is None:
                    continue
                inside = "documents" in keys and ou_in and doc.status in statuses
                if op == "change_document":
                    om.ControlledDocument.objects.filter(pk=doc.pk).update(title=f"Changed {n}")
                    note("document", doc.pk, "changed", inside)
                elif op == "delete_document":
                    for version in doc.versions.all():
                        note("document_version", version.pk, "removed", inside)
                    note("document", doc.pk, "removed", inside)
                    doc.delete()
                else:  # new content in the same version: a different file and hash
                    version = doc.versions.order_by("pk").first()
                    content, digest = _file(f"new content {n}".encode())
                    version.file.save("g", content, save=False)
                    version.sha256 = digest
                    version.save()
                    note("document_version", version.pk, "changed", inside)
            elif op == "add_facility":
                row = f.FacilityFactory(organization=org, code=f"NF{n}")
                # An OU-limited backup holds only the facilities of its OUs; a new one has none.
                note("facility", row.pk, "added", "structure" in keys and not limited)
            elif op == "change_ou":
                om.OrganisationalUnit.objects.filter(pk=ou.pk).update(name=f"Renamed {n}")
                note("ou", ou.pk, "changed", "structure" in keys and ou_in)

        comparison = comparison_request(backup=backup, requested_by=None)
        done = comparison_run(comparison=comparison_claim(comparison_id=comparison.pk))  # type: ignore[arg-type]
        assert done.status == "completed", done.failure_reason
        reported = {(e.model, e.record_pk): e.kind for e in done.entries.all()}
        assert reported == expected
