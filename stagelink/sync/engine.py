"""The sync engine: drives any connector's streams into storage, batch by batch.

One engine for every CRM (connectors only read; see ``connectors/core/connector.py``):

* each batch is written and its position saved **in one transaction**, so a crash (even
  ``kill -9``) replays at most one batch, which the idempotent writer absorbs;
* a job run row records what was asked and the counts (read, inserted, updated, unchanged,
  deleted, quarantined, history, requests), with a heartbeat per batch;
* a lease per connection and job kind keeps two nodes from running the same job at once;
  a job left ``running`` by a dead node is marked ``interrupted`` by the next run;
* the API budget is checked after every batch: when the CRM's daily allowance used reaches
  the connection's ``budget.max_daily_fraction`` (or the CRM refuses with its own limit),
  the job stops at its last checkpoint with status ``paused_budget`` and the next run
  resumes there — never ``succeeded`` with records missing;
* a full read that completes marks records the CRM no longer returned as deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.connector import Batch, Connector, ReadMode, ReadRequest, StreamInfo
from connectors.core.errors import BudgetExhaustedError, ConfigurationError, StagelinkError
from connectors.core.records import Deletion, ObjectType, Opportunity
from stagelink.jobs import (
    JobAlreadyRunning,
    close_abandoned_runs,
    daily_budget_problem,
    default_node_id,
    start_job_run,
    take_job_lease,
)
from stagelink.storage import (
    Checkpoint,
    JobKind,
    JobRun,
    JobStatus,
    SyncCursor,
    get_or_create_connection,
    utcnow,
)
from stagelink.storage.leases import release_lease, renew_lease
from stagelink.sync.prefetch import prefetched
from stagelink.sync.store import Counts, RecordWriter

__all__ = [
    "JobAlreadyRunning",
    "JobOutcome",
    "Progress",
    "SyncEngine",
    "SyncOptions",
    "default_node_id",
]

log = structlog.get_logger(__name__)

#: Types whose stored rows a completed full read reconciles by absence.
_RECONCILED = (ObjectType.OWNER, ObjectType.ACCOUNT, ObjectType.OPPORTUNITY)


class _BudgetPaused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SyncOptions:
    """What to run: which mode, which streams, which window (backfill)."""

    kind: JobKind = JobKind.SYNC
    mode: ReadMode = ReadMode.INCREMENTAL
    #: Stream names to read (default: all the connector offers, or its backfill set).
    streams: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Backfill only: ignore a saved checkpoint and start the window again.
    restart: bool = False
    #: Extra parameters recorded in the job run (e.g. what triggered it).
    trigger: str = "manual"


@dataclass(frozen=True)
class Progress:
    """Reported after every committed batch."""

    stream: str
    read: int  # records read in this stream so far
    remaining: int | None  # the connector's estimate of what is left, when known
    counts: dict[str, int]


@dataclass
class JobOutcome:
    """How a job ended."""

    job_id: int
    status: JobStatus
    counts: dict[str, int]
    streams: dict[str, dict[str, int]] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the job finished everything it was asked to do."""
        return self.status is JobStatus.SUCCEEDED


class SyncEngine:
    """Runs sync and backfill jobs of one connection through ``connector``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        connector: Connector,
        *,
        connection_name: str,
        budget_fraction: float = 1.0,
        node_id: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=5),
        stop: threading.Event | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.connector = connector
        self.connection_name = connection_name
        self.budget_fraction = budget_fraction
        self.node_id = node_id or default_node_id()
        self.lease_ttl = lease_ttl
        self.stop = stop or threading.Event()
        self.progress = progress
        with sessions.begin() as session:
            connection = get_or_create_connection(session, connection_name, connector.kind)
            self.connection_id = connection.id

    # -- public ---------------------------------------------------------------------------

    def run(self, options: SyncOptions = SyncOptions()) -> JobOutcome:
        """Run one job to its end (or pause/interruption) and return its outcome."""
        lease_name = f"{options.kind.value}:{self.connection_name}"
        take_job_lease(
            self.sessions,
            lease_name,
            self.node_id,
            self.lease_ttl,
            what=f"a {options.kind.value} of connection {self.connection_name!r}",
        )
        try:
            self._close_abandoned_runs(options.kind)
            return self._run(options, lease_name)
        finally:
            release_lease(self.sessions, lease_name, self.node_id)

    def apply_ids(
        self, object_type: ObjectType, crm_ids: Sequence[str], *, trigger: str
    ) -> JobOutcome:
        """Fetch a few records by id from the CRM and store them (webhooks, usage on a deal
        not synced yet). Recorded as a small sync job; takes no lease (it moves no cursor)."""
        started = time.monotonic()
        job_id = self._start_job(JobKind.SYNC, {"trigger": trigger, "ids": len(crm_ids)})
        requests_before = self.connector.requests_made()
        try:
            batch = self.connector.read_ids(object_type, crm_ids)
            with self.sessions.begin() as session:
                writer = RecordWriter(self.connection_id, job_run_id=job_id)
                counts = writer.apply(session, batch.items)
                unknown_entry = [
                    item.crm_id
                    for item in batch.items
                    if isinstance(item, Opportunity) and item.stage_entered_at is None
                ]
                if unknown_entry:
                    writer.derive_stage_entry(session, unknown_entry)
                counts["requests"] += self.connector.requests_made() - requests_before
                self._update_job(session, job_id, counts.as_dict())
        except Exception as exc:
            return self._finish(job_id, JobStatus.FAILED, Counts(), {}, _describe(exc), started)
        return self._finish(job_id, JobStatus.SUCCEEDED, counts, {}, None, started)

    # -- the job --------------------------------------------------------------------------

    def _run(self, options: SyncOptions, lease_name: str) -> JobOutcome:
        started = time.monotonic()
        streams = self._select_streams(options)
        params: dict[str, Any] = {
            "mode": options.mode.value,
            "streams": [s.name for s in streams],
            "trigger": options.trigger,
        }
        if options.since:
            params["since"] = options.since.isoformat()
        if options.until:
            params["until"] = options.until.isoformat()
        job_id = self._start_job(options.kind, params)
        writer = RecordWriter(self.connection_id, job_run_id=job_id)
        total = Counts()
        per_stream: dict[str, dict[str, int]] = {}
        status, error = JobStatus.SUCCEEDED, None
        try:
            for stream in streams:
                self._check_budget()
                stream_started = time.monotonic()
                counts = self._run_stream(job_id, writer, stream, options, lease_name, total)
                per_stream[stream.name] = {
                    **counts.as_dict(),
                    "ms": round((time.monotonic() - stream_started) * 1000),
                }
        except _BudgetPaused as exc:
            status, error = JobStatus.PAUSED_BUDGET, exc.reason
        except BudgetExhaustedError as exc:
            status, error = JobStatus.PAUSED_BUDGET, f"the CRM refused: {exc}"
        except KeyboardInterrupt:
            status, error = JobStatus.INTERRUPTED, "stopped before the end; the next run resumes"
        except ConfigurationError as exc:
            status, error = JobStatus.FAILED, str(exc)
        except Exception as exc:
            log.exception("sync_failed", connection=self.connection_name, job_id=job_id)
            status, error = JobStatus.FAILED, _describe(exc)
        if writer.derive_pending or writer.needs_stage_entry:
            # After every stream, so the stage history this job read is there to use.
            with self.sessions.begin() as session:
                writer.derive_stage_entry(session)
        return self._finish(job_id, status, total, per_stream, error, started)

    def _select_streams(self, options: SyncOptions) -> list[StreamInfo]:
        offered = list(self.connector.streams())
        if options.streams is None:
            if options.kind is JobKind.BACKFILL:
                return [s for s in offered if s.backfill]
            return offered
        by_name = {s.name: s for s in offered}
        unknown = [name for name in options.streams if name not in by_name]
        if unknown:
            raise ConfigurationError(
                f"connection {self.connection_name!r} has no stream {', '.join(map(repr, unknown))}"
                f" (it offers: {', '.join(by_name)})"
            )
        return [by_name[name] for name in options.streams]

    def _run_stream(
        self,
        job_id: int,
        writer: RecordWriter,
        stream: StreamInfo,
        options: SyncOptions,
        lease_name: str,
        total: Counts,
    ) -> Counts:
        position_store = _PositionStore(self.connection_id, self.connection_name, stream, options)
        with self.sessions.begin() as session:
            position = position_store.load(session)
        request = ReadRequest(
            stream=stream.name,
            mode=options.mode,
            position=position,
            since=options.since,
            until=options.until,
        )
        counts = Counts()
        # A full read resumed half-way cannot tell what it read before the crash, so only
        # a read that started at the beginning reconciles deletions by absence.
        seen: dict[ObjectType, set[str]] | None = (
            {} if options.mode is ReadMode.FULL and position is None else None
        )
        requests_before = self.connector.requests_made()
        with prefetched(iter(self.connector.read(request))) as batches:
            for batch in batches:
                with self.sessions.begin() as session:
                    batch_counts = writer.apply(session, batch.items)
                    if seen is not None:
                        _remember(seen, batch)
                        if batch.done:
                            for object_type, ids in seen.items():
                                batch_counts["deleted"] += writer.tombstone_missing(
                                    session, object_type, ids
                                )
                    made = self.connector.requests_made()
                    batch_counts["requests"] += made - requests_before
                    requests_before = made
                    if batch.position is not None or batch.done:
                        position_store.save(session, batch.position, done=batch.done)
                    counts.update(batch_counts)
                    total.update(batch_counts)
                    self._update_job(session, job_id, total.as_dict())
                    renew_lease(session, lease_name, self.node_id, self.lease_ttl)
                if self.progress is not None:
                    self.progress(
                        Progress(stream.name, counts["read"], batch.remaining, counts.as_dict())
                    )
                if self.stop.is_set():
                    raise KeyboardInterrupt
                self._check_budget()
        if options.kind is JobKind.BACKFILL:
            with self.sessions.begin() as session:
                position_store.save(session, None, done=True)
        return counts

    # -- budget ---------------------------------------------------------------------------

    def _check_budget(self) -> None:
        problem = daily_budget_problem(self.connector.api_budget(), self.budget_fraction)
        if problem:
            raise _BudgetPaused(problem)

    # -- job rows -------------------------------------------------------------------------

    def _close_abandoned_runs(self, kind: JobKind) -> None:
        close_abandoned_runs(
            self.sessions,
            self.connection_id,
            kind,
            "the process running this job stopped without finishing (killed or crashed); "
            "a later run resumed from its last checkpoint",
        )

    def _start_job(self, kind: JobKind, params: dict[str, Any]) -> int:
        return start_job_run(self.sessions, self.connection_id, kind, self.node_id, params)

    def _update_job(self, session: Session, job_id: int, counts: dict[str, int]) -> None:
        session.execute(
            update(JobRun).where(JobRun.id == job_id).values(counts=counts, heartbeat_at=utcnow())
        )

    def _finish(
        self,
        job_id: int,
        status: JobStatus,
        counts: Counts,
        per_stream: dict[str, dict[str, int]],
        error: str | None,
        started: float,
    ) -> JobOutcome:
        seconds = time.monotonic() - started
        with self.sessions.begin() as session:
            job = session.get(JobRun, job_id)
            assert job is not None
            job.status = status
            job.finished_at = utcnow()
            job.error = error
            final = counts.as_dict() if counts else dict(job.counts)
            job.counts = {**final, "streams": per_stream} if per_stream else final
        log.info(
            "job_finished",
            connection=self.connection_name,
            job_id=job_id,
            status=status.value,
            seconds=round(seconds, 2),
            **{k: v for k, v in final.items() if isinstance(v, int)},
        )
        return JobOutcome(job_id, status, final, per_stream, error, seconds)


class _PositionStore:
    """Where a stream's position lives: the sync cursor, or a backfill's checkpoint."""

    def __init__(
        self, connection_id: int, connection_name: str, stream: StreamInfo, options: SyncOptions
    ) -> None:
        self.connection_id = connection_id
        self.stream = stream.name
        self.options = options
        self.backfill = options.kind is JobKind.BACKFILL
        window = f"{_day(options.since)}..{_day(options.until)}"
        self.job_key = f"backfill:{connection_name}:{stream.name}:{window}"

    def load(self, session: Session) -> dict[str, Any] | None:
        if self.backfill:
            checkpoint = self._checkpoint(session)
            if checkpoint is None or self.options.restart:
                return None
            position = checkpoint.state.get("position")
            return dict(position) if isinstance(position, dict) else None
        if self.options.mode is ReadMode.FULL:
            return None
        cursor = self._cursor(session)
        return dict(cursor.cursor) if cursor is not None and cursor.cursor else None

    def save(self, session: Session, position: dict[str, Any] | None, *, done: bool) -> None:
        if self.backfill:
            checkpoint = self._checkpoint(session)
            if done and position is None:
                if checkpoint is not None:
                    session.delete(checkpoint)
                return
            if checkpoint is None:
                checkpoint = Checkpoint(
                    job_key=self.job_key, connection_id=self.connection_id, state={}
                )
                session.add(checkpoint)
            checkpoint.state = {"position": position, "stream": self.stream}
            return
        if position is None:
            return
        cursor = self._cursor(session)
        if cursor is None:
            session.add(
                SyncCursor(
                    connection_id=self.connection_id, object_type=self.stream, cursor=position
                )
            )
        else:
            cursor.cursor = position

    def _cursor(self, session: Session) -> SyncCursor | None:
        return session.scalars(
            select(SyncCursor).where(
                SyncCursor.connection_id == self.connection_id,
                SyncCursor.object_type == self.stream,
            )
        ).one_or_none()

    def _checkpoint(self, session: Session) -> Checkpoint | None:
        return session.scalars(
            select(Checkpoint).where(Checkpoint.job_key == self.job_key)
        ).one_or_none()


def _remember(seen: dict[ObjectType, set[str]], batch: Batch) -> None:
    for item in batch.items:
        object_type = getattr(item, "object_type", None)
        if object_type not in _RECONCILED:
            continue
        crm_id = getattr(item, "crm_id", None)
        if isinstance(crm_id, str) and not isinstance(item, Deletion):
            seen.setdefault(object_type, set()).add(crm_id)
        elif isinstance(item, Deletion):
            seen.setdefault(object_type, set())


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment is not None else "*"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, StagelinkError) else f"{type(exc).__name__}: {text}"
