"""End-to-end backup vs 7-Zip on real files gathered from this machine (issue 13's second row).

Usage::

    python benchmarks/realfiles_bench.py --rounds 3 [--lib-mb 300] [--deb-mb 300] [--results]

Gathers the corpus: every regular file under /usr/share/doc, /usr/share/man (mostly gzip) and
/usr/share/icons, plus ``--lib-mb`` MB of shared libraries from /usr/lib/x86_64-linux-gnu and
``--deb-mb`` MB of packages from /var/cache/apt/archives (in name order, so the same machine
gives the same corpus). Builds a throwaway installation (SQLite + local files), seeds ``acme``
with ``seed_demo --documents 0`` (its records, no documents), then loads every file as one of
``acme``'s controlled documents with one version, through the models and the document field's
storage (as ``seed_demo`` stores its files). Then ``--rounds`` interleaved rounds (the order of
the two sides alternates) of:

* **ours**: ``manage.py backup create`` and ``manage.py backup process`` (the worker, in its own
  process): wall time, CPU seconds and peak RSS of the worker process;
* **7-Zip**: ``7z a -tzip -mem=AES256 -mx=1 -mmt=2 -p<password>`` of the same stored files.

The machine's load (1-minute average, CPU pressure) is recorded before and after each side.
Prints a markdown block and, with ``--results``, appends it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shutil
import stat
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import machine, manage, throwaway_env  # noqa: E402
from benchmarks._tenant import child, django_setup, fresh, load, one_backup, seven_zip, tenant_files, timed  # noqa: E402

WHOLE = ("/usr/share/doc", "/usr/share/man", "/usr/share/icons")
LIBS = "/usr/lib/x86_64-linux-gnu"
DEBS = "/var/cache/apt/archives"
BATCH = 500


def _regular_files(top: str) -> list[tuple[str, int]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            with_stat = os.lstat(path)
            if stat.S_ISREG(with_stat.st_mode):
                found.append((path, with_stat.st_size))
    return found


def _up_to(files: list[tuple[str, int]], budget: int) -> list[tuple[str, int]]:
    picked, total = [], 0
    for path, size in files:
        if total + size > budget:
            continue
        picked.append((path, size))
        total += size
    return picked


def gather(lib_mb: int, deb_mb: int) -> list[tuple[str, int]]:
    """The corpus: (path, size) of every file, in a stable order."""
    files = [f for top in WHOLE for f in _regular_files(top)]
    libs = [f for f in _regular_files(LIBS) if ".so" in os.path.basename(f[0])]
    debs = [f for f in _regular_files(DEBS) if f[0].endswith(".deb")]
    return files + _up_to(libs, lib_mb * 1_000_000) + _up_to(debs, deb_mb * 1_000_000)


def _child_load(listing: str) -> None:
    """Load the listed files as ``acme``'s documents (one version each), a batch at a time."""
    django_setup()
    import hashlib

    from django.core.files import File
    from django.db import transaction

    from organizations import models as om

    org = om.Organization.objects.get(slug="acme")
    ou = om.OrganisationalUnit.objects.filter(organization=org).order_by("pk").first()
    field = om.DocumentVersion._meta.get_field("file")
    storage = field.storage
    paths = Path(listing).read_text().splitlines()
    total = 0
    for start in range(0, len(paths), BATCH):
        docs, versions = [], []
        for i, path in enumerate(paths[start : start + BATCH], start):
            name = os.path.basename(path)
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                size = fh.tell()
                fh.seek(0)
                stored = storage.save(field.generate_filename(None, name), File(fh, name=name))
            docs.append(om.ControlledDocument(organization=org, ou=ou, reference=f"REAL-{i + 1}", title=path[-300:]))
            versions.append(
                om.DocumentVersion(
                    number=1,
                    file=stored,
                    filename=name[-255:],
                    content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                    size=size,
                    sha256=digest.hexdigest(),
                )
            )
            total += size
        with transaction.atomic():
            for doc, version in zip(om.ControlledDocument.objects.bulk_create(docs), versions, strict=True):
                version.document_id = doc.pk
            om.DocumentVersion.objects.bulk_create(versions)
    print("MEASURE " + json.dumps({"files": len(paths), "bytes": total}), file=sys.stderr)


def build(work: Path, corpus: list[tuple[str, int]]) -> tuple[dict[str, str], float]:
    """The installation with the real files as ``acme``'s documents (kept when already built
    from the same corpus); returns its environment and the seconds loading took."""
    marker = work / "loaded.json"
    wanted = {"files": len(corpus), "bytes": sum(s for _, s in corpus)}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return throwaway_env(work), 0.0
    env = fresh(work)
    manage(env, "seed_demo", "--org", "acme", "--documents", "0", "--quiet")
    listing = work / "corpus.txt"
    listing.write_text("\n".join(p for p, _ in corpus) + "\n")
    start = time.perf_counter()
    child(Path(__file__).resolve(), env, "load", str(listing))
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps(wanted))
    return env, seconds


def run(work: Path, corpus: list[tuple[str, int]], rounds: int) -> dict[str, Any]:
    env, load_s = build(work, corpus)
    versions, corpus_bytes, names = tenant_files(env)
    listing = work / "files.txt"
    listing.write_text("\n".join(names) + "\n")
    seven = seven_zip()
    per_round: list[dict[str, Any]] = []
    password = ""  # the latest backup's: 7-Zip encrypts with a password of the same length
    for i in range(rounds):
        r: dict[str, Any] = {"order": "ours first" if i % 2 == 0 else "7-Zip first"}
        for side in ["ours", "7z"] if i % 2 == 0 else ["7z", "ours"]:
            r[f"{side}_load_before"] = load()
            if side == "ours":
                shutil.rmtree(work / "media" / "backups", ignore_errors=True)
                worker, _, pw_file = one_backup(work, env)
                password = pw_file.read_text().strip()
                r["ours"] = {k: worker[k] for k in ("seconds", "cpu_s", "peak_rss_mb", "size", "documents")}
            else:
                peer_zip = work / "peer.zip"
                peer_zip.unlink(missing_ok=True)
                seconds, cpu = timed(
                    [
                        seven,
                        "a",
                        "-tzip",
                        "-mem=AES256",
                        "-mx=1",
                        "-mmt=2",
                        f"-p{password}",
                        str(peer_zip),
                        f"@{listing}",
                    ],
                    work / "media",
                )
                r["7z"] = {"seconds": seconds, "cpu_s": cpu, "size": peer_zip.stat().st_size}
                peer_zip.unlink()
            r[f"{side}_load_after"] = load()
        r["speed"] = r["7z"]["seconds"] / r["ours"]["seconds"]
        r["cpu"] = r["7z"]["cpu_s"] / r["ours"]["cpu_s"]
        per_round.append(r)
        print(f"[realfiles] round {i + 1}: {json.dumps(r)}", file=sys.stderr, flush=True)
    med = statistics.median
    return {
        "files": versions,
        "corpus_mb": corpus_bytes / 1e6,
        "load_s": load_s,
        "rounds": per_round,
        "ours_s": med(r["ours"]["seconds"] for r in per_round),
        "ours_cpu_s": med(r["ours"]["cpu_s"] for r in per_round),
        "7z_s": med(r["7z"]["seconds"] for r in per_round),
        "7z_cpu_s": med(r["7z"]["cpu_s"] for r in per_round),
        "speed": med(r["speed"] for r in per_round),
        "cpu": med(r["cpu"] for r in per_round),
        "ours_mb": med(r["ours"]["size"] for r in per_round) / 1e6,
        "7z_mb": med(r["7z"]["size"] for r in per_round) / 1e6,
        "peak_rss_mb": max(r["ours"]["peak_rss_mb"] for r in per_round),
        "documents_in_backup": per_round[0]["ours"]["documents"],
    }


def report(r: dict[str, Any], sources: str, command: str) -> str:
    rounds = r["rounds"]
    speeds = ", ".join(f"{x['speed']:.2f}×" for x in rounds)
    cpus = ", ".join(f"{x['cpu']:.2f}×" for x in rounds)
    loads = "; ".join(
        f"round {i + 1} ({x['order']}): ours {x['ours_load_before'][0]:.1f}/{x['ours_load_before'][1]:.0f} % → "
        f"{x['ours_load_after'][0]:.1f}/{x['ours_load_after'][1]:.0f} %, 7-Zip {x['7z_load_before'][0]:.1f}/"
        f"{x['7z_load_before'][1]:.0f} % → {x['7z_load_after'][0]:.1f}/{x['7z_load_after'][1]:.0f} %"
        for i, x in enumerate(rounds)
    )
    return (
        "\n".join(
            [
                f"## End-to-end backup vs 7-Zip on {r['files']:,} real files from the machine",
                "",
                f"- command: `{command}`",
                f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
                f"- machine: {machine()}; SQLite, local files; the machine is shared with other sessions",
                f"- corpus: {sources}; {r['files']:,} files, {r['corpus_mb']:,.0f} MB, loaded as `acme`'s documents "
                f"(one version each) through the models and the file field's storage"
                + (f" in {r['load_s']:.0f} s" if r["load_s"] else "")
                + f"; the backup also holds `acme`'s seeded records ({r['documents_in_backup']} documents in the backup)",
                "",
                "| | ours (worker process: `backup process`) | 7-Zip (`7z a -tzip -mem=AES256 -mx=1 -mmt=2`) | 7-Zip / ours | target |",
                "|---|---:|---:|---:|---|",
                f"| wall time (median of {len(rounds)} interleaved rounds) | {r['ours_s']:.1f} s "
                f"({r['corpus_mb'] / r['ours_s']:.0f} MB/s) | {r['7z_s']:.1f} s ({r['corpus_mb'] / r['7z_s']:.0f} MB/s) | "
                f"**{r['speed']:.2f}×** | ≥ 1.5× |",
                f"| CPU seconds (user + system) | {r['ours_cpu_s']:.1f} | {r['7z_cpu_s']:.1f} | {r['cpu']:.2f}× | |",
                f"| archive size | {r['ours_mb']:,.1f} MB | {r['7z_mb']:,.1f} MB | {r['ours_mb'] / r['7z_mb']:.3f} (ours / 7-Zip) | ≤ 1.05 |",
                f"| worker peak RSS | {r['peak_rss_mb']:.0f} MB | | | < 150 MB |",
                "",
                f"- speed per round (7-Zip's time / ours): {speeds}; CPU per round (7-Zip's / ours): {cpus}",
                f"- load (1-minute average / CPU pressure PSI avg10, before → after): {loads}",
                "- ours: the worker process's wall time, Django's start-up included; it also writes the records' data "
                "members and the manifest, which 7-Zip does not",
            ]
        )
        + "\n"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_load(sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lib-mb", type=int, default=300, help="MB of shared libraries")
    parser.add_argument("--deb-mb", type=int, default=300, help="MB of .deb packages")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (a quick try)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/backupsvc-realfiles"))
    parser.add_argument("--keep", action="store_true", help="keep the loaded tenant (reused for the same corpus)")
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    corpus = gather(args.lib_mb, args.deb_mb)
    if args.limit:
        corpus = corpus[: args.limit]
    sources = (
        f"every file under {', '.join(WHOLE)}, {args.lib_mb} MB of shared libraries from {LIBS} and "
        f"{args.deb_mb} MB of packages from {DEBS}" + (f", first {args.limit} files" if args.limit else "")
    )
    result = run(args.workdir, corpus, args.rounds)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    text = report(result, sources, "python " + " ".join(sys.argv))
    print(text)
    print("<details><summary>raw</summary>\n\n```json\n" + json.dumps(result, indent=1) + "\n```\n</details>")
    if args.results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
