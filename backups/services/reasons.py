"""A failure as the user reads it: the storage failure's wording, the lost database connection."""

from __future__ import annotations

from backupsvc.lib import dberrors


def _reason(exc: BaseException) -> str:
    """The failure as the user reads it. A storage failure (also one the archive writer wrapped)
    says so, without the store's address or the object's key, which botocore's messages carry."""
    if dberrors.connection_lost(exc):
        dberrors.forget_lost_connection(exc)
        return "The database connection was lost while the backup was written; request it again."
    storage = storage_failure(exc)
    text = storage or str(exc).strip() or exc.__class__.__name__
    return text[:1000]


def storage_failure(exc: BaseException, *, remote_only: bool = False) -> str | None:
    """What a storage error (possibly wrapped) means for the user, or None if ``exc`` is not one.

    ``remote_only``: only the object store's errors (refused, unreachable), whose sentence fits
    any job; a local disk's sentences speak of writing the backup's archive."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None and not remote_only:
            return _storage_sentence(current)
        if isinstance(current, ClientError):
            code = current.response.get("Error", {}).get("Code", "") or "an error"
            return f"Storage error: the file storage refused the request ({code}). Try again later."
        if isinstance(current, BotoCoreError):
            return (
                f"Storage error: the file storage could not be reached ({current.__class__.__name__}). Try again later."
            )
        current = current.__cause__  # explicit chaining only: a handled error is not the cause
    return None


def _storage_sentence(exc: OSError) -> str:
    """A local storage failure as a sentence saying what happened and what to do."""
    import errno

    what = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST:
        return (
            f"Storage error: the file storage already holds a file under this backup's name ({what}); "
            "nothing was overwritten. Request the backup again."
        )
    if exc.errno == errno.ENOSPC:
        return f"Storage error: the file storage is full ({what}). Free some space, then request the backup again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"Storage error: the service may not write to the file storage ({what}). "
            "Ask the operator to check it, then request the backup again."
        )
    return f"Storage error: the file storage could not write the archive ({what}). Try again later."
