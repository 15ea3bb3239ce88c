"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps what it receives."""

from __future__ import annotations

import contextlib
import email
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.net import free_port


class Inbox:
    """An aiosmtpd handler keeping every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def matching(self, subject_start: str, to: str | None = None) -> list[Message]:
        return [
            m
            for m in list(self.messages)
            if subject_of(m).startswith(subject_start) and (to is None or m["X-Envelope-To"] == to)
        ]

    def wait_for(self, subject_start: str, timeout: float = 10, to: str | None = None) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(subject_start, to)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no mail {subject_start!r}; got {[subject_of(m) for m in self.messages]}")


def subject_of(message: Message) -> str:
    """The subject as read, RFC 2047 encoded words (non-ASCII subjects) decoded."""
    return str(make_header(decode_header(message["Subject"] or ""))).strip()


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")  # type: ignore[union-attr]
    raise AssertionError("no text part")


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    """Start an SMTP server on 127.0.0.1 (a free port); yields its inbox (``inbox.port``)."""
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
