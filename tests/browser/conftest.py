"""Playwright for Python driving Debian's chromium (it cannot download its own browser here)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mail import Inbox, smtp_server
from tests.support.procs import wait_for_live_server_requests

# The session-wide `browser` fixture lives in tests/conftest.py: one Playwright per test process,
# shared with tests/e2e (a second sync Playwright in the same thread refuses to start).
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The sync Playwright API runs an event loop in the test thread; the ORM calls the tests make
# around it are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@contextlib.contextmanager
def open_page(browser, base_url: str, timeout_ms: int = 15_000) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A page in a fresh browser context on ``base_url``, with the clipboard allowed and every
    JavaScript error collected in ``page.js_errors``; a Content-Security-Policy refusal among
    them fails the test when the page closes."""
    context = browser.new_context(base_url=base_url, accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
    refused = [e for e in errors if "Content Security Policy" in e]
    assert not refused, f"the page broke the Content-Security-Policy: {refused}"


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    try:
        with open_page(browser, live_server.url) as opened:
            yield opened
    finally:
        # Leave no request in flight for the next test of this process (see the helper).
        wait_for_live_server_requests()


@pytest.fixture
def smtp(settings) -> Iterator[Inbox]:  # type: ignore[no-untyped-def]
    """A real SMTP server on a free local port; Django sends to it over SMTP."""
    with smtp_server() as inbox:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = inbox.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 10
        yield inbox


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
