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
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import cpu_pressure, machine  # noqa: E402
from benchmarks._common import manage as _manage  # noqa: E402
from benchmarks._common import throwaway_env as _env  # noqa: E402

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


def _measured(env: dict[str, str], *args: str) -> tuple[dict[str, float], str]:
    result = subprocess.run(
        [PY, str(ROOT / "benchmarks" / "_measure.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in result.stderr.splitlines() if ln.startswith("MEASURE ")), None)
    if result.returncode or line is None:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(line[len("MEASURE ") :]), result.stdout


def run_size(work: Path, gigabytes: float, documents: int) -> dict[str, float]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = _env(work)
    _manage(env, "migrate", "--no-input")
    _manage(env, "seed_demo", "--org", "acme", "--documents", str(documents), "--gigabytes", str(gigabytes), "--quiet")
    backup_id = _manage(
        env, "backup", "create", "--org", "acme", "--include-inactive", "--password-out", str(work / "pw")
    ).strip()
    _manage(env, "backup", "process")
    size = int(
        _manage(env, "shell", "-c", f"from backups.models import Backup as B;print(B.objects.get(pk={backup_id}).size)")
        .strip()
        .splitlines()[-1]
    )
    mutation = json.loads(_manage(env, "shell", "-c", MUTATE).strip().splitlines()[-1])
    pressure = cpu_pressure()
    worker, stdout = _measured(env, "shell", "-c", RUN.format(backup_id=backup_id))
    info = json.loads(stdout.strip().splitlines()[-1])
    return {
        "gigabytes": gigabytes,
        "documents": mutation["documents"],
        "archive_mb": size / 1e6,
        "mutation": mutation,
        "rows": info["rows"],
        "entries": info["entries"],
        "totals": info["totals"],
        "compare_s": info["compare_s"],
        "compare_cpu_s": info["compare_cpu_s"],
        "cpu_pressure": pressure,
        "process_s": worker["seconds"],
        "worker_rss_mb": worker["peak_rss_mb"],
    }


def report(rows: list[dict], command: str) -> str:  # type: ignore[type-arg]
    base = rows[0]
    lines = [
        "## Compare: a backup against now, in a worker process",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        "| tenant | documents | archive MB | rows read (both sides) | records kept | compare s (wall) | compare CPU s | "
        "CPU pressure before (PSI avg10 %) | process s (start-up included) | worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gigabytes']:g} GiB | {r['documents']} | {r['archive_mb']:.0f} | {r['rows']} | {r['entries']} | "
            f"{r['compare_s']:.1f} | {r['compare_cpu_s']:.1f} | {r['cpu_pressure']:.0f} | {r['process_s']:.1f} | "
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
    args = parser.parse_args()
    rows = [run_size(args.workdir / "base", args.gigabytes, args.documents)]
    print(json.dumps(rows[0]), flush=True)
    shutil.rmtree(args.workdir / "base", ignore_errors=True)
    if args.scale:
        rows.append(run_size(args.workdir / "big", args.gigabytes * args.scale, args.documents * args.scale))
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(args.workdir / "big", ignore_errors=True)
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
