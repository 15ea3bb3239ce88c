"""The load test's data (benchmarks/load_bench.py), built in a child process with the
benchmark's settings (``load_bench.py _seed ORGS PER_ORG LOGINS OUT``): the tenants
(``_load_tenants``), one real archive each, the backup history (``_load_history``), then
``ANALYZE`` as autovacuum would, the logins for locust and the SQL queries each page makes."""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from pathlib import Path


def seed(orgs: int, per_org: int, logins: int, out: Path) -> None:
    """Build the tenants and backups (see load_bench's docstring) and write the logins to ``out``."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.files.storage import default_storage
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from backups.models import Backup, BackupDownload, BackupEvent
    from benchmarks._load_history import history_rows, save_history
    from benchmarks._load_tenants import create_tenants, real_archives
    from organizations.models import OrganisationalUnit, Organization

    rng = random.Random(2026)
    started = time.monotonic()
    now = timezone.now()
    password = secrets.token_urlsafe(18)
    hashed = make_password(password)  # hashed once: the same password for every user
    tenants = create_tenants(orgs, now, hashed)
    organizations, users = tenants.organizations, tenants.users
    seeded_tenants = time.monotonic() - started

    t0 = time.monotonic()
    real = real_archives(tenants)
    archives_seconds = time.monotonic() - t0

    # The other backups: 13 days of history per organization, newest last.
    t0 = time.monotonic()
    rows, scopes = history_rows(tenants, real, per_org, now, rng)
    save_history(tenants, real, rows, scopes, now, rng)
    rows_seconds = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner statistics autovacuum keeps on a live installation

    # Logins: the Owner or the Admin of organizations spread over the whole set.
    step = max(1, orgs // logins)
    chosen = [organizations[(n * step) % orgs] for n in range(logins)]
    credentials = [
        {"email": users[o.pk]["owner" if n % 2 == 0 else "admin"].email, "password": password, "organization": o.slug}
        for n, o in enumerate(chosen)
    ]
    counts = {s: Backup.objects.filter(status=s).count() for s in Backup.Status.values}
    summary = {
        "organizations": Organization.objects.count(),
        "users": User.objects.count(),
        "ous": OrganisationalUnit.objects.count(),
        "backups": Backup.objects.count(),
        "statuses": counts,
        "events": BackupEvent.objects.count(),
        "downloads": BackupDownload.objects.count(),
        "stored_files": Backup.objects.exclude(file="").count(),
        "archive_bytes": real[organizations[0].pk].size,
        "seconds": {
            "tenants": round(seeded_tenants, 1),
            "real_archives": round(archives_seconds, 1),
            "backup_rows": round(rows_seconds, 1),
        },
        "queries": count_queries(credentials[0]["email"], credentials[1]["email"]),
    }
    assert default_storage.exists(real[organizations[0].pk].file.name)  # noqa: S101
    out.write_text(json.dumps({"logins": credentials, "summary": summary}, indent=2))


def count_queries(*emails: str) -> dict[str, int]:
    """SQL queries per page for an Owner and an Admin (the most either needs), through the test client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    worst: dict[str, int] = {}
    for email in emails:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(email=email))
        first = client.get("/backups/", secure=True).content.decode()
        pk = re.findall(r'href="/backups/(\d+)/download/"', first)[0]
        pages = {
            "list": "/backups/",
            "list page 3": "/backups/?page=3",
            "list filtered": "/backups/?status=completed&kind=manual&sort=-size",
            "detail": f"/backups/{pk}/",
            "download": f"/backups/{pk}/download/",
        }
        for label, path in pages.items():
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(path, secure=True)
                if response.streaming:
                    b"".join(response.streaming_content)  # type: ignore[arg-type]
            if response.status_code != 200:
                raise RuntimeError(f"{path} as {email}: HTTP {response.status_code}")
            worst[label] = max(worst.get(label, 0), len(ctx.captured_queries))
    return worst
