"""Moves this process's clock when BACKUPSVC_TEST_CLOCK_SHIFT (seconds) is set.

The end-to-end tests put this folder on PYTHONPATH of a worker process so that the worker lives
"days later" (time.time and datetime.now shifted; the clock keeps ticking). Test-only: nothing
in the product reads the variable.
"""

import datetime as _dt
import os as _os

_shift = _os.environ.get("BACKUPSVC_TEST_CLOCK_SHIFT")
if _shift:
    import time_machine as _time_machine

    _traveller = _time_machine.travel(
        _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=float(_shift)),
        tick=True,
    )
    _traveller.start()
