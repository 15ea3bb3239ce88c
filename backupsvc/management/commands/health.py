"""``manage.py health``: the /health/ report on stdout; exit status 1 when unhealthy (Docker
healthchecks, monitoring scripts)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand

from backupsvc.health import health_report


class Command(BaseCommand):
    help = "Check the database, broker and storage, and report the oldest waiting jobs (exit 1 when unhealthy)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing; only the exit status tells.")

    def handle(self, *args: Any, **options: Any) -> None:
        healthy, report = health_report()
        if not options["quiet"]:
            self.stdout.write(json.dumps(report, indent=2))
        if not healthy:
            sys.exit(1)
