"""The APScheduler 3 scheduler of one node, its jobs kept in the configured database.

Per connection: an incremental sync every ``sync.interval``, a writeback every
``writeback.interval`` (when ``writeback.enabled``) and a retry of held usage events every
``scheduler.resolve_held_interval``. Jobs coalesce missed runs into one, skip a run later
than ``scheduler.misfire_grace`` and never overlap in one process (``max_instances=1``);
across processes the engines' leases keep one connection's job on one node at a time.

On start the stored jobs are reconciled with the configuration: jobs of new connections are
added (and run at once), jobs of removed connections or disabled writeback are removed, and
jobs whose interval or options changed are rescheduled. On PostgreSQL every node shares the
job table; an advisory lock serialises the reconciliation of nodes starting together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, text

from scheduler.jobs import (
    JobName,
    JobObserver,
    Runtime,
    bind,
    job_id,
    resolve_held_job,
    run_nudges_job,
    run_sync_job,
    run_writeback_job,
    unbind,
)
from stagelink.settings import AppConfig
from stagelink.storage import make_engine
from stagelink.sync import Storage, default_node_id

__all__ = ["JOB_TABLE", "JobSpec", "NodeScheduler", "ReconcileReport", "planned_jobs"]

log = structlog.get_logger(__name__)

JOB_TABLE = "apscheduler_jobs"
# Any constant shared by all stagelink nodes (distinct from the migration lock's).
_RECONCILE_LOCK_KEY = 0x57A6E5C4

_FUNCTIONS: dict[JobName, Callable[[str], Any]] = {
    JobName.SYNC: run_sync_job,
    JobName.WRITEBACK: run_writeback_job,
    JobName.RESOLVE_HELD: resolve_held_job,
    JobName.NUDGES: run_nudges_job,
}


@dataclass(frozen=True)
class JobSpec:
    """One job the configuration asks for."""

    kind: JobName
    connection: str
    interval: timedelta

    @property
    def id(self) -> str:
        """The explicit, stable job id (``sync:acme-salesforce``)."""
        return job_id(self.kind, self.connection)

    @property
    def func(self) -> Callable[[str], Any]:
        """The module-level job function."""
        return _FUNCTIONS[self.kind]


def planned_jobs(config: AppConfig) -> list[JobSpec]:
    """The jobs ``config`` asks for, in a stable order."""
    specs: list[JobSpec] = []
    for connection in config.connections:
        specs.append(JobSpec(JobName.SYNC, connection.name, connection.sync.interval))
        if connection.writeback.enabled:
            specs.append(JobSpec(JobName.WRITEBACK, connection.name, connection.writeback.interval))
            specs.append(
                JobSpec(
                    JobName.RESOLVE_HELD,
                    connection.name,
                    config.scheduler.resolve_held_interval,
                )
            )
    if config.nudges.enabled:
        # Delivers what quiet hours, rate limits and digests held back, and changes that
        # arrived by webhook (no sync job follows those).
        specs.append(JobSpec(JobName.NUDGES, "all", timedelta(minutes=1)))
    return specs


@dataclass
class ReconcileReport:
    """What reconciling the stored jobs with the configuration changed (job ids)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class NodeScheduler:
    """This node's scheduler: a ``BackgroundScheduler`` on a database job store.

    ::

        scheduler = NodeScheduler(config, storage)
        scheduler.start()  # reconciles the stored jobs, then runs them
        ...
        scheduler.shutdown()  # running jobs stop at their next checkpoint
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        *,
        node_id: str | None = None,
        observe: JobObserver | None = None,
        stop: threading.Event | None = None,
        max_workers: int | None = None,
    ) -> None:
        settings = config.scheduler
        self.config = config
        self.runtime = Runtime(
            config=config,
            storage=storage,
            node_id=node_id or settings.node_id or default_node_id(),
            lease_ttl=settings.lease_ttl,
            stop=stop or threading.Event(),
            observe=observe,
        )
        # The job store gets its own engine (and pool): APScheduler disposes it on shutdown.
        self._store_engine: Engine = make_engine(config.database_url)
        self._store = SQLAlchemyJobStore(engine=self._store_engine, tablename=JOB_TABLE)
        workers = max_workers or max(4, 2 * len(config.connections) + 1)
        self._scheduler = BackgroundScheduler(
            jobstores={"default": self._store},
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._started = False
        # APScheduler logs every run and every job added at INFO; the engines log each
        # outcome already. Its warnings (missed runs) and errors still show.
        for name in ("apscheduler.executors", "apscheduler.scheduler"):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.WARNING)

    @property
    def node_id(self) -> str:
        """How this node names itself in leases and job runs."""
        return self.runtime.node_id

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`shutdown`."""
        return self._started

    def start(self) -> ReconcileReport:
        """Reconcile the stored jobs with the configuration, then start running them."""
        if self._started:
            raise RuntimeError("the scheduler is already running")
        bind(self.runtime)
        try:
            with self._exclusive():
                self._store.jobs_t.create(self._store_engine, checkfirst=True)
                self._scheduler.start(paused=True)
                report = self.reconcile()
            self._scheduler.resume()
        except BaseException:
            unbind(self.runtime)
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            raise
        self._started = True
        log.info(
            "scheduler_started",
            node=self.node_id,
            added=report.added,
            removed=report.removed,
            rescheduled=report.rescheduled,
            kept=len(report.kept),
        )
        return report

    def reconcile(self) -> ReconcileReport:
        """Make the stored jobs match the configuration (the scheduler must be started)."""
        report = ReconcileReport()
        wanted = {spec.id: spec for spec in planned_jobs(self.config)}
        now = datetime.now(UTC)
        grace = self.config.scheduler.misfire_grace
        for job in self._scheduler.get_jobs():
            spec = wanted.pop(job.id, None)
            if spec is None:
                if _managed(job.id):
                    self._remove(job.id)
                    report.removed.append(job.id)
                continue
            if not _same_schedule(job, spec) or not _same_options(job, self._run_options()):
                self._scheduler.modify_job(
                    job.id, func=spec.func, args=[spec.connection], **self._run_options()
                )
                self._scheduler.reschedule_job(job.id, trigger=_trigger(spec))
                report.rescheduled.append(job.id)
                continue
            if job.next_run_time is not None and job.next_run_time < now - grace:
                # Every node was down past the grace time: catch up once, now, rather than
                # skip to the next interval.
                self._scheduler.modify_job(job.id, next_run_time=now)
            report.kept.append(job.id)
        for spec in wanted.values():
            try:
                self._scheduler.add_job(
                    spec.func, trigger=_trigger(spec), next_run_time=now, **self._options(spec)
                )
            except ConflictingIdError:
                # Another node (SQLite shared by two processes) added it meanwhile.
                report.kept.append(spec.id)
            else:
                report.added.append(spec.id)
        return report

    def jobs(self) -> list[Job]:
        """The jobs in the store."""
        jobs: list[Job] = self._scheduler.get_jobs()
        return jobs

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling; running jobs stop at their next checkpoint (``wait``: for them)."""
        self.runtime.stop.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        unbind(self.runtime)
        self._started = False
        log.info("scheduler_stopped", node=self.node_id)

    # -- internals --------------------------------------------------------------------------

    def _options(self, spec: JobSpec) -> dict[str, Any]:
        return {
            "id": spec.id,
            "name": spec.id,
            "args": [spec.connection],
            **self._run_options(),
        }

    def _run_options(self) -> dict[str, Any]:
        return {
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": _seconds(self.config.scheduler.misfire_grace),
        }

    def _remove(self, job_id_: str) -> None:
        try:
            self._scheduler.remove_job(job_id_)
        except JobLookupError:
            pass  # another node removed it first

    def _exclusive(self) -> _AdvisoryLock:
        return _AdvisoryLock(self._store_engine, _RECONCILE_LOCK_KEY)


class _AdvisoryLock:
    """A PostgreSQL session advisory lock held on its own connection; nothing on SQLite
    (one node per SQLite file)."""

    def __init__(self, engine: Engine, key: int) -> None:
        self.engine = engine
        self.key = key
        self._connection: Any = None

    def __enter__(self) -> _AdvisoryLock:
        if self.engine.dialect.name == "postgresql":
            self._connection = self.engine.connect()
            self._connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            self._connection.commit()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None


def _trigger(spec: JobSpec) -> IntervalTrigger:
    return IntervalTrigger(seconds=_seconds(spec.interval), timezone=UTC)


def _seconds(delta: timedelta) -> int:
    # APScheduler's misfire grace is whole seconds; intervals are too, and never zero.
    return max(1, round(delta.total_seconds()))


def _same_schedule(job: Job, spec: JobSpec) -> bool:
    trigger = job.trigger
    return (
        isinstance(trigger, IntervalTrigger)
        and trigger.interval == timedelta(seconds=_seconds(spec.interval))
        and list(job.args) == [spec.connection]
        and job.func is spec.func
    )


def _same_options(job: Job, options: dict[str, Any]) -> bool:
    return all(getattr(job, name) == value for name, value in options.items())


def _managed(job_id_: str) -> bool:
    kind, _, connection = job_id_.partition(":")
    return bool(connection) and kind in {name.value for name in JobName}
