"""Email backend of the embedded set-up: every message is kept under var/mail/, and the log gets
one line per message ("Mail to owner@…: Restore code for … (var/mail/….log)"), never the body:
a restore code is read in the file, never in a log."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend as FileBackend

logger = logging.getLogger("backupsvc.mail")


class FileAndConsoleEmailBackend(FileBackend):
    """Writes each message to a file under ``EMAIL_FILE_PATH`` and logs a one-line summary."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        if sent:
            where = _shown_path(self._get_filename())
            for message in email_messages:
                if message.recipients():
                    logger.info("Mail to %s: %s (%s)", ", ".join(message.recipients()), message.subject, where)
        return sent


def _shown_path(path: str) -> str:
    """Relative to the project when inside it (``var/mail/….log``), else as is."""
    try:
        relative = os.path.relpath(path, settings.BASE_DIR)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
