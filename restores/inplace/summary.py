"""What an in-place restore of a backup will do, in sentences, from the backup's recorded
counts and the database now (counts only: cheap enough for the restore screen)."""

from __future__ import annotations

from typing import Any

from backups import datasets as ds
from backups.models import Backup
from organizations.models import ControlledDocument, DocumentVersion
from restores.inplace.plan import org_rows, scope_rows

SPECIAL_LABELS = {"profile": ("profile", "profile"), "ou_role": ("OU role assignment", "OU role assignments")}


def label(spec: ds.ModelSpec, count: int) -> str:
    singular, plural = SPECIAL_LABELS.get(
        spec.key, (str(spec.model._meta.verbose_name), str(spec.model._meta.verbose_name_plural))
    )
    return f"{count} {singular if count == 1 else plural}"


def backup_scope(backup: Backup) -> ds.Scope:
    return ds.Scope(
        ou_ids=None if backup.all_ous else frozenset(backup.ous.values_list("pk", flat=True)),
        include_active=backup.include_active,
        include_inactive=backup.include_inactive,
        exclude_superseded=backup.exclude_superseded,
    )


def _outside_documents(backup: Backup, scope: ds.Scope, spec: ds.ModelSpec, organization: Any) -> list[str]:
    """Documents (or their versions) outside the scope, by status and by OU."""
    statuses = scope.document_statuses()
    sentences = []
    if spec.model is ControlledDocument:
        rows = ControlledDocument.objects.filter(organization=organization)
        status_field = "status"
    else:
        rows = DocumentVersion.objects.filter(document__organization=organization)
        status_field = "document__status"
    by_status = []
    for value, name in ControlledDocument.Status.choices:
        if value not in statuses:
            n = rows.filter(**{status_field: value}).count()
            if n:
                by_status.append(f"{n} {name.lower()}")
    if by_status:
        noun = "documents" if spec.model is ControlledDocument else "versions of documents"
        verb = "is" if len(by_status) == 1 and by_status[0].startswith("1 ") else "are"
        sentences.append(f"{_cap(_join(by_status))} {noun} {verb} not in this backup and stay as they are.")
    if scope.ou_ids is not None:
        ou_field = "ou_id" if spec.model is ControlledDocument else "document__ou_id"
        n = rows.filter(**{f"{status_field}__in": statuses}).exclude(**{f"{ou_field}__in": scope.ou_ids}).count()
        if n:
            sentences.append(f"{_cap(label(spec, n))} of organisational units outside this backup {_stay(n)}.")
    return sentences


def _stay(n: int) -> str:
    return "stays as it is" if n == 1 else "stay as they are"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def restore_summary(backup: Backup) -> list[dict[str, Any]]:
    """Per data set: whether the backup holds it, and sentences saying what the restore will
    replace, remove, bring back, and keep."""
    organization = backup.organization
    scope = backup_scope(backup)
    held = set(ds.resolve(backup.datasets))
    recorded = backup.row_counts or {}
    out = []
    for key, dataset in ds.REGISTRY.items():
        entry: dict[str, Any] = {"key": key, "label": dataset.label, "in_backup": key in held, "sentences": []}
        out.append(entry)
        if key not in held:
            total = sum(org_rows(spec, organization).count() for spec in dataset.models)
            entry["sentences"].append(f"Not in this backup: its {total} rows stay as they are.")
            continue
        for spec in dataset.models:
            in_backup = int(recorded.get(key, {}).get(spec.key, 0))
            if spec.key == "profile":
                entry["sentences"].append(
                    "The profile (name, description, logo, license, jurisdiction, languages) becomes the backup's."
                )
                continue
            if spec.key == "regulation":
                now = organization.regulations.count()
                entry["sentences"].append(
                    f"The backup's {label(spec, in_backup)} replace the {now} chosen now."
                    if now != in_backup
                    else f"The {label(spec, in_backup)} chosen are set to the backup's."
                )
                continue
            now = scope_rows(spec, organization, scope).count()
            total = org_rows(spec, organization).count()
            plural = _cap(str(SPECIAL_LABELS.get(spec.key, ("", spec.model._meta.verbose_name_plural))[1]))
            if not (now or in_backup):
                sentence = f"{plural}: none in the backup, none in its scope now."
            else:
                verb = "replaces" if in_backup == 1 else "replace"
                sentence = f"{plural}: {in_backup} in the backup {verb} the {now} in its scope now"
                if now > in_backup:
                    sentence += f"; at least {now - in_backup} added since will be removed"
                elif in_backup > now:
                    sentence += f"; at least {in_backup - now} removed since come back"
                sentence += "; changed ones return to the backup's version."
            if spec.key == "membership":
                sentence += " The Owner stays the Owner."
            entry["sentences"].append(sentence)
            if spec.model in (ControlledDocument, DocumentVersion):
                entry["sentences"] += _outside_documents(backup, scope, spec, organization)
            elif total > now:
                n = total - now
                entry["sentences"].append(
                    f"{_cap(label(spec, n))} of organisational units outside this backup {_stay(n)}."
                )
    return out
