"""Downloading a backup's archive: file name, history, and the response that streams it.

Local storage: the file is streamed from ``storage.open`` in chunks (never read whole), with
HTTP Range support (206 / 416) so interrupted downloads of large archives can resume.
S3-compatible storage (no local path): a redirect to a presigned URL valid at most five
minutes, whose response carries the same attachment file name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import IO, Any

from django.core.files.storage import Storage
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from accounts.models import User
from accounts.services import audit_log, client_ip
from backups.models import Backup, BackupDownload

logger = logging.getLogger(__name__)

PRESIGNED_URL_SECONDS = 300  # at most five minutes
CHUNK_SIZE = 256 * 1024
CONTENT_TYPE = "application/zip"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """The Range header asks for bytes the file does not have (416)."""


def download_filename(backup: Backup) -> str:
    """``YYYY-MM-DD-<organization>-<label>.zip``: what the file holds, safe on every system."""
    when = timezone.localtime(backup.completed_at or backup.created_at)
    org = slugify(backup.organization.slug or backup.organization.name)[:40] or "organization"
    label = slugify(backup.label)[:60] or slugify(f"{backup.get_kind_display()} backup")
    return f"{when:%Y-%m-%d}-{org}-{label}.zip"


def backup_download_record(*, backup: Backup, user: User | None, request: HttpRequest | None = None) -> BackupDownload:
    """Record one download (user, time, IP, user agent) in the backup's history and the audit log."""
    agent = request.META.get("HTTP_USER_AGENT", "") if request is not None else ""
    with transaction.atomic():
        record = BackupDownload.objects.create(
            backup=backup,
            user=user,
            user_email=user.email if user is not None else "",
            ip_address=client_ip(request),
            user_agent=agent[:400],
        )
        audit_log(action="backup.download", actor=user, organization=backup.organization, obj=backup, request=request)
    return record


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range ``(first, last)`` (inclusive) a Range header asks for, or None to send
    the whole file. A header we do not understand, or several ranges, is ignored (RFC 9110
    allows that); a range outside the file raises ``Unsatisfiable``."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None  # malformed or multiple ranges: answer with the whole file
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # an invalid range-spec: ignored
    if first >= size:
        raise Unsatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def _etag(backup: Backup) -> str:
    return f'"{backup.sha256}"' if backup.sha256 else ""


def _read_slice(fh: IO[bytes], first: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(first)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        fh.close()


def _is_local(storage: Storage, name: str) -> bool:
    try:
        storage.path(name)
    except NotImplementedError:
        return False
    return True


def presigned_url(storage: Storage, name: str, filename: str) -> str:
    """A URL of the object valid at most five minutes whose response names the file ``filename``."""
    parameters = {
        "ResponseContentDisposition": content_disposition_header(True, filename),
        "ResponseContentType": CONTENT_TYPE,
    }
    return storage.url(name, parameters=parameters, expire=PRESIGNED_URL_SECONDS)  # type: ignore[call-arg]


def serve(request: HttpRequest, backup: Backup, *, user: User | None, storage: Storage | None = None) -> HttpResponse:
    """The response that hands out the archive of a downloadable backup (checked by the caller).

    Raises ``FileNotFoundError`` when the stored file is gone.
    """
    storage = storage or backup.file.storage
    name = backup.file.name
    filename = download_filename(backup)
    record = request.method == "GET"
    if not _is_local(storage, name):
        if not storage.exists(name):
            raise FileNotFoundError(name)
        url = presigned_url(storage, name, filename)
        if record:
            backup_download_record(backup=backup, user=user, request=request)
        response: HttpResponse = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"
        return response

    size = storage.size(name)
    etag = _etag(backup)
    range_header = request.META.get("HTTP_RANGE")
    if_range = request.META.get("HTTP_IF_RANGE")
    if if_range is not None and if_range.strip() != etag:
        range_header = None  # the file changed since the client's partial copy: send all of it
    try:
        wanted = parse_range(range_header, size)
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response

    fh = storage.open(name, "rb")
    if wanted is None:
        if record:
            backup_download_record(backup=backup, user=user, request=request)
        file_response = FileResponse(fh, as_attachment=True, filename=filename, content_type=CONTENT_TYPE)
        file_response.block_size = CHUNK_SIZE
        response = file_response
    else:
        first, last = wanted
        # A download manager fetches a file in many ranges: only the one from byte 0 counts.
        if record and first == 0:
            backup_download_record(backup=backup, user=user, request=request)
        length = last - first + 1
        body: Any = _read_slice(fh, first, length) if request.method == "GET" else iter(())
        if request.method != "GET":
            fh.close()
        response = StreamingHttpResponse(body, status=206, content_type=CONTENT_TYPE)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Accept-Ranges"] = "bytes"
    if etag:
        response["ETag"] = etag
    response["Cache-Control"] = "private, no-store"
    return response
