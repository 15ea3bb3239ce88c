"""The restore engine: replace an organization's data with an archive's, or create a new
organization from one. Plain functions over the data-set registry and the archive reader;
transactions, states and notifications are the callers' (``restores.services``).

Both entry points must run inside ``transaction.atomic()``. Files they store are listed in the
``ImportResult`` they fill (also when they raise), so the caller removes them after a
rollback; files of replaced rows are returned, to be removed only after the commit.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.core.files.storage import Storage, default_storage
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Membership, OURoleAssignment, User
from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.export import current_schema
from backups.importer import ImportResult, import_archive, in_folder
from backups.keys import unwrap_password
from backups.models import Backup
from backups.storage_io import open_for_reading
from backups.verify import archive_limits
from backupsvc.lib.workerstop import raise_if_stopping
from organizations.models import DocumentVersion, MasterDataVersion, Organization, Regulation
from organizations.models.profile import logo_upload_to
from organizations.services import organization_create
from restores import upgrades

FULL_SCOPE = ds.Scope(ou_ids=None, include_active=True, include_inactive=True, exclude_superseded=False)
PROFILE_MEMBER = "data/profile/profile.jsonl"
REGULATIONS_MEMBER = "data/regulations/regulation.jsonl"
STRUCTURE_MEMBERS = ("data/structure/facility.jsonl", "data/structure/ou.jsonl")


class RestoreRefused(Exception):
    """The restore cannot be done as asked; the message is a sentence for the user."""


def checkpoint(stage: str, **info: Any) -> None:
    """Called at each stage of a restore ("begin", "deleted", "dataset:<key>", "row", "imported",
    "after_create", "finalize"). Ends the restore when its worker is stopping (nothing is
    applied: it runs in one transaction); tests replace it to inject failures."""
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


def in_place_problems(
    *, organization: Organization, datasets: list[str], all_ous: bool, master_data_version: str | None
) -> list[str]:
    """Why a backup with this scope cannot replace the organization's data (empty: it can)."""
    problems = []
    if not all_ous:
        problems.append(
            "This backup covers only some organisational units; an in-place restore needs a backup of the whole "
            "organization (a Site Admin can restore this one into a new organization)."
        )
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


def _org_rows(spec: ds.ModelSpec, organization: Organization) -> QuerySet[Any]:
    """Every row of the organization of a data-set model (whatever a backup's scope was)."""
    model = spec.model
    if model is DocumentVersion:
        return DocumentVersion.objects.filter(document__organization=organization)
    if model is OURoleAssignment:
        return OURoleAssignment.objects.filter(ou__organization=organization)
    if model is Regulation:
        return organization.regulations.all()
    if model is Organization:
        return Organization.objects.filter(pk=organization.pk)
    if any(f.name == "organization" for f in model._meta.fields):
        return model._default_manager.filter(organization=organization)
    raise RestoreRefused(f"The restore engine does not know how to find {model._meta.label} rows of an organization.")


def current_counts(organization: Organization, datasets: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Rows of the organization today, per data set and model (the warning page's left column)."""
    counts: dict[str, dict[str, int]] = {}
    for key in ds.resolve(datasets):
        counts[key] = {spec.key: _org_rows(spec, organization).count() for spec in ds.REGISTRY[key].models}
    return counts


def _files_of(organization: Organization, keys: list[str]) -> list[str]:
    names: list[str] = []
    for key in keys:
        for spec in ds.REGISTRY[key].models:
            for fname in spec.files:
                names += [n for n in _org_rows(spec, organization).values_list(fname, flat=True) if n]
    if "profile" in keys and organization.logo:
        names.append(organization.logo.name)
    return names


def _delete_rows(organization: Organization, keys: list[str]) -> None:
    """Delete the organization's rows of these data sets, dependents first (PROTECT foreign keys)."""
    for key in reversed(keys):
        for spec in reversed(ds.REGISTRY[key].models):
            if spec.model is Organization:
                continue  # the profile is reset, not deleted
            if spec.model is Regulation:
                organization.regulations.clear()
            elif spec.model is Membership:
                # The Owner stays the Owner: a restore never transfers ownership.
                _org_rows(spec, organization).exclude(role=Membership.Role.OWNER).delete()
            else:
                _org_rows(spec, organization).delete()


def _reset_profile(organization: Organization, manifest: dict[str, Any]) -> None:
    """Empty the profile so the importer applies the backup's, under the backup's name."""
    captured = manifest.get("organization") or {}
    organization.name = captured.get("name") or organization.name
    for name in ("description", "license_identifier", "jurisdiction"):
        setattr(organization, name, "")
    organization.language_settings = {}
    organization.creation_wizard_data = {}
    organization.logo.name = ""
    code = manifest.get("master_data_version")
    if code:
        organization.master_data_version = MasterDataVersion.objects.get(code=code)
    organization.save()


@dataclass
class _ScopeLinks:
    """Other backups' OU and facility scopes, by code: deleted rows come back with new keys."""

    ous: list[tuple[int, str]] = field(default_factory=list)
    facilities: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def remember(cls, organization: Organization) -> _ScopeLinks:
        ou_through = Backup.ous.through
        fac_through = Backup.facilities.through
        return cls(
            ous=list(
                ou_through.objects.filter(organisationalunit__organization=organization).values_list(
                    "backup_id", "organisationalunit__code"
                )
            ),
            facilities=list(
                fac_through.objects.filter(facility__organization=organization).values_list(
                    "backup_id", "facility__code"
                )
            ),
        )

    def restore(self, organization: Organization) -> None:
        ou_ids = dict(organization.ous.values_list("code", "pk"))
        fac_ids = dict(organization.facilities.values_list("code", "pk"))
        Backup.ous.through.objects.bulk_create(
            [Backup.ous.through(backup_id=b, organisationalunit_id=ou_ids[c]) for b, c in self.ous if c in ou_ids],
            ignore_conflicts=True,
        )
        Backup.facilities.through.objects.bulk_create(
            [
                Backup.facilities.through(backup_id=b, facility_id=fac_ids[c])
                for b, c in self.facilities
                if c in fac_ids
            ],
            ignore_conflicts=True,
        )


@dataclass
class Replaced:
    result: ImportResult
    old_files: list[str]
    datasets: list[str]


def replace_organization_data(
    *,
    organization: Organization,
    reader: Any,
    storage: Storage | None = None,
    result: ImportResult | None = None,
    folder: str = "",
) -> Replaced:
    """Replace the organization's rows of the archive's data sets with the archive's.

    Call inside ``transaction.atomic()`` (and ``maintenance_writes``). ``result.stored_files``
    lists the files written so far even when this raises; with ``folder`` they are stored in it
    (see ``import_archive``).
    """
    storage = storage or default_storage
    result = result if result is not None else ImportResult()
    checkpoint("begin", organization=organization)
    reader = upgrades.upgraded(reader)
    manifest = reader.manifest
    scope = manifest.get("scope") or {}
    keys = ds.resolve(scope.get("datasets") or [])
    problems = in_place_problems(
        organization=organization,
        datasets=keys,
        all_ous=scope.get("ous") is None,
        master_data_version=manifest.get("master_data_version"),
    )
    if problems:
        raise RestoreRefused(" ".join(problems))
    old_files = _files_of(organization, keys)
    links = _ScopeLinks.remember(organization) if "structure" in keys else None
    _delete_rows(organization, keys)
    if "profile" in keys:
        _reset_profile(organization, manifest)
    checkpoint("deleted", organization=organization)
    progress = _Progress(reader)
    import_archive(
        reader=progress,  # type: ignore[arg-type]
        organization=organization,
        datasets=keys,
        storage=storage,
        result=result,
        folder=folder,
    )
    if links is not None:
        links.restore(organization)
    checkpoint("imported", organization=organization)
    return Replaced(result=result, old_files=old_files, datasets=keys)


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
            stored = storage.save(name, fh)
        result.stored_files.append(stored)
        organization.logo.name = stored
    else:
        member = logo_member(reader)
        if member:
            with reader.open(member) as fh:
                stored = storage.save(name, fh)
            result.stored_files.append(stored)
            organization.logo.name = stored
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
