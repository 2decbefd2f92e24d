"""A tiny hook registry: who wants to know that usage events were accepted.

The usage service calls :func:`notify_accepted` after every commit that accepted at least
one event (directly, on resolution of a held event, or on assignment). The scheduler
registers a callback that touches the writeback debouncer, so an accepted event reaches the
CRM within seconds instead of at the next writeback interval::

    from stagelink.usage.notify import on_accepted

    on_accepted(lambda connection: debouncer.touch(connection, ...))

Callbacks run synchronously in the caller's thread and must be quick; one that raises is
logged and does not stop the others (the interval writeback is the safety net).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

__all__ = [
    "AcceptedCallback",
    "clear_callbacks",
    "notify_accepted",
    "on_accepted",
    "remove_callback",
]

log = structlog.get_logger(__name__)

AcceptedCallback = Callable[[str], None]
"""``callback(connection_name)``."""

_callbacks: list[AcceptedCallback] = []
_lock = threading.Lock()


def on_accepted(callback: AcceptedCallback) -> None:
    """Call ``callback(connection_name)`` after each commit that accepted usage events."""
    with _lock:
        _callbacks.append(callback)


def remove_callback(callback: AcceptedCallback) -> None:
    """Stop calling ``callback`` (no error if it was not registered)."""
    with _lock:
        if callback in _callbacks:
            _callbacks.remove(callback)


def clear_callbacks() -> None:
    """Forget every callback (for tests and for a process that shuts its scheduler down)."""
    with _lock:
        _callbacks.clear()


def notify_accepted(connection_name: str) -> None:
    """Tell every registered callback that ``connection_name`` has newly accepted events."""
    with _lock:
        callbacks = list(_callbacks)
    for callback in callbacks:
        try:
            callback(connection_name)
        except Exception:
            # The writeback interval picks the events up anyway; never fail the request.
            log.exception("usage_notify_callback_failed", connection=connection_name)
