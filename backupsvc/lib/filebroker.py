"""The embedded set-up's Celery broker: kombu's filesystem transport (files under var/celery/),
with two fixes for a worker that must stop within seconds.

- kombu has no event loop for this transport, so Celery's worker polls it in a blocking loop
  (``synloop``) of 2-second waits, and only looks at its shutdown flag between waits: on warm
  shutdown it used to wait out one more full cycle (up to 4 s) before even starting to stop.
  Here each wait polls in short steps and ends as soon as the worker is shutting down.
- A folder has no host name, yet kombu logged "No hostname was supplied. Reverting to default
  'localhost'" at every start of the worker, beat and web, because the base virtual transport
  declares one. This transport declares none.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic, sleep
from typing import Any

from kombu.transport import filesystem

POLLING_INTERVAL = 0.25  # seconds between two looks at the queue folder


def _worker_shutting_down() -> bool:
    from celery.worker import state

    # Celery sets these to the exit code, which is 0 for a clean stop: "set" is "not None/False".
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


class Transport(filesystem.Transport):
    """kombu's filesystem transport that stops waiting when the worker is stopping."""

    polling_interval = POLLING_INTERVAL

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {"port": self.default_port}

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if _worker_shutting_down():
                    raise TimeoutError() from None  # the worker's loop then sees the flag
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None
                sleep(min(self.polling_interval, timeout) if timeout else self.polling_interval)
            else:
                return
