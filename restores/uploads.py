"""Streaming a backup upload to a temporary file, with the size limit checked as it streams."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler (the file never sits whole in memory), stopping as soon as
    more than ``BACKUP_UPLOAD_MAX_SIZE`` bytes arrived. ``too_large`` tells the view why."""

    def __init__(self, *args: Any, max_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_size = settings.BACKUP_UPLOAD_MAX_SIZE if max_size is None else max_size
        self.received = 0
        self.too_large = False

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        # A declared body far beyond the limit is refused before a byte of the file is stored.
        if content_length and content_length > self.max_size + 1024 * 1024:
            self.too_large = True

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        if self.too_large:
            raise StopUpload(connection_reset=False)
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.max_size:
            self.too_large = True
            self.file.close()  # the temporary file is deleted with it
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)
