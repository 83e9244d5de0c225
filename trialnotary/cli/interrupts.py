"""Ctrl-C and ``kill`` stop our long-running commands cleanly, whatever they inherited.

A process started with SIGINT ignored (a background job of a script, ``nohup … &``, a CI
runner without a terminal) passes that on to its children, and Python then installs no
handler of its own: Ctrl-C and ``kill -INT`` would do nothing. The commands that wait or
serve install their handlers explicitly instead.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator


def _exit_cleanly(_signum, _frame) -> None:
    sys.exit(0)


@contextlib.contextmanager
def ctrl_c_interrupts() -> Iterator[None]:
    """Within the block, SIGINT raises KeyboardInterrupt in the main thread; the previous
    handler is restored after. Elsewhere than in the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_on_signals() -> None:
    """For a server's whole life: SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP (its
    terminal closed) SystemExit(0) in the main thread, so all unwind through the server's
    clean stop. A SIGHUP ignored on purpose (``nohup``) stays ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _exit_cleanly)
