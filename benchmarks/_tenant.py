"""A seeded tenant in a throwaway installation, and the measured processes the benchmarks run
on it: the set-up the engine, restore, selective and peer benchmarks share.

Every installation is SQLite + local files under a work directory (``_common.throwaway_env``);
the tenant is ``acme``, seeded by ``seed_demo``. Processes whose peak RSS matters run on their
own (RUSAGE_CHILDREN would mix in every earlier child, such as the seeding run).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks._common import PY, ROOT, cpu_pressure, manage, throwaway_env


def shell_json(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in ``manage.py shell`` and parse the JSON its last output line holds."""
    return json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])


def fresh(work: Path) -> dict[str, str]:
    """An empty, migrated installation under ``work`` (whatever was there is deleted)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = throwaway_env(work)
    manage(env, "migrate", "--no-input")
    return env


def seed_demo(env: dict[str, str], gigabytes: float, documents: int) -> float:
    """Seed ``acme`` with ``seed_demo``; returns the seconds it took."""
    start = time.perf_counter()
    manage(env, "seed_demo", "--org", "acme", "--documents", str(documents), "--gigabytes", str(gigabytes), "--quiet")
    return time.perf_counter() - start


def seed(work: Path, gigabytes: float, documents: int) -> dict[str, str]:
    """A throwaway installation with the ``acme`` tenant (kept when already seeded with these sizes)."""
    marker = work / "seeded.json"
    wanted = {"gigabytes": gigabytes, "documents": documents}
    env = throwaway_env(work)
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return env
    env = fresh(work)
    seed_demo(env, gigabytes, documents)
    marker.write_text(json.dumps(wanted))
    return env


def tenant_files(env: dict[str, str], org: str = "acme") -> tuple[int, int, list[str]]:
    """The tenant's document versions: count, bytes, and their stored names (under MEDIA_ROOT)."""
    code = (
        "from organizations.models import DocumentVersion as V;"
        f"qs=V.objects.filter(document__organization__slug={org!r});"
        "import json;print(json.dumps([qs.count(), sum(qs.values_list('size', flat=True)), list(qs.values_list('file', flat=True))]))"
    )
    count, total, names = shell_json(env, code)
    return count, total, names


def backup_create(env: dict[str, str], password_file: Path, org: str = "acme") -> int:
    """Queue a backup of the whole tenant (``manage.py backup create``); its id."""
    password_file.unlink(missing_ok=True)
    out = manage(env, "backup", "create", "--org", org, "--include-inactive", "--password-out", str(password_file))
    return int(out.strip().splitlines()[-1])


def backup_info(env: dict[str, str], backup_id: int) -> dict[str, Any]:
    """A backup's status, size, stored file name, document count and failure reason."""
    status, size, name, documents, reason = shell_json(
        env,
        f"from backups.models import Backup as B;import json;b=B.objects.get(pk={backup_id});"
        "print(json.dumps([b.status,b.size,b.file.name,b.document_count,b.failure_reason]))",
    )
    return {"status": status, "size": size, "file": name, "documents": documents, "reason": reason}


def measured(env: dict[str, str], *args: str) -> tuple[dict[str, float], str]:
    """Run ``manage.py <args>`` through ``_measure.py`` in its own process: (its wall seconds,
    peak RSS MB and CPU seconds; its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [PY, str(ROOT / "benchmarks" / "_measure.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in result.stderr.splitlines() if ln.startswith("MEASURE ")), None)
    if result.returncode or line is None:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line[len("MEASURE ") :])
    figures["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures, result.stdout


def one_backup(work: Path, env: dict[str, str], org: str = "acme") -> tuple[dict[str, float], Path, Path]:
    """Queue a backup and run it in a measured worker process: (figures, archive, password file)."""
    pw_file = work / "password"
    backup_id = backup_create(env, pw_file, org)
    worker, _ = measured(env, "backup", "process")
    info = backup_info(env, backup_id)
    if info["status"] != "completed":
        raise SystemExit(f"backup {backup_id} {info['status']}: {info['reason']}")
    worker.update(size=info["size"], documents=info["documents"], backup_id=backup_id)
    return worker, work / "media" / info["file"], pw_file


def child(script: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``script --child <args>`` (a benchmark's own measured step, in a fresh process) and
    return the JSON it printed on its ``MEASURE`` line."""
    result = subprocess.run(
        [PY, str(script), "--child", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    line = next((ln for ln in result.stderr.splitlines() if ln.startswith("MEASURE ")), None)
    if result.returncode or line is None:
        raise SystemExit(f"child {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(line[len("MEASURE ") :])  # type: ignore[no-any-return]


def django_setup() -> None:
    """Set Django up in a child process (the throwaway installation's environment is inherited)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsvc.settings")
    import django

    django.setup()


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, children included) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def seven_zip() -> str:
    """The 7-Zip command on the PATH (``7zz``, ``7z`` or ``7za``)."""
    found = shutil.which("7zz") or shutil.which("7z") or shutil.which("7za")
    if not found:
        raise SystemExit("7z is not installed (apt-get install 7zip)")
    return found


def load() -> list[float]:
    """The machine's load now: 1-minute load average and CPU pressure (PSI avg10 %)."""
    return [round(os.getloadavg()[0], 2), round(cpu_pressure(), 1)]


def stage_marks() -> dict[str, float]:
    """Record when the restore engine first reaches each stage (``restores.engine.checkpoint``
    wrapped, in a child process after ``django_setup``): {stage: ``perf_counter()``}, and under
    ``verify_s`` the seconds spent verifying the archive (``ArchiveReader.verify``)."""
    from restores import engine

    marks: dict[str, float] = {}
    real_checkpoint = engine.checkpoint
    real_verify = engine.ArchiveReader.verify

    def checkpoint(stage: str, **info: Any) -> None:
        if stage != "row":
            marks.setdefault(stage, time.perf_counter())
        real_checkpoint(stage, **info)

    def verify(self: Any) -> Any:
        start = time.perf_counter()
        try:
            return real_verify(self)
        finally:
            marks["verify_s"] = marks.get("verify_s", 0.0) + time.perf_counter() - start

    engine.checkpoint = checkpoint  # type: ignore[assignment]
    engine.ArchiveReader.verify = verify  # type: ignore[method-assign]
    return marks
