"""Held events: usage on an opportunity stagelink has not stored yet, resolved from the CRM.

An event whose opportunity is not stored (not synced yet, or stored as deleted) is kept
``held``; then the opportunity is read from the CRM by id (``SyncEngine.apply_ids``
through :class:`~stagelink.sync.debounce.ApplyTouched`, recorded as a small sync job with
trigger ``usage``) and the event is settled:

* the CRM has it → ``accepted``, with its outbox row, in one transaction;
* the CRM does not know it → ``rejected``: "the CRM does not know opportunity X";
* it was stored and the CRM no longer has it → ``rejected``: "... was deleted in the CRM";
* the CRM returned it but it could not be stored → ``rejected`` with the quarantine reason.

A read that fails (CRM down, budget spent) settles nothing: the events stay held and the
next attempt retries. Two paths run it: :class:`HeldResolver`, a debounced background
worker the API hands held events to right after its commit (so the API answers fast and
a burst about the same deal costs one read), and :func:`resolve_held`, which the scheduler
calls periodically per connection as the safety net (and which rejects events held longer
than ``max_hold``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from functools import partial

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.records import ObjectType
from stagelink.settings import AppConfig
from stagelink.storage import (
    Connection,
    CrmOpportunity,
    QuarantinedRecord,
    UsageEvent,
    UsageStatus,
    utcnow,
)
from stagelink.sync.debounce import ApplyTouched, Debouncer, DebouncerClosed
from stagelink.sync.engine import JobOutcome
from stagelink.sync.runner import Storage, open_connector
from stagelink.usage.notify import notify_accepted
from stagelink.usage.outbox import AcceptedEvent, add_outbox_rows

__all__ = [
    "DEFAULT_MAX_HOLD",
    "HeldResolver",
    "resolve_held",
    "resolve_opportunities",
    "settle_held",
]

log = structlog.get_logger(__name__)

DEFAULT_MAX_HOLD = timedelta(days=7)
_OPPORTUNITY = ObjectType.OPPORTUNITY
Fetch = Callable[[list[str]], JobOutcome]
"""Reads opportunities by id from the CRM and stores them."""


def held_reason(crm_id: str) -> str:
    """Why an event waits."""
    return f"opportunity {crm_id!r} is not synced yet; reading it from the CRM"


def settle_held(
    session: Session, connection_id: int, crm_ids: Collection[str], *, fetched: Collection[str]
) -> tuple[Counter[str], list[str]]:
    """Settle the held events of ``crm_ids`` from what is stored now (not committed).

    Events of a stored, live opportunity are accepted (outbox row added); events of an id
    in ``fetched`` (just read from the CRM) that is still not stored live are rejected with
    the reason. Returns the counts (``accepted``, ``rejected``) and the ids still held.
    Rows another node is settling are skipped (``SKIP LOCKED`` on PostgreSQL).
    """
    counts: Counter[str] = Counter()
    if not crm_ids:
        return counts, []
    events = session.scalars(
        select(UsageEvent)
        .where(
            UsageEvent.connection_id == connection_id,
            UsageEvent.status == UsageStatus.HELD,
            UsageEvent.opportunity_crm_id.in_(list(crm_ids)),
        )
        .order_by(UsageEvent.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not events:
        return counts, []
    wanted = sorted({e.opportunity_crm_id for e in events if e.opportunity_crm_id})
    stored = dict(
        session.execute(
            select(CrmOpportunity.crm_id, CrmOpportunity.deleted_at).where(
                CrmOpportunity.connection_id == connection_id, CrmOpportunity.crm_id.in_(wanted)
            )
        ).all()
    )
    quarantined: dict[str, str] = {}
    if fetched:
        rows = session.execute(
            select(QuarantinedRecord.crm_id, QuarantinedRecord.reason).where(
                QuarantinedRecord.connection_id == connection_id,
                QuarantinedRecord.object_type == _OPPORTUNITY.value,
                QuarantinedRecord.crm_id.in_(wanted),
                QuarantinedRecord.resolved_at.is_(None),
            )
        )
        quarantined = {crm_id: reason for crm_id, reason in rows if crm_id is not None}
    now = utcnow()
    accepted: list[AcceptedEvent] = []
    still: set[str] = set()
    for event in events:
        crm_id = event.opportunity_crm_id or ""
        if crm_id in stored and stored[crm_id] is None:
            event.status, event.reason, event.updated_at = UsageStatus.ACCEPTED, None, now
            accepted.append((event.id, connection_id, event.client_event_id))
        elif crm_id in fetched:
            event.status, event.updated_at = UsageStatus.REJECTED, now
            event.reason = _rejection(crm_id, stored, quarantined)
            counts["rejected"] += 1
        else:
            still.add(crm_id)
    session.flush()
    add_outbox_rows(session, accepted, now)
    counts["accepted"] += len(accepted)
    return counts, sorted(still)


def _rejection(crm_id: str, stored: Mapping[str, object], quarantined: Mapping[str, str]) -> str:
    if crm_id in stored:
        return f"opportunity {crm_id!r} was deleted in the CRM"
    if crm_id in quarantined:
        return f"opportunity {crm_id!r} could not be stored: {quarantined[crm_id]}"
    return f"the CRM does not know opportunity {crm_id!r}"


def resolve_opportunities(
    storage: Storage, connection: str, crm_ids: Sequence[str], fetch: Fetch
) -> Counter[str]:
    """Settle the held events of ``crm_ids``: accept what is stored, read the rest from the
    CRM with ``fetch``, then accept or reject. Notifies after a commit that accepted events.

    Counts ``accepted``, ``rejected``, ``held`` (still waiting) and ``fetched``.
    """
    counts: Counter[str] = Counter()
    with storage.sessions() as session:
        connection_id = session.scalar(select(Connection.id).where(Connection.name == connection))
    if connection_id is None or not crm_ids:
        return counts
    ids = list(dict.fromkeys(crm_ids))
    # A sync may have stored some meanwhile: those need no read.
    with storage.sessions.begin() as session:
        settled, pending = settle_held(session, connection_id, ids, fetched=())
    counts.update(settled)
    _notify(connection, settled)
    if pending:
        try:
            outcome = fetch(pending)
        except Exception:
            log.exception("usage_held_fetch_failed", connection=connection, ids=len(pending))
            counts["held"] += len(pending)
            return counts
        counts["fetched"] += len(pending)
        if not outcome.ok:
            log.warning(
                "usage_held_fetch_failed",
                connection=connection,
                ids=len(pending),
                error=outcome.error,
                job_id=outcome.job_id,
            )
            counts["held"] += len(pending)
            return counts
        with storage.sessions.begin() as session:
            settled, still = settle_held(session, connection_id, pending, fetched=set(pending))
        counts.update(settled)
        counts["held"] += len(still)
        _notify(connection, settled)
    log.info("usage_held_resolved", connection=connection, **dict(counts))
    return counts


def _notify(connection: str, settled: Counter[str]) -> None:
    if settled["accepted"]:
        notify_accepted(connection)


def resolve_held(
    config: AppConfig,
    storage: Storage,
    connection: str,
    *,
    connector_factory: Callable[[ConnectionConfig], Connector] = open_connector,
    limit: int = 1000,
    max_hold: timedelta | None = DEFAULT_MAX_HOLD,
) -> dict[str, int]:
    """Resolve up to ``limit`` opportunities with held events of ``connection`` (oldest
    first); the scheduler calls this periodically. Events held longer than ``max_hold``
    that still cannot be resolved are rejected, so nothing waits forever.

    Returns counts: ``accepted``, ``rejected``, ``expired``, ``held``, ``fetched``.
    """
    config.connection(connection)  # KeyError naming the configured ones
    with storage.sessions() as session:
        oldest = func.min(UsageEvent.received_at)
        ids: list[str] = [
            crm_id
            for crm_id in session.scalars(
                select(UsageEvent.opportunity_crm_id)
                .join(Connection, Connection.id == UsageEvent.connection_id)
                .where(
                    Connection.name == connection,
                    UsageEvent.status == UsageStatus.HELD,
                    UsageEvent.opportunity_crm_id.is_not(None),
                )
                .group_by(UsageEvent.opportunity_crm_id)
                .order_by(oldest)
                .limit(limit)
            )
            if crm_id
        ]
    counts: Counter[str] = Counter()
    if ids:
        apply = ApplyTouched(config, storage, connector_factory=connector_factory, trigger="usage")
        try:
            fetch = partial(apply, connection, _OPPORTUNITY)
            counts.update(resolve_opportunities(storage, connection, ids, fetch))
        finally:
            apply.close()
    if max_hold is not None and ids:
        # Only events whose opportunity was just tried: the others get their read first.
        counts["expired"] += _expire(storage, connection, ids, max_hold)
    return {key: counts[key] for key in ("accepted", "rejected", "expired", "held", "fetched")}


def _expire(storage: Storage, connection: str, crm_ids: list[str], max_hold: timedelta) -> int:
    cutoff = utcnow() - max_hold
    with storage.sessions.begin() as session:
        events = session.scalars(
            select(UsageEvent)
            .join(Connection, Connection.id == UsageEvent.connection_id)
            .where(
                Connection.name == connection,
                UsageEvent.status == UsageStatus.HELD,
                UsageEvent.opportunity_crm_id.in_(crm_ids),
                UsageEvent.received_at < cutoff,
            )
            .with_for_update(skip_locked=True, of=UsageEvent)
        ).all()
        now = utcnow()
        for event in events:
            event.status, event.updated_at = UsageStatus.REJECTED, now
            event.reason = (
                f"opportunity {event.opportunity_crm_id!r} could not be read from the CRM "
                f"within {_days(max_hold)}"
            )
    if events:
        log.warning("usage_held_expired", connection=connection, events=len(events))
    return len(events)


def _days(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hours"


class HeldResolver:
    """Resolves held events in the background, debounced per connection.

    ``submit`` right after the commit that stored held events; the opportunities are read
    ``window`` seconds after the last submit (at most ``max_wait`` after the first), so a
    burst about one deal costs one read. ``close`` finishes what is queued.
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        *,
        connector_factory: Callable[[ConnectionConfig], Connector] = open_connector,
        window: float = 0.3,
        max_wait: float = 3.0,
    ) -> None:
        self.storage = storage
        self._apply = ApplyTouched(
            config, storage, connector_factory=connector_factory, trigger="usage"
        )
        self._debouncer = Debouncer(
            self._resolve, window=window, max_wait=max_wait, name="usage-held"
        )
        self._lock = threading.Lock()
        #: Counts of every resolution so far (for logs and tests).
        self.counts: Counter[str] = Counter()

    def submit(self, connection: str, crm_ids: Sequence[str]) -> bool:
        """Queue ``crm_ids`` for resolution; ``False`` when closed (the scheduler's periodic
        :func:`resolve_held` picks them up then)."""
        try:
            return self._debouncer.touch(connection, _OPPORTUNITY, crm_ids)
        except DebouncerClosed:
            return False

    def flush(self, timeout: float | None = None) -> bool:
        """Resolve everything queued now and wait for it."""
        return self._debouncer.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish what is queued, then close the connectors."""
        self._debouncer.close(timeout)
        self._apply.close()

    def _resolve(self, connection: str, object_type: ObjectType, crm_ids: list[str]) -> None:
        fetch = partial(self._apply, connection, object_type)
        counts = resolve_opportunities(self.storage, connection, crm_ids, fetch)
        with self._lock:
            self.counts.update(counts)
