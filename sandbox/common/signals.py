"""Ctrl-C and SIGTERM both stop a sandbox running in the foreground.

A process started with SIGINT ignored (a parent that ignores it passes that on) would never
see ``KeyboardInterrupt``; and a supervisor stops services with SIGTERM. Installing the
handlers explicitly makes both signals stop the sandbox cleanly in every case.
"""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
