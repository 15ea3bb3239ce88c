"""Controlled documents with 1-3 versions, each with a real stored file.

Every document and version draws from its own generator (seeded with the organization,
reference and version number), so a document is the same whichever documents already exist.
Versions already in the database are never generated or stored again. Files stream through a
spooled temporary file into the document field's storage under the field's opaque names;
rows go in with ``bulk_create`` a batch at a time, and a failed batch removes its files.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core.files import File
from django.db import transaction
from django.db.models import Sum

from organizations.demo.catalog import ANCHOR_DATE, OrgSpec
from organizations.demo.files import DocumentInfo, FileKind, HashingWriter, pick_kind, write_document_file
from organizations.demo.text import Corpus
from organizations.models import ControlledDocument, DocumentVersion, OrganisationalUnit, Organization

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # larger files spill to a temporary file on disk
_STATUSES = (
    ControlledDocument.Status.ACTIVE,
    ControlledDocument.Status.INACTIVE,
    ControlledDocument.Status.SUPERSEDED,
)


@dataclass(frozen=True)
class DocumentPlan:
    """What one document will be, drawn from its own generator."""

    index: int
    reference: str
    ou: OrganisationalUnit
    kind: FileKind
    title: str
    status: str
    versions: int
    owner_email: str
    created_at: dt.datetime

    def version_created_at(self, number: int) -> dt.datetime:
        # Versions follow each other at fixed, seeded intervals after the first issue.
        rng = random.Random(f"{self.reference}:dates")
        at = self.created_at
        for _ in range(number - 1):
            at += dt.timedelta(days=rng.randint(20, 240))
        return at


def plan_documents(
    *, spec: OrgSpec, seed: int, count: int, ous: Sequence[OrganisationalUnit], people: Sequence[str], corpus: Corpus
) -> list[DocumentPlan]:
    """The organization's first ``count`` documents."""
    plans = []
    for index in range(1, count + 1):
        rng = random.Random(f"{seed}:{spec.slug}:doc:{index}")
        kind = pick_kind(rng)
        status = rng.choices(_STATUSES, weights=[70, 15, 15])[0]
        versions = rng.choices([1, 2, 3], weights=[45, 35, 20])[0]
        if status == ControlledDocument.Status.SUPERSEDED:
            versions = max(versions, 2)
        created = dt.datetime.combine(ANCHOR_DATE, dt.time(9), tzinfo=dt.UTC) - dt.timedelta(
            days=rng.randint(400, 1400), minutes=rng.randint(0, 600)
        )
        plans.append(
            DocumentPlan(
                index=index,
                reference=f"{spec.prefix}-DOC-{index:06d}",
                ou=rng.choice(ous),
                kind=kind,
                title=corpus.title(rng, kind.key),
                status=status,
                versions=versions,
                owner_email=rng.choice(people),
                created_at=created,
            )
        )
    return plans


def _store(
    storage_save: Callable[[str, File], str], name: str, write: Callable[[HashingWriter], None]
) -> tuple[str, int, str]:
    """Generate a file into a spooled temporary file and save it; return name, size, SHA-256."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        writer = HashingWriter(spool)  # type: ignore[arg-type]
        write(writer)
        spool.seek(0)
        stored = storage_save(name, File(spool, name=name))
    return stored, writer.size, writer.sha256


@dataclass
class DocumentStats:
    documents_created: int = 0
    versions_created: int = 0
    bytes_created: int = 0


def seed_documents(
    *,
    organization: Organization,
    plans: Sequence[DocumentPlan],
    corpus: Corpus,
    seed: int,
    target_bytes: int | None = None,
    batch_size: int = 200,
    progress: Callable[[str], None] | None = None,
) -> DocumentStats:
    """Create the planned documents and versions that are missing, with their files.

    With ``target_bytes`` the new versions share what is left of that total (the
    organization's stored document bytes count against it), each between 0.25 and 1.75
    times the average, so the tenant ends up with about ``target_bytes`` of files.
    """
    field = DocumentVersion._meta.get_field("file")
    storage = field.storage
    existing_docs: dict[str, int] = dict(
        ControlledDocument.objects.filter(organization=organization).values_list("reference", "pk")
    )
    existing_versions: set[tuple[int, int]] = set(
        DocumentVersion.objects.filter(document__organization=organization).values_list("document_id", "number")
    )

    def missing(plan: DocumentPlan) -> list[int]:
        pk = existing_docs.get(plan.reference)
        return [n for n in range(1, plan.versions + 1) if pk is None or (pk, n) not in existing_versions]

    sizes: dict[tuple[str, int], int] = {}
    if target_bytes is not None:
        todo = [(p.reference, n) for p in plans for n in missing(p)]
        stored = DocumentVersion.objects.filter(document__organization=organization).aggregate(s=Sum("size"))["s"]
        remaining = max(target_bytes - (stored or 0), 0)
        weights = [random.Random(f"{seed}:{ref}:{n}:size").uniform(0.25, 1.75) for ref, n in todo]
        scale = remaining / sum(weights) if weights else 0
        sizes = {key: max(int(w * scale), 256) for key, w in zip(todo, weights, strict=True)}

    stats = DocumentStats()
    for start in range(0, len(plans), batch_size):
        batch = plans[start : start + batch_size]
        saved: list[str] = []
        versions: list[tuple[DocumentPlan, DocumentVersion]] = []
        try:
            for plan in batch:
                for number in missing(plan):
                    rng = random.Random(f"{seed}:{organization.slug}:{plan.reference}:v{number}")
                    size = sizes.get((plan.reference, number)) or rng.randint(*plan.kind.natural_size)
                    note = corpus.note(rng, number)
                    created = plan.version_created_at(number)
                    info = DocumentInfo(plan.reference, plan.title, number, plan.owner_email, created)
                    filename = f"{plan.title} v{number}.{plan.kind.extension}"

                    write = functools.partial(
                        write_document_file, kind=plan.kind, rng=rng, corpus=corpus, info=info, size=size
                    )
                    name, nbytes, sha = _store(storage.save, field.generate_filename(None, filename), write)
                    saved.append(name)
                    version = DocumentVersion(
                        number=number,
                        file=name,
                        filename=filename,
                        content_type=plan.kind.content_type,
                        size=nbytes,
                        sha256=sha,
                        note=note,
                        created_at=created,
                    )
                    versions.append((plan, version))
                    stats.versions_created += 1
                    stats.bytes_created += nbytes
            with transaction.atomic():
                new_docs = [
                    ControlledDocument(
                        organization=organization,
                        ou=plan.ou,
                        reference=plan.reference,
                        title=plan.title,
                        status=plan.status,
                        owner_email=plan.owner_email,
                        created_at=plan.created_at,
                        updated_at=plan.version_created_at(plan.versions),
                    )
                    for plan in batch
                    if plan.reference not in existing_docs
                ]
                for doc in ControlledDocument.objects.bulk_create(new_docs):
                    existing_docs[doc.reference] = doc.pk
                for plan, version in versions:
                    version.document_id = existing_docs[plan.reference]
                DocumentVersion.objects.bulk_create([v for _, v in versions], batch_size=500)
        except BaseException:
            for name in saved:  # the rows are rolled back; leave no orphaned files either
                storage.delete(name)
            raise
        for _, version in versions:
            existing_versions.add((version.document_id, version.number))
        stats.documents_created += len(new_docs)
        if progress and (start // batch_size) % 10 == 9:
            progress(
                f"  {organization.slug}: {min(start + batch_size, len(plans))}/{len(plans)} documents, "
                f"{stats.bytes_created / 1e9:.2f} GB written"
            )
    return stats
