"""A tiny observer hook: connectors report each CRM response; the application counts them.

Connectors import nothing of the application, so the application (``/metrics``) registers
an observer here and the CRM clients call :func:`report_response` once per answered
request — logins, retries and refusals included. With no observer registered it costs a
tuple lookup. An observer must be quick and must not raise (errors are swallowed, so a
metrics bug can never fail a CRM call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["ResponseObserver", "add_response_observer", "report_response"]

ResponseObserver = Callable[[str, int, bool], None]
"""``observer(connection_name, http_status, rate_limited)``."""

_observers: tuple[ResponseObserver, ...] = ()
_lock = threading.Lock()


def add_response_observer(observer: ResponseObserver) -> Callable[[], None]:
    """Call ``observer`` for every CRM response; returns the function that removes it."""
    global _observers
    with _lock:
        _observers = (*_observers, observer)

    def remove() -> None:
        global _observers
        with _lock:
            _observers = tuple(o for o in _observers if o is not observer)

    return remove


def report_response(connection: str, status: int, *, rate_limited: bool = False) -> None:
    """A CRM answered a request of ``connection`` with ``status``; ``rate_limited`` when it
    refused for its rate limit (HubSpot's 429, Salesforce's ``REQUEST_LIMIT_EXCEEDED``)."""
    for observer in _observers:  # a tuple swapped atomically: no lock on the hot path
        try:
            observer(connection, status, rate_limited)
        except Exception:  # see the module docstring
            pass
