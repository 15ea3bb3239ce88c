"""The Celery application; tasks live in each app's ``tasks.py``."""

import os
from typing import Any

from celery import Celery, signals

from backupsvc.lib import workerstop

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsvc.settings")

app = Celery("backupsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# A stopping worker fails its running backup or restore with a reason instead of leaving it
# "In progress" (see backupsvc.lib.workerstop).
signals.worker_process_init.connect(workerstop.pool_process_started, weak=False)
signals.worker_shutting_down.connect(workerstop.main_process_shutting_down, weak=False)


@signals.setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Worker and beat log through ``settings.LOGGING`` (its formatter shows the backup or
    restore id of each line). Celery configures logging itself only when this signal has no
    receiver, so ``--loglevel`` is not used: ``LOG_LEVEL`` sets the level everywhere."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
