"""Restore into a new organization vs ``7z x`` of the same archive (issue 13's last row).

Usage::

    python benchmarks/restore_peer_bench.py --gigabytes 1 --documents 10000 --rounds 3 --scale 4 [--results]

Builds a throwaway installation (SQLite + local files), seeds ``acme`` with ``seed_demo`` and
backs it up with ``manage.py backup create/process``, then runs ``--rounds`` interleaved rounds
(the order of the two sides alternates) of:

* **ours**: the wizard's restore of that backup into a new organization (each round its own
  slug), queued by ``restores.services.restore_new_organization`` as a Site Admin and run by
  the worker's code (``restore_claim`` + ``restore_run``: the rows imported in one
  transaction and the files stored, each member verified as it is read, then the members the
  import did not read) in a fresh process: its wall time for the job, its CPU seconds and its
  peak RSS (``ru_maxrss``);
* **7-Zip**: ``7z x -p<password>`` of the same archive into an empty temporary directory.

The machine's load (1-minute average, CPU pressure) is recorded before and after each side.
With ``--scale 4`` it does the same (``--scale-rounds`` rounds) for a tenant four times larger,
for the peak RSS. Prints a markdown block and, with ``--results``, appends it to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import machine  # noqa: E402
from benchmarks._tenant import child, django_setup, load, one_backup, seed, seven_zip, stage_marks, tenant_files, timed  # noqa: E402

OPERATOR = "operator@bench.test"


def _child_main(backup_id: int, slug: str) -> None:
    """One restore into a new organization, as a worker runs it; prints its figures."""
    django_setup()
    from django.conf import settings

    from accounts.models import User
    from backups.models import Backup
    from restores import engine, services

    settings.RESTORE_DISPATCH_IMMEDIATELY = False  # the job runs here, as in the worker
    operator = User.objects.filter(email=OPERATOR).first() or User.objects.create_user(
        OPERATOR, is_staff=True, is_site_admin=True
    )
    backup = Backup.objects.get(pk=backup_id)
    profile = engine.NewOrganization(name=f"Peer {slug}", slug=slug, owner_email=OPERATOR)
    restore = services.restore_new_organization(user=operator, profile=profile, backup=backup)
    marks = stage_marks()
    real_verify_rest = engine.ArchiveReader.verify_rest

    def verify_rest(self: Any) -> Any:
        begun = time.perf_counter()
        try:
            return real_verify_rest(self)
        finally:
            marks["verify_rest_s"] = marks.get("verify_rest_s", 0.0) + time.perf_counter() - begun

    engine.ArchiveReader.verify_rest = verify_rest  # type: ignore[method-assign]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu0, start = time.process_time(), time.perf_counter()
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None  # noqa: S101
    done = services.restore_run(restore=claimed)
    job_s, job_cpu = time.perf_counter() - start, time.process_time() - cpu0
    print(
        "MEASURE "
        + json.dumps(
            {
                "status": done.status,
                "reason": done.failure_reason,
                "job_s": job_s,
                "job_cpu_s": job_cpu,
                "process_cpu_s": time.process_time(),
                "rss_before_job_mb": rss_before,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "verify_s": marks.get("verify_s", 0.0),
                "import_s": marks.get("imported", start) - marks.get("after_create", start),
                "verify_rest_s": marks.get("verify_rest_s", 0.0),
                "files": done.files_restored,
                "rows": sum(sum(per.values()) for per in (done.row_counts or {}).values()),
            }
        ),
        file=sys.stderr,
    )


def _ours(env: dict[str, str], backup_id: int, slug: str) -> dict[str, Any]:
    r = child(Path(__file__).resolve(), env, str(backup_id), slug)
    if r["status"] != "completed":
        raise SystemExit(f"restore into {slug} {r['status']}: {r['reason']}")
    return r


def _peer(work: Path, archive: Path, password: str) -> dict[str, float]:
    dest = work / "7z-x"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    seconds, cpu = timed([seven_zip(), "x", f"-p{password}", f"-o{dest}", str(archive)], work)
    shutil.rmtree(dest, ignore_errors=True)
    return {"seconds": seconds, "cpu_s": cpu}


def run_size(work: Path, gigabytes: float, documents: int, rounds: int) -> dict[str, Any]:
    """Seed (or reuse) the tenant, back it up once, then the interleaved rounds."""
    env = seed(work, gigabytes, documents)
    versions, corpus_bytes, _ = tenant_files(env)
    shutil.rmtree(work / "media" / "backups", ignore_errors=True)
    backup, archive, pw_file = one_backup(work, env)
    password = pw_file.read_text().strip()
    per_round: list[dict[str, Any]] = []
    stamp = time.strftime("%H%M%S")
    for i in range(rounds):
        r: dict[str, Any] = {"order": "ours first" if i % 2 == 0 else "7-Zip first"}
        sides = ["ours", "7z"] if i % 2 == 0 else ["7z", "ours"]
        for side in sides:
            r[f"{side}_load_before"] = load()
            if side == "ours":
                r["ours"] = _ours(env, backup["backup_id"], f"peer-{stamp}-{i}")
            else:
                r["7z"] = _peer(work, archive, password)
            r[f"{side}_load_after"] = load()
        r["ratio_s"] = r["ours"]["job_s"] / r["7z"]["seconds"]
        r["ratio_cpu"] = r["ours"]["process_cpu_s"] / r["7z"]["cpu_s"]
        per_round.append(r)
        print(f"[restore-peer] {gigabytes:g} GiB round {i + 1}: {json.dumps(r)}", file=sys.stderr, flush=True)
    return {
        "gigabytes": gigabytes,
        "documents": documents,
        "versions": versions,
        "corpus_mb": corpus_bytes / 1e6,
        "archive_mb": backup["size"] / 1e6,
        "rounds": per_round,
        "ours_s": statistics.median(r["ours"]["job_s"] for r in per_round),
        "ours_cpu_s": statistics.median(r["ours"]["process_cpu_s"] for r in per_round),
        "7z_s": statistics.median(r["7z"]["seconds"] for r in per_round),
        "7z_cpu_s": statistics.median(r["7z"]["cpu_s"] for r in per_round),
        "ratio_s": statistics.median(r["ratio_s"] for r in per_round),
        "ratio_cpu": statistics.median(r["ratio_cpu"] for r in per_round),
        "peak_rss_mb": max(r["ours"]["peak_rss_mb"] for r in per_round),
        "verify_s": statistics.median(r["ours"]["verify_s"] for r in per_round),
        "import_s": statistics.median(r["ours"]["import_s"] for r in per_round),
        "verify_rest_s": statistics.median(r["ours"]["verify_rest_s"] for r in per_round),
    }


def _loads(r: dict[str, Any]) -> str:
    return "; ".join(
        f"round {i + 1} ({x['order']}): ours {x['ours_load_before'][0]:.1f}/{x['ours_load_before'][1]:.0f} % → "
        f"{x['ours_load_after'][0]:.1f}/{x['ours_load_after'][1]:.0f} %, 7-Zip {x['7z_load_before'][0]:.1f}/"
        f"{x['7z_load_before'][1]:.0f} % → {x['7z_load_after'][0]:.1f}/{x['7z_load_after'][1]:.0f} %"
        for i, x in enumerate(r["rounds"])
    )


def report(rows: list[dict[str, Any]], command: str) -> str:
    base = rows[0]
    lines = [
        "## Restore into a new organization vs `7z x` of the same archive",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}; SQLite, local files; the machine is shared with other sessions",
        "",
        "| tenant | versions | corpus MB | archive MB | rounds | ours s (job) | of which verify first / import / "
        "verify rest s | "
        "ours CPU s (process) | 7z x s | 7z x CPU s | time ratio ours / 7z | CPU ratio ours / 7z | "
        "peak RSS MB (max of rounds) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gigabytes']:g} GiB | {r['versions']} | {r['corpus_mb']:.0f} | {r['archive_mb']:.0f} | "
            f"{len(r['rounds'])} | {r['ours_s']:.1f} | {r['verify_s']:.1f} / {r['import_s']:.1f} / "
            f"{r['verify_rest_s']:.1f} | {r['ours_cpu_s']:.1f} | {r['7z_s']:.1f} | {r['7z_cpu_s']:.1f} | "
            f"{r['ratio_s']:.2f}× | {r['ratio_cpu']:.2f}× | {r['peak_rss_mb']:.0f} |"
        )
    per = ", ".join(f"{x['ratio_s']:.2f}×" for x in base["rounds"])
    per_cpu = ", ".join(f"{x['ratio_cpu']:.2f}×" for x in base["rounds"])
    rss = ", ".join(f"{x['ours']['peak_rss_mb']:.0f}" for x in base["rounds"])
    lines += [
        "",
        f"- time, ours / 7-Zip (medians of {len(base['rounds'])} interleaved rounds, {base['gigabytes']:g} GiB): "
        f"**{base['ratio_s']:.2f}×** (rounds {per}; target ≤ 1.5×)",
        f"- CPU seconds, ours (the whole worker process, Django's start-up included) / 7-Zip: "
        f"**{base['ratio_cpu']:.2f}×** (rounds {per_cpu})",
        f"- worker peak RSS at {base['gigabytes']:g} GiB: **{base['peak_rss_mb']:.0f} MB** (rounds {rss}; target < 150 MB)",
    ]
    for big in rows[1:]:
        lines.append(
            f"- peak RSS at {big['gigabytes']:g} GiB: **{big['peak_rss_mb']:.0f} MB** "
            f"({100 * (big['peak_rss_mb'] / base['peak_rss_mb'] - 1):+.1f} % vs {base['gigabytes']:g} GiB; target flat, "
            "and < 150 MB)"
        )
    for r in rows:
        lines.append(
            f"- load (1-minute average / CPU pressure PSI avg10, before → after), {r['gigabytes']:g} GiB: {_loads(r)}"
        )
    lines.append(
        "- ours: the job's wall time from claim to completion (the import, the files stored, every hash verified: "
        "a member as the import reads it, the members it did not read after it, the 'verify rest' column; 'verify "
        "first' is a verification of the whole archive before the import, which the restore no longer does); "
        "7-Zip: `7z x -p… -o<tmp>` of the same archive (decrypt, inflate, CRC, write)"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="*", default=[4], help="also tenants this many times larger")
    parser.add_argument("--scale-rounds", type=int, default=1, help="rounds for the larger tenants")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/backupsvc-restore-peer"))
    parser.add_argument("--keep", action="store_true", help="keep the seeded tenants (reused if the sizes match)")
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [run_size(args.workdir / "base", args.gigabytes, args.documents, args.rounds)]
    for scale in args.scale:
        work = args.workdir / f"x{scale}"
        rows.append(run_size(work, args.gigabytes * scale, args.documents * scale, args.scale_rounds))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(args.workdir / "base", ignore_errors=True)
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    print("<details><summary>raw</summary>\n\n```json\n" + json.dumps(rows, indent=1) + "\n```\n</details>")
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
