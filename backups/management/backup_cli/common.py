"""Helpers shared by the ``manage.py backup`` subcommands."""

from __future__ import annotations

import getpass
import os
from argparse import ArgumentTypeError
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from backups.models import Backup
from backupsvc.lib.sizes import human_size
from organizations.models import Organization

MAX_PASSWORD_FILE = 4096


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise ArgumentTypeError("must be 1 or more")
    return number


def csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def size(value: int | None) -> str:
    return human_size(value, empty="-")


def login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return "unknown"


def when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def read_password(path: Path) -> str:
    """The password in ``path`` (one line; a trailing newline is ignored). Never echoed."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_PASSWORD_FILE + 1)
    except FileNotFoundError:
        raise CommandError(f"The password file {path} does not exist.") from None
    except OSError as exc:
        raise CommandError(f"The password file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_PASSWORD_FILE:
        raise CommandError(f"The password file {path} is too large to hold a password.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"The password file {path} is not UTF-8 text.") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if "\n" in password or "\r" in password:
        raise CommandError(f"The password file {path} must hold the password on a single line.")
    if not password:
        raise CommandError(f"The password file {path} is empty.")
    return password


def new_secret_file(path: Path) -> int:
    """Create ``path`` for writing, readable by its owner only; never replaces an existing file."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(
            f"{path} already exists; give a new file for the password (it is never overwritten)."
        ) from None
    except FileNotFoundError:
        raise CommandError(f"The folder of {path} does not exist.") from None
    except OSError as exc:
        raise CommandError(f"{path} cannot be created: {exc.strerror or exc}.") from None


def organization(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"There is no organization with the slug {slug!r}.")
    return organization


def backup(backup_id: int) -> Backup:
    backup = Backup.objects.select_related("organization").filter(pk=backup_id).first()
    if backup is None:
        raise CommandError(f"There is no backup with id {backup_id}.")
    return backup
