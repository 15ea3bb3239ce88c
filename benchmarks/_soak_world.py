"""The soak's organizations and simulated users (benchmarks/soak.py).

Each organization is worked on by one simulated user at a time. What the user started and must
see end (a backup they requested, a restore they confirmed) is a *hold*: the organization is left
alone until the hold is final, then the hold's check runs. So the soak knows, for every manual
backup, the organization's logical snapshot when it was requested (nothing changes it until the
backup is final), and for every restore the snapshot before it: after the restore the
organization must equal one or the other.
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from django.db import close_old_connections

from backups.models import Backup
from organizations import models as om
from restores.models import Restore
from tests.backups.conftest import add_document
from tests.support.mail import Inbox, text_of
from tests.support.web import WebClient

PASSWORD = "soak-owner-password-1"  # noqa: S105 - the throwaway Owners' password
FINAL_BACKUP = {Backup.Status.COMPLETED, Backup.Status.FAILED, Backup.Status.EXPIRED, Backup.Status.CANCELLED}
FINAL_RESTORE = {Restore.Status.COMPLETED, Restore.Status.FAILED, Restore.Status.CANCELLED, Restore.Status.LOCKED}


def snapshot(org_id: int) -> dict[str, list[str]]:
    from backups.snapshot import logical_snapshot

    return logical_snapshot(om.Organization.objects.get(pk=org_id))


def _message(page: str) -> str:
    """The first error or notice a page shows (tags stripped), for the refusal counts."""
    patterns = (
        r'data-testid="request-errors"[^>]*>(.*?)</div>\s*</div>',
        r'data-testid="download-unavailable".*?<p[^>]*>(.*?)</p>',
        r'class="alert[^"]*"[^>]*>(.*?)</div>',
    )
    for pattern in patterns:
        found = re.search(pattern, page, re.S)
        if found:
            return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()[:160]
    return "no message on the page"


@dataclass
class Hold:
    kind: str  # "backup" (label) or "restore" (pk)
    key: Any
    before: dict[str, list[str]]
    backup_id: int | None = None  # the restore's backup
    since: float = field(default_factory=time.monotonic)


@dataclass
class Org:
    index: int
    pk: int
    owner_email: str
    web: WebClient
    lock: threading.Lock = field(default_factory=threading.Lock)
    holds: list[Hold] = field(default_factory=list)
    known: dict[int, dict[str, list[str]]] = field(default_factory=dict)  # backup pk -> its data
    edits: int = 0


class World:
    def __init__(self, stack: Any, inbox: Inbox, orgs: list[Org], seed: int, faults: Any) -> None:
        self.stack, self.inbox, self.orgs, self.faults = stack, inbox, orgs, faults
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()  # refusals and errors the users saw, by message
        self.violations: list[str] = []
        self.accepted_backups: list[str] = []  # labels the web confirmed
        self.confirmed_restores: list[int] = []
        self._lock = threading.Lock()
        self._labels = 0

    # ------------------------------------------------------------------ book-keeping

    def count(self, what: str, reason: str = "") -> None:
        with self._lock:
            self.counts[what] += 1
            if reason:
                self.reasons[f"{what}: {reason}"] += 1

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)
        print(f"[soak] VIOLATION {text}", flush=True)

    def label(self, org: Org) -> str:
        with self._lock:
            self._labels += 1
            return f"Soak {org.index:02d}-{self._labels:04d}"

    def choice(self, seq: list[Any], weights: list[float] | None = None) -> Any:
        with self.rng_lock:
            return self.rng.choices(seq, weights=weights)[0]

    # ------------------------------------------------------------------ holds

    def settle(self, org: Org) -> None:
        """Check and drop the holds that are final (the caller holds ``org.lock``)."""
        for hold in list(org.holds):
            if hold.kind == "backup":
                backup = Backup.objects.filter(label=hold.key).first()
                if backup is None:
                    self.violation(f"backup “{hold.key}” was confirmed to its requester but is not in the database")
                elif backup.status not in FINAL_BACKUP:
                    continue
                elif backup.status == Backup.Status.COMPLETED:
                    org.known[backup.pk] = hold.before
                org.holds.remove(hold)
            else:
                restore = Restore.objects.get(pk=hold.key)
                if restore.status not in FINAL_RESTORE:
                    continue
                org.holds.remove(hold)
                after = snapshot(org.pk)
                if restore.status == Restore.Status.COMPLETED:
                    expected, what = org.known.get(hold.backup_id or 0), "the backup"
                    self.count("restore completed")
                else:
                    expected, what = hold.before, "the state before"
                    self.count("restore failed", restore.failure_reason[:120])
                if expected is None:
                    self.violation(f"restore {restore.pk}: the data of backup {hold.backup_id} is not known")
                elif after != expected:
                    differs = sorted(k for k in set(after) | set(expected) if after.get(k) != expected.get(k))
                    self.violation(
                        f"restore {restore.pk} ({restore.status}) of organization {org.index} half-applied: "
                        f"its data differs from {what} in {differs}"
                    )
                else:
                    self.count("restore checked equal to " + ("the backup" if what == "the backup" else "before"))

    def take_idle(self) -> Org | None:
        """An organization no user works on and with nothing in flight, locked for the caller."""
        with self.rng_lock:
            order = self.rng.sample(self.orgs, len(self.orgs))
        for org in order:
            if not org.lock.acquire(blocking=False):
                continue
            try:
                self.settle(org)
            except Exception:
                org.lock.release()
                raise
            if not org.holds:
                return org
            org.lock.release()
        return None

    # ------------------------------------------------------------------ what users do

    def act(self, org: Org) -> None:
        action = self.choice(
            [self.request_backup, self.download, self.verify, self.edit, self.restore], [30, 25, 15, 15, 15]
        )
        action(org)

    def request_backup(self, org: Org) -> None:
        """The Request Backup dialog, submitted with the generated password."""
        before = snapshot(org.pk)
        label = self.label(org)
        dialog = org.web.get("/backups/request/")
        if 'id="generated-password"' not in dialog.text:
            self.count("backup request refused", _message(dialog.text))
            return
        try:
            page = org.web.submit(org.web.form(dialog, 'id="request-form"'), label=label)
        except requests.RequestException as exc:
            page = None
            self.count("backup request error", exc.__class__.__name__)
        if page is not None and page.status_code == 200 and f"Backup “{label}” requested" in page.text:
            self.count("backup requested")
            self.accepted_backups.append(label)
            org.holds.append(Hold("backup", label, before))
        elif Backup.objects.filter(label=label).exists():  # made, though the answer was lost
            self.count("backup requested (answer lost)")
            self.accepted_backups.append(label)
            org.holds.append(Hold("backup", label, before))
        elif page is not None:
            self.count("backup request refused", f"{page.status_code} {_message(page.text)}")

    def _completed(self, org: Org, known_only: bool = False) -> Backup | None:
        qs = Backup.objects.filter(organization_id=org.pk, status=Backup.Status.COMPLETED).exclude(file="")
        if known_only:
            qs = qs.filter(pk__in=list(org.known))
        recent = list(qs.order_by("-pk")[:10])
        return self.choice(recent) if recent else None

    def download(self, org: Org) -> None:
        """The Download button: the app's redirect to a presigned URL, then the file itself."""
        backup = self._completed(org)
        if backup is None:
            return
        outage = self.faults.active()
        try:
            answer = org.web.get(f"/backups/{backup.pk}/download/", follow=False, expect=None)
            if answer.status_code != 302:
                outage = outage or self.faults.active()
                what = "download refused" + (f" during {outage}" if outage else "")
                self.count(what, f"{answer.status_code} {_message(answer.text)}")
                return
            body = requests.get(answer.headers["Location"], timeout=60)
        except requests.RequestException as exc:
            outage = outage or self.faults.active()
            self.count("download failed" + (f" during {outage}" if outage else ""), exc.__class__.__name__)
            return
        if body.status_code != 200:
            outage = outage or self.faults.active()
            self.count("download failed" + (f" during {outage}" if outage else ""), f"HTTP {body.status_code}")
            return
        if hashlib.sha256(body.content).hexdigest() != backup.sha256 or len(body.content) != backup.size:
            backup.refresh_from_db()
            if backup.status == Backup.Status.COMPLETED:
                self.violation(f"backup {backup.pk}: the downloaded file does not match its recorded SHA-256/size")
            return
        self.count("download ok")

    def verify(self, org: Org) -> None:
        """ "Verify now" in the backup's row menu on the list page (queued for a worker)."""
        backup = self._completed(org)
        if backup is None:
            return
        page = org.web.get("/backups/")
        try:
            form = org.web.form(page, f"/backups/{backup.pk}/verify/")
        except AssertionError:
            return  # not on the first page any more
        answer = org.web.submit(form)
        if answer.status_code == 200:
            self.count("verify requested")
        else:
            self.count(f"verify answered {answer.status_code}", f"{answer.url} {self.faults.last()}")

    def edit(self, org: Org) -> None:
        """A document added (a restore gives the OU a new primary key: looked up each time)."""
        org.edits += 1
        ou = om.OrganisationalUnit.objects.filter(organization_id=org.pk).first()
        add_document(ou.organization, ou, f"E{org.edits:03d}")
        self.count("document added")

    def restore(self, org: Org) -> None:
        """An in-place restore of a manual backup whose data is known, with the emailed code."""
        backup = self._completed(org, known_only=True)
        if backup is None:
            return
        before = snapshot(org.pk)
        sent = len(self.inbox.matching("Restore code for", to=org.owner_email))
        start = org.web.get(f"/restores/backup/{backup.pk}/", expect=None)
        if start.status_code != 200 or 'data-testid="send-code"' not in start.text:
            self.count("restore refused", f"{start.status_code} {_message(start.text)}")
            return
        page = org.web.submit(org.web.form(start, 'data-testid="send-code"'))
        if "A code was sent to the Owner." not in page.text:
            self.count("restore refused", f"{page.status_code} {_message(page.text)}")
            return
        deadline = time.monotonic() + 60
        while len(self.inbox.matching("Restore code for", to=org.owner_email)) <= sent:
            if time.monotonic() > deadline:
                self.violation(f"organization {org.index}: no restore code mail within 60 s")
                return
            time.sleep(0.2)
        mail = self.inbox.matching("Restore code for", to=org.owner_email)[-1]
        code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE).group(1)  # type: ignore[union-attr]
        restore = Restore.objects.filter(organization_id=org.pk, status=Restore.Status.AWAITING_CODE).latest("pk")
        form = org.web.form(page, f"/restores/{restore.pk}/confirm/")
        for attempt in (1, 2):  # an error page (a fault): the user presses Confirm once more
            try:
                answer = org.web.submit(form, code=code, password=PASSWORD)
                if answer.status_code != 200:
                    self.count("restore confirm answered an error", f"{answer.status_code} {self.faults.last()}")
            except requests.RequestException as exc:
                self.count("restore confirm error", exc.__class__.__name__)
            restore.refresh_from_db()
            if restore.status != Restore.Status.AWAITING_CODE or attempt == 2:
                break
        if restore.status == Restore.Status.AWAITING_CODE:
            self.count("restore refused at confirmation")
            from restores.services import restore_cancel

            restore_cancel(restore=restore, user=restore.requested_by)
            return
        self.count("restore confirmed")
        self.confirmed_restores.append(restore.pk)
        org.holds.append(Hold("restore", restore.pk, before, backup_id=backup.pk))


def actor(world: World, stop: threading.Event, pause: tuple[float, float] = (0.5, 2.0)) -> None:
    """One simulated user: an idle organization, something to do on it, a pause; until ``stop``."""
    import pytest

    while not stop.is_set():
        close_old_connections()
        org = world.take_idle()
        if org is None:
            stop.wait(1)
            continue
        try:
            world.act(org)
        except (Exception, pytest.fail.Exception) as exc:  # the web answered oddly during a fault
            world.count("action error", f"{exc.__class__.__name__}: {str(exc)[:100]}")
        finally:
            org.lock.release()
        with world.rng_lock:
            wait = world.rng.uniform(*pause)
        stop.wait(wait)
