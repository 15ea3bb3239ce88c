"""The load test's figures (benchmarks/load_bench.py): locust's CSV read back and the
RESULTS.md section written from it."""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from benchmarks._common import machine

PG_URL = "postgres://postgres@127.0.0.1:5432"
TARGET_P95_MS = 150
# Locust's request names (benchmarks/locustfile.py), in the table's order.
ENDPOINTS = ["login form", "login", "list", "detail", "download"]


def read_stats(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def ms(value: str) -> str:
    return f"{float(value):.0f}" if value not in ("", "N/A") else "—"


def report(
    stats: dict[str, dict[str, str]],
    summary: dict[str, Any],
    args: argparse.Namespace,
    command: str,
    gunicorn_cmd: str,
    locust_cmd: str,
    steady: float | None,
    cpu: tuple[str, float],
) -> tuple[str, int, float | None]:
    """The markdown section, the number of failed requests and the list page's p95."""
    lines = [
        f"## Load test: the Account Backups pages at {args.users} concurrent users",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}; PostgreSQL {postgres_version()} on the same machine, locust on the same cores",
        f"- server: `{gunicorn_cmd}`, `BACKUPSVC_ENV=production` (generated secrets, DEBUG off, "
        "secure cookies, HSTS, django-axes on), local file storage; requests carry `X-Forwarded-Proto: https` as "
        "from a TLS-terminating proxy",
        f"- load: `{locust_cmd}`; think time {args.wait_min:g}–{args.wait_max:g} s between requests; "
        "each user signs in once as the Owner or an Admin of a different organization, then loops: list page "
        "(first page 50 %, pages 2–4 20 %, a status/type/date filter 20 %, another sort order 10 %), "
        "details of a backup from that page, download of a downloadable one",
    ]
    s = summary
    st = s["statuses"]
    lines.append(
        f"- data: {s['organizations']} organizations, {s['users']} users, {s['ous']} OUs, {s['backups']:,} backups "
        f"({', '.join(f'{n:,} {k}' for k, n in st.items() if n)}), {s['events']:,} events, "
        f"{s['downloads']:,} download records, {s['stored_files']:,} stored archives of {s['archive_bytes']:,} bytes "
        f"(seeded in {sum(s['seconds'].values()):.0f} s)"
    )
    q = s["queries"]
    lines.append(
        "- SQL queries per page (test client, most of an Owner and an Admin): "
        + ", ".join(f"{k} {v}" for k, v in q.items())
    )
    if steady is not None:
        lines.append(f"- pages measured for {steady:.0f} s, once all {args.users} users had signed in")
    pages_rps = sum(float(stats[n]["Requests/s"]) for n in ("list", "detail", "download") if n in stats)
    if cpu[0]:
        per_request = f"; gunicorn: about {1000 * cpu[1] / pages_rps:.0f} ms of CPU per page" if pages_rps else ""
        lines.append(f"- CPU while pages were measured: {cpu[0]}{per_request}")
    lines += [
        "",
        "| endpoint | requests | failures | requests/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = 0
    for name in ENDPOINTS:
        row = stats.get(name)
        if row is None:
            continue
        failures += int(row["Failure Count"])
        rps = float(row["Requests/s"])
        lines.append(
            f"| {name} | {int(row['Request Count']):,} | {int(row['Failure Count'])} | {rps:.1f} | "
            f"{ms(row['50%'])} | {ms(row['95%'])} | {ms(row['99%'])} | {ms(row['Max Response Time'])} |"
        )
    total = stats.get("Aggregated")
    if total is not None:
        failures = max(failures, int(total["Failure Count"]))
    lines.append(f"| **pages together** | | | **{pages_rps:.1f}** | | | | |")
    list_p95 = float(stats["list"]["95%"]) if "list" in stats and stats["list"]["95%"] not in ("", "N/A") else None
    verdict = "met" if list_p95 is not None and list_p95 < TARGET_P95_MS else "missed"
    lines += [
        "",
        f"- list page p95: **{list_p95:.0f} ms** (target < {TARGET_P95_MS} ms: {verdict}); failed requests: **{failures}**"
        if list_p95 is not None
        else "- list page: no request measured",
        "- percentiles are locust's (rounded to 2 significant digits above 100 ms); requests/s per endpoint "
        "from its first to its last request",
    ]
    return "\n".join(lines) + "\n", failures, list_p95


def postgres_version() -> str:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"
