"""Run ``manage.py <args>`` in this process and print its wall time and peak RSS as JSON.

Used by the benchmarks to measure one worker process on its own (RUSAGE_CHILDREN would mix
in every earlier child, such as the seeding run).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsvc.settings")

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    start = time.perf_counter()
    code = 0
    try:
        execute_from_command_line(["manage.py", *sys.argv[1:]])
    except SystemExit as exc:
        code = int(exc.code or 0)
    elapsed = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("MEASURE " + json.dumps({"seconds": elapsed, "peak_rss_mb": rss_mb, "exit": code}), file=sys.stderr)
    sys.exit(code)
