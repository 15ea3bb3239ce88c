"""The Celery application; tasks live in each app's ``tasks.py``."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsvc.settings")

app = Celery("backupsvc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Worker and beat log through ``settings.LOGGING`` (its formatter shows the backup or
    restore id of each line). Celery configures logging itself only when this signal has no
    receiver, so ``--loglevel`` is not used: ``LOG_LEVEL`` sets the level everywhere."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
