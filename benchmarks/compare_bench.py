"""Compare benchmark: a seeded tenant's backup against now, in a worker process of its own.

Usage::

    python benchmarks/compare_bench.py --gigabytes 1 --documents 10000 [--scale 4] [--results]

For each size it builds a throwaway installation (SQLite + local files), seeds ``acme`` with
``seed_demo``, takes a full backup (``backup create`` + ``backup process``), then changes the
tenant (about 1 % of the documents' titles changed, 1 % of the documents removed with their
versions, 100 documents added) and runs the comparison with now the way the worker does
(``comparison_claim`` + ``comparison_run``, which keeps the result) in a process of its own,
measuring wall time and peak RSS. The compare reads rows only (versions carry their SHA-256),
never the document files. With ``--scale 4`` it repeats this for a tenant four times larger to
compare peak RSS. Prints a markdown block and, with ``--results``, appends it to RESULTS.md.

Seeding dominates (minutes per GiB): ``--keep`` leaves the seeded, backed-up and changed tenants
under ``--workdir`` and a later run with the same sizes measures them again; ``--prepare-only``
just makes them (e.g. one process per size, side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import cpu_pressure, machine  # noqa: E402
from benchmarks._common import manage as _manage  # noqa: E402
from benchmarks._tenant import measured  # noqa: E402
from benchmarks._tenant import seed as seed_tenant  # noqa: E402

MUTATE = """
import datetime as dt, hashlib, json
from organizations import models as om
org = om.Organization.objects.get(slug="acme")
docs = om.ControlledDocument.objects.filter(organization=org).order_by("pk")
n = docs.count()
step = 100
changed = list(docs.values_list("pk", flat=True)[::step])
om.ControlledDocument.objects.filter(pk__in=changed).update(title="Changed for the compare benchmark")
removed = list(docs.exclude(pk__in=changed).values_list("pk", flat=True)[1::step])
om.ControlledDocument.objects.filter(pk__in=removed).delete()
ou = om.OrganisationalUnit.objects.filter(organization=org).first()
for i in range(100):
    d = om.ControlledDocument.objects.create(organization=org, ou=ou, reference=f"BENCH-{i}", title="Added", status="active")
    om.DocumentVersion.objects.create(document=d, number=1, filename="a.txt", size=1, sha256=hashlib.sha256(b"a").hexdigest(), file="none")
print(json.dumps({"documents": n, "changed": len(changed), "removed": len(removed), "added": 100}))
"""

RUN = """
import json, time
from backups.models import Backup
from backups.compare import services
backup = Backup.objects.get(pk={backup_id})
c = services.comparison_request(backup=backup, requested_by=None)
t0, c0 = time.perf_counter(), time.process_time()
done = services.comparison_run(comparison=services.comparison_claim(comparison_id=c.pk))
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
assert done.status == "completed", done.failure_reason
print(json.dumps({{"compare_s": elapsed, "compare_cpu_s": cpu, "rows": done.progress_done, "entries": done.entries.count(), "totals": done.totals()}}))
"""


def run_size(work: Path, gigabytes: float, documents: int, *, measure: bool = True) -> dict[str, Any]:
    """Seed (or reuse) the tenant, back it up and change it once (kept in ``prepared.json``), then
    measure one comparison with now in a worker process of its own."""
    env = seed_tenant(work, gigabytes, documents)
    prepared = work / "prepared.json"
    if not prepared.exists():
        backup_id = _manage(
            env, "backup", "create", "--org", "acme", "--include-inactive", "--password-out", str(work / "pw")
        ).strip()
        _manage(env, "backup", "process")
        size = int(
            _manage(
                env, "shell", "-c", f"from backups.models import Backup as B;print(B.objects.get(pk={backup_id}).size)"
            )
            .strip()
            .splitlines()[-1]
        )
        mutation = json.loads(_manage(env, "shell", "-c", MUTATE).strip().splitlines()[-1])
        prepared.write_text(json.dumps({"backup_id": int(backup_id), "size": size, "mutation": mutation}))
    state = json.loads(prepared.read_text())
    if not measure:
        return state
    pressure, load = cpu_pressure(), os.getloadavg()[0]
    worker, stdout = measured(env, "shell", "-c", RUN.format(backup_id=state["backup_id"]))
    info = json.loads(stdout.strip().splitlines()[-1])
    return {
        "gigabytes": gigabytes,
        "documents": state["mutation"]["documents"],
        "archive_mb": state["size"] / 1e6,
        "mutation": state["mutation"],
        "rows": info["rows"],
        "entries": info["entries"],
        "totals": info["totals"],
        "compare_s": info["compare_s"],
        "compare_cpu_s": info["compare_cpu_s"],
        "cpu_pressure": pressure,
        "load": load,
        "process_s": worker["seconds"],
        "worker_rss_mb": worker["peak_rss_mb"],
    }


def report(rows: list[dict[str, Any]], command: str) -> str:
    base = rows[0]
    lines = [
        "## Compare: a backup against now, in a worker process",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        "| tenant | documents | archive MB | rows read (both sides) | records kept | compare s (wall) | compare CPU s | "
        "CPU pressure before (PSI avg10 %) | load average (1 min) | process s (start-up included) | "
        "worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gigabytes']:g} GiB | {r['documents']} | {r['archive_mb']:.0f} | {r['rows']} | {r['entries']} | "
            f"{r['compare_s']:.1f} | {r['compare_cpu_s']:.1f} | {r['cpu_pressure']:.0f} | {r['load']:.1f} | {r['process_s']:.1f} | "
            f"{r['worker_rss_mb']:.0f} |"
        )
    lines += [
        "",
        f"- changes made after the backup ({base['gigabytes']:g} GiB): {json.dumps(base['mutation'])}; "
        f"reported: {json.dumps(base['totals'])}",
        f"- compare of the {base['gigabytes']:g} GiB tenant: **{base['compare_s']:.1f} s** (target < 10 s), "
        f"worker peak RSS **{base['worker_rss_mb']:.0f} MB** (target < 150 MB)",
    ]
    if len(rows) > 1:
        big = rows[-1]
        lines.append(
            f"- at {big['gigabytes']:g} GiB: {big['compare_s']:.1f} s, peak RSS {big['worker_rss_mb']:.0f} MB "
            f"(**{100 * (big['worker_rss_mb'] / base['worker_rss_mb'] - 1):+.1f} %** vs {base['gigabytes']:g} GiB; "
            "target within ±10 %)"
        )
    lines.append(
        "- the worker process is `manage.py shell` running `comparison_claim` + `comparison_run` (what the Celery "
        "task runs), so its RSS includes Django and the app; it reads the archive's row members only, not files"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--scale", type=int, default=4, help="also compare a tenant this many times larger (0: skip)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/backupsvc-compare-bench"))
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    parser.add_argument(
        "--keep", action="store_true", help="keep the seeded tenants (a later run with --keep measures them again)"
    )
    parser.add_argument("--prepare-only", action="store_true", help="seed, back up and change the tenants; no compare")
    args = parser.parse_args()
    sizes = [("base", args.gigabytes, args.documents)]
    if args.scale:
        sizes.append(("big", args.gigabytes * args.scale, args.documents * args.scale))
    rows = []
    for folder, gigabytes, documents in sizes:
        rows.append(run_size(args.workdir / folder, gigabytes, documents, measure=not args.prepare_only))
        print(json.dumps(rows[-1]), flush=True)
        if not args.keep:
            shutil.rmtree(args.workdir / folder, ignore_errors=True)
    if args.prepare_only:
        return
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
