"""End-to-end backup benchmark: a seeded tenant, a backup through the service in a worker
process, and 7-Zip on the same files as the peer.

Usage::

    python benchmarks/engine_bench.py --gigabytes 1 --documents 10000 [--scale 4] [--workdir DIR]

For each size it builds a throwaway installation (SQLite + local files under the workdir),
seeds the ``acme`` tenant with ``seed_demo`` (about 60 % incompressible content), queues a
backup with ``manage.py backup create`` and runs it with ``manage.py backup process`` in its
own process (the worker), measuring wall time and peak RSS. On the same document files it runs
``7z a -tzip -mem=AES256 -mx=1 -mmt=2``, then compares extraction: ``manage.py backup
decrypt`` (our reader, every hash verified) against ``7z x``. With ``--scale 4`` it repeats the
backup for a tenant four times larger to compare peak RSS. Prints a markdown block and, with
``--results``, appends it to benchmarks/RESULTS.md.
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

from benchmarks._common import machine  # noqa: E402
from benchmarks._common import manage as _manage  # noqa: E402
from benchmarks._common import throwaway_env as _env  # noqa: E402


def _measured(env: dict[str, str], *args: str) -> dict[str, float]:
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
    return json.loads(line[len("MEASURE ") :])


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _tenant_files(env: dict[str, str]) -> tuple[int, int, list[str]]:
    code = (
        "from organizations.models import DocumentVersion as V;"
        "qs=V.objects.filter(document__organization__slug='acme');"
        "import json;print(json.dumps([qs.count(), sum(qs.values_list('size', flat=True)), list(qs.values_list('file', flat=True))]))"
    )
    count, total, names = json.loads(_manage(env, "shell", "-c", code).strip().splitlines()[-1])
    return count, total, names


def run_size(work: Path, gigabytes: float, documents: int, *, peer: bool) -> dict[str, float]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = _env(work)
    _manage(env, "migrate", "--no-input")
    t0 = time.perf_counter()
    _manage(env, "seed_demo", "--org", "acme", "--documents", str(documents), "--gigabytes", str(gigabytes), "--quiet")
    seed_s = time.perf_counter() - t0
    versions, corpus_bytes, names = _tenant_files(env)
    pw_file = work / "password"
    backup_id = _manage(
        env, "backup", "create", "--org", "acme", "--include-inactive", "--password-out", str(pw_file)
    ).strip()
    worker = _measured(env, "backup", "process")
    info = json.loads(
        _manage(
            env,
            "shell",
            "-c",
            f"from backups.models import Backup as B;import json;b=B.objects.get(pk={backup_id});"
            "print(json.dumps([b.status,b.size,b.file.name,b.document_count,b.failure_reason]))",
        )
        .strip()
        .splitlines()[-1]
    )
    status, size, name, doc_count, reason = info
    if status != "completed":
        raise SystemExit(f"backup {backup_id} {status}: {reason}")
    archive = work / "media" / name
    out: dict[str, float] = {
        "gigabytes": gigabytes,
        "documents": doc_count,
        "versions": versions,
        "corpus_mb": corpus_bytes / 1e6,
        "seed_s": seed_s,
        "ours_s": worker["seconds"],
        "ours_mbs": corpus_bytes / 1e6 / worker["seconds"],
        "ours_size_mb": size / 1e6,
        "worker_rss_mb": worker["peak_rss_mb"],
    }
    if peer:
        password = pw_file.read_text().strip()
        listing = work / "files.txt"
        listing.write_text("\n".join(names) + "\n")
        seven = shutil.which("7z") or shutil.which("7zz") or shutil.which("7za")
        if not seven:
            raise SystemExit("7z is not installed (apt-get install 7zip)")
        peer_zip = work / "peer.zip"
        out["7z_s"] = _timed(
            [seven, "a", "-tzip", "-mem=AES256", "-mx=1", "-mmt=2", f"-p{password}", str(peer_zip), f"@{listing}"],
            work / "media",
        )
        out["7z_mbs"] = corpus_bytes / 1e6 / out["7z_s"]
        out["7z_size_mb"] = peer_zip.stat().st_size / 1e6
        dest = work / "ours-x"
        t0 = time.perf_counter()
        _manage(env, "backup", "decrypt", str(archive), "--password-file", str(pw_file), "--out", str(dest))
        out["ours_x_s"] = time.perf_counter() - t0
        dest7 = work / "7z-x"
        out["7z_x_s"] = _timed([seven, "x", f"-p{password}", f"-o{dest7}", str(peer_zip)], work)
    return out


def report(rows: list[dict[str, float]], command: str) -> str:
    base = rows[0]
    lines = [
        "## Backup engine: service + worker vs 7-Zip",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}",
        "",
        "| tenant | documents (versions) | corpus MB | ours s | ours MB/s | archive MB | 7z s | 7z MB/s | 7z archive MB | worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gigabytes']} GiB | {r['documents']:.0f} ({r['versions']:.0f}) | {r['corpus_mb']:.0f} | {r['ours_s']:.1f} | "
            f"{r['ours_mbs']:.0f} | {r['ours_size_mb']:.0f} | {r.get('7z_s', float('nan')):.1f} | {r.get('7z_mbs', float('nan')):.0f} | "
            f"{r.get('7z_size_mb', float('nan')):.0f} | {r['worker_rss_mb']:.0f} |"
        )
    lines.append("")
    ratio = base["ours_mbs"] / base["7z_mbs"]
    size_delta = 100 * (base["ours_size_mb"] / base["7z_size_mb"] - 1)
    lines += [
        f"- throughput ratio ours / 7-Zip: **{ratio:.2f}×** (target ≥ 1.5×)",
        f"- archive size vs 7-Zip: **{size_delta:+.1f} %** (target ≤ +5 %)",
        f"- extraction, every hash verified: ours {base['ours_x_s']:.1f} s vs `7z x` {base['7z_x_s']:.1f} s "
        f"(**{base['7z_x_s'] / base['ours_x_s']:.2f}×** 7-Zip's speed; target ≥ 1×)",
        f"- worker peak RSS: {base['worker_rss_mb']:.0f} MB (target < 150 MB)",
    ]
    if len(rows) > 1:
        big = rows[-1]
        lines.append(
            f"- peak RSS at {big['gigabytes']} GiB: {big['worker_rss_mb']:.0f} MB "
            f"({100 * (big['worker_rss_mb'] / base['worker_rss_mb'] - 1):+.1f} % vs {base['gigabytes']} GiB; target within ±10 %)"
        )
    lines.append(
        "- the tenant is seeded by `seed_demo` (about 60 % incompressible bytes); MB/s = document bytes / wall time of the worker process (start-up included)"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--scale", type=int, default=4, help="also back up a tenant this many times larger (0: skip)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/backupsvc-engine-bench"))
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [run_size(args.workdir / "base", args.gigabytes, args.documents, peer=True)]
    shutil.rmtree(args.workdir / "base", ignore_errors=True)
    if args.scale:
        rows.append(
            run_size(args.workdir / "big", args.gigabytes * args.scale, args.documents * args.scale, peer=False)
        )
        shutil.rmtree(args.workdir / "big", ignore_errors=True)
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
