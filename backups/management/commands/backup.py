"""``manage.py backup``: create, process, list, verify, export, decrypt and compare backups from a
shell, rotate the key ring and audit the storage.

For operators and scripts. ``create`` prints only the new backup's id on stdout, so a script
can capture it; every refusal is one sentence and a non-zero exit (``CommandError``).
Passwords are never printed, logged or put in an error message: ``create`` either reads the
requester's own password from a file or writes the generated one to a new file with mode 0600.

The subcommands live in ``backups/management/backup_cli/``, one module per group (its parsers
and a mixin with its ``handle_<action>`` methods); adding a group is one module and one line in
``GROUPS`` below.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from backups.management.backup_cli import archives, compare, jobs, keys, storage

GROUPS = (jobs, archives, compare, keys, storage)


class Command(
    jobs.JobsCommands,
    archives.ArchivesCommands,
    compare.CompareCommands,
    keys.KeysCommands,
    storage.StorageCommands,
    BaseCommand,
):
    help = (
        "Create, process, list, verify, export, decrypt and compare backups; rotate the key ring; audit the storage. "
        "Run `manage.py backup ACTION --help` for the options of one action."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        for group in GROUPS:
            group.add_parsers(sub)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"handle_{action.replace('-', '_')}")(**options)
