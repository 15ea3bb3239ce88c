"""End-to-end backup benchmark: a seeded tenant, a backup through the service in a worker
process, and 7-Zip on the same files as the peer.

Usage::

    python benchmarks/engine_bench.py --gigabytes 1 --documents 10000 [--rounds 3] [--scale 4 8] [--workdir DIR] [--keep]

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
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import cpu_pressure, machine  # noqa: E402
from benchmarks._tenant import one_backup, seed, seven_zip, timed  # noqa: E402
from benchmarks._tenant import tenant_files as _tenant_files  # noqa: E402


def run_size(work: Path, gigabytes: float, documents: int, *, peer: bool, rounds: int = 1) -> dict[str, float]:
    """Back up the tenant ``rounds`` times; with ``peer``, 7-Zip runs on the same files in each round."""
    env = seed(work, gigabytes, documents)
    versions, corpus_bytes, names = _tenant_files(env)
    listing = work / "files.txt"
    listing.write_text("\n".join(names) + "\n")
    seven = seven_zip() if peer else None
    per_round: list[dict[str, float]] = []
    for _ in range(rounds):
        shutil.rmtree(work / "media" / "backups", ignore_errors=True)
        r: dict[str, float] = {"load": os.getloadavg()[0], "pressure": cpu_pressure()}
        worker, archive, pw_file = one_backup(work, env)
        r.update(ours_s=worker["seconds"], worker_rss_mb=worker["peak_rss_mb"], ours_size_mb=worker["size"] / 1e6)
        r["documents"] = worker["documents"]
        if peer and seven:
            password = pw_file.read_text().strip()
            peer_zip = work / "peer.zip"
            peer_zip.unlink(missing_ok=True)
            r["7z_s"], _ = timed(
                [seven, "a", "-tzip", "-mem=AES256", "-mx=1", "-mmt=2", f"-p{password}", str(peer_zip), f"@{listing}"],
                work / "media",
            )
            r["7z_size_mb"] = peer_zip.stat().st_size / 1e6
            for dest in ("ours-x", "7z-x"):
                shutil.rmtree(work / dest, ignore_errors=True)
            r["ours_x_s"], r["ours_x_cpu"] = timed(
                [
                    PY,
                    "manage.py",
                    "backup",
                    "decrypt",
                    str(archive),
                    "--password-file",
                    str(pw_file),
                    "--out",
                    str(work / "ours-x"),
                ],
                ROOT,
                env,
            )
            r["7z_x_s"], r["7z_x_cpu"] = timed([seven, "x", f"-p{password}", f"-o{work / '7z-x'}", str(peer_zip)], work)
            for dest in ("ours-x", "7z-x"):
                shutil.rmtree(work / dest, ignore_errors=True)
        per_round.append(r)
    out: dict[str, float] = {"gigabytes": gigabytes, "versions": versions, "corpus_mb": corpus_bytes / 1e6}
    for key in per_round[0]:
        out[key] = statistics.median(r[key] for r in per_round)
    out["worker_rss_mb"] = max(r["worker_rss_mb"] for r in per_round)
    out["ours_mbs"] = out["corpus_mb"] / out["ours_s"]
    if peer:
        out["7z_mbs"] = out["corpus_mb"] / out["7z_s"]
        out["ratios"] = [r["7z_s"] / r["ours_s"] for r in per_round]  # type: ignore[assignment]
        out["x_ratios"] = [r["ours_x_cpu"] / r["7z_x_cpu"] for r in per_round]  # type: ignore[assignment]
        out["loads"] = [(r["load"], r["pressure"]) for r in per_round]  # type: ignore[assignment]
        out["ratio"] = statistics.median(out["ratios"])  # type: ignore[arg-type]
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
    size_ratio = base["ours_size_mb"] / base["7z_size_mb"]
    rounds = ", ".join(f"{v:.2f}×" for v in base["ratios"])  # type: ignore[attr-defined]
    x_rounds = ", ".join(f"{v:.2f}" for v in base["x_ratios"])  # type: ignore[attr-defined]
    loads = ", ".join(f"{load:.1f} / {psi:.0f} %" for load, psi in base["loads"])  # type: ignore[attr-defined]
    lines += [
        f"- backup speed, 7-Zip's time / ours (median of {len(base['ratios'])} interleaved rounds): "  # type: ignore[arg-type]
        f"**{base['ratio']:.2f}×** (rounds {rounds}; target ≥ 1.5×)",
        f"- archive size vs 7-Zip `-mx=1`: **{size_ratio:.3f}** (target ≤ 1.05)",
        f"- extraction with every hash verified (`manage.py backup decrypt`) vs `7z x`: ours {base['ours_x_s']:.1f} s, "
        f"{base['ours_x_cpu']:.1f} CPU-s; 7-Zip {base['7z_x_s']:.1f} s, {base['7z_x_cpu']:.1f} CPU-s: "
        f"CPU ratio **{base['ours_x_cpu'] / base['7z_x_cpu']:.2f}** (rounds {x_rounds}; target ≤ 1.0; ours includes "
        "Django's start-up)",
        f"- machine load at each round's start (1-minute load average / CPU pressure, PSI avg10): {loads}",
        f"- worker peak RSS: {base['worker_rss_mb']:.0f} MB (target < 150 MB)",
    ]
    for big in rows[1:]:
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
    parser.add_argument("--scale", type=int, nargs="*", default=[4], help="also back up tenants this many times larger")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of ours and 7-Zip on the base tenant")
    parser.add_argument(
        "--keep", action="store_true", help="keep the seeded tenants for the next run (reused if the sizes match)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/backupsvc-engine-bench"))
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = [run_size(args.workdir / "base", args.gigabytes, args.documents, peer=True, rounds=args.rounds)]
    for scale in args.scale:
        work = args.workdir / f"x{scale}"
        rows.append(run_size(work, args.gigabytes * scale, args.documents * scale, peer=False))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(args.workdir / "base", ignore_errors=True)
    text = report(rows, "python " + " ".join(sys.argv))
    print(text)
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
