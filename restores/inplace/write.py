"""Writing a planned scope-exact restore: delete, then per model update in place (keys kept)
and re-create (with the original key when it is free), streaming the archive's rows.

The organization's rows with rules of their own (profile, regulations, roles, memberships, OU
role assignments) are written by ``restores.inplace.organization.OrganizationWriter``.

Stored files: a row whose file has the backup's content keeps its stored file untouched; a
changed or re-created row gets the backup's file, stored in the restore's folder; the files
it replaces are listed in ``old_files`` for the caller to remove once the transaction
committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage
from django.db import connection, models
from django.db.models import F, Value
from django.db.models.functions import Cast, Concat

from accounts.models import Membership, OURoleAssignment, User
from backups import datasets as ds
from backups.importer import ImportResult, in_folder, store_file
from organizations.models import Organization
from restores.inplace.plan import ModelPlan, chunks, member_of, org_rows, same_stored_file, stream_rows, unique_fields

LEAVES = (Membership, OURoleAssignment)  # no row refers to them; their unique values are references


@dataclass
class Counts:
    updated: int = 0
    created: int = 0
    unchanged: int = 0
    skipped: int = 0  # users that do not exist on this system (a restore never creates accounts)


@dataclass
class Writer:
    organization: Organization
    reader: Any  # the progress-reporting reader
    storage: Storage
    folder: str
    result: ImportResult
    plans: dict[str, ModelPlan]
    members: dict[str, tuple[int, str]]  # archive member -> (size, sha256)
    old_files: list[str] = field(default_factory=list)
    id_maps: dict[str, dict[int, int]] = field(default_factory=dict)  # only rows that got a new key
    counts: dict[str, Counts] = field(default_factory=dict)
    users: dict[str, User | None] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------
    # Helpers

    def user(self, email: str | None) -> User | None:
        if not email:
            return None
        if email not in self.users:
            self.users[email] = User.objects.filter(email=email).first()
        return self.users[email]

    def ref(self, target: str, value: Any, *, nullable: bool) -> int | None:
        """The key a backup's reference points at now."""
        if value is None:
            return None
        old = int(value)
        if old in self.id_maps.get(target, {}):
            return self.id_maps[target][old]
        plan = self.plans.get(target)
        if plan is not None and (old in plan.backup_pks or old in plan.external_live):
            return old
        if nullable:
            return None
        raise ds.RestoreDataError(f"A row of the backup refers to a missing {target} #{old}.")

    def same_file(self, current: str, ref: Any, recorded_sha256: str = "") -> bool:
        """Whether the stored file ``current`` holds exactly the archive member's bytes."""
        return same_stored_file(self.storage, current, recorded_sha256, ref, self.members)

    def store(self, fld: models.FileField, ref: dict[str, Any], name: str) -> str:
        with self.reader.open(ref["member"]) as stream:
            return store_file(self.storage, in_folder(name, self.folder), stream, self.result.stored_files)

    def free_keys(self, model: type[models.Model], pks: list[int]) -> set[int]:
        taken = set(model._default_manager.filter(pk__in=pks).values_list("pk", flat=True))
        return set(pks) - taken

    def create(self, spec: ds.ModelSpec, objects: list[models.Model], olds: list[int], free: set[int]) -> None:
        """Insert rows: with their original key when it is free, else with a new one (mapped)."""
        keep = [obj for obj, old in zip(objects, olds, strict=True) if old in free]
        fresh = [(obj, old) for obj, old in zip(objects, olds, strict=True) if old not in free]
        for obj, old in zip(objects, olds, strict=True):
            obj.pk = old if old in free else None
        if keep:
            spec.model._default_manager.bulk_create(keep)
            self.advance_sequence(spec.model)
        if fresh:
            created = spec.model._default_manager.bulk_create([obj for obj, _ in fresh])
            mapping = self.id_maps.setdefault(spec.key, {})
            for (_, old), obj in zip(fresh, created, strict=True):
                if obj.pk is None:
                    raise ds.RestoreDataError("The database did not return new primary keys.")
                mapping[old] = obj.pk

    @staticmethod
    def advance_sequence(model: type[models.Model]) -> None:
        """PostgreSQL: never let the key sequence fall behind keys inserted by hand (SQLite's
        AUTOINCREMENT keeps track itself). It is only ever raised, so a deleted key is never
        issued again."""
        if connection.vendor != "postgresql":
            return
        table = model._meta.db_table
        column = model._meta.pk.column
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
            sequence = cursor.fetchone()[0]
            if not sequence:
                return
            cursor.execute(f"SELECT last_value FROM {sequence}")  # noqa: S608 - a name PostgreSQL gave
            last = cursor.fetchone()[0]
            cursor.execute(f'SELECT MAX("{column}") FROM "{table}"')  # noqa: S608 - names from the model
            highest = cursor.fetchone()[0]
            if highest is not None and highest > last:
                cursor.execute("SELECT setval(%s, %s)", [sequence, highest])

    def placeholders(self, plan: ModelPlan) -> None:
        """Rows that give up a unique value to another first take a value of their own, so the
        values can move between rows (two documents swapping references)."""
        if not plan.unique_changing:
            return
        model = plan.spec.model
        names = {f for fields in unique_fields(model) for f in fields}
        for pk in sorted(plan.unique_changing):
            values: dict[str, Any] = {}
            for name in names:
                fld = model._meta.get_field(name)
                if isinstance(fld, models.CharField):
                    values[name] = f"~{pk}"[: fld.max_length]
                elif isinstance(fld, models.IntegerField):
                    values[name] = 1_000_000_000 + pk % 1_000_000_000
            model._default_manager.filter(pk=pk).update(**values)

    # ------------------------------------------------------------------------------------------
    # Deleting

    def release(self, plans: list[ModelPlan]) -> None:
        """Rows that will be deleted give up their unique values at once (they go only at the
        end, once no restored row refers to them any more)."""
        for plan in plans:
            model = plan.spec.model
            if not plan.delete or model in LEAVES:
                continue
            values: dict[str, Any] = {}
            for name in {f for fields in unique_fields(model) for f in fields}:
                fld = model._meta.get_field(name)
                if isinstance(fld, models.CharField):
                    values[name] = Concat(Value("~d"), Cast("pk", models.CharField()))
                elif isinstance(fld, models.IntegerField) and not fld.is_relation:
                    values[name] = F("pk") + 1_000_000_000
            if values:
                for batch in chunks(sorted(plan.delete)):
                    model._default_manager.filter(pk__in=batch).update(**values)

    def delete(self, plans: list[ModelPlan], *, leaves: bool) -> None:
        """Delete the planned rows, dependents first: the leaves (memberships, OU role
        assignments, whose unique values are references) before anything is written, the rest
        after every restored row points where the backup says."""
        for plan in reversed(plans):
            if (plan.spec.model in LEAVES) != leaves:
                continue
            spec = plan.spec
            for batch in chunks(sorted(plan.delete)):
                qs = org_rows(spec, self.organization).filter(pk__in=batch)
                for fname in spec.files:
                    self.old_files += [n for n in qs.values_list(fname, flat=True) if n]
                qs.delete()

    # ------------------------------------------------------------------------------------------
    # Plain rows

    def plain(
        self,
        dataset: str,
        spec: ds.ModelSpec,
        *,
        only: Mapping[int, Mapping[str, Any]] | None = None,
        overwrite: bool = True,
    ) -> int:
        """Apply the backup's rows of ``spec``: every row (the scope-exact restore), or with
        ``only`` just those keys, each with its values replaced by the mapping's (a selective
        restore's suffixed unique values); ``overwrite`` False leaves rows that exist alone."""
        plan = self.plans[spec.key]
        counts = self.counts.setdefault(spec.key, Counts())
        model = spec.model
        self.placeholders(plan)
        has_org = any(f.name == "organization" for f in model._meta.fields)
        attnames = {name: model._meta.get_field(name).attname for name in spec.refs}
        users = {name: f"{name}__email" for name in spec.user_refs}
        columns = ["pk", *spec.fields, *attnames.values(), *users.values(), *spec.files]
        mine = org_rows(spec, self.organization)
        total = 0
        rows = stream_rows(self.reader, member_of(dataset, spec))
        if only is not None:
            rows = ({**row, **only[int(row["id"])]} for row in rows if int(row["id"]) in only)
        for batch in chunks(rows):
            pks = [int(row["id"]) for row in batch]
            live = {v[0]: dict(zip(columns, v, strict=True)) for v in mine.filter(pk__in=pks).values_list(*columns)}
            new_objects: list[models.Model] = []
            olds: list[int] = []
            for row in batch:
                pk = int(row["id"])
                wanted: dict[str, Any] = {}
                for name in spec.fields:
                    if name in row:
                        wanted[name] = ds.from_json(model, name, row[name])
                for name, target in spec.refs.items():
                    nullable = model._meta.get_field(name).null
                    wanted[attnames[name]] = self.ref(target, row.get(name), nullable=nullable)
                current = live.get(pk)
                if current is None:
                    for name in spec.user_refs:
                        wanted[name] = self.user(row.get(name))
                    for name in spec.files:
                        ref = row.get(name)
                        if ref:
                            fld = model._meta.get_field(name)
                            wanted[name] = self.store(fld, ref, fld.generate_filename(None, ref.get("name") or name))
                    if has_org:
                        wanted["organization"] = self.organization
                    new_objects.append(model(**wanted))
                    olds.append(pk)
                    continue
                if not overwrite:
                    counts.unchanged += 1
                    continue
                changes = {k: v for k, v in wanted.items() if current[k] != v}
                for name, column in users.items():
                    if current[column] != row.get(name):
                        changes[name] = self.user(row.get(name))
                for name in spec.files:
                    ref = row.get(name)
                    if not self.same_file(current[name] or "", ref, current.get("sha256") or ""):
                        fld = model._meta.get_field(name)
                        stored = (
                            self.store(fld, ref, fld.generate_filename(None, ref.get("name") or name)) if ref else ""
                        )
                        changes[name] = stored
                        if current[name]:
                            self.old_files.append(current[name])
                if changes or pk in plan.unique_changing:
                    if pk in plan.unique_changing:  # the placeholder goes: every unique value is written
                        for fields in unique_fields(model):
                            for f in fields:
                                key = model._meta.get_field(f).attname
                                changes.setdefault(key, wanted.get(key, wanted.get(f)))
                    model._default_manager.filter(pk=pk).update(**changes)
                    counts.updated += 1
                else:
                    counts.unchanged += 1
            if new_objects:
                self.create(spec, new_objects, olds, self.free_keys(model, olds))
                counts.created += len(new_objects)
            total += len(batch)
        return total
