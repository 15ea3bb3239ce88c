"""The data-set registry: the one place that maps a backup's scope to models.

A data set is what a user picks when creating a backup ("Financial and billing data"). It
lists its models in dependency order, says how to export an organization's rows (optionally
limited to OUs and document filters) and how to import them into a target organization with
fresh primary keys. The backup writer, the restore engine, the selection UI and the manifest all
read this registry: adding a model to backups is one ``ModelSpec`` in one registration.

Rows are JSON objects. ``id`` is the row's primary key in the source; references to other
exported rows carry the source key and are mapped to the new keys on import; references to
users are carried as email addresses; stored files are carried as opaque archive members.

``registry`` holds the mechanism, ``registrations`` the data sets (imported here, so the
registry is filled once ``backups.datasets`` is), ``custom`` the exporters and importers of the
rows that are not plain tenant rows.
"""

from backups.datasets import registrations as _registrations  # noqa: F401 - fills REGISTRY
from backups.datasets.custom import PROFILE_FIELDS
from backups.datasets.registrations import _versions
from backups.datasets.registry import (
    FILE_MEMBER_PREFIX,
    REGISTRY,
    DataSet,
    ImportContext,
    ModelSpec,
    RestoreDataError,
    Scope,
    all_keys,
    import_plain_rows,
    register,
    resolve,
    to_json,
)
from backups.datasets.registry import (
    _from_json as from_json,
)

__all__ = [
    "FILE_MEMBER_PREFIX",
    "PROFILE_FIELDS",
    "REGISTRY",
    "DataSet",
    "ImportContext",
    "ModelSpec",
    "RestoreDataError",
    "Scope",
    "_versions",
    "all_keys",
    "from_json",
    "import_plain_rows",
    "register",
    "resolve",
    "to_json",
]
