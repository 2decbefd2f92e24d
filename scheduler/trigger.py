"""The debounced writeback: accepted usage reaches the CRM within seconds.

The usage service calls :func:`stagelink.usage.notify.notify_accepted` after each commit
that accepted events; :class:`WritebackTrigger` answers by touching a
:class:`~stagelink.sync.debounce.Debouncer` keyed by connection. After ``window`` seconds
without new events (at most ``max_wait`` after the first one) it runs one writeback pass of
that connection, so a rep's single action shows on the CRM timeline in a second or two,
while a stream of events under load is still written in full batches. The interval
writeback stays the safety net for anything a trigger misses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from connectors.core.connector import Connector
from connectors.core.records import ObjectType
from scheduler.jobs import Runtime, writeback_once
from stagelink.sync import JobAlreadyRunning, JobOutcome, open_connector
from stagelink.sync.debounce import Debouncer, DebouncerClosed
from stagelink.usage.notify import on_accepted, remove_callback

__all__ = ["WritebackTrigger"]

log = structlog.get_logger(__name__)

# The debouncer batches record ids per (connection, object type); a writeback has one key
# per connection, so every touch uses the same placeholder type and id.
_KEY_TYPE = ObjectType.OPPORTUNITY
_KEY_ID = "writeback"

WritebackPass = Callable[[Runtime, str, threading.Event], JobOutcome | None]
"""``(runtime, connection, stop) -> outcome``; raises ``JobAlreadyRunning`` when busy."""


class WritebackTrigger:
    """Runs a writeback of a connection shortly after usage for it was accepted.

    :meth:`install` registers :meth:`touch` with the usage service's accepted-hook;
    :meth:`close` unregisters it and flushes what is pending.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        window: float = 1.0,
        max_wait: float = 3.0,
        writeback: WritebackPass | None = None,
    ) -> None:
        self.runtime = runtime
        self.writeback = writeback or self._writeback_pass
        # One connector per connection, kept between passes: a pass a second for a trickle
        # of events must not log in to the CRM each time (Salesforce limits logins per
        # hour). The debouncer never runs one connection on two threads at once.
        self._connectors: dict[str, Connector] = {}
        self._connectors_lock = threading.Lock()
        # Its own stop event: a shutdown still flushes what was accepted, and only a
        # flush that runs out of time stops at the next checkpoint.
        self.stop = threading.Event()
        self._debouncer = Debouncer(
            self._run, window=window, max_wait=max_wait, workers=2, name="writeback-trigger"
        )
        self._closing = False
        self._installed = False

    def install(self) -> WritebackTrigger:
        """Listen to accepted usage (``stagelink.usage.notify``)."""
        on_accepted(self.touch)
        self._installed = True
        return self

    def touch(self, connection: str) -> None:
        """Usage for ``connection`` was accepted: write it back soon."""
        try:
            self._debouncer.touch(connection, _KEY_TYPE, [_KEY_ID])
        except DebouncerClosed:
            pass  # shutting down: the next interval writeback picks it up

    def pending(self) -> list[str]:
        """Connections waiting for their debounced writeback."""
        return sorted({connection for connection, _type in self._debouncer.pending()})

    def flush(self, timeout: float | None = None) -> bool:
        """Run every pending writeback now and wait for it (tests, benchmarks)."""
        return self._debouncer.flush(timeout)

    def close(self, timeout: float = 20.0) -> bool:
        """Stop listening, run what is pending; ``False`` if that did not finish in time (the
        running passes then stop at their next checkpoint)."""
        if self._installed:
            remove_callback(self.touch)
            self._installed = False
        self._closing = True
        finished = self._debouncer.close(timeout)
        if not finished:
            # A pass still runs with its connector: let it reach its checkpoint instead.
            self.stop.set()
            return False
        with self._connectors_lock:
            connectors = list(self._connectors.values())
            self._connectors.clear()
        for connector in connectors:
            connector.close()
        return True

    def _writeback_pass(
        self, runtime: Runtime, connection: str, stop: threading.Event
    ) -> JobOutcome | None:
        settings = runtime.config.connection(connection)
        if not settings.writeback.enabled:
            return None
        with self._connectors_lock:
            connector = self._connectors.get(connection)
        if connector is None:
            connector = open_connector(settings)
            with self._connectors_lock:
                self._connectors[connection] = connector
        try:
            outcome = writeback_once(
                runtime,
                connection,
                trigger="usage",
                stop=stop,
                raise_if_busy=True,
                connector=connector,
            )
        except JobAlreadyRunning:
            raise  # nothing was sent: the session is as good as before
        except BaseException:
            self._drop(connection, connector)
            raise
        if outcome is None or not outcome.ok:
            # Failed (or crashed, logged): the next pass starts with a fresh session.
            self._drop(connection, connector)
        return outcome

    def _drop(self, connection: str, connector: Connector) -> None:
        with self._connectors_lock:
            if self._connectors.get(connection) is connector:
                del self._connectors[connection]
        connector.close()

    def _run(self, connection: str, _type: ObjectType, _ids: list[str]) -> None:
        try:
            self.writeback(self.runtime, connection, self.stop)
        except JobAlreadyRunning:
            # A pass is running (interval job, another node): it may have claimed its
            # rows before ours were committed, so look again after the window.
            if not self._closing:
                log.debug("debounced_writeback_busy", connection=connection)
                self.touch(connection)
