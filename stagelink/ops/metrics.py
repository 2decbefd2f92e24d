"""Prometheus metrics for ``/metrics``.

Two sources:

* **storage**, read at scrape time (cached for a few seconds): usage events by status and
  writeback outbox rows by state, per connection. These describe the whole deployment, so
  every node reports the same values — aggregate them with ``max``, not ``sum``;
* **this process**, counted as things happen: CRM API responses and rate-limit refusals per
  connection (reported by the connectors' clients through ``connectors.core.telemetry``),
  requests spent by jobs, and job durations by kind and status. Sum these across nodes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from connectors.core.telemetry import add_response_observer
from stagelink.storage import Connection, UsageEvent, WritebackOutbox
from stagelink.storage.enums import OutboxState, UsageStatus
from stagelink.sync import JobOutcome, Storage

__all__ = ["CONTENT_TYPE", "OpsMetrics"]

log = structlog.get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Sync jobs run from a second (a webhook's few ids) to hours (a backfill).
_JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class _Snapshot:
    taken: float
    usage: dict[tuple[str, str], int]
    outbox: dict[tuple[str, str], int]


class _StorageCollector(Collector):
    """Usage and outbox counts from the database, at most once per ``ttl`` seconds."""

    def __init__(self, storage: Storage, ttl: float) -> None:
        self.storage = storage
        self.ttl = ttl
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        # Declared up front so registering does not query the database.
        return [
            GaugeMetricFamily("stagelink_database_up", ""),
            GaugeMetricFamily("stagelink_usage_events", "", labels=["connection", "status"]),
            GaugeMetricFamily("stagelink_writeback_outbox", "", labels=["connection", "state"]),
        ]

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        up = GaugeMetricFamily(
            "stagelink_database_up", "1 when the last read of the database for metrics worked."
        )
        up.add_metric([], 0 if snapshot is None else 1)
        yield up
        if snapshot is None:
            return
        usage = GaugeMetricFamily(
            "stagelink_usage_events",
            "Usage events stored, by connection and status (same on every node).",
            labels=["connection", "status"],
        )
        for (connection, status), count in sorted(snapshot.usage.items()):
            usage.add_metric([connection, status], count)
        yield usage
        outbox = GaugeMetricFamily(
            "stagelink_writeback_outbox",
            "Writeback outbox rows by connection and state: pending, in_flight, written, dead "
            "(same on every node).",
            labels=["connection", "state"],
        )
        for (connection, state), count in sorted(snapshot.outbox.items()):
            outbox.add_metric([connection, state], count)
        yield outbox

    def _current(self) -> _Snapshot | None:
        with self._lock:
            now = time.monotonic()
            if self._snapshot is not None and now - self._snapshot.taken < self.ttl:
                return self._snapshot
            try:
                self._snapshot = self._read(now)
            except Exception as exc:
                log.warning("metrics_storage_unavailable", error=str(exc))
                self._snapshot = None
            return self._snapshot

    def _read(self, now: float) -> _Snapshot:
        with self.storage.sessions() as session:
            names: dict[int, str] = {
                row.id: row.name for row in session.execute(select(Connection.id, Connection.name))
            }
            usage_rows = session.execute(
                select(UsageEvent.connection_id, UsageEvent.status, func.count()).group_by(
                    UsageEvent.connection_id, UsageEvent.status
                )
            ).all()
            outbox_rows = session.execute(
                select(WritebackOutbox.connection_id, WritebackOutbox.state, func.count()).group_by(
                    WritebackOutbox.connection_id, WritebackOutbox.state
                )
            ).all()
            usage = {(names[c], UsageStatus(s).value): n for c, s, n in usage_rows}
            outbox = {(names[c], OutboxState(s).value): n for c, s, n in outbox_rows}
        # Every state of a connection that has rows, zeros included: a series that
        # disappears cannot be alerted on.
        for connection in {c for c, _ in outbox}:
            for state in OutboxState:
                outbox.setdefault((connection, state.value), 0)
        for connection in {c for c, _ in usage}:
            for status in UsageStatus:
                usage.setdefault((connection, status.value), 0)
        return _Snapshot(now, usage, outbox)


class OpsMetrics:
    """The metrics of one process, in their own registry (so tests and several apps in one
    process never collide). :meth:`attach` starts counting CRM responses."""

    def __init__(self, storage: Storage | None = None, *, storage_ttl: float = 5.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.crm_responses = Counter(
            "stagelink_crm_requests",
            "CRM API requests answered, by connection and HTTP status class (this process).",
            ["connection", "status"],
            registry=self.registry,
        )
        self.crm_rate_limited = Counter(
            "stagelink_crm_rate_limited",
            "CRM API requests refused for the rate limit: HubSpot 429, Salesforce "
            "REQUEST_LIMIT_EXCEEDED (this process).",
            ["connection"],
            registry=self.registry,
        )
        self.job_requests = Counter(
            "stagelink_job_crm_requests",
            "CRM API requests spent by jobs this process ran, by connection and job kind.",
            ["connection", "kind"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "stagelink_job_duration_seconds",
            "Duration of jobs this process ran, by kind and final status.",
            ["kind", "status"],
            buckets=_JOB_BUCKETS,
            registry=self.registry,
        )
        if storage is not None:
            self.registry.register(_StorageCollector(storage, storage_ttl))
        self._detach: Callable[[], None] | None = None

    def attach(self) -> OpsMetrics:
        """Count every CRM response from now on (idempotent)."""
        if self._detach is None:
            self._detach = add_response_observer(self.observe_response)
        return self

    def detach(self) -> None:
        """Stop counting CRM responses."""
        if self._detach is not None:
            self._detach()
            self._detach = None

    def observe_response(self, connection: str, status: int, rate_limited: bool) -> None:
        """One CRM response (a ``connectors.core.telemetry`` observer)."""
        label = f"{status // 100}xx" if status >= 100 else "none"
        self.crm_responses.labels(connection, label).inc()
        if rate_limited:
            self.crm_rate_limited.labels(connection).inc()

    def observe_job(self, kind: str, connection: str, outcome: JobOutcome) -> None:
        """A job of ``connection`` this process ran ended with ``outcome``."""
        self.job_duration.labels(str(kind), outcome.status.value).observe(outcome.seconds)
        requests = outcome.counts.get("requests")
        if isinstance(requests, int) and requests > 0:
            self.job_requests.labels(connection, str(kind)).inc(requests)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
