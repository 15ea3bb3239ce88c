"""Downloading a large backup over HTTP keeps the web process's memory flat, and Range works.

Usage::

    python benchmarks/download_bench.py                      # a 1 GiB archive, gunicorn
    python benchmarks/download_bench.py --size-mb 256 --server runserver
    python benchmarks/download_bench.py --file /path/to/archive.zip --workdir /tmp/dl

It makes a throwaway instance (SQLite database and media folder under ``--workdir``), creates
an organization, its Owner and a completed backup whose archive is the given (or a generated)
file on local storage, starts the app in a subprocess (gunicorn, one sync worker, or
``runserver --noreload``), signs in, and then:

1. downloads the whole file through ``/backups/<pk>/download/`` (SHA-256 checked);
2. downloads a large byte range (the second half, through the Range code path) and a small one;
3. checks a Range past the end gets 416.

Around each step it reads the serving process's ``VmRSS`` and ``VmHWM`` (peak RSS) from
``/proc/<pid>/status`` and prints a markdown block with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import free_port, wait_for  # noqa: E402

CHUNK = 1024 * 1024
MIB = 1024 * 1024

SETUP = r"""
import datetime as dt, hashlib, os, sys, uuid
import django
django.setup()
from django.conf import settings
from django.test import Client
from django.utils import timezone
from accounts.models import Membership, User
from backups.models import Backup
from organizations.models import MasterDataVersion, OrganisationalUnit, Organization, Subscription

source, sha256, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
mdv, _ = MasterDataVersion.objects.get_or_create(code="MD-BENCH", defaults={"name": "Bench", "released_on": dt.date(2026, 1, 1)})
org = Organization.objects.create(slug="bench", name="Bench Org", master_data_version=mdv)
OrganisationalUnit.objects.create(organization=org, name="Head office", code="HQ")
Subscription.objects.create(organization=org, starts_on=dt.date(2020, 1, 1), ends_on=dt.date(2099, 1, 1))
user = User.objects.create_user(email="owner@bench.test", password=uuid.uuid4().hex)
Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
name = f"backups/{uuid.uuid4().hex}.zip"
target = os.path.join(settings.MEDIA_ROOT, name)
os.makedirs(os.path.dirname(target), exist_ok=True)
try:
    os.link(source, target)
except OSError:
    os.symlink(os.path.abspath(source), target)
now = timezone.now()
backup = Backup.objects.create(
    organization=org, requested_by=user, label="Benchmark", status=Backup.Status.COMPLETED, file=name,
    size=size, sha256=sha256, completed_at=now, download_expires_at=now + dt.timedelta(days=14), document_count=0,
)
client = Client()
client.force_login(user)
print(backup.pk, client.cookies[settings.SESSION_COOKIE_NAME].value)
"""


@dataclass
class Mem:
    rss: int  # kB
    hwm: int  # kB

    @classmethod
    def of(cls, pid: int) -> Mem:
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return cls(int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0]))


def make_file(path: Path, size: int) -> str:
    """A file of ``size`` bytes of incompressible-looking data (a random 1 MiB block repeated,
    each copy tagged with its offset); returns its SHA-256."""
    block = bytearray(os.urandom(CHUNK))
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        written = 0
        while written < size:
            block[:8] = written.to_bytes(8, "big")
            piece = bytes(block[: min(CHUNK, size - written)])
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def sha256_of(path: Path, start: int = 0) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        fh.seek(start)
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def request(port: int, path: str, cookie: str, headers: dict[str, str] | None = None) -> tuple[int, dict, str, int]:
    """GET ``path`` streaming the body; returns status, headers, SHA-256 of the body and its length."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}", **(headers or {})})
    response = conn.getresponse()
    digest = hashlib.sha256()
    length = 0
    while chunk := response.read(CHUNK):
        digest.update(chunk)
        length += len(chunk)
    conn.close()
    return response.status, dict(response.getheaders()), digest.hexdigest(), length


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated archive (default 1 GiB)")
    parser.add_argument("--file", type=Path, help="use this file as the archive instead of generating one")
    parser.add_argument("--server", choices=("gunicorn", "runserver"), default="gunicorn")
    parser.add_argument("--workdir", type=Path, help="folder for the throwaway instance (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="download-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    server = None
    log = None
    try:
        if args.file:
            archive = args.file.resolve()
            size = archive.stat().st_size
            t0 = time.monotonic()
            sha256 = sha256_of(archive)
        else:
            archive = workdir / "archive.zip"
            size = args.size_mb * MIB
            t0 = time.monotonic()
            sha256 = make_file(archive, size)
        print(f"archive ready: {size / MIB:.0f} MiB in {time.monotonic() - t0:.1f}s", file=sys.stderr)

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "backupsvc.settings",
            "BACKUPSVC_VAR_DIR": str(workdir / "var"),
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "MEDIA_ROOT": str(workdir / "media"),
            "AWS_STORAGE_BUCKET_NAME": "",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "AXES_ENABLED": "false",
            "BACKUP_DISPATCH_IMMEDIATELY": "false",
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
        )
        out = subprocess.run(
            [PYTHON, "-c", SETUP, str(archive), sha256, str(size)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.split()
        backup_pk, cookie = int(out[-2]), out[-1]

        port = free_port()
        if args.server == "gunicorn":
            gunicorn = shutil.which("gunicorn", path=str(Path(PYTHON).parent)) or "gunicorn"
            cmd = [
                gunicorn,
                "backupsvc.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--timeout",
                "600",
                "--no-control-socket",
            ]
        else:
            cmd = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        log = (workdir / "server.log").open("wb")
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(port)
        pid = server.pid
        if args.server == "gunicorn":
            for _ in range(50):
                kids = children(server.pid)
                if kids:
                    pid = kids[0]  # the worker serves the requests
                    break
                time.sleep(0.1)

        url = f"/backups/{backup_pk}/download/"
        # Warm-up: the list page and one byte through the download view (imports, templates).
        for path, headers, expected in (("/backups/", {}, 200), (url, {"Range": "bytes=1-1"}, 206)):
            got = request(port, path, cookie, headers)[0]
            if got != expected:
                raise RuntimeError(f"GET {path}: {got}, expected {expected}; see {workdir / 'server.log'}")
        before = Mem.of(pid)

        t0 = time.monotonic()
        status, headers, body_sha, length = request(port, url, cookie)
        full_seconds = time.monotonic() - t0
        after_full = Mem.of(pid)
        check(status == 200, f"full download: HTTP {status}")
        check(length == size and body_sha == sha256, "the downloaded file differs from the archive")

        half = size // 2
        t0 = time.monotonic()
        r_status, r_headers, r_sha, r_length = request(port, url, cookie, {"Range": f"bytes={half}-"})
        range_seconds = time.monotonic() - t0
        after_range = Mem.of(pid)
        check(r_status == 206 and r_length == size - half, f"range download: HTTP {r_status}, {r_length} bytes")
        check(r_sha == sha256_of(archive, start=half), "the downloaded range differs from the file")
        s_status, s_headers, _, s_length = request(port, url, cookie, {"Range": "bytes=1000-1999"})
        bad_status, bad_headers, _, _ = request(port, url, cookie, {"Range": f"bytes={size}-"})

        def mib(kb: int) -> str:
            return f"{kb / 1024:.1f} MiB"

        print(
            "\n".join(
                [
                    f"### Download benchmark ({args.server}, {size / MIB:.0f} MiB archive on local storage)",
                    "",
                    "| step | HTTP | bytes | time | throughput | web RSS after | web peak RSS (VmHWM) |",
                    "|---|---|---|---|---|---|---|",
                    f"| before (after warm-up) | | | | | {mib(before.rss)} | {mib(before.hwm)} |",
                    f"| full download | {status} | {length} | {full_seconds:.1f} s | "
                    f"{length / MIB / full_seconds:.0f} MiB/s | {mib(after_full.rss)} | {mib(after_full.hwm)} |",
                    f"| Range `bytes={half}-` | {r_status} | {r_length} | {range_seconds:.1f} s | "
                    f"{r_length / MIB / range_seconds:.0f} MiB/s | {mib(after_range.rss)} | {mib(after_range.hwm)} |",
                    "",
                    f"- Peak RSS growth over the whole run: **{(after_range.hwm - before.hwm) / 1024:.1f} MiB** "
                    f"for {size / MIB:.0f} MiB served (twice, in part).",
                    f"- Full download: `Content-Disposition: {headers.get('Content-Disposition')}`, "
                    f"`Accept-Ranges: {headers.get('Accept-Ranges')}`, SHA-256 matches.",
                    f"- Range `bytes={half}-`: `{r_status}`, `Content-Range: {r_headers.get('Content-Range')}`, "
                    "SHA-256 of the part matches the file's.",
                    f"- Range `bytes=1000-1999`: `{s_status}`, `Content-Range: {s_headers.get('Content-Range')}`, "
                    f"{s_length} bytes.",
                    f"- Range `bytes={size}-`: `{bad_status}`, `Content-Range: {bad_headers.get('Content-Range')}`.",
                ]
            )
        )
        return 0
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if log is not None:
            log.close()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
