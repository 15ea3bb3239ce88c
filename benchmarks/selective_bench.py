"""Selective restore and browse benchmark on a large tenant.

Usage::

    python benchmarks/selective_bench.py --gigabytes 1 --documents 10000 [--big-mib 1024] [--workdir DIR]

Builds a throwaway installation (SQLite + local files), seeds ``acme`` with ``seed_demo``,
adds a client with 50 matters and 200 time entries and one document version of ``--big-mib``
MiB (random bytes: stored, not deflated), backs the tenant up, deletes that client with its
matters and time entries, then in fresh processes (each peak RSS its own):

* **download**: a browse download of the big version's file out of the archive (decrypted,
  verified while streaming), through Django's test client; bytes and SHA-256 checked, peak
  RSS (VmHWM) before and after;
* **browse**: the document versions' page with a search (one scan of the largest data member);
* **selective**: the confirmed selective restore of that client with its dependants, run by
  the worker code (``restore_claim`` + ``restore_run``): the pre-restore backup of the affected
  data sets, then the one transaction (plan, lock, write), timed apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, manage  # noqa: E402
from benchmarks._tenant import backup_create, backup_info, child, django_setup, fresh, seed_demo, stage_marks  # noqa: E402

SETUP = """
import datetime as dt, hashlib, os
from decimal import Decimal
from django.core.files.base import File
from organizations import models as om
org = om.Organization.objects.get(slug="acme")
ou = om.OrganisationalUnit.objects.filter(organization=org).first()
client = om.Client.objects.create(organization=org, ou=ou, name="Bench Client Ltd")
for m in range(50):
    matter = om.Matter.objects.create(organization=org, ou=ou, client=client, reference=f"BENCH-{m}",
                                      title=f"Bench matter {m}", opened_on=dt.date(2026, 1, 1))
    om.TimeEntry.objects.bulk_create([om.TimeEntry(organization=org, matter=matter, user_email="x@acme.test",
                                      worked_on=dt.date(2026, 2, 1), minutes=30 + e, description=f"Work {e}")
                                      for e in range(4)])
doc = om.ControlledDocument.objects.create(organization=org, ou=ou, reference="BIG-1", title="Big file")
path = os.environ["BIG_FILE"]
digest = hashlib.sha256()
with open(path, "rb") as fh:
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
size = os.path.getsize(path)
v = om.DocumentVersion(document=doc, number=1, filename="big scan ü.bin", content_type="application/octet-stream",
                       size=size, sha256=digest.hexdigest())
with open(path, "rb") as fh:
    v.file.save("big.bin", File(fh), save=False)
v.save()
print(client.pk, v.pk, digest.hexdigest(), size)
"""

DELETE = """
from organizations import models as om
client = om.Client.objects.get(organization__slug="acme", name="Bench Client Ltd")
om.TimeEntry.objects.filter(matter__client=client).delete()
om.Matter.objects.filter(client=client).delete()
client.delete()
print("ok")
"""


def _hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(env: dict[str, str], *args: str) -> dict[str, Any]:
    return child(Path(__file__).resolve(), env, *args)


def _child_main(kind: str, backup_id: int, *rest: str) -> None:
    django_setup()
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Membership
    from backups.models import Backup

    settings.ALLOWED_HOSTS = ["*"]
    backup = Backup.objects.get(pk=backup_id)
    owner = Membership.objects.get(organization=backup.organization, role="owner").user
    out: dict[str, Any] = {}
    if kind in ("download", "browse"):
        client = Client()
        client.force_login(owner)
        client.get(reverse("backups:browse", args=[backup.pk]))  # warm up (imports, templates)
        out["rss_before_mb"] = _hwm_mb()
        start = time.perf_counter()
        if kind == "download":
            response = client.get(reverse("backups:browse_file", args=[backup.pk, "document_version", int(rest[0])]))
            digest = hashlib.sha256()
            size = 0
            for chunk in response.streaming_content if response.streaming else [response.content]:
                digest.update(chunk)
                size += len(chunk)
            out.update(
                status=response.status_code,
                bytes=size,
                sha256_ok=digest.hexdigest() == rest[1],
                disposition=response["Content-Disposition"],
            )
        else:
            response = client.get(
                reverse("backups:browse_model", args=[backup.pk, "document_version"]), {"q": "v1", "page": "40"}
            )
            out.update(status=response.status_code, bytes=len(response.content))
        out["seconds"] = time.perf_counter() - start
        out["rss_after_mb"] = _hwm_mb()
    else:
        from restores import services
        from restores.models import Restore
        from restores.selective.services import selection_options

        settings.RESTORE_DISPATCH_IMMEDIATELY = False
        marks = stage_marks()
        options = selection_options(picks={"client": {int(rest[0])}}, with_dependants=True, overwrite=False)
        restore = Restore.objects.create(
            kind=Restore.Kind.SELECTIVE,
            organization=backup.organization,
            backup=backup,
            requested_by=owner,
            status=Restore.Status.QUEUED,
            options=options,
        )
        start = time.perf_counter()
        done = services.restore_run(restore=services.restore_claim(restore_id=restore.pk))
        total = time.perf_counter() - start
        pre = done.pre_restore_backup
        pre_s = (pre.completed_at - pre.started_at).total_seconds() if pre else 0.0
        out.update(
            status=done.status,
            reason=done.failure_reason,
            total_s=total,
            pre_restore_s=pre_s,
            pre_restore_datasets=pre.datasets if pre else [],
            transaction_s=(start + total) - marks.get("planned", start + total),
            totals=(done.row_counts or {}).get("selective"),
            peak_rss_mb=_hwm_mb(),
        )
        out["after_pre_restore_s"] = total - pre_s
    print("MEASURE " + json.dumps(out, default=str), file=sys.stderr)


def run(work: Path, gigabytes: float, documents: int, big_mib: int) -> dict[str, Any]:
    env = fresh(work)
    big = work / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(big_mib):
            fh.write(os.urandom(1 << 20))
    env["BIG_FILE"] = str(big)
    seed_s = seed_demo(env, gigabytes, documents)
    client_pk, version_pk, sha, size = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1].split()
    big.unlink()
    backup_id = backup_create(env, work / "pw")
    t0 = time.perf_counter()
    manage(env, "backup", "process")
    backup_s = time.perf_counter() - t0
    archive = backup_info(env, backup_id)["size"]
    manage(env, "shell", "-c", DELETE)
    return {
        "machine": machine(),
        "gigabytes": gigabytes,
        "documents": documents,
        "big_bytes": int(size),
        "archive_mb": archive / 1e6,
        "seed_s": seed_s,
        "backup_s": backup_s,
        "download": _child(env, "download", str(backup_id), version_pk, sha),
        "browse": _child(env, "browse", str(backup_id)),
        "selective": _child(env, "selective", str(backup_id), client_pk),
    }


def report(r: dict[str, Any]) -> str:
    d, b, s = r["download"], r["browse"], r["selective"]
    return "\n".join(
        [
            f"- machine: {r['machine']}",
            f"- tenant: seed_demo --gigabytes {r['gigabytes']} --documents {r['documents']} plus one "
            f"{r['big_bytes'] / 2**20:.0f} MiB version and a client with 50 matters and 200 time entries; archive "
            f"{r['archive_mb']:,.0f} MB (seeded in {r['seed_s']:.0f} s, backed up in {r['backup_s']:.0f} s)",
            "",
            "| step | result | time | peak RSS before | peak RSS after |",
            "|---|---|---|---|---|",
            f"| download of the {d['bytes'] / 2**20:.0f} MiB member from inside the backup | HTTP {d['status']}, "
            f"SHA-256 {'matches' if d['sha256_ok'] else 'DIFFERS'} | {d['seconds']:.1f} s "
            f"({d['bytes'] / 2**20 / d['seconds']:.0f} MiB/s) | {d['rss_before_mb']:.1f} MiB | {d['rss_after_mb']:.1f} MiB |",
            f"| browse: document versions, search “v1”, page 40 | HTTP {b['status']} | {b['seconds']:.2f} s | "
            f"{b['rss_before_mb']:.1f} MiB | {b['rss_after_mb']:.1f} MiB |",
            f"| selective restore of the client with dependants | {s['status']} {s['totals']} | total "
            f"{s['total_s']:.2f} s: pre-restore backup {s['pre_restore_s']:.2f} s, after it {s['after_pre_restore_s']:.2f} s "
            f"| | {s['peak_rss_mb']:.1f} MiB |",
            "",
            f"- download `Content-Disposition`: `{d['disposition']}`",
            f"- pre-restore backup's data sets: {', '.join(s['pre_restore_datasets'])}",
        ]
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/selective-bench"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    result = run(args.workdir, args.gigabytes, args.documents, args.big_mib)
    print(report(result))
    print(
        "\n<details><summary>raw</summary>\n\n```json\n"
        + json.dumps(result, indent=2, default=str)
        + "\n```\n</details>"
    )
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
