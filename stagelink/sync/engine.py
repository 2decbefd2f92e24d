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
* a full read that completes marks records the CRM no longer returned as deleted;
* a large stream on a SQLite file is written by a writer process (:class:`_Sink`): reading,
  converting and binding values in this process, inserting and committing in the other, on
  two cores instead of under one interpreter lock. Each batch is still one transaction with
  its position, committed in order; only where it runs changes. If the process cannot
  start, this process writes, as it always did.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Dialect, Engine, event, select, update
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
from stagelink.sync.prefetch import HelperProcess, fewer_collections, prefetched
from stagelink.sync.store import Counts, PreparedBatch, RecordWriter

__all__ = [
    "WRITER_PROCESS_MIN_RECORDS",
    "WRITER_WAL_PAGES",
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
#: A stream whose first batch announces at least this many records (the batch plus the
#: connector's estimate of the rest) is written by a writer process; below it, starting
#: one (about half a second of imports) costs more than it saves.
WRITER_PROCESS_MIN_RECORDS = 10_000
#: Pages of write-ahead log the writer process lets grow before SQLite copies them into the
#: database file (its default: 1,000 pages, 4 MB). A batch of an initial sync dirties about
#: 2,000 index pages, so the default copied and synced them after every commit: half of
#: the writer's time. At most 40 MB more disk while a large sync runs.
WRITER_WAL_PAGES = 10_000


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
        writer_process_min_records: int | None = WRITER_PROCESS_MIN_RECORDS,
    ) -> None:
        """``writer_process_min_records``: the size of stream from which a SQLite file is
        written by a writer process (``None``: never; ``0``: always)."""
        self.sessions = sessions
        self.connector = connector
        self.connection_name = connection_name
        self.budget_fraction = budget_fraction
        self.node_id = node_id or default_node_id()
        self.lease_ttl = lease_ttl
        self.stop = stop or threading.Event()
        self.progress = progress
        self.writer_process_min_records = writer_process_min_records
        with sessions.begin() as session:
            connection = get_or_create_connection(session, connection_name, connector.kind)
            self.connection_id = connection.id
            bind = session.get_bind()
            self._dialect: Dialect = bind.dialect
            self._bind = bind if isinstance(bind, Engine) else None

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
            with fewer_collections():
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
        sink = _Sink(
            self.sessions,
            _Committer(
                _JobTicket(self.connection_id, job_id, lease_name, self.node_id, self.lease_ttl),
                writer,
            ),
            self._writer_process_url(),
            self.writer_process_min_records,
        )
        if self._likely_large(options):
            sink.prewarm()
        total = Counts()
        # (name, counts, ms): a stream's counts may still grow while the next one is read.
        finished: list[tuple[str, Counts, int]] = []
        status, error = JobStatus.SUCCEEDED, None
        try:
            for number, stream in enumerate(streams, start=1):
                self._check_budget()
                stream_started = time.monotonic()
                last = number == len(streams)
                counts = self._run_stream(writer, sink, stream, options, total, last=last)
                finished.append(
                    (stream.name, counts, round((time.monotonic() - stream_started) * 1000))
                )
            sink.drain()
        except _BudgetPaused as exc:
            status, error = JobStatus.PAUSED_BUDGET, exc.reason
        except BudgetExhaustedError as exc:
            status, error = JobStatus.PAUSED_BUDGET, f"the CRM refused: {exc}"
        except KeyboardInterrupt:
            sink.abort()  # a second Ctrl-C: at once (the first one drained, see _stop_if_asked)
            status, error = JobStatus.INTERRUPTED, "stopped before the end; the next run resumes"
        except ConfigurationError as exc:
            status, error = JobStatus.FAILED, str(exc)
        except Exception as exc:
            log.exception("sync_failed", connection=self.connection_name, job_id=job_id)
            status, error = JobStatus.FAILED, _describe(exc)
        finally:
            sink.settle()  # what was handed over is committed before the job ends
            sink.close()
        per_stream = {name: {**counts.as_dict(), "ms": ms} for name, counts, ms in finished}
        if writer.derive_pending or writer.needs_stage_entry:
            # After every stream, so the stage history this job read is there to use.
            with self.sessions.begin() as session:
                writer.derive_stage_entry(session)
        return self._finish(job_id, status, total, per_stream, error, started)

    def _likely_large(self, options: SyncOptions) -> bool:
        """A full read, a backfill or a connection's first sync: worth a writer process."""
        if options.mode is ReadMode.FULL or options.kind is JobKind.BACKFILL:
            return True
        with self.sessions() as session:
            synced_before = session.scalar(
                select(SyncCursor.id).where(SyncCursor.connection_id == self.connection_id).limit(1)
            )
        return synced_before is None

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
        writer: RecordWriter,
        sink: _Sink,
        stream: StreamInfo,
        options: SyncOptions,
        total: Counts,
        *,
        last: bool,
    ) -> Counts:
        """Read and commit one stream. With a writer process, the last batches of a stream
        other than the ``last`` may still be committing while the next one starts reading
        (they keep their order); the returned counts grow as they are committed."""
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

        def committed(remaining: int | None, batch_counts: Counts) -> None:
            counts.update(batch_counts)
            total.update(batch_counts)
            if self.progress is not None:
                self.progress(Progress(stream.name, counts["read"], remaining, counts.as_dict()))

        requests_before = self.connector.requests_made()
        sink.start_stream(position_store, total)
        try:
            with prefetched(iter(self.connector.read(request))) as batches:
                for batch in batches:
                    prepared = writer.prepare(batch.items, self._dialect)
                    reconcile = None
                    if seen is not None:
                        _remember(seen, batch)
                        if batch.done:
                            reconcile = seen
                    made = self.connector.requests_made()
                    work = _BatchWork(
                        prepared, made - requests_before, batch.position, batch.done, reconcile
                    )
                    requests_before = made
                    announced = len(batch.items) + (batch.remaining or 0)
                    sink.commit(work, announced, partial(committed, batch.remaining))
                    self._stop_if_asked(sink)
                    self._check_budget()
                    sink.poll()
            if last or options.kind is JobKind.BACKFILL:
                sink.drain()  # a backfill's checkpoint is removed below, after its batches
        except Exception:
            sink.settle()  # what was read before the error is committed, as it always was
            raise
        except BaseException:
            sink.abort()
            raise
        if options.kind is JobKind.BACKFILL:
            with self.sessions.begin() as session:
                position_store.save(session, None, done=True)
        return counts

    def _stop_if_asked(self, sink: _Sink) -> None:
        # Ctrl-C or SIGTERM: stop after the batch just read, committed with its position.
        if self.stop.is_set():
            sink.drain()
            raise KeyboardInterrupt

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
        _record_counts(session, job_id, counts)

    def _writer_process_url(self) -> str | None:
        """The database URL a writer process can open: SQLite files only (PostgreSQL already
        writes in its own server process; an in-memory SQLite cannot be shared)."""
        bind = self._bind
        if bind is None or bind.dialect.name != "sqlite" or os.name != "posix":
            return None
        database = bind.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return bind.url.render_as_string(hide_password=False)

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


# -- committing batches, here or in a writer process ----------------------------------------


@dataclass(frozen=True)
class _JobTicket:
    """Which job's batches are committed, and the lease each commit renews."""

    connection_id: int
    job_id: int
    lease_name: str
    node_id: str
    lease_ttl: timedelta


@dataclass
class _StreamStart:
    """Tells the committer which stream follows, and the job's counts so far (``None``: the
    committer's own running total is the job's)."""

    position_store: _PositionStore
    total: Counts | None


@dataclass
class _BatchWork:
    """One batch's database step: its rows, then its position, in one transaction."""

    prepared: PreparedBatch
    requests: int
    position: dict[str, Any] | None
    done: bool
    #: Every id the stream returned, on the last batch of a full read from the start.
    reconcile: dict[ObjectType, set[str]] | None = None


class _Committer:
    """The transaction of one batch: rows, deletions by absence, position, job counts and
    lease, committed together (so a crash replays at most one batch)."""

    def __init__(self, ticket: _JobTicket, writer: RecordWriter) -> None:
        self.ticket = ticket
        self.writer = writer
        self.position_store: _PositionStore | None = None
        self.total = Counts()

    def start(self, start: _StreamStart) -> None:
        self.position_store = start.position_store
        if start.total is not None:
            self.total = start.total

    def commit(self, session: Session, work: _BatchWork) -> Counts:
        batch_counts = self.writer.write(session, work.prepared)
        if work.reconcile is not None:
            for object_type, ids in work.reconcile.items():
                batch_counts["deleted"] += self.writer.tombstone_missing(session, object_type, ids)
        batch_counts["requests"] += work.requests
        if work.position is not None or work.done:
            assert self.position_store is not None
            self.position_store.save(session, work.position, done=work.done)
        self.total.update(batch_counts)
        ticket = self.ticket
        _record_counts(session, ticket.job_id, self.total.as_dict())
        renew_lease(session, ticket.lease_name, ticket.node_id, ticket.lease_ttl)
        return batch_counts


@dataclass(frozen=True)
class _WriterSetup:
    """What a writer process needs: the database and the job."""

    database_url: str
    ticket: _JobTicket


_Committed = tuple[dict[str, int], list[str]]


def _writer_setup(setup: _WriterSetup) -> tuple[sessionmaker[Session], _Committer]:
    """A writer process's own engine and committer (see :class:`_Sink`)."""
    from stagelink.storage import make_engine, session_factory

    engine = make_engine(setup.database_url)

    @event.listens_for(engine, "connect")
    def _larger_wal(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_WAL_PAGES}")

    writer = RecordWriter(setup.ticket.connection_id, job_run_id=setup.ticket.job_id)
    return session_factory(engine), _Committer(setup.ticket, writer)


def _writer_step(
    state: tuple[sessionmaker[Session], _Committer], work: _StreamStart | _BatchWork
) -> _Committed | None:
    """In a writer process: start a stream, or commit a batch and return its counts and the
    opportunities whose stage entry time the job must derive again."""
    sessions, committer = state
    if isinstance(work, _StreamStart):
        committer.start(work)
        return None
    with sessions.begin() as session:
        counts = committer.commit(session, work)
    moved = sorted(committer.writer.needs_stage_entry)
    committer.writer.needs_stage_entry.clear()
    return dict(counts), moved


class _Sink:
    """Commits a job's batches in order: in this process, or in a writer process for the
    rest of a stream once one of its batches announces ``min_records`` or more (SQLite files
    only) and the process has started.

    Python runs one thread at a time, and reading (parsing JSON, converting, binding values)
    and writing (JSON documents, SQLite's inserts and commits) are both CPU work: in one
    process they take turns, in two they overlap. A few batches may be in flight; ``done``
    callbacks deliver each batch's counts in order. Leaving a stream always waits for
    (``drain``, ``settle``) or kills (``abort``) what is in flight, so positions never move
    behind the engine's back, and nothing is written here while the writer process has work.
    Until the process is up (its imports take about half a second), and for good if it
    cannot start, batches are written here as without one.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        committer: _Committer,
        database_url: str | None,
        min_records: int | None,
    ) -> None:
        self.sessions = sessions
        self.local = committer
        self.database_url = database_url
        self.min_records = min_records
        self.process: HelperProcess[_StreamStart | _BatchWork, _Committed | None] | None = None
        #: This stream's batches go to the writer process.
        self.remote = False
        self.used = False

    def prewarm(self) -> None:
        """Start the writer process now (a full read is likely large), so it is up by the
        first large stream."""
        if self.process is None and self._worth_a_process(self.min_records or 0):
            self._start_process()

    def start_stream(self, position_store: _PositionStore, total: Counts) -> None:
        self.local.start(_StreamStart(position_store, Counts(total)))
        # Once the writer process has had work, every later batch goes there too: the
        # previous stream's last batches may still be on their way, and order matters.
        self.remote = self.used and self.process is not None
        if self.remote:
            assert self.process is not None
            self.process.submit(_StreamStart(position_store, None), _ignore)

    def commit(self, work: _BatchWork, announced: int, done: Callable[[Counts], None]) -> None:
        """Commit ``work`` here (``done`` called at once) or hand it to the writer process."""
        if not self.remote and self._worth_a_process(announced):
            self.remote = self._switch_to_process()
        if not self.remote:
            with self.sessions.begin() as session:
                counts = self.local.commit(session, work)
            done(counts)
            return
        assert self.process is not None
        self.process.submit(work, partial(self._merge, done))

    def poll(self) -> None:
        """Deliver the counts of batches the writer process has committed."""
        if self.process is not None:
            self.process.poll()

    def drain(self) -> None:
        """Wait until every batch handed over is committed."""
        if self.process is not None:
            self.process.drain()

    def settle(self) -> None:
        """After an error: commit what was handed over, if the writer can."""
        try:
            self.drain()
        except Exception:
            log.exception("writer_process_failed")
            self.abort()

    def abort(self) -> None:
        """Stop at once (a second Ctrl-C): what was in flight is not committed."""
        if self.process is not None:
            self.process.kill()
            self.process = None
        self.remote = False

    def close(self) -> None:
        """End the writer process (after :meth:`drain`, :meth:`settle` or :meth:`abort`)."""
        if self.process is not None:
            if self.used:
                self.process.close()
            else:
                self.process.kill()  # it never had work; no need to wait for its imports
            self.process = None

    def _worth_a_process(self, announced: int) -> bool:
        return (
            self.database_url is not None
            and self.min_records is not None
            and announced >= self.min_records
        )

    def _start_process(self) -> None:
        assert self.database_url is not None
        try:
            self.process = HelperProcess(
                _writer_setup, _WriterSetup(self.database_url, self.local.ticket), _writer_step
            )
        except OSError:
            log.warning("writer_process_unavailable", exc_info=True)
            self.database_url = None  # write here, as before; no second attempt

    def _switch_to_process(self) -> bool:
        """Send the rest of this stream to the writer process once it is up."""
        if self.process is None:
            self._start_process()
        if self.process is None:
            return False
        # ``min_records == 0`` means every batch (tests): wait for the process to be up.
        started = self.process.ready(wait=self.min_records == 0)
        if started is None:
            return False  # still importing: this batch is written here, the next may go
        if not started:
            # It could not start (say, a broken environment): writing here still works.
            log.warning("writer_process_unavailable", error=str(self.process.setup_error))
            self.process.kill()
            self.process, self.database_url = None, None
            return False
        assert self.local.position_store is not None
        # Everything before was committed here, so these counts are the job's so far.
        start = _StreamStart(self.local.position_store, Counts(self.local.total))
        self.process.submit(start, _ignore)
        self.used = True
        return True

    def _merge(self, done: Callable[[Counts], None], result: _Committed | None) -> None:
        assert result is not None
        counts, moved = result
        self.local.writer.needs_stage_entry.update(moved)
        done(Counts(counts))


def _ignore(result: object) -> None:
    pass


def _record_counts(session: Session, job_id: int, counts: dict[str, int]) -> None:
    session.execute(
        update(JobRun).where(JobRun.id == job_id).values(counts=counts, heartbeat_at=utcnow())
    )


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
