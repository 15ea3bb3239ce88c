"""The wizard's upload refuses anyone but a signed-in Site Admin before it reads the body.

A real HTTP server (the live server) and a socket that streams a 200 MB body: the refusal must
come back while the client is still sending, and no temporary upload file may appear. The old
view checked CSRF first, which parses the body (the token may be a form field), so an anonymous
visitor holding the login page's CSRF cookie streamed the whole body into a temporary file.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests import factories as f
from tests.support.procs import wait_for_live_server_requests

pytestmark = pytest.mark.django_db(transaction=True)

BODY_SIZE = 200 * 1024 * 1024
CHUNK = b"\0" * (256 * 1024)
BOUNDARY = "----backupsvc-guard-test"


def csrf_from_login_page(base: str) -> str:
    """The CSRF cookie the login page hands to anyone."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", reverse("accounts:login"))
    response = conn.getresponse()
    response.read()
    cookie = SimpleCookie()
    for value in response.headers.get_all("Set-Cookie") or []:
        cookie.load(value)
    conn.close()
    return cookie[settings.CSRF_COOKIE_NAME].value


class Watch:
    """The largest total size of the files in ``folder``, sampled every 10 ms in a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.largest = 0
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for path in self.folder.iterdir():
                self.seen.add(path.name)
                with contextlib.suppress(FileNotFoundError):
                    total += path.stat().st_size
            self.largest = max(self.largest, total)
            time.sleep(0.01)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def stream_upload(base: str, path: str, cookies: dict[str, str], token: str) -> tuple[int, dict[str, str], int]:
    """POST a 200 MB multipart upload (the CSRF token first, as a form field, then the file)
    from a thread, reading the answer at the same time. Returns the status, the headers and how
    many bytes had been sent when the answer arrived; the sender stops once it has the answer."""
    parts = urlsplit(base)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="password"\r\n\r\nsome-password-1234\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="backup.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(head) + BODY_SIZE + len(tail)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n"
        f"Cookie: {cookie}\r\nX-CSRFToken: {token}\r\nReferer: {base}/\r\n\r\n"
    ).encode()
    sock = socket.create_connection((parts.hostname, parts.port), timeout=120)
    sent = 0
    answered = threading.Event()

    def send() -> None:
        nonlocal sent
        try:
            sock.sendall(request + head)
            while sent < BODY_SIZE and not answered.is_set():
                sock.sendall(CHUNK)
                sent += len(CHUNK)
            if not answered.is_set():
                sock.sendall(tail)
        except OSError:
            pass  # the server closed the connection, or the test did once it had the answer

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response = http.client.HTTPResponse(sock)
    response.begin()
    sent_when_answered = sent
    answered.set()
    headers = dict(response.getheaders())
    response.close()
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    sender.join(timeout=60)
    return response.status, headers, sent_when_answered


def session_cookie(user: Any) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


@pytest.fixture
def upload_tmp(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "upload-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_an_upload_by_anyone_but_a_site_admin_is_refused_before_the_body_is_read(
    who: str, live_server, upload_tmp: Path
) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    token = csrf_from_login_page(base)
    cookies = {settings.CSRF_COOKIE_NAME: token}
    if who == "member":
        org = f.OrganizationFactory()
        member = f.UserFactory(email="member@acme.test")
        f.MembershipFactory(user=member, organization=org)
        cookies |= session_cookie(member)
    try:
        with Watch(upload_tmp) as watch:
            status, headers, sent = stream_upload(base, reverse("restores:wizard_upload"), cookies, token)
    finally:
        wait_for_live_server_requests(timeout=60)
    assert watch.largest == 0 and not watch.seen, f"temporary files grew to {watch.largest:,} bytes"
    if who == "anonymous":
        assert status == 302
        assert urlsplit(headers["Location"]).path == reverse("accounts:login")
    else:
        assert status == 404
    # The refusal came while the client was still sending (socket buffers aside).
    assert sent < BODY_SIZE // 4, f"the answer came after {sent:,} bytes of the body"


@pytest.mark.parametrize("path", ["/accounts/login/", "/no/such/page/"])
def test_a_large_body_anywhere_else_is_refused_before_it_is_read(path: str, live_server, upload_tmp: Path) -> None:  # type: ignore[no-untyped-def]
    """Every other address (the sign-in form, an unknown address whose 404 page would run the
    CSRF check) refuses a body beyond REQUEST_BODY_MAX_SIZE unread."""
    base = live_server.url
    token = csrf_from_login_page(base)
    try:
        with Watch(upload_tmp) as watch:
            status, _headers, sent = stream_upload(base, path, {settings.CSRF_COOKIE_NAME: token}, token)
    finally:
        wait_for_live_server_requests(timeout=60)
    assert watch.largest == 0 and not watch.seen, f"temporary files grew to {watch.largest:,} bytes"
    assert status == 413
    assert sent < BODY_SIZE // 4, f"the answer came after {sent:,} bytes of the body"


def test_a_site_admin_upload_is_still_read_and_csrf_checked(upload_tmp: Path) -> None:
    """The guard lets a Site Admin's upload through to the form, with the CSRF check still applied."""
    site_admin = f.UserFactory(email="site-admin@platform.test", is_site_admin=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(site_admin)
    client.get(reverse("restores:wizard_upload"))
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    data = {"password": "some-password-1234"}
    file = SimpleUploadedFile("backup.zip", b"not a zip at all", content_type="application/zip")
    assert client.post(reverse("restores:wizard_upload"), {**data, "file": file}).status_code == 403
    file.seek(0)
    response = client.post(reverse("restores:wizard_upload"), {**data, "file": file, "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert "This file cannot be restored" in response.content.decode()
