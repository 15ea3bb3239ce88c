"""The restore engine: replace an organization's data with an archive's, or create a new
organization from one. Plain functions over the data-set registry and the archive reader;
transactions, states and notifications are the callers' (``restores.services``).

Both entry points must run inside ``transaction.atomic()``. Files they store are listed in the
``ImportResult`` they fill (also when they raise), so the caller removes them after a
rollback; files of replaced rows are returned, to be removed only after the commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.core.files.storage import Storage, default_storage
from django.utils import timezone

from accounts.models import User
from backups import datasets as ds
from backups.archive import ArchiveError, ArchiveReader
from backups.export import current_schema
from backups.importer import ImportResult, import_archive, in_folder, store_file
from backups.keys import unwrap_password
from backups.models import Backup
from backups.storage_io import open_for_reading
from backups.verify import archive_limits
from backupsvc.lib.workerstop import WorkerStopping, raise_if_stopping
from organizations.models import MasterDataVersion, Organization, Regulation
from organizations.models.profile import logo_upload_to
from organizations.services import organization_create
from restores import upgrades

PROFILE_MEMBER = "data/profile/profile.jsonl"
REGULATIONS_MEMBER = "data/regulations/regulation.jsonl"
STRUCTURE_MEMBERS = ("data/structure/facility.jsonl", "data/structure/ou.jsonl")


class RestoreRefused(Exception):
    """The restore cannot be done as asked; the message is a sentence for the user."""


def checkpoint(stage: str, **info: Any) -> None:
    """Called at each stage of a restore ("begin", "planned", "deleted", "dataset:<key>", "row",
    "imported", "after_create", "finalize"). Ends the restore when its worker is stopping (nothing
    is applied: it runs in one transaction); tests replace it to inject failures."""
    raise_if_stopping()


# ----------------------------------------------------------------------------------------------
# Opening archives


def open_reader(source: str | BinaryIO, password: str) -> ArchiveReader:
    """A reader with this system's limits and schema: newer archives are refused."""
    return ArchiveReader(source, password, limits=archive_limits(), current_schema=current_schema())


class _StoredReader(ArchiveReader):
    """A reader of a file opened from storage, which it closes with itself."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


def open_stored(name: str, password: str, storage: Storage | None = None) -> ArchiveReader:
    """A reader of an archive kept in storage (a backup, an upload)."""
    storage = storage or default_storage
    try:
        fh = open_for_reading(storage, name)
    except FileNotFoundError as exc:
        raise RestoreRefused("The backup's file is missing from storage.") from exc
    try:
        return _StoredReader(fh, password, limits=archive_limits(), current_schema=current_schema())
    except BaseException:
        fh.close()
        raise


def open_backup(backup: Backup, storage: Storage | None = None) -> ArchiveReader:
    """The stored archive of a completed backup, opened with the key ring's copy of its password."""
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise RestoreRefused("Only a completed backup whose file is still kept can be restored.")
    return open_stored(backup.file.name, unwrap_password(backup.password_wrapped), storage)


def first_row(reader: Any, member: str) -> dict[str, Any] | None:
    if member not in reader.names:
        return None
    with reader.open(member) as fh:
        for line in io.TextIOWrapper(fh, encoding="utf-8"):
            if line.strip():
                return json.loads(line)  # type: ignore[no-any-return]
    return None


def read_rows(reader: Any, member: str) -> list[dict[str, Any]]:
    if member not in reader.names:
        return []
    with reader.open(member) as fh:
        return [json.loads(line) for line in io.TextIOWrapper(fh, encoding="utf-8") if line.strip()]


def logo_member(reader: Any) -> str | None:
    row = first_row(reader, PROFILE_MEMBER)
    logo = (row or {}).get("logo")
    return logo.get("member") if isinstance(logo, dict) else None


class _Progress:
    """The reader API the importer uses, counting rows and calling ``checkpoint`` as it goes."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.manifest = reader.manifest
        self.names = reader.names
        counts = self.manifest.get("row_counts") or {}
        self.total = sum(int(n) for per in counts.values() if isinstance(per, dict) for n in per.values())
        self.done = 0
        self._dataset = ""

    def open(self, name: str) -> Any:
        if not (name.startswith("data/") and name.endswith(".jsonl")):
            return self._reader.open(name)
        dataset = name.split("/")[1]
        if dataset != self._dataset:
            self._dataset = dataset
            checkpoint(f"dataset:{dataset}")
        return io.BufferedReader(upgrades._RowStream(self._lines(name)))

    def _lines(self, name: str) -> Iterator[bytes]:
        with self._reader.open(name) as fh:
            for line in fh:
                if line.strip():
                    self.done += 1
                    checkpoint("row", done=self.done, total=self.total)
                yield line


@contextlib.contextmanager
def verified_in_one_pass(reader: ArchiveReader) -> Iterator[None]:
    """Verify the archive in the same pass as the work inside the block reads it.

    Every member the block reads to its end is checked as it ends (HMAC, size, SHA-256); the
    members it did not read (the catalog, data sets not restored) are checked when it ends, so
    the whole archive is verified before the caller commits. Run it inside the transaction: a
    damaged member raises its ``ArchiveError`` and everything rolls back. When the block fails
    for another reason (damaged data can fail to parse before its member's end is checked), the
    rest is verified first, so a damaged archive fails with the reason a verification before
    the import would have given; a stopping worker is not held up by that.
    """
    try:
        yield
    except (WorkerStopping, ArchiveError):
        raise
    except Exception as exc:
        try:
            reader.verify_rest()
        except ArchiveError as damage:
            raise damage from exc
        raise
    reader.verify_rest()


# ----------------------------------------------------------------------------------------------
# What a restore may do


def _dependents(key: str) -> set[str]:
    found: set[str] = set()
    pending = [key]
    while pending:
        current = pending.pop()
        for other in ds.REGISTRY.values():
            if current in other.depends_on and other.key not in found:
                found.add(other.key)
                pending.append(other.key)
    return found


def in_place_problems(*, organization: Organization, datasets: list[str], master_data_version: str | None) -> list[str]:
    """Why a backup of these data sets cannot be restored over the organization (empty: it can).

    A backup of some OUs or some document statuses can: the scope-exact restore
    (``restores.inplace``) touches only what the backup holds.
    """
    problems = []
    keys = set(datasets)
    labels = {k: ds.REGISTRY[k].label for k in ds.REGISTRY}
    for key in sorted(keys, key=list(ds.REGISTRY).index):
        missing = sorted(_dependents(key) - keys, key=list(ds.REGISTRY).index)
        if missing:
            problems.append(
                f"The backup holds “{labels[key]}” but not {', '.join('“' + labels[m] + '”' for m in missing)}, "
                "which depend on it; replacing the one would break the other."
            )
    if "profile" in keys and master_data_version:
        if not MasterDataVersion.objects.filter(code=master_data_version).exists():
            problems.append(
                f"The backup needs master data version {master_data_version}, which this system does not have."
            )
        elif master_data_version != organization.master_data_version.code and "regulations" not in keys:
            problems.append(
                "The backup changes the master data version but holds no regulations to go with it; "
                "restore a backup that includes the regulations."
            )
    return problems


# ----------------------------------------------------------------------------------------------
# Into a new organization


@dataclass
class NewOrganization:
    """The wizard's answers: the new organization's profile, pre-filled from the backup."""

    name: str
    slug: str
    owner_email: str
    description: str = ""
    license_identifier: str = ""
    jurisdiction: str = ""
    language_settings: dict[str, Any] = field(default_factory=dict)
    creation_wizard_data: dict[str, Any] = field(default_factory=dict)
    logo: str = ""  # a file in storage uploaded in the wizard; empty: the backup's logo

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> NewOrganization:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in options.items() if k in known})


def create_organization_from_archive(
    *,
    reader: Any,
    profile: NewOrganization,
    created_by: User | None,
    storage: Storage | None = None,
    result: ImportResult | None = None,
    folder: str = "",
) -> Organization:
    """Create the organization from the wizard's answers and restore the archive into it.

    Call inside ``transaction.atomic()``: the caller rolls back creation and restore together.
    Files are stored in ``folder`` (see ``import_archive``).
    """
    storage = storage or default_storage
    result = result if result is not None else ImportResult()
    reader = upgrades.upgraded(reader)
    manifest = reader.manifest
    code = manifest.get("master_data_version")
    mdv = MasterDataVersion.objects.filter(code=code).first()
    if mdv is None:
        raise RestoreRefused(f"The backup needs master data version {code}, which this system does not have.")
    owner = User.objects.filter(email__iexact=profile.owner_email, is_active=True).first()
    if owner is None:
        raise RestoreRefused(f"There is no active user {profile.owner_email} to become the Owner.")
    if Organization.objects.filter(slug=profile.slug).exists():
        raise RestoreRefused(f"The address “{profile.slug}” is taken by another organization; choose another.")
    organization = organization_create(
        name=profile.name,
        slug=profile.slug,
        owner=owner,
        master_data_version=mdv,
        created_by=created_by,
        description=profile.description,
        license_identifier=profile.license_identifier,
        jurisdiction=profile.jurisdiction,
        language_settings=profile.language_settings,
        creation_wizard_data=profile.creation_wizard_data,
    )
    checkpoint("after_create", organization=organization)
    # The logo: the one uploaded in the wizard, else the backup's.
    name = in_folder(logo_upload_to(organization, "logo"), folder)
    if profile.logo:
        with storage.open(profile.logo, "rb") as fh:
            organization.logo.name = store_file(storage, name, fh, result.stored_files)
    else:
        member = logo_member(reader)
        if member:
            with reader.open(member) as fh:
                organization.logo.name = store_file(storage, name, fh, result.stored_files)
    if organization.logo:
        Organization.objects.filter(pk=organization.pk).update(logo=organization.logo.name)
    in_archive = (manifest.get("scope") or {}).get("datasets") or []
    keys = [k for k in ds.resolve(in_archive) if k != "profile" and k in in_archive]
    if keys:
        import_archive(
            reader=_Progress(reader),  # type: ignore[arg-type]
            organization=organization,
            datasets=keys,
            storage=storage,
            result=result,
            folder=folder,
        )
    checkpoint("imported", organization=organization)
    return organization


def _display(value: Any) -> str:
    """An ISO timestamp from a manifest as people read it (server time zone)."""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    if timezone.is_naive(moment):
        return moment.strftime("%d %b %Y %H:%M")
    return timezone.localtime(moment).strftime("%d %b %Y %H:%M")


def preview(reader: Any) -> dict[str, Any]:
    """The backed-up profile as the wizard shows it (manifest and profile row; no file read)."""
    manifest = reader.manifest
    captured = dict(manifest.get("organization") or {})
    row = first_row(reader, PROFILE_MEMBER) or {}
    for name in ("description", "license_identifier", "jurisdiction", "language_settings", "creation_wizard_data"):
        captured.setdefault(name, row.get(name))
    regulations = read_rows(reader, REGULATIONS_MEMBER)
    codes = sorted(r["code"] for r in regulations)
    titles = dict(
        Regulation.objects.filter(
            master_data_version__code=manifest.get("master_data_version"), code__in=codes
        ).values_list("code", "title")
    )
    scope = manifest.get("scope") or {}
    captured["created_display"] = _display(captured.get("created_at"))
    facility_rows = read_rows(reader, STRUCTURE_MEMBERS[0])
    facility_codes = {f.get("id"): f.get("code", "") for f in facility_rows}
    structure = {  # what the wizard's read-only Structure step shows
        "facilities": [{"name": f.get("name", ""), "code": f.get("code", "")} for f in facility_rows],
        "ous": [
            {
                "name": o.get("name", ""),
                "code": o.get("code", ""),
                "facility": facility_codes.get(o.get("facility"), ""),
            }
            for o in read_rows(reader, STRUCTURE_MEMBERS[1])
        ],
    }
    return {
        "organization": captured,
        "created_display": _display(manifest.get("created_at")),
        "has_logo": bool(logo_member(reader)),
        "master_data_version": manifest.get("master_data_version"),
        "master_data_known": MasterDataVersion.objects.filter(code=manifest.get("master_data_version")).exists(),
        "regulations": [{"code": c, "title": titles.get(c, ""), "known": c in titles} for c in codes],
        "created_at": manifest.get("created_at"),
        "created_by": manifest.get("created_by"),
        "app_version": manifest.get("app_version"),
        "format": manifest.get("format"),
        "datasets": [
            {"key": k, "label": ds.REGISTRY[k].label} for k in scope.get("datasets") or [] if k in ds.REGISTRY
        ],
        "row_counts": manifest.get("row_counts") or {},
        "structure": structure,
        "all_ous": scope.get("ous") is None,
        "ou_names": scope.get("ou_names"),
    }
