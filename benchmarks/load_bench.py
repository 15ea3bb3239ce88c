"""Load test: the Account Backups pages at 50 concurrent users, on gunicorn and PostgreSQL.

Usage::

    python benchmarks/load_bench.py                      # 200 organizations, 20,000 backups, 50 users, 90 s
    python benchmarks/load_bench.py --results            # also append the figures to benchmarks/RESULTS.md (make loadtest)
    python benchmarks/load_bench.py --orgs 40 --users 10 --run-time 20s   # a quick try

Steps, all on this machine:

1. a throwaway PostgreSQL database (``--database``, default ``backupsvc_load``, dropped at the
   end) and media folder; ``migrate`` and ``collectstatic`` with production settings
   (``BACKUPSVC_ENV=production``, generated secrets);
2. the tenants, with bulk inserts: per organization an Owner, an Admin, an OU editor and a
   member, 3 to 6 OUs (facilities for every fourth), a subscription, a daily schedule, a few
   clients and matters; then one real backup made through the services (request, claim, run:
   a real encrypted archive) and 99 more backup rows over the last 13 days with the statuses
   a live installation has (mostly completed, some failed, expired early, cancelled, one
   pending or running at the top), their events, a few download records and verifications.
   Every completed backup has its own stored file: a hard link to the organization's real
   archive, with its size, SHA-256 and wrapped password. Then ``ANALYZE``, as autovacuum would;
3. the SQL queries each page makes, counted once through Django's test client;
4. gunicorn (``--workers``/``--threads``) on loopback, as behind a TLS-terminating proxy: the
   client sends ``X-Forwarded-Proto: https`` (production settings trust it), so the secure
   cookies, CSRF origin checks and HSTS of production are all in play, and django-axes stays on
   (every user signs in once, successfully: nothing is locked out);
5. ``locust --headless`` with ``benchmarks/locustfile.py``: each user signs in (login form and
   POST with the CSRF token) as the Owner or an Admin of a different organization, then loops
   over the list page (first page, later pages, filters and sort orders), a backup's details
   and a download, with a think time between requests; it stops by itself after ``--run-time``
   (90 s by default: signing 50 users in takes 10 to 20 s of it). Before it starts, the driver
   waits (at most ``--quiet-wait`` seconds) for the machine's other work to leave the CPUs alone,
   and during the run it samples the CPU time of gunicorn, locust, our PostgreSQL backends and
   everything else, since this machine is shared.

The figures (requests/s, p50/p95/p99, failures per endpoint) come from locust's CSV; pages are
measured once every user has signed in (logins hash a password for about 0.4 s of CPU each and
are reported on their own line). Exits non-zero when any request failed.

This module is the driver (database, gunicorn, locust); ``_load_seed.py`` builds the data in
a child process (the tenants in ``_load_tenants.py``, the backup history in
``_load_history.py``), ``_load_cpu.py`` samples the CPUs and ``_load_report.py`` writes the
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    cpu_pressure,
    free_port,
    manage,
    throwaway_env,
    wait_for,
    wait_for_quiet,
)
from benchmarks._load_cpu import CpuSampler  # noqa: E402
from benchmarks._load_report import PG_URL, read_stats, report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"


# ----------------------------------------------------------------------------------------------
# The throwaway database


def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env(work: Path, database: str) -> dict[str, str]:
    """Production settings with generated secrets, the throwaway database and media folder."""
    from cryptography.fernet import Fernet

    env = throwaway_env(work)
    env.update(
        DJANGO_SETTINGS_MODULE="backupsvc.settings",
        PYTHONPATH=str(ROOT),
        BACKUPSVC_ENV="production",
        DATABASE_URL=f"{PG_URL}/{database}",
        SECRET_KEY=secrets.token_urlsafe(50),
        BACKUP_KEYS=Fernet.generate_key().decode(),
        RESTORE_CODE_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        STATIC_ROOT=str(work / "static"),
        AWS_STORAGE_BUCKET_NAME="",
        CELERY_BROKER_URL="filesystem://",
    )
    return env


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_seed":
        from benchmarks._load_seed import seed

        seed(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--backups-per-org", type=int, default=100)
    parser.add_argument("--users", type=int, default=50, help="concurrent locust users (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--run-time", default="90s", help="locust's --run-time (default 90s)")
    parser.add_argument("--wait-min", type=float, default=1.0, help="think time between requests, seconds")
    parser.add_argument("--wait-max", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (>1: the gthread worker)")
    parser.add_argument("--database", default="backupsvc_load")
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="wait up to this many seconds for idle CPUs before the load"
    )
    parser.add_argument("--workdir", type=Path, help="folder for the throwaway installation (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the database")
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.users > args.orgs:
        parser.error("each user needs an organization of their own: --users must not exceed --orgs")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="load-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = bench_env(work, args.database)
    server: subprocess.Popen[bytes] | None = None
    log = None
    failed = False
    try:
        t0 = time.monotonic()
        create_database(args.database)
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "collectstatic", "--no-input", "-v", "0")
        print(f"database {args.database} migrated in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        t0 = time.monotonic()
        seeded = work / "seeded.json"
        with (work / "seed.log").open("wb") as seed_log:  # the notification e-mails are echoed there
            done = subprocess.run(
                [PY, __file__, "_seed", str(args.orgs), str(args.backups_per_org), str(args.users), str(seeded)],
                cwd=ROOT,
                env=env,
                stdout=seed_log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            failed = True
            raise SystemExit(f"seeding failed; see {work / 'seed.log'}")
        data = json.loads(seeded.read_text())
        summary = data["summary"]
        (work / "logins.json").write_text(json.dumps(data["logins"]))
        print(f"seeded in {time.monotonic() - t0:.0f} s: {json.dumps(summary)}", file=sys.stderr)

        port = free_port()
        gunicorn = [
            str(BIN / "gunicorn"),
            "backupsvc.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            *(["--worker-class", "gthread", "--threads", str(args.threads)] if args.threads > 1 else []),
            "--timeout",
            "60",
            "--no-control-socket",
            "--access-logfile",
            str(work / "access.log"),
        ]
        log = (work / "server.log").open("wb")
        server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(port)

        prefix = work / "locust"
        locust = [
            str(BIN / "locust"),
            "-f",
            "benchmarks/locustfile.py",
            "--headless",
            "-u",
            str(args.users),
            "-r",
            f"{args.spawn_rate:g}",
            "--run-time",
            args.run_time,
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "10",
        ]
        locust_env = {
            **os.environ,
            "LOAD_LOGINS": str(work / "logins.json"),
            "LOAD_WAIT": f"{args.wait_min},{args.wait_max}",
            "LOAD_MARKS": str(work / "marks.json"),
        }
        wait_for_quiet(args.quiet_wait)
        pressure = cpu_pressure()
        print(f"locust: {args.users} users for {args.run_time} against gunicorn on port {port}", file=sys.stderr)
        runner = subprocess.Popen(locust, cwd=ROOT, env=locust_env)
        sampler = CpuSampler(server.pid, runner.pid, args.database)
        sampler.start()
        returncode = runner.wait()
        sampler.done.set()
        sampler.join()
        stop(server)
        server = None

        stats = read_stats(Path(f"{prefix}_stats.csv"))
        marks = json.loads((work / "marks.json").read_text()) if (work / "marks.json").exists() else {}
        steady = marks["stopped"] - marks["all_signed_in"] if "all_signed_in" in marks and "stopped" in marks else None
        server_cmd = (
            f"gunicorn backupsvc.wsgi --workers {args.workers}"
            + (f" --worker-class gthread --threads {args.threads}" if args.threads > 1 else " (sync workers)")
            + " --access-logfile FILE"
        )
        locust_cmd = f"locust -f benchmarks/locustfile.py --headless -u {args.users} -r {args.spawn_rate:g} --run-time {args.run_time}"
        command = "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
        text, gunicorn_cores = (
            sampler.between(marks["all_signed_in"], marks["stopped"]) if steady is not None else ("", 0.0)
        )
        cpu = (f"{text}; CPU pressure (PSI avg10) {pressure:.0f} % when the load started", gunicorn_cores)
        text, failures, _ = report(stats, summary, args, command, server_cmd, locust_cmd, steady, cpu)
        print(text)
        if args.results:
            with RESULTS.open("a") as fh:
                fh.write("\n" + text)
        errors = work / "locust_failures.csv"
        if failures and errors.exists():
            print(errors.read_text(), file=sys.stderr)
        if failures or returncode:
            print(
                f"FAILED: {failures} failed requests, locust exit {returncode}; logs kept in {work}",
                file=sys.stderr,
            )
            failed = True
            return 1
        return 0
    finally:
        stop(server)
        if log is not None:
            log.close()
        if not args.keep:
            drop_database(args.database)
            if not args.workdir and not failed:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
