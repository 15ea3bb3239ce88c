"""Restore benchmark: a large seeded tenant restored in place and into a new organization.

Usage::

    python benchmarks/restore_bench.py --gigabytes 1 --documents 10000 [--workdir DIR]

Builds a throwaway installation (SQLite + local files under the workdir, through
``BACKUPSVC_VAR_DIR``/``DATABASE_URL``/``MEDIA_ROOT``), seeds the ``acme`` tenant with
``seed_demo``, backs it up with ``manage.py backup create/process``, then in fresh processes
(so each peak RSS is its own):

* **in place**: a confirmed restore of that backup over ``acme``, run by the worker code
  (``restore_claim`` + ``restore_run``): archive verification, the pre-restore backup,
  and the one transaction that deletes the tenant's rows and imports the backup's;
* **new organization**: the wizard's restore of the same backup into a new organization.

It prints a markdown block: sizes, time per phase, throughput (corpus bytes per second)
and peak RSS, and checks the restored row counts against the backup's manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import manage  # noqa: E402
from benchmarks._tenant import (  # noqa: E402
    backup_create,
    backup_info,
    child,
    django_setup,
    fresh,
    seed_demo,
    stage_marks,
    tenant_files,
)


def _child(env: dict[str, str], *args: str) -> dict[str, Any]:
    return child(Path(__file__).resolve(), env, *args)


# ----------------------------------------------------------------------------------------------
# Child processes: one restore each, timed by phase


def _child_main(kind: str, backup_id: int) -> None:
    django_setup()
    from django.conf import settings

    from accounts.models import Membership
    from backups.models import Backup
    from organizations.models import Organization
    from restores import engine, services
    from restores.models import Restore

    settings.RESTORE_DISPATCH_IMMEDIATELY = False
    marks = stage_marks()
    backup = Backup.objects.get(pk=backup_id)
    owner = Membership.objects.get(organization=backup.organization, role="owner").user
    if kind == "in_place":
        restore = Restore.objects.create(
            kind=Restore.Kind.IN_PLACE,
            organization=backup.organization,
            backup=backup,
            requested_by=owner,
            status=Restore.Status.QUEUED,
        )
    else:
        restore = Restore.objects.create(
            kind=Restore.Kind.NEW_ORGANIZATION,
            backup=backup,
            requested_by=owner,
            status=Restore.Status.QUEUED,
            options=engine.NewOrganization(name="Bench copy", slug="bench-copy", owner_email=owner.email).__dict__,
        )
    start = time.perf_counter()
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None  # noqa: S101
    done = services.restore_run(restore=claimed)
    total = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {
        "status": done.status,
        "reason": done.failure_reason,
        "total_s": total,
        "peak_rss_mb": rss_mb,
    }
    out["verify_s"] = marks.get("verify_s", 0.0)
    if kind == "in_place":
        pre = done.pre_restore_backup
        out["pre_restore_s"] = (pre.completed_at - pre.started_at).total_seconds() if pre else 0.0
        # Scope-exact: the plan (read-only: keys, scope, unique values), then the writes
        # (updates, re-creations, deletions last).
        out["delete_s"] = marks.get("planned", start) - marks.get("begin", start)
        out["import_s"] = marks.get("imported", start) - marks.get("planned", start)
        out["commit_s"] = (start + total) - marks.get("finalize", start + total)
    else:
        out["import_s"] = marks.get("imported", start) - marks.get("after_create", start)
    # Restored rows against the manifest's counts (memberships depend on users present).
    target = done.organization or Organization.objects.get(slug="bench-copy")
    expected = backup.row_counts
    got = {key: dict(done.row_counts.get(key, {})) for key in expected}
    mismatches = {
        f"{k}.{m}": (got.get(k, {}).get(m), n)
        for k, per in expected.items()
        for m, n in per.items()
        if m not in ("membership", "profile")
        and not (kind != "in_place" and k == "profile")
        and got.get(k, {}).get(m) != n
    }
    out["rows"] = sum(sum(per.values()) for per in done.row_counts.values())
    out["files"] = done.files_restored
    out["mismatches"] = mismatches
    out["organization"] = target.slug
    print("MEASURE " + json.dumps(out, default=str), file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# The driver


def run(work: Path, gigabytes: float, documents: int) -> dict[str, Any]:
    env = fresh(work)
    seed_s = seed_demo(env, gigabytes, documents)
    versions, corpus, _ = tenant_files(env)
    backup_id = backup_create(env, work / "pw")
    t0 = time.perf_counter()
    manage(env, "backup", "process")
    backup_s = time.perf_counter() - t0
    size = backup_info(env, backup_id)["size"]
    in_place = _child(env, "in_place", str(backup_id))
    new_org = _child(env, "new_organization", str(backup_id))
    return {
        "gigabytes": gigabytes,
        "documents": documents,
        "versions": versions,
        "corpus_mb": corpus / 1e6,
        "archive_mb": (size or 0) / 1e6,
        "seed_s": seed_s,
        "backup_s": backup_s,
        "in_place": in_place,
        "new_organization": new_org,
    }


def report(r: dict[str, Any]) -> str:
    ip, no = r["in_place"], r["new_organization"]
    corpus = r["corpus_mb"]
    lines = [
        f"### Restore benchmark ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, SQLite)",
        "",
        f"Tenant: {r['versions']} document versions, {corpus:,.0f} MB of files; archive {r['archive_mb']:,.0f} MB "
        f"(seeded in {r['seed_s']:.0f} s, backed up in {r['backup_s']:.1f} s).",
        "",
        "| restore | status | total s | verify s | pre-restore backup s | plan s | write s | rows | files "
        "| MB/s (total) | MB/s (import) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| in place | {ip['status']} | {ip['total_s']:.1f} | {ip['verify_s']:.1f} | {ip['pre_restore_s']:.1f} | "
        f"{ip['delete_s']:.1f} | {ip['import_s']:.1f} | {ip['rows']} | {ip['files']} | {corpus / ip['total_s']:.0f} | "
        f"{corpus / max(ip['import_s'], 1e-9):.0f} | {ip['peak_rss_mb']:.0f} |",
        f"| new organization | {no['status']} | {no['total_s']:.1f} | {no['verify_s']:.1f} | — | — | {no['import_s']:.1f} | "
        f"{no['rows']} | {no['files']} | {corpus / no['total_s']:.0f} | {corpus / max(no['import_s'], 1e-9):.0f} | "
        f"{no['peak_rss_mb']:.0f} |",
    ]
    for name, res in (("in place", ip), ("new organization", no)):
        if res["mismatches"]:
            lines.append(f"\nRow count mismatches ({name}): {res['mismatches']}")
        if res["status"] != "completed":
            lines.append(f"\n{name} failed: {res['reason']}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/restore-bench"))
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    args = parser.parse_args()
    result = run(args.workdir, args.gigabytes, args.documents)
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
