"""Named crash points for the fault-injection tests.

``crash_point("after-sign")`` kills the process outright (SIGKILL: no cleanup, no
``finally``) when ``TRIALNOTARY_CRASH_AT`` names that point. Unset, as in production, it
does nothing. The points sit between the steps whose order makes crashes harmless, so the
tests can show that a restart reconciles everything from the database and the chain.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after-seal", "after-sign", "after-send", "after-receipt", "while-confirming")
ENVIRONMENT = "TRIALNOTARY_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENVIRONMENT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
