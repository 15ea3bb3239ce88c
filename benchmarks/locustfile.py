"""The load test's users (run by ``benchmarks/load_bench.py``, which seeds the data and starts gunicorn).

Each user signs in once, with the login form's CSRF token, as the Owner or an Admin of an
organization of their own (``LOAD_LOGINS``: a JSON list of ``{"email", "password"}``), waits
until every user has signed in (password hashing is deliberately slow and would otherwise
crowd the first seconds of page figures), starts within one average round of think times (not
all at once), then loops over what a person managing backups does:

- the Account Backups list: the first page, a later page, a status/type/date filter or another
  sort order, as picked from the page's own links and form;
- the details page of a backup seen on the list;
- the download of a backup the list offers for download (the whole archive, checked to be a zip
  of the announced length).

Requests carry ``X-Forwarded-Proto: https`` and the POST an ``Origin``, as they arrive from the
TLS-terminating proxy in front of gunicorn; the browser sends its ``Secure`` cookies over HTTPS,
so the client, which speaks plain HTTP to gunicorn, clears the flag in its jar to send them too. ``LOAD_WAIT`` (``min,max`` seconds) is the think time between
requests; ``LOAD_MARKS`` gets the times all users had signed in and the test stopped.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
import gevent.event
from locust import FastHttpUser, between, events, task

LOGINS: list[dict[str, str]] = json.loads(Path(os.environ["LOAD_LOGINS"]).read_text())
WAIT_MIN, WAIT_MAX = (float(x) for x in os.environ.get("LOAD_WAIT", "1,3").split(","))
MARKS = Path(os.environ["LOAD_MARKS"]) if os.environ.get("LOAD_MARKS") else None
PROXY = {"X-Forwarded-Proto": "https"}

_next_login = itertools.count()
_signed_in = itertools.count(1)
_everyone_in = gevent.event.Event()
_marks: dict[str, float] = {}

DETAIL = re.compile(r'href="/backups/(\d+)/"')
DOWNLOAD = re.compile(r'href="/backups/(\d+)/download/"')
LAST_PAGE = re.compile(r"[?&]page=(\d+)")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _list_query() -> dict[str, str]:
    """What a person does with the list: mostly the newest backups, sometimes paging or filtering."""
    roll = random.random()
    if roll < 0.5:
        return {}
    if roll < 0.7:
        return {"page": str(random.randint(2, 4))}
    if roll < 0.9:
        return random.choice(
            [
                {"status": "completed"},
                {"status": "failed"},
                {"kind": "manual"},
                {"kind": "scheduled", "status": "completed", "page": "2"},
                {"date_from": (dt.date.today() - dt.timedelta(days=3)).isoformat()},
            ]
        )
    return {"sort": random.choice(["-size", "status", "type", "user", "date"])}


class BackupManager(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.backups: list[str] = []
        self.downloadable: list[str] = []
        try:
            self._sign_in(LOGINS[next(_next_login) % len(LOGINS)])
        finally:
            if next(_signed_in) >= self.environment.parsed_options.num_users:
                _marks["all_signed_in"] = time.time()
                _everyone_in.set()
        _everyone_in.wait(timeout=120)
        # Start within one average round (three think times), not all at once.
        gevent.sleep(random.uniform(0, 3 * (WAIT_MIN + WAIT_MAX) / 2))

    def _sign_in(self, login: dict[str, str]) -> None:
        with self.client.get(
            "/accounts/login/?next=/backups/", headers=PROXY, name="login form", catch_response=True
        ) as form:
            self._keep_cookies()
            token = CSRF.search(form.text or "")
            if form.status_code != 200 or token is None:
                form.failure(f"HTTP {form.status_code}, CSRF token {'found' if token else 'missing'}")
                return
        origin = f"https://{self.host.split('://', 1)[1]}"
        body = urlencode(
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": login["email"],
                "password": login["password"],
                "next": "/backups/",
            }
        )
        headers = {
            **PROXY,
            "Origin": origin,
            "Referer": f"{origin}/accounts/login/?next=/backups/",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        with self.client.post(
            "/accounts/login/", data=body, headers=headers, name="login", allow_redirects=False, catch_response=True
        ) as response:
            self._keep_cookies()
            if response.status_code != 302 or response.headers.get("Location") != "/backups/":
                response.failure(f"{login['email']}: HTTP {response.status_code}, not the redirect to /backups/")

    def _keep_cookies(self) -> None:
        # Secure cookies (session, CSRF) go over HTTPS only; this last hop is HTTP on loopback.
        for cookie in self.client.cookiejar:
            cookie.secure = False

    def _get(self, path: str, name: str, check: Any) -> Any:
        with self.client.get(path, headers=PROXY, name=name, catch_response=True) as response:
            self._keep_cookies()
            problem = check(response)
            if problem:
                response.failure(f"{path}: {problem}")
                return None
            return response

    @task
    def browse(self) -> None:
        query = _list_query()
        page = self._get(
            "/backups/" + (f"?{urlencode(query)}" if query else ""),
            "list",
            lambda r: (
                None
                if r.status_code == 200
                and ('data-testid="backup-table"' in r.text or 'data-testid="empty-state"' in r.text)
                else f"HTTP {r.status_code}"
            ),
        )
        if page is not None:
            html = page.text
            self.backups = DETAIL.findall(html) or self.backups
            self.downloadable = DOWNLOAD.findall(html) or self.downloadable
        if not self.backups:
            return
        self.wait()
        pk = random.choice(self.backups)
        self._get(
            f"/backups/{pk}/",
            "detail",
            lambda r: (
                None if r.status_code == 200 and 'data-testid="detail-title"' in r.text else f"HTTP {r.status_code}"
            ),
        )
        if not self.downloadable:
            return
        self.wait()
        pk = random.choice(self.downloadable)
        self._get(f"/backups/{pk}/download/", "download", _check_archive)


def _check_archive(response: Any) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    body = response.content or b""
    announced = response.headers.get("Content-Length")
    if not body.startswith(b"PK") or (announced is not None and int(announced) != len(body)):
        return f"not a whole zip ({len(body)} bytes, Content-Length {announced})"
    return None


@events.test_stop.add_listener
def _stopped(**_kwargs: Any) -> None:
    _marks["stopped"] = time.time()
    if MARKS is not None:
        MARKS.write_text(json.dumps(_marks))
