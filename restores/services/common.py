"""What every restore service shares: the error users see, the logger, and the dispatch of a
task once the transaction commits."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

# One logger for the whole package, under the name it always had, so log lines and their
# configuration do not depend on which module of the package wrote them.
logger = logging.getLogger("restores.services")


class RestoreError(Exception):
    """A request the rules refuse; the message is shown to the user as it is."""


def _dispatch(task_name: str, *args: Any) -> None:
    """Queue a task once the transaction commits (unless tests or operators run them)."""
    if not getattr(settings, "RESTORE_DISPATCH_IMMEDIATELY", True):
        return
    from restores import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args), robust=True)
