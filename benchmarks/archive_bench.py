"""Raw benchmark of the backup archive writer and reader against 7-Zip.

Usage::

    python benchmarks/archive_bench.py --size-mb 1024 --files 10000 --workdir /tmp/x

Builds a corpus (``_archive_corpus``: about 60 % of the bytes incompressible, shaped like
JPEG/PDF/PNG/DOCX files, the rest compressible prose, CSV and JSON), then times:

* our ``ArchiveWriter`` (run in a subprocess so its peak RSS can be read) against
  ``7z a -tzip -mem=AES256 -mx=1 -mmt=2`` on the same files;
* our ``ArchiveReader.extract_all`` (every HMAC and SHA-256 checked, files written)
  against ``7z x``.

It prints a markdown block with throughput, sizes, ratios and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._archive_corpus import build_corpus, corpus_files  # noqa: E402
from benchmarks._common import cpu_pressure, wait_for_quiet  # noqa: E402

PASSWORD = "bench-Password-1234-abcd"  # noqa: S105 - a throwaway benchmark password


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes.

    VmHWM rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent across
    fork + exec, so a child of a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child_write(listing: Path, corpus: Path, out: Path, workers: int | None) -> None:
    """Subprocess body: write the archive, print elapsed seconds and peak RSS as JSON."""
    from backups.archive import ArchiveWriter

    files = [Path(line) for line in listing.read_text().splitlines()]
    start = time.perf_counter()
    with open(out, "wb") as sink, ArchiveWriter(sink, PASSWORD, workers=workers) as writer:
        for path in files:
            writer.add_path("files/" + path.relative_to(corpus).as_posix(), path)
        summary = writer.close(manifest={"note": "benchmark"})
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"elapsed": elapsed, "bytes": summary.bytes_written, "peak_rss": _peak_rss(), "cpu": cpu}))


def _child_extract(archive: Path, dest: Path, workers: int | None) -> None:
    """Subprocess body: verify and extract everything, print elapsed seconds and peak RSS."""
    from backups.archive import ArchiveReader

    start = time.perf_counter()
    with ArchiveReader(archive, PASSWORD, workers=workers) as reader:
        reader.extract_all(dest)
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"elapsed": elapsed, "peak_rss": _peak_rss(), "cpu": cpu}))


def _run_child(*args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=str(ROOT))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=str(cwd), stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _seven_zip() -> str:
    for name in ("7zz", "7z", "7za"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("7-Zip is needed: apt-get install -y 7zip")


def main() -> None:
    """Run the benchmark and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/archive-bench"))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of both tools (the machine may be shared)")
    parser.add_argument(
        "--quiet-wait", type=float, default=0, help="wait up to this many seconds for an idle CPU before each round"
    )
    parser.add_argument("--skip-7z-test", action="store_true", help="do not run `7z t` on our archive")
    parser.add_argument(
        "--corpus", type=Path, default=None, help="archive the files under this folder instead of a generated corpus"
    )
    args = parser.parse_args()

    seven = _seven_zip()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    t0 = time.perf_counter()
    if args.corpus is not None:  # real files (for example gathered from /usr/share and /usr/lib)
        corpus = args.corpus.resolve()
        sizes = [p.stat().st_size for p in corpus_files(corpus)]
        count, total = len(sizes), sum(sizes)
    else:
        count, total = build_corpus(corpus, args.size_mb, args.files)
    print(f"corpus: {count} files, {total / 1e6:.0f} MB ({time.perf_counter() - t0:.1f} s to prepare)", file=sys.stderr)
    files = corpus_files(corpus)
    listing = work / "files.txt"
    listing.write_text("\n".join(str(p) for p in files))
    for path in files:  # warm the page cache equally for both tools
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass

    ours, theirs = work / "ours.zip", work / "7z.zip"
    out_ours, out_theirs = work / "out-ours", work / "out-7z"
    workers = [] if args.workers is None else ["--workers", str(args.workers)]
    rounds: list[dict[str, float]] = []
    for _ in range(args.repeat):
        # One round = both tools back to back, so both see the same machine load.
        wait_for_quiet(args.quiet_wait)
        load = f"{os.getloadavg()[0]:.1f} / {cpu_pressure():.0f} %"
        for path in (ours, theirs):
            path.unlink(missing_ok=True)
        for path in (out_ours, out_theirs):
            shutil.rmtree(path, ignore_errors=True)
        out_theirs.mkdir()
        # Interleaved: 7-Zip first in even rounds, ours first in odd ones (a load that builds up or
        # fades during a round then favours neither).
        ours_first = len(rounds) % 2 == 1
        if ours_first:
            mine = _run_child("--child-write", str(listing), str(corpus), str(ours), *workers)
        seven_write, seven_write_cpu = _timed(
            [seven, "a", "-tzip", "-mem=AES256", "-mx=1", "-mmt=2", f"-p{PASSWORD}", str(theirs), "."], corpus
        )
        if not ours_first:
            mine = _run_child("--child-write", str(listing), str(corpus), str(ours), *workers)
        if ours_first:
            mine_x = _run_child("--child-extract", str(ours), str(out_ours), *workers)
        seven_x, seven_x_cpu = _timed([seven, "x", f"-p{PASSWORD}", str(theirs), "-y"], out_theirs)
        if not ours_first:
            mine_x = _run_child("--child-extract", str(ours), str(out_ours), *workers)
        rounds.append(
            {
                "load": load,
                "w_ours": mine["elapsed"],
                "w_7z": seven_write,
                "w_ours_cpu": mine["cpu"],
                "w_7z_cpu": seven_write_cpu,
                "x_ours": mine_x["elapsed"],
                "x_7z": seven_x,
                "x_ours_cpu": mine_x["cpu"],
                "x_7z_cpu": seven_x_cpu,
                "rss_w": mine["peak_rss"],
                "rss_x": mine_x["peak_rss"],
            }
        )
    tested = "skipped"
    if not args.skip_7z_test:
        subprocess.run([seven, "t", f"-p{PASSWORD}", str(ours)], check=True, stdout=subprocess.DEVNULL)
        tested = "OK"
    extracted = sum(p.stat().st_size for p in out_ours.rglob("*") if p.is_file())

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    mb = total / 1e6
    size_ours, size_7z = ours.stat().st_size, theirs.stat().st_size
    w_ratio = [r["w_7z"] / r["w_ours"] for r in rounds]
    x_ratio = [r["x_7z"] / r["x_ours"] for r in rounds]
    # CPU-seconds ratios (ours / 7-Zip's, lower is better): less sensitive to the machine's load.
    w_cpu = [r["w_ours_cpu"] / r["w_7z_cpu"] for r in rounds]
    x_cpu = [r["x_ours_cpu"] / r["x_7z_cpu"] for r in rounds]
    from backups.archive.compress import BACKEND_NAME, DEFAULT_LEVEL
    from backups.archive.crypto import KDF_BACKEND, new_keystream

    def listing_of(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}x" for v in values)

    print(
        f"""
### Archive benchmark: {count} files, {mb:.0f} MB ({"real files under " + str(corpus) if args.corpus else "about 60 % incompressible"}), {len(rounds)} round(s)

Deflate: {BACKEND_NAME} level {DEFAULT_LEVEL}; AES-CTR: {type(new_keystream(bytes(32))).__name__}; PBKDF2: {KDF_BACKEND}; {os.cpu_count()} CPUs.
Medians over the rounds; each round runs both tools back to back (7-Zip first in rounds 1, 3, ...; ours first in 2, 4, ...).

| | ours | 7-Zip | ours vs 7-Zip | target |
|---|---:|---:|---:|---|
| write time | {med("w_ours"):.2f} s | {med("w_7z"):.2f} s | | |
| write throughput | {mb / med("w_ours"):.0f} MB/s | {mb / med("w_7z"):.0f} MB/s | {statistics.median(w_ratio):.2f}x | >= 1.5x |
| archive size | {size_ours / 1e6:.1f} MB | {size_7z / 1e6:.1f} MB | {size_ours / size_7z:.3f} | <= 1.05 |
| extract time (all hashes verified) | {med("x_ours"):.2f} s | {med("x_7z"):.2f} s | | |
| extract throughput | {mb / med("x_ours"):.0f} MB/s | {mb / med("x_7z"):.0f} MB/s | {statistics.median(x_ratio):.2f}x | >= 1.0x |
| write CPU (user + sys) | {med("w_ours_cpu"):.1f} s | {med("w_7z_cpu"):.1f} s | | |
| extract CPU (user + sys) | {med("x_ours_cpu"):.1f} s | {med("x_7z_cpu"):.1f} s | | |
| CPU ours / 7-Zip: write, extract | | | {statistics.median(w_cpu):.2f}, {statistics.median(x_cpu):.2f} | extract <= 1.0 |
| writer peak RSS | {max(r["rss_w"] for r in rounds) / 2**20:.0f} MiB | | | < 150 MiB |
| reader peak RSS | {max(r["rss_x"] for r in rounds) / 2**20:.0f} MiB | | | |

Per round, write speed-up: {listing_of(w_ratio)}; extract speed-up: {listing_of(x_ratio)};
CPU ours / 7-Zip per round, write: {listing_of(w_cpu)}; extract: {listing_of(x_cpu)};
1-minute load average / CPU pressure (PSI avg10) at each round's start (other sessions share this machine): {", ".join(str(r["load"]) for r in rounds)}.
Extracted {extracted / 1e6:.0f} MB (corpus + manifest). `7z t` on our archive: {tested}.
"""
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-write":
        _child_write(
            Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[6]) if len(sys.argv) > 6 else None
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-extract":
        _child_extract(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[5]) if len(sys.argv) > 5 else None)
    else:
        main()
