"""Clean shutdown of `paysheet serve` on SIGTERM as well as SIGINT.

uvicorn captures both signals while it serves, shuts down gracefully, restores the previous
handlers and then *re-raises* the signal. With Python's default SIGTERM handler that re-raise
kills the process on the spot: no `finally`, no atexit, so the in-process consumer and the
embedded PostgreSQL were left running. Installing a handler that raises `SystemExit` turns
both signals (also one arriving during start-up) into an ordinary unwinding exit.
"""

from __future__ import annotations

import signal
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Stopped(SystemExit):
    """Raised by the signal handler; exit status 128 + signal number, as a shell reports it."""


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(128 + signum)


def exit_on_signals() -> None:
    """Make SIGTERM and SIGINT unwind the main thread (finally blocks and atexit run)."""
    for sig in HANDLED:
        signal.signal(sig, _raise_stopped)
