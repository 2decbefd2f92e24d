"""Debounced targeted syncs: many change notifications about a few records, one read.

A CRM's webhooks arrive in bursts (HubSpot sends up to 100 events per request, and one edit
of a deal can fire several property-change events), and the same event may be delivered
twice. :class:`Debouncer` collects the touched ``(connection, object type, id)`` for a short
quiet window and then calls its callback once per connection and object type with the
distinct ids, so 100 events about 3 deals cost one read of 3 deals::

    debouncer = Debouncer(ApplyTouched(config, storage), window=2.0, max_wait=10.0)
    debouncer.touch("acme-hubspot", ObjectType.OPPORTUNITY, ["301"], event_key=(65471, 42, 17823))
    ...
    debouncer.close()  # flushes what is pending, waits for running callbacks

Timing: a key is flushed ``window`` seconds after its last touch, but never later than
``max_wait`` seconds after its first, so a steady trickle cannot postpone it forever.
Callbacks run on a small thread pool; one key is never processed by two threads at once
(ids touched meanwhile wait for the next round), so an older read cannot overwrite a newer
one. :class:`ApplyTouched` is the callback the web layer uses: it stores the records
through :meth:`SyncEngine.apply_ids`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

import structlog

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.records import ObjectType
from stagelink.settings import AppConfig
from stagelink.sync.engine import JobOutcome, SyncEngine
from stagelink.sync.runner import Storage, open_connector

__all__ = ["ApplyTouched", "Debouncer", "DebouncerClosed", "RecentKeys", "TouchCallback"]

log = structlog.get_logger(__name__)

TouchCallback = Callable[[str, ObjectType, list[str]], object]
"""``callback(connection, object_type, distinct_ids)``; what it returns is ignored."""

_Key = tuple[str, ObjectType]


class DebouncerClosed(RuntimeError):
    """The debouncer was closed; nothing more is accepted."""


class RecentKeys:
    """A bounded, thread-safe memory of keys seen in the last ``ttl`` seconds.

    The oldest keys are forgotten first when ``max_size`` is reached, so memory stays bounded
    whatever the traffic; a forgotten duplicate only costs one extra read.
    """

    def __init__(
        self,
        *,
        ttl: float = 3600.0,
        max_size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_size <= 0:
            raise ValueError("ttl and max_size must be positive")
        self.ttl = ttl
        self.max_size = max_size
        self._clock = clock
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; ``False`` when it was already seen within ``ttl``."""
        now = self._clock()
        with self._lock:
            # Insertion order is expiry order (one ttl for all), so expired keys are in front.
            while self._expiry:
                oldest, expires = next(iter(self._expiry.items()))
                if expires > now:
                    break
                del self._expiry[oldest]
            if key in self._expiry:
                return False
            self._expiry[key] = now + self.ttl
            if len(self._expiry) > self.max_size:
                self._expiry.popitem(last=False)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)


@dataclass
class _Pending:
    first: float
    last: float
    # A dict keeps the ids distinct and in arrival order.
    ids: dict[str, None] = field(default_factory=dict)
    #: Due now regardless of the window (flush, close, or a remainder over ``max_ids``).
    forced: bool = False

    def due_at(self, window: float, max_wait: float) -> float:
        if self.forced:
            return float("-inf")
        return min(self.last + window, self.first + max_wait)


class Debouncer:
    """Collects touched record ids and hands them to ``callback`` in debounced batches."""

    def __init__(
        self,
        callback: TouchCallback,
        *,
        window: float = 2.0,
        max_wait: float = 10.0,
        max_ids: int = 1000,
        workers: int = 2,
        dedupe_ttl: float = 3600.0,
        dedupe_max: int = 50_000,
        name: str = "debounce",
    ) -> None:
        if window < 0 or max_wait < window:
            raise ValueError("need 0 <= window <= max_wait")
        if max_ids < 1 or workers < 1:
            raise ValueError("max_ids and workers must be at least 1")
        self.callback = callback
        self.window = window
        self.max_wait = max_wait
        self.max_ids = max_ids
        self.name = name
        self.seen = RecentKeys(ttl=dedupe_ttl, max_size=dedupe_max)
        self._workers = workers
        self._pending: dict[_Key, _Pending] = {}
        self._running: set[_Key] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- public ---------------------------------------------------------------------------

    def touch(
        self,
        connection: str,
        object_type: ObjectType,
        crm_ids: Iterable[str],
        *,
        event_key: Hashable | None = None,
    ) -> bool:
        """Note that ``crm_ids`` changed; ``False`` if ``event_key`` was seen before (dropped).

        ``event_key`` identifies the notification (for HubSpot: subscription id, event id and
        occurrence time); it is remembered per connection. Raises :class:`DebouncerClosed`
        after :meth:`close`.
        """
        ids = [str(crm_id) for crm_id in crm_ids]
        with self._cond:
            # Checked first: a refused event must not be remembered, or its redelivery
            # would be dropped as a duplicate.
            if self._closing:
                raise DebouncerClosed(f"{self.name} is closed")
            if event_key is not None and not self.seen.add((connection, event_key)):
                return False
            if not ids:
                return True
            now = time.monotonic()
            self._start()
            key = (connection, object_type)
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending(first=now, last=now)
            pending.last = now
            pending.ids.update(dict.fromkeys(ids))
            if len(pending.ids) >= self.max_ids:
                pending.forced = True
            self._cond.notify_all()
        return True

    def pending(self) -> dict[tuple[str, ObjectType], list[str]]:
        """What waits to be flushed (not counting batches being processed)."""
        with self._cond:
            return {key: list(p.ids) for key, p in self._pending.items()}

    def flush(self, timeout: float | None = None) -> bool:
        """Process everything pending now and wait for it; ``False`` if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for pending in self._pending.values():
                pending.forced = True
            self._cond.notify_all()
            while self._pending or self._running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Stop accepting touches, flush what is pending and stop the threads.

        Returns ``False`` when the pending work did not finish within ``timeout`` (it is then
        abandoned; polling syncs pick those records up).
        """
        with self._cond:
            self._closing = True
        finished = self.flush(timeout)
        with self._cond:
            self._cond.notify_all()
            thread, pool = self._thread, self._pool
        if thread is not None:
            thread.join(timeout)
        if pool is not None:
            pool.shutdown(wait=finished, cancel_futures=True)
        if not finished:
            log.warning("debounce_close_timeout", debouncer=self.name, pending=self.pending())
        return finished

    def __enter__(self) -> Debouncer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the dispatcher -------------------------------------------------------------------

    def _start(self) -> None:
        # Threads start on first use, so building an app (or a test) spawns nothing.
        if self._thread is not None:
            return
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"{self.name}-worker")
        self._thread = threading.Thread(target=self._dispatch, name=self.name, daemon=True)
        self._thread.start()

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                batches = self._take_due()
                while not batches:
                    if self._closing and not self._pending and not self._running:
                        return
                    self._cond.wait(self._next_wait())
                    batches = self._take_due()
            assert self._pool is not None
            for key, ids in batches:
                try:
                    self._pool.submit(self._run, key, ids)
                except RuntimeError:  # the pool was shut down by a close() that timed out
                    with self._cond:
                        self._running.discard(key)
                        self._cond.notify_all()
                    return

    def _next_wait(self) -> float | None:
        waiting = [p for key, p in self._pending.items() if key not in self._running]
        if not waiting:
            return None
        due = min(p.due_at(self.window, self.max_wait) for p in waiting)
        return max(0.0, due - time.monotonic())

    def _take_due(self) -> list[tuple[_Key, list[str]]]:
        now = time.monotonic()
        batches: list[tuple[_Key, list[str]]] = []
        for key, pending in list(self._pending.items()):
            if key in self._running or pending.due_at(self.window, self.max_wait) > now:
                continue
            ids = list(pending.ids)
            taken, rest = ids[: self.max_ids], ids[self.max_ids :]
            if rest:
                pending.ids = dict.fromkeys(rest)
                pending.forced = True
            else:
                del self._pending[key]
            self._running.add(key)
            batches.append((key, taken))
        return batches

    def _run(self, key: _Key, ids: list[str]) -> None:
        connection, object_type = key
        try:
            self.callback(connection, object_type, ids)
        except Exception:
            # Polling syncs are the safety net; one failed batch must not stop the others.
            log.exception(
                "debounce_callback_failed",
                debouncer=self.name,
                connection=connection,
                object_type=object_type.value,
                ids=len(ids),
            )
        finally:
            with self._cond:
                self._running.discard(key)
                self._cond.notify_all()


class _Target:
    """One connection's connector and engine, opened on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connector: Connector | None = None
        self.engine: SyncEngine | None = None


class ApplyTouched:
    """A :class:`Debouncer` callback: reads the touched records by id and stores them.

    Each connection's connector is opened once and reused; calls for one connection are
    serialized (a connector is not assumed to be thread-safe). A failed read drops the
    connector so the next batch starts with a fresh session.
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        *,
        connector_factory: Callable[[ConnectionConfig], Connector] = open_connector,
        trigger: str = "webhook",
    ) -> None:
        self.config = config
        self.storage = storage
        self.connector_factory = connector_factory
        self.trigger = trigger
        self._targets: dict[str, _Target] = {}
        self._lock = threading.Lock()

    def __call__(
        self, connection: str, object_type: ObjectType, crm_ids: Sequence[str]
    ) -> JobOutcome:
        """Store the current state of ``crm_ids`` (ids the CRM no longer has become deletions);
        the outcome says whether the read succeeded."""
        with self._lock:
            target = self._targets.setdefault(connection, _Target())
        with target.lock:
            engine = self._engine(target, connection)
            outcome = engine.apply_ids(object_type, list(crm_ids), trigger=self.trigger)
            if not outcome.ok:
                self._drop(target)
        _log_outcome(connection, object_type, len(crm_ids), outcome)
        return outcome

    def close(self) -> None:
        """Close every connector opened so far."""
        with self._lock:
            targets = list(self._targets.values())
            self._targets.clear()
        for target in targets:
            with target.lock:
                self._drop(target)

    def _engine(self, target: _Target, connection: str) -> SyncEngine:
        if target.engine is None:
            settings = self.config.connection(connection)
            connector = self.connector_factory(settings)
            try:
                target.engine = SyncEngine(
                    self.storage.sessions,
                    connector,
                    connection_name=settings.name,
                    budget_fraction=settings.budget.max_daily_fraction,
                )
            except BaseException:
                connector.close()
                raise
            target.connector = connector
        return target.engine

    @staticmethod
    def _drop(target: _Target) -> None:
        if target.connector is not None:
            target.connector.close()
        target.connector = None
        target.engine = None


def _log_outcome(connection: str, object_type: ObjectType, asked: int, outcome: JobOutcome) -> None:
    fields = {
        "connection": connection,
        "object_type": object_type.value,
        "ids": asked,
        "job_id": outcome.job_id,
        "status": outcome.status.value,
    }
    if outcome.ok:
        log.info("touched_records_applied", **fields)
    else:
        log.warning("touched_records_failed", error=outcome.error, **fields)
