"""Chaos soak: the real stack under a steady stream of work while faults strike, then a check
that nothing was lost, orphaned, left stuck or half applied.

Usage::

    python benchmarks/soak.py                    # 20 minutes (make soak; SOAK_MINUTES=3 make soak)
    python benchmarks/soak.py --minutes 3        # the CI run (.ci/run, after make test)
    python benchmarks/soak.py --minutes 20 --results   # also append the figures to benchmarks/RESULTS.md

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and ``redis-server`` on the PATH; it
starts everything else itself, on loopback (tests/support/stack.py): a throwaway database
(``bsvc_soak_<random>``, dropped at the end), its own redis-server on a free port, moto's S3
server over HTTP (reached by the app through a TCP link the soak can cut), an SMTP server
(aiosmtpd) it reads the restore codes from, gunicorn in production mode, two Celery workers
(``worker-1``'s temporary folder is a small tmpfs: the disk the full-disk fault fills) and beat.

The work (``--orgs``, 30 organizations with a few tiny documents each):

* every organization's schedule runs every minute (the product's schedules are daily or weekly:
  the soak moves each schedule's next run to "now" every minute, and beat's ``run_schedules``,
  which runs every minute, queues them), keeping the last two;
* a few simulated users (``--actors``) sign in as the organizations' Owners and, over HTTP
  against gunicorn, request backups in the Request Backup dialog (with the generated password),
  download completed ones (the presigned redirect, then the file: its SHA-256 is checked),
  press "Verify now", and run in-place restores with the code read from the Owner's mail; between
  those they add documents (in this process), so that backups and restores change something.

Every 60 to 120 s (``--fault-every``) a fault strikes, the first after 30 s, each kind in turn in a
shuffled order: a worker SIGKILLed, one running a job when there is one (restarted at once);
Redis restarted (without persistence: the queued messages are lost); the storage cut for 20 s
(open connections reset, new ones refused: tests/support/net.py's link, closing finished
connections); the database sessions of web, workers and beat terminated
(``pg_terminate_backend``; this process's own are named ``soak-driver`` and spared); the disk
under ``worker-1`` (its TMPDIR, a 16 MiB tmpfs; without root the fault is left out and the
report says so) full for 20 s. At this data size a backup does not touch the worker's disk
(S3 uploads and downloads are spooled in memory); what fails is what writes to it, such as the
restore rehearsal of "Verify now".

At the end the soak stops the faults and the work, waits for the queues to drain (at most
``--drain`` seconds), stops the workers and beat, runs the stale sweeps in this process with the
clock moved past their limits (what beat would do later), and checks: every backup completed and
verifiable (verified again here) or failed with a reason; no object in the bucket that no row
points at, no file lost, no unfinished multipart upload; no organization in maintenance; every
restore's organization equal, in its logical snapshot, to the backup (completed) or to the state
before (failed); every request the soak made (accepted backups, confirmed restores) in the
database with a final state. It prints the figures and exits 1 on any violation, with the list.

Settings the soak shortens (environment of every process), so that its checks are about what is
lost, not about waiting:

* ``BACKUP_HEARTBEAT_STALE_SECONDS=60`` (600): a dead worker's backup is failed a minute later;
* ``CELERY_TASK_TIME_LIMIT=600``, ``CELERY_TASK_SOFT_TIME_LIMIT=570`` (6 h): a restore whose worker
  died is failed by the restore sweep after 11 minutes (time limit + stale margin), not 6 hours;
* ``BACKUP_QUEUE_INTERVAL=20`` (900): beat's run of the database queue, which finds backups whose
  queue message Redis lost;
* ``RESTORE_CODES_PER_HOUR=1000`` (3): the soak restores each organization more often than a
  person would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import machine  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432"
SHORTENED = {
    "BACKUP_HEARTBEAT_STALE_SECONDS": "60",
    "CELERY_TASK_TIME_LIMIT": "600",
    "CELERY_TASK_SOFT_TIME_LIMIT": "570",
    "BACKUP_QUEUE_INTERVAL": "20",
    "RESTORE_CODES_PER_HOUR": "1000",
}


def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES") or 20))
    p.add_argument("--orgs", type=int, default=30)
    p.add_argument("--actors", type=int, default=3, help="simulated users acting at once")
    p.add_argument("--fault-every", type=float, nargs=2, default=(60.0, 120.0), metavar=("MIN", "MAX"))
    p.add_argument("--drain", type=float, default=180.0, help="seconds to wait for the queues at the end")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--database", default=f"bsvc_soak_{uuid.uuid4().hex[:8]}")
    p.add_argument("--keep", action="store_true", help="keep the database and the logs")
    p.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    return p.parse_args(argv)


def process_env(work: Path, database: str, ports: dict[str, int], smtp_port: int) -> dict[str, str]:
    """This process's settings: the stack's peers, reached directly (the storage not through the
    link the fault cuts), and its database connections named so that the database fault spares
    them. Set before Django reads its settings."""
    from cryptography.fernet import Fernet

    from tests.support import s3

    return {
        "DJANGO_SETTINGS_MODULE": "backupsvc.settings",
        "BACKUPSVC_ENV": "development",
        "BACKUPSVC_VAR_DIR": str(work / "var-driver"),
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "BACKUP_KEYS": Fernet.generate_key().decode(),
        "RESTORE_CODE_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": f"{PG_URL}/{database}?application_name=soak-driver",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "AWS_STORAGE_BUCKET_NAME": "backupsvc-soak",
        "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
        "AWS_S3_REGION_NAME": s3.REGION,
        "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
        "AWS_MAX_ATTEMPTS": "2",
        "AWS_RETRY_MODE": "standard",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SITE_URL": f"http://127.0.0.1:{ports['web']}",
        "BACKUP_DISPATCH_IMMEDIATELY": "true",
        "RESTORE_DISPATCH_IMMEDIATELY": "true",
        **SHORTENED,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    work = Path(tempfile.mkdtemp(prefix="backupsvc-soak-"))
    print(f"[soak] work folder {work}; database {args.database}; seed {seed}; {args.minutes:g} min", flush=True)

    # SIGTERM (CI's timeout, a kill) unwinds like Ctrl-C: every process started is stopped.
    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)

    from tests.support.mail import smtp_server
    from tests.support.net import free_port

    _admin_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{args.database}"')
    status = 2
    try:
        with smtp_server() as inbox:
            ports = {"redis": free_port(), "s3": free_port(), "web": free_port()}
            os.environ.update(process_env(work, args.database, ports, inbox.port))
            import django

            django.setup()
            from benchmarks._soak_run import run

            status = run(args, work=work, seed=seed, inbox=inbox, ports=ports, machine=machine())
    except KeyboardInterrupt as exc:
        print(f"[soak] interrupted ({exc or 'Ctrl-C'}): everything started was stopped", flush=True)
        status = 130
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep:
            with contextlib.suppress(Exception):
                _admin_sql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        # The processes' logs stay (small); the rest of the work folder goes unless --keep.
        if not args.keep:
            for item in work.iterdir():
                if item.is_dir() and item.name != "logs":
                    shutil.rmtree(item, ignore_errors=True)
                elif not item.is_dir():
                    item.unlink(missing_ok=True)
        print(f"[soak] the processes' logs are in {work}/logs", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
