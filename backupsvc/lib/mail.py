"""Email backend of the embedded set-up: every message is kept under var/mail/ and echoed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.filebased import EmailBackend as FileBackend


class FileAndConsoleEmailBackend(FileBackend):
    """Writes each message to a file (so it can be read later) and to the console."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._console = ConsoleBackend(*args, fail_silently=kwargs.get("fail_silently", False))

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        self._console.send_messages(email_messages)
        return sent
