"""The scheduled jobs: module-level functions with explicit ids.

APScheduler's database job store pickles a job as a *reference* to its function plus its
arguments, so every job here is a module-level function of the connection name alone. What
a job needs from the running process (configuration, storage, node id, the stop event) is
bound once per process with :func:`bind`; a job that fires in a process with nothing bound
(a store shared with a node that is shutting down) logs and does nothing.

Each job runs through the same engine the CLI uses. Engines take a lease per connection and
job kind (``sync:NAME``, ``writeback:NAME``), so when several nodes share one schedule on
PostgreSQL a job that finds the lease held by another node exits quietly: logged, no job
run recorded, nothing done twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

import structlog

from connectors.core.connector import Connector
from stagelink.jobs import take_job_lease
from stagelink.nudges.service import run_nudges
from stagelink.settings import AppConfig
from stagelink.storage.leases import release_lease
from stagelink.sync import JobAlreadyRunning, JobOutcome, Storage, SyncOptions, run_job
from stagelink.usage.resolve import resolve_held
from stagelink.writeback import WritebackOptions, run_writeback

__all__ = [
    "JobName",
    "JobObserver",
    "Runtime",
    "bind",
    "bound",
    "job_id",
    "resolve_held_job",
    "run_sync_job",
    "run_writeback_job",
    "unbind",
    "writeback_once",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class JobName(StrEnum):
    """The kinds of scheduled job; a job's id is ``KIND:CONNECTION``."""

    SYNC = "sync"
    WRITEBACK = "writeback"
    RESOLVE_HELD = "resolve-held"
    #: One job for all connections: stage-change nudges (id ``nudges:all``).
    NUDGES = "nudges"


class JobObserver(Protocol):
    """Told how every job run by this process ended (metrics)."""

    def __call__(self, kind: str, connection: str, outcome: JobOutcome) -> None: ...


@dataclass
class Runtime:
    """What the jobs of one process run with."""

    config: AppConfig
    storage: Storage
    node_id: str
    lease_ttl: timedelta
    #: Set on shutdown: running engines stop at their next checkpoint.
    stop: threading.Event = field(default_factory=threading.Event)
    observe: JobObserver | None = None

    def observed(self, kind: str, connection: str, outcome: JobOutcome | None) -> JobOutcome | None:
        """Report ``outcome`` (when there is one) and return it."""
        if outcome is not None and self.observe is not None:
            try:
                self.observe(kind, connection, outcome)
            except Exception:  # metrics must never fail a job
                log.exception("job_observer_failed", kind=kind)
        return outcome


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def bind(runtime: Runtime) -> None:
    """Make ``runtime`` what this process's jobs run with."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime


def unbind(runtime: Runtime) -> None:
    """Forget ``runtime`` (if it is still the bound one)."""
    global _runtime
    with _runtime_lock:
        if _runtime is runtime:
            _runtime = None


def bound() -> Runtime | None:
    """The runtime bound in this process, if any."""
    with _runtime_lock:
        return _runtime


def job_id(kind: JobName | str, connection_name: str) -> str:
    """The explicit job id, e.g. ``sync:acme-salesforce``."""
    return f"{JobName(kind).value}:{connection_name}"


# -- the jobs -------------------------------------------------------------------------------


def run_sync_job(connection_name: str) -> JobOutcome | None:
    """One incremental sync of ``connection_name`` (the ``sync`` interval job)."""
    runtime = _runtime_for(JobName.SYNC, connection_name)
    if runtime is None:
        return None

    def sync() -> JobOutcome:
        assert runtime is not None
        return run_job(
            runtime.config,
            runtime.storage,
            connection_name,
            SyncOptions(trigger="schedule"),
            stop=runtime.stop,
            node_id=runtime.node_id,
            lease_ttl=runtime.lease_ttl,
        )

    outcome = _guarded(JobName.SYNC, connection_name, sync)
    observed = runtime.observed(JobName.SYNC, connection_name, outcome)
    if outcome is not None and outcome.ok:
        # Reps hear of a stage change right after the sync that saw it, not a minute later.
        run_nudges_job()
    return observed


def run_nudges_job(_scope: str = "all") -> None:
    """Detect new stage changes and send the nudges that are due (every minute, and after
    each successful sync). A failure is logged; the next pass picks the work up again."""
    runtime = bound()
    if runtime is None or runtime.stop.is_set() or not runtime.config.nudges.enabled:
        return
    try:
        run_nudges(runtime.config, runtime.storage, node_id=runtime.node_id)
    except Exception:
        log.exception("nudges_failed")


def run_writeback_job(connection_name: str) -> JobOutcome | None:
    """Write ``connection_name``'s pending usage to its CRM (the ``writeback`` interval job)."""
    runtime = _runtime_for(JobName.WRITEBACK, connection_name)
    if runtime is None:
        return None
    return writeback_once(runtime, connection_name, trigger="schedule")


def resolve_held_job(connection_name: str) -> None:
    """Retry usage events held for an opportunity not synced yet (fetching it from the CRM)."""
    runtime = _runtime_for(JobName.RESOLVE_HELD, connection_name)
    if runtime is None:
        return
    lease = job_id(JobName.RESOLVE_HELD, connection_name)
    sessions = runtime.storage.sessions
    try:
        # Safe on two nodes at once (rows are locked), but each would read the same deals
        # from the CRM: one node per connection is enough. A process of this host killed
        # while holding it is taken over at once, as the sync and writeback leases are
        # (else held usage waits out the whole lease_ttl: found by the soak).
        take_job_lease(
            sessions,
            lease,
            runtime.node_id,
            runtime.lease_ttl,
            what=f"the held-usage retry of connection {connection_name!r}",
        )
    except JobAlreadyRunning as exc:
        log.info("job_skipped_lease_held", job=lease, reason=str(exc))
        return
    try:
        _guarded(
            JobName.RESOLVE_HELD,
            connection_name,
            lambda: resolve_held(runtime.config, runtime.storage, connection_name),
        )
    finally:
        release_lease(sessions, lease, runtime.node_id)


def writeback_once(
    runtime: Runtime,
    connection_name: str,
    *,
    trigger: str,
    stop: threading.Event | None = None,
    raise_if_busy: bool = False,
    connector: Connector | None = None,
) -> JobOutcome | None:
    """One writeback pass; ``None`` when it did not run (disabled, lease held, failed).

    ``trigger`` is recorded in the job run. With ``raise_if_busy`` a held lease raises
    :class:`JobAlreadyRunning` instead, so the debounced trigger can look again after the
    running pass (see ``trigger.py``). ``connector``: one the caller keeps open between
    passes (else the pass opens its own).
    """
    try:
        connection = runtime.config.connection(connection_name)
    except KeyError:
        log.warning("writeback_for_unknown_connection", connection=connection_name)
        return None
    if not connection.writeback.enabled:
        return None
    options = WritebackOptions(lease_ttl=runtime.lease_ttl, trigger=trigger)

    def write() -> JobOutcome:
        return run_writeback(
            runtime.config,
            runtime.storage,
            connection_name,
            stop=stop or runtime.stop,
            options=options,
            node_id=runtime.node_id,
            connector=connector,
        )

    outcome = _guarded(JobName.WRITEBACK, connection_name, write, reraise_held=raise_if_busy)
    return runtime.observed(JobName.WRITEBACK, connection_name, outcome)


# -- internals ------------------------------------------------------------------------------


def _runtime_for(kind: JobName, connection_name: str) -> Runtime | None:
    runtime = bound()
    if runtime is None:
        log.warning("job_without_runtime", job=job_id(kind, connection_name))
        return None
    if runtime.stop.is_set():
        return None  # shutting down: start nothing new
    try:
        runtime.config.connection(connection_name)
    except KeyError:
        # Another node's configuration scheduled it; this node does not know the connection.
        log.warning("job_for_unknown_connection", job=job_id(kind, connection_name))
        return None
    return runtime


def _guarded(
    kind: JobName,
    connection_name: str,
    work: Callable[[], T],
    *,
    reraise_held: bool = False,
) -> T | None:
    started = time.monotonic()
    try:
        return work()
    except JobAlreadyRunning as exc:
        if reraise_held:
            raise
        # Another node (or a manual run) has it: by design, not a failure.
        log.info("job_skipped_lease_held", job=job_id(kind, connection_name), reason=str(exc))
    except Exception:
        # Engines record their own failures in job runs; this is what escaped them
        # (a plugin that cannot be loaded, the database going away).
        log.exception(
            "scheduled_job_failed",
            job=job_id(kind, connection_name),
            seconds=round(time.monotonic() - started, 2),
        )
    return None
