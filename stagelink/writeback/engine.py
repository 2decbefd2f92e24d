"""The write-back engine: each accepted usage event becomes exactly one CRM activity.

The ledger is ``writeback_outbox`` (one row per accepted usage event, created with it).
One pass over a connection, holding the lease ``writeback:{connection}``:

1. **Reconcile.** Rows left ``in_flight`` — by a process that was killed between sending a
   batch and recording the answer, or by an answer that was lost — are looked up in the CRM
   by their marker (:meth:`Connector.find_activities`): found → ``written`` with the CRM's
   id; not found → ``pending`` again. Nothing that may exist is ever sent a second time
   before this check. (We hold the lease, so no live writer owns these rows.)
2. **Claim.** Due ``pending`` rows, oldest first (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL), up to one request's worth, are marked ``in_flight`` with a ``batch_id`` and
   **committed before anything is sent**.
3. **Send** the batch (:meth:`Connector.write_activities`), then **record** every row's
   outcome in one transaction: ``written`` (+ CRM id); ``retry`` → ``pending`` with
   ``attempts + 1`` and exponential backoff with jitter, ``dead`` after ``max_attempts``;
   ``failed`` (the CRM refused the record: validation, deleted opportunity) → ``dead`` at
   once with the CRM's error; ``unknown`` → stays ``in_flight`` and is reconciled right away
   (or by the next pass, when the CRM's lookups lag).

A request refused as a whole is classified here: the daily budget spent (or the
connection's share of it reached, checked after every batch) pauses the job
(``paused_budget``) with the batch back to ``pending``; a configuration error fails it
likewise; a 4xx for the request counts as a retry of every row; anything else (a dropped
connection, a 5xx, a cut answer) leaves the batch ``unknown``.

Dead rows stay visible (``stagelink jobs show``: ``dead`` and ``dead_errors``) until
``stagelink writeback --retry-dead`` puts them back in the queue — through the lookup of
step 1, so even a row buried while its answers were being lost is never written twice.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.activities import Activity, FoundActivity, WriteResult, WriteStatus
from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import (
    BudgetExhaustedError,
    ConfigurationError,
    FatalError,
    RecordError,
    StagelinkError,
)
from stagelink.jobs import (
    close_abandoned_runs,
    daily_budget_problem,
    default_node_id,
    start_job_run,
    take_job_lease,
)
from stagelink.storage import (
    ContentItem,
    CrmOpportunity,
    JobKind,
    JobRun,
    JobStatus,
    OutboxState,
    UsageEvent,
    WritebackOutbox,
    get_or_create_connection,
    utcnow,
)
from stagelink.storage.leases import release_lease, renew_lease
from stagelink.sync.engine import JobOutcome
from stagelink.writeback.attribution import OwnerDirectory

__all__ = ["ContentInfo", "ContentLookup", "WritebackEngine", "WritebackOptions"]

log = structlog.get_logger(__name__)

_COUNT_KEYS = (
    "claimed",
    "written",
    "retried",
    "dead",
    "unknown",
    "reconciled",
    "requeued",
    "revived",
    "requests",
)


@dataclass(frozen=True)
class WritebackOptions:
    """Tuning of one write-back pass (the defaults suit production)."""

    #: Rows per batch; ``None`` takes the connector's (one request's worth).
    batch_size: int | None = None
    #: A row that keeps failing goes ``dead`` after this many attempts.
    max_attempts: int = 8
    #: First retry delay; doubles with each attempt (plus up to as much again of jitter).
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=6)
    lease_ttl: timedelta = timedelta(minutes=5)
    #: What started the pass (recorded in the job run): cli, schedule, usage...
    trigger: str = "manual"
    #: How many errors of rows that went dead the job run keeps.
    dead_samples: int = 5

    def backoff(self, attempts: int, retry_after: timedelta | None = None) -> timedelta:
        """Delay before attempt ``attempts + 1``: exponential with jitter, at least
        ``retry_after``, at most ``backoff_max``."""
        base = self.backoff_base.total_seconds()
        exponential = min(base * 2.0 ** max(attempts - 1, 0), self.backoff_max.total_seconds())
        # Jitter so rows (and nodes) that failed together do not come back together.
        delay = timedelta(seconds=exponential + random.uniform(0, base))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.backoff_max)


@dataclass(frozen=True)
class ContentInfo:
    """What the activity says about a piece of content."""

    title: str
    url: str | None = None


class ContentLookup:
    """Content titles and links: the stored catalog first, then the configured one."""

    def __init__(self, catalog: dict[str, ContentInfo] | None = None) -> None:
        self.catalog = catalog or {}

    def titles(self, session: Session, content_ids: Sequence[str]) -> dict[str, ContentInfo]:
        """Title and URL of each id (the id itself as title when it is known nowhere)."""
        wanted = sorted(set(content_ids))
        found: dict[str, ContentInfo] = {}
        if wanted:
            rows = session.execute(
                select(ContentItem.content_id, ContentItem.title, ContentItem.url).where(
                    ContentItem.content_id.in_(wanted)
                )
            )
            found = {cid: ContentInfo(title, url or None) for cid, title, url in rows}
        for content_id in wanted:
            if content_id not in found:
                found[content_id] = self.catalog.get(content_id, ContentInfo(content_id))
        return found


class _BudgetPaused(Exception):
    """The connection's share of the daily budget is used (or the CRM refused)."""


class _LeaseLost(StagelinkError):
    """Another node took the lease over; this one must stop writing."""


@dataclass
class _Claimed:
    """One claimed row and the activity it becomes."""

    outbox_id: int
    marker: str
    activity: Activity | None
    claimed_at: datetime | None
    #: The claim this row was sent under; a row claimed again since is not ours to record.
    batch_id: str | None


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNT_KEYS, 0))
    dead_errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, key: str, amount: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + amount


class WritebackEngine:
    """Runs write-back passes of one connection through ``connector``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        connector: Connector,
        connection: ConnectionConfig,
        *,
        content: ContentLookup | None = None,
        options: WritebackOptions = WritebackOptions(),
        node_id: str | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.connector = connector
        self.connection = connection
        self.name = connection.name
        self.content = content or ContentLookup()
        self.options = options
        self.node_id = node_id or default_node_id()
        self.stop = stop or threading.Event()
        self.now = clock
        self.lease_name = f"{JobKind.WRITEBACK.value}:{self.name}"
        self.batch_size = options.batch_size or connector.activity_batch_size()
        with sessions.begin() as session:
            row = get_or_create_connection(session, connection.name, connector.kind)
            self.connection_id = row.id
        self._tally = _Tally()
        self._directory: OwnerDirectory | None = None
        self._requests_before = 0

    # -- public ---------------------------------------------------------------------------

    def run(self, *, retry_dead: bool = False, max_events: int | None = None) -> JobOutcome:
        """One pass: reconcile, then write due rows until none is left (or a pause/stop)."""
        self._acquire_lease()
        try:
            self._close_abandoned_runs()
            return self._run(retry_dead=retry_dead, max_events=max_events)
        finally:
            release_lease(self.sessions, self.lease_name, self.node_id)

    # -- the pass -------------------------------------------------------------------------

    def _run(self, *, retry_dead: bool, max_events: int | None) -> JobOutcome:
        started = time.monotonic()
        params: dict[str, Any] = {"trigger": self.options.trigger, "retry_dead": retry_dead}
        if max_events is not None:
            params["max_events"] = max_events
        job_id = self._start_job(params)
        self._tally = _Tally()
        self._directory = None
        self._requests_before = self.connector.requests_made()
        status, error = JobStatus.SUCCEEDED, None
        try:
            if retry_dead:
                self._revive_dead()
            self._reconcile(stale=True)
            self._write_due(job_id, max_events)
        except _BudgetPaused as exc:
            status, error = JobStatus.PAUSED_BUDGET, str(exc)
        except BudgetExhaustedError as exc:
            status, error = JobStatus.PAUSED_BUDGET, f"the CRM refused: {exc}"
        except KeyboardInterrupt:
            status, error = JobStatus.INTERRUPTED, "stopped between batches; the next run goes on"
        except (ConfigurationError, _LeaseLost) as exc:
            status, error = JobStatus.FAILED, str(exc)
        except Exception as exc:
            log.exception("writeback_failed", connection=self.name, job_id=job_id)
            status, error = JobStatus.FAILED, _describe(exc)
        self._count_requests()
        return self._finish(job_id, status, error, started)

    def _write_due(self, job_id: int, max_events: int | None) -> None:
        while True:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self._check_budget()
            limit = self.batch_size
            if max_events is not None:
                limit = min(limit, max_events - self._tally.counts["claimed"])
                if limit <= 0:
                    return
            claimed = self._claim(limit)
            if not claimed:
                return
            self._send(claimed)
            with self.sessions.begin() as session:
                self._update_job(session, job_id)

    def _send(self, claimed: list[_Claimed]) -> None:
        ready = [c for c in claimed if c.activity is not None]
        activities = [c.activity for c in ready if c.activity is not None]
        if not activities:
            return
        try:
            results = self.connector.write_activities(activities)
        except (BudgetExhaustedError, ConfigurationError) as exc:
            # Refused before anything was applied: the rows go back as they were.
            self._release(ready, error=str(exc))
            if isinstance(exc, BudgetExhaustedError):
                raise _BudgetPaused(f"the CRM refused: {exc}") from exc
            raise
        except (RecordError, FatalError) as exc:
            # A 4xx for the whole request: not applied; every row counts an attempt.
            results = [
                WriteResult(c.marker, WriteStatus.RETRY, error=_describe(exc)) for c in ready
            ]
        except Exception as exc:
            # The request may or may not have been applied: look before resending.
            log.warning("writeback_unknown", connection=self.name, error=_describe(exc))
            results = [
                WriteResult(c.marker, WriteStatus.UNKNOWN, error=_describe(exc)) for c in ready
            ]
        unknown = self._record(ready, results)
        if unknown:
            self._reconcile(stale=False, ids=unknown)

    # -- claiming -------------------------------------------------------------------------

    def _claim(self, limit: int) -> list[_Claimed]:
        now = self.now()
        batch_id = uuid.uuid4().hex
        with self.sessions.begin() as session:
            if not renew_lease(session, self.lease_name, self.node_id, self.options.lease_ttl):
                raise _LeaseLost(f"the writeback lease of {self.name!r} was taken over")
            query = (
                select(WritebackOutbox, UsageEvent)
                .join(UsageEvent, UsageEvent.id == WritebackOutbox.usage_event_id)
                .where(
                    WritebackOutbox.connection_id == self.connection_id,
                    WritebackOutbox.state == OutboxState.PENDING,
                    WritebackOutbox.next_attempt_at <= now,
                )
                .order_by(WritebackOutbox.id)
                .limit(limit)
                # PostgreSQL: rows another transaction is claiming are skipped, not waited for.
                .with_for_update(skip_locked=True, of=WritebackOutbox)
            )
            rows = [(o, e) for o, e in session.execute(query)]
            claimed: list[_Claimed] = []
            for outbox, activity in zip(
                (r[0] for r in rows), self._activities(session, rows), strict=True
            ):
                if activity is None:
                    self._bury(outbox, "the usage event has no opportunity to write it on")
                    continue
                outbox.state = OutboxState.IN_FLIGHT
                outbox.batch_id = batch_id
                outbox.claimed_by = self.node_id
                outbox.claimed_at = now
                outbox.crm_object_type = None
                claimed.append(_Claimed(outbox.id, outbox.external_marker, activity, now, batch_id))
            self._tally.add("claimed", len(claimed))
        return claimed

    def _activities(
        self, session: Session, rows: Sequence[tuple[WritebackOutbox, UsageEvent]]
    ) -> list[Activity | None]:
        """The activity of each row (``None`` when the event cannot be written)."""
        if not rows:
            return []
        directory = self._owner_directory(session)
        events = [event for _, event in rows]
        opportunity_ids = sorted({e.opportunity_crm_id for e in events if e.opportunity_crm_id})
        deals: dict[str, tuple[str | None, str | None]] = {}
        if opportunity_ids:
            found = session.execute(
                select(
                    CrmOpportunity.crm_id,
                    CrmOpportunity.account_crm_id,
                    CrmOpportunity.owner_crm_id,
                ).where(
                    CrmOpportunity.connection_id == self.connection_id,
                    CrmOpportunity.crm_id.in_(opportunity_ids),
                )
            )
            deals = {crm_id: (account, owner) for crm_id, account, owner in found}
        content = self.content.titles(session, [e.content_id for e in events])
        activities: list[Activity | None] = []
        for outbox, event in rows:
            if not event.opportunity_crm_id:
                activities.append(None)
                continue
            account, deal_owner = deals.get(event.opportunity_crm_id, (None, None))
            who = directory.attribute(event.rep_email, deal_owner)
            info = content[event.content_id]
            activities.append(
                Activity(
                    marker=outbox.external_marker,
                    opportunity_crm_id=event.opportunity_crm_id,
                    action=event.action.value,
                    occurred_at=event.occurred_at,
                    content_id=event.content_id,
                    content_title=info.title,
                    content_url=info.url,
                    rep_email=event.rep_email,
                    account_crm_id=account,
                    owner_crm_id=who.owner_crm_id,
                    owner_source=who.source,
                    attribution_note=who.note,
                    duration_seconds=event.duration_seconds,
                    channel=event.channel,
                )
            )
        return activities

    def _owner_directory(self, session: Session) -> OwnerDirectory:
        if self._directory is None:
            # Only some CRMs' settings name an integration user (Salesforce's do).
            integration = getattr(self.connection.writeback, "integration_user_email", None)
            self._directory = OwnerDirectory.load(
                session, self.connection_id, self.connector.kind, integration_email=integration
            )
        return self._directory

    # -- recording ------------------------------------------------------------------------

    def _record(self, claimed: list[_Claimed], results: Sequence[WriteResult]) -> list[int]:
        """Store every row's outcome in one transaction; the ids left ``unknown``."""
        by_marker = {r.marker: r for r in results}
        now = self.now()
        unknown: list[int] = []
        with self.sessions.begin() as session:
            rows = self._locked(session, [c.outbox_id for c in claimed])
            for claim in claimed:
                row = rows.get(claim.outbox_id)
                if not _still_ours(row, claim):
                    continue  # reconciled by another node after our lease expired
                assert row is not None
                result = by_marker.get(claim.marker) or WriteResult(
                    claim.marker, WriteStatus.UNKNOWN, error="the connector said nothing of it"
                )
                if result.status is WriteStatus.WRITTEN and result.crm_id:
                    self._written(row, result.crm_id, result.crm_object_type, now)
                    self._tally.add("written")
                elif result.status is WriteStatus.FAILED:
                    row.attempts += 1
                    self._bury(row, result.error or "the CRM refused the record")
                elif result.status is WriteStatus.RETRY:
                    self._retry(row, result.error, result.retry_after, now)
                else:
                    row.last_error = result.error
                    unknown.append(row.id)
                    self._tally.add("unknown")
        return unknown

    def _release(self, claimed: list[_Claimed], *, error: str) -> None:
        """Put rows that were never applied back to ``pending`` (no attempt counted)."""
        with self.sessions.begin() as session:
            rows = self._locked(session, [c.outbox_id for c in claimed])
            for claim in claimed:
                row = rows.get(claim.outbox_id)
                if _still_ours(row, claim):
                    assert row is not None
                    row.state = OutboxState.PENDING
                    row.last_error = error
                    row.claimed_by = None

    def _written(
        self, row: WritebackOutbox, crm_id: str, object_type: str | None, now: datetime
    ) -> None:
        row.state = OutboxState.WRITTEN
        row.crm_activity_id = crm_id
        row.crm_object_type = object_type
        row.written_at = now
        row.last_error = None
        row.claimed_by = None

    def _retry(
        self,
        row: WritebackOutbox,
        error: str | None,
        retry_after: timedelta | None,
        now: datetime,
    ) -> None:
        row.attempts += 1
        row.last_error = error
        if row.attempts >= self.options.max_attempts:
            self._bury(row, error or "gave up after repeated failures")
            return
        row.state = OutboxState.PENDING
        row.claimed_by = None
        row.next_attempt_at = now + self.options.backoff(row.attempts, retry_after)
        self._tally.add("retried")

    def _bury(self, row: WritebackOutbox, error: str) -> None:
        row.state = OutboxState.DEAD
        row.last_error = error
        row.claimed_by = None
        self._tally.add("dead")
        if len(self._tally.dead_errors) < self.options.dead_samples:
            self._tally.dead_errors.append({"marker": row.external_marker, "error": error})

    def _locked(self, session: Session, ids: Sequence[int]) -> dict[int, WritebackOutbox]:
        rows = session.scalars(
            select(WritebackOutbox).where(WritebackOutbox.id.in_(ids)).with_for_update()
        )
        return {row.id: row for row in rows}

    # -- reconciliation -------------------------------------------------------------------

    def _reconcile(self, *, stale: bool, ids: Sequence[int] = ()) -> None:
        """Look up ``in_flight`` rows in the CRM: found → written, else back to pending.

        ``stale``: every in-flight row of the connection (left by a dead process); else
        just ``ids``, which this pass sent and whose answer was lost (counts an attempt).
        """
        settled_before = self.now() - self.connector.activity_lookup_delay()
        for chunk in self._in_flight(stale=stale, ids=ids, settled_before=settled_before):
            activities = [c.activity for c in chunk if c.activity is not None]
            times = [c.claimed_at for c in chunk if c.claimed_at is not None]
            found: list[FoundActivity] = []
            if activities:
                try:
                    found = self.connector.find_activities(
                        activities, sent_after=min(times) if times else None
                    )
                except (BudgetExhaustedError, ConfigurationError):
                    raise
                except Exception as exc:
                    # Left in flight: nothing is resent before a later lookup succeeds.
                    log.warning(
                        "writeback_lookup_failed", connection=self.name, error=_describe(exc)
                    )
                    return
            self._settle(chunk, {f.marker: f for f in found}, count_attempt=not stale)

    def _in_flight(
        self, *, stale: bool, ids: Sequence[int], settled_before: datetime
    ) -> Iterator[list[_Claimed]]:
        """In-flight rows sent before ``settled_before``, a batch at a time, by id."""
        after = 0
        while True:
            with self.sessions.begin() as session:
                query = (
                    select(WritebackOutbox, UsageEvent)
                    .join(UsageEvent, UsageEvent.id == WritebackOutbox.usage_event_id)
                    .where(
                        WritebackOutbox.connection_id == self.connection_id,
                        WritebackOutbox.state == OutboxState.IN_FLIGHT,
                        WritebackOutbox.id > after,
                        or_(
                            WritebackOutbox.claimed_at.is_(None),
                            WritebackOutbox.claimed_at <= settled_before,
                        ),
                    )
                    .order_by(WritebackOutbox.id)
                    .limit(self.batch_size)
                )
                if not stale:
                    query = query.where(WritebackOutbox.id.in_(list(ids)))
                rows = [(o, e) for o, e in session.execute(query)]
                chunk = [
                    _Claimed(
                        outbox.id,
                        outbox.external_marker,
                        activity,
                        outbox.claimed_at,
                        outbox.batch_id,
                    )
                    for (outbox, _), activity in zip(
                        rows, self._activities(session, rows), strict=True
                    )
                ]
            if chunk:
                yield chunk
            if len(rows) < self.batch_size:
                return
            after = rows[-1][0].id

    def _settle(
        self, chunk: list[_Claimed], found: dict[str, FoundActivity], *, count_attempt: bool
    ) -> None:
        now = self.now()
        with self.sessions.begin() as session:
            if not renew_lease(session, self.lease_name, self.node_id, self.options.lease_ttl):
                raise _LeaseLost(f"the writeback lease of {self.name!r} was taken over")
            rows = self._locked(session, [c.outbox_id for c in chunk])
            for claim in chunk:
                row = rows.get(claim.outbox_id)
                if not _still_ours(row, claim):
                    continue
                assert row is not None
                hit = found.get(claim.marker)
                if hit is not None:
                    self._written(row, hit.crm_id, hit.crm_object_type, now)
                    self._tally.add("reconciled")
                elif claim.activity is None:
                    self._bury(row, "the usage event has no opportunity to write it on")
                elif count_attempt:
                    self._retry(row, row.last_error, None, now)
                else:
                    # Killed before the CRM saw it: due again at once, no attempt counted.
                    row.state = OutboxState.PENDING
                    row.claimed_by = None
                    row.next_attempt_at = now
                    self._tally.add("requeued")

    def _revive_dead(self) -> None:
        """Dead rows back in the queue, by way of a lookup: a row buried after its answers
        kept getting lost (or by hand) may exist in the CRM, and must not be sent twice."""
        with self.sessions.begin() as session:
            revived = session.execute(
                update(WritebackOutbox)
                .where(
                    WritebackOutbox.connection_id == self.connection_id,
                    WritebackOutbox.state == OutboxState.DEAD,
                )
                .values(
                    state=OutboxState.IN_FLIGHT,
                    attempts=0,
                    next_attempt_at=self.now(),
                    batch_id=None,
                    claimed_by=None,
                    claimed_at=None,
                )
            )
            self._tally.add("revived", int(getattr(revived, "rowcount", 0) or 0))

    # -- budget, lease, job rows -----------------------------------------------------------

    def _check_budget(self) -> None:
        fraction = self.connection.budget.max_daily_fraction
        problem = daily_budget_problem(self.connector.api_budget(), fraction)
        if problem:
            raise _BudgetPaused(problem)

    def _acquire_lease(self) -> None:
        take_job_lease(
            self.sessions,
            self.lease_name,
            self.node_id,
            self.options.lease_ttl,
            what=f"a writeback of connection {self.name!r}",
        )

    def _close_abandoned_runs(self) -> None:
        close_abandoned_runs(
            self.sessions,
            self.connection_id,
            JobKind.WRITEBACK,
            "the process running this writeback stopped without finishing (killed or "
            "crashed); a later pass reconciled its batch",
        )

    def _start_job(self, params: dict[str, Any]) -> int:
        return start_job_run(
            self.sessions, self.connection_id, JobKind.WRITEBACK, self.node_id, params
        )

    def _job_counts(self, session: Session) -> dict[str, Any]:
        rows = session.execute(
            select(WritebackOutbox.state, func.count())
            .where(WritebackOutbox.connection_id == self.connection_id)
            .group_by(WritebackOutbox.state)
        )
        states: dict[OutboxState, int] = {row[0]: row[1] for row in rows}
        return {
            **self._tally.counts,
            "pending_left": int(states.get(OutboxState.PENDING, 0)),
            "in_flight_left": int(states.get(OutboxState.IN_FLIGHT, 0)),
            "dead_total": int(states.get(OutboxState.DEAD, 0)),
            "dead_errors": list(self._tally.dead_errors),
        }

    def _count_requests(self) -> None:
        self._tally.counts["requests"] = self.connector.requests_made() - self._requests_before

    def _update_job(self, session: Session, job_id: int) -> None:
        self._count_requests()
        session.execute(
            update(JobRun)
            .where(JobRun.id == job_id)
            .values(counts=dict(self._tally.counts), heartbeat_at=utcnow())
        )

    def _finish(
        self, job_id: int, status: JobStatus, error: str | None, started: float
    ) -> JobOutcome:
        seconds = time.monotonic() - started
        with self.sessions.begin() as session:
            counts = self._job_counts(session)
            job = session.get(JobRun, job_id)
            assert job is not None
            job.status = status
            job.finished_at = utcnow()
            job.error = error
            job.counts = counts
        numbers = {k: v for k, v in counts.items() if isinstance(v, int)}
        log.info(
            "writeback_finished",
            connection=self.name,
            job_id=job_id,
            status=status.value,
            seconds=round(seconds, 2),
            **numbers,
        )
        return JobOutcome(job_id, status, numbers, {}, error, seconds)


def _still_ours(row: WritebackOutbox | None, claim: _Claimed) -> bool:
    """The row is still in flight under the claim we hold (not settled or claimed since)."""
    return row is not None and row.state is OutboxState.IN_FLIGHT and row.batch_id == claim.batch_id


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, StagelinkError) else f"{type(exc).__name__}: {text}"
