"""Cost of a backup on the real stack, for the capacity model (docs/capacity.md).

Usage::

    python benchmarks/capacity_bench.py [--workers 1 2 4] [--gigabytes 0.5] [--documents 1500] [--results]

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), ``redis-server`` and moto (as the
end-to-end suite does). It starts Redis and moto's S3 server over HTTP (tests/support/stack.py),
migrates a throwaway database ``bsvc_engine_cap``, seeds the ``acme`` tenant into S3 with
``seed_demo`` and clones its documents (rows only: the clones point at the same stored files)
into organizations of three shapes: *files* (acme's larger half: few documents, many bytes),
*rows* (the small documents of ``brightside`` ten times over: many documents, few bytes) and
*empty* (a handful of small documents). For 1, 2 and 4 Celery worker
processes it requests one backup of every organization at once (dispatched at request, as the
nightly schedules are), waits for all, and reads each backup's start and end from the database.

Fixed cost, seconds per GiB and seconds per 1,000 documents are a least-squares fit of the
single-worker durations; the multi-worker rounds give the makespan on this machine's 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsvc.settings")

from benchmarks._common import cpu_pressure, machine  # noqa: E402

PY = sys.executable
DB = "bsvc_engine_cap"
SHAPES = {"files": 4, "rows": 4, "empty": 4}  # organizations of each shape

CLONE = """
import json
from django.db import transaction
from django.db.models import Sum
import datetime as dt
from organizations.models import ControlledDocument as D, DocumentVersion as V, Organization, OrganisationalUnit
from organizations.models import Subscription
src = Organization.objects.get(slug="acme")
def by_size(slug):
    org = Organization.objects.get(slug=slug)
    return list(D.objects.filter(organization=org).annotate(total=Sum("versions__size")).order_by("-total", "pk"))
big, small = by_size("acme"), by_size("brightside")
shapes = json.loads('SHAPES')
# files: acme's larger half (large files); rows: brightside's small documents ten times over.
picked = {"files": big[: len(big) // 2], "rows": small * 10, "empty": small[:5]}
out = []
for shape, count in shapes.items():
    for i in range(count):
        with transaction.atomic():
            org = Organization.objects.create(slug=f"cap-{shape}-{i}", name=f"Capacity {shape} {i}",
                                              master_data_version=src.master_data_version)
            ou = OrganisationalUnit.objects.create(organization=org, name="Main", code="MAIN")
            today = dt.date.today()
            Subscription.objects.create(organization=org, starts_on=today - dt.timedelta(days=1),
                                        ends_on=today + dt.timedelta(days=365))
            versions = []
            for n, d in enumerate(picked[shape]):
                clone = D.objects.create(organization=org, ou=ou, reference=f"{d.reference}-{n}", title=d.title,
                                         status=d.status)
                versions += [V(document=clone, number=v.number, file=v.file.name, filename=v.filename,
                               content_type=v.content_type, size=v.size, sha256=v.sha256) for v in d.versions.all()]
            V.objects.bulk_create(versions)
        out.append([org.slug, len(picked[shape]), len(versions), sum(v.size for v in versions)])
print(json.dumps(out))
"""

REQUEST = """
from backups import services
from organizations.models import Organization
for org in Organization.objects.filter(slug__startswith="cap-").order_by("pk"):
    services.backup_request(organization=org, requested_by=None, include_inactive=True)
"""

RESULTS = """
import json
from backups.models import Backup
rows = Backup.objects.filter(organization__slug__startswith="cap-").values_list(
    "organization__slug", "status", "started_at", "completed_at", "size", "failure_reason")
print(json.dumps([[s, st, a.timestamp() if a else None, c.timestamp() if c else None, z, r] for s, st, a, c, z, r in rows]))
"""

CLEAR = """
from backups.models import Backup
Backup.objects.filter(organization__slug__startswith="cap-").delete()
"""


def shell(env: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise SystemExit(f"manage.py shell failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def fit(points: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Least squares of seconds = a + b * GiB + c * thousands of documents (normal equations)."""
    xs = [(1.0, g, k) for _, g, k in points]
    ys = [s for s, _, _ in points]
    m = [[sum(x[i] * x[j] for x in xs) for j in range(3)] for i in range(3)]
    v = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(3)]
    for col in range(3):  # Gauss-Jordan
        pivot = max(range(col, 3), key=lambda r: abs(m[r][col]))
        m[col], m[pivot], v[col], v[pivot] = m[pivot], m[col], v[pivot], v[col]
        for r in range(3):
            if r != col and m[col][col]:
                f = m[r][col] / m[col][col]
                m[r] = [a - f * b for a, b in zip(m[r], m[col], strict=True)]
                v[r] -= f * v[col]
    return v[0] / m[0][0], v[1] / m[1][1], v[2] / m[2][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--gigabytes", type=float, default=0.5)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()

    import django

    base_url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    os.environ["DATABASE_URL"] = base_url
    django.setup()
    from tests.support.mail import smtp_server
    from tests.support.stack import Stack

    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="capacity-"))
    rounds: list[dict[str, object]] = []
    with smtp_server() as inbox:
        stack = Stack(tmp, base_url, inbox, tmp / "static")
        try:
            stack.start_redis()
            stack.start_s3()
            env = stack.env()
            subprocess.run(
                [PY, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True, capture_output=True
            )
            t0 = time.perf_counter()
            size = ["--gigabytes", str(args.gigabytes)]
            subprocess.run(
                [PY, "manage.py", "seed_demo", "--org", "acme", "--quiet", "--documents", str(args.documents), *size],
                cwd=ROOT,
                env=env,
                check=True,
            )
            orgs = json.loads(shell(env, CLONE.replace("SHAPES", json.dumps(SHAPES))))
            print(f"seeded and cloned in {time.perf_counter() - t0:.0f} s: {orgs}", file=sys.stderr)
            shape = {slug: (docs, versions, size) for slug, docs, versions, size in orgs}
            for n in args.workers:
                shell(env, CLEAR)
                workers = [stack.start_worker(f"w{i}", wait=False) for i in range(n)]
                for w in workers:
                    w.wait_ready()
                load, psi = os.getloadavg()[0], cpu_pressure()
                start = time.time()
                shell(env, REQUEST)
                while True:
                    rows = json.loads(shell(env, RESULTS))
                    if rows and all(r[1] in ("completed", "failed") for r in rows):
                        break
                    time.sleep(2)
                for i in range(n):
                    stack.stop(f"w{i}")
                failed = [r for r in rows if r[1] != "completed"]
                if failed:
                    raise SystemExit(f"backups failed: {failed}")
                runs = [
                    {"slug": s, "seconds": c - a, "queued_s": a - start, "size": z, "shape": shape[s]}
                    for s, _st, a, c, z, _r in rows
                ]
                makespan = max(r[3] for r in rows) - start
                rounds.append({"workers": n, "makespan": makespan, "runs": runs, "load": load, "psi": psi})
                print(f"{n} worker(s): {len(runs)} backups in {makespan:.1f} s (load {load:.1f})", file=sys.stderr)
        finally:
            stack.stop_all()
    text = report(rounds, orgs, " ".join(["python", *sys.argv]))
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


def report(rounds: list[dict[str, object]], orgs: list[list[object]], command: str) -> str:
    one = rounds[0]
    points = [
        (r["seconds"], r["shape"][2] / 1024**3, r["shape"][1] / 1000)  # type: ignore[index]
        for r in one["runs"]  # type: ignore[attr-defined]
    ]
    a, b, c = fit(points)
    lines = [
        "## Capacity: backups on the real stack (PostgreSQL, Redis workers, S3 over HTTP)",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}; PostgreSQL, Redis, moto's S3 server and the workers share its 2 cores",
        "- organizations (slug: documents, versions, MB): "
        + "; ".join(f"{s}: {d}, {v}, {z / 1e6:.1f}" for s, d, v, z in orgs),  # type: ignore[operator]
        "",
        "| workers | backups | makespan s | sum of backup durations s | mean backup s | load (1 min) / CPU pressure at start |",
        "|---|---|---|---|---|---|",
    ]
    for r in rounds:
        runs = r["runs"]  # type: ignore[assignment]
        total = sum(x["seconds"] for x in runs)  # type: ignore[attr-defined]
        lines.append(
            f"| {r['workers']} | {len(runs)} | {r['makespan']:.1f} | {total:.1f} | {total / len(runs):.1f} | "  # type: ignore[arg-type]
            f"{r['load']:.1f} / {r['psi']:.0f} % |"
        )
    lines += [
        "",
        f"- fit of the single-worker durations: **{a:.2f} s per backup + {b:.1f} s per GiB + {c:.2f} s per 1,000 "
        "document versions** (seconds = a + b·GiB + c·thousands of versions; wall time of one worker process "
        "from claim to completion, on a shared 2-core machine)",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
