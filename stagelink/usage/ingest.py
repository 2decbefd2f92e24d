"""Taking in usage events: checked per event, stored in one transaction, idempotent.

:meth:`UsageService.ingest` takes a batch that passed structural validation
(:class:`~stagelink.usage.models.UsageBatchIn`) and answers every event:

========== ==================================================================================
accepted   the opportunity is stored: the event and its outbox row are committed together
held       the opportunity is not stored (yet): it is read from the CRM in the background
unassigned no opportunity given: kept until ``assign`` names one
rejected   with the reason; not stored (nothing to keep: fix and resend with the same id)
========== ==================================================================================

plus ``duplicate: true`` with the current status for an id received before, so a client
that retries a batch (its answer was lost) creates nothing twice. Checks, in order: the
same id twice in one batch (the second is rejected), the rep the token may report for,
an id already stored (duplicate), the connection, the content id (in the catalog), the
time (at most ``max_future`` ahead, at most ``max_age`` old).

The whole batch is one transaction; ids are inserted with ``ON CONFLICT DO NOTHING`` so two
requests racing with one id store it once and the loser answers ``duplicate``. After the
commit, held opportunities go to the :class:`~stagelink.usage.resolve.HeldResolver` and
:func:`~stagelink.usage.notify.notify_accepted` is called per connection that accepted.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import StagelinkError
from mapping import Catalog
from mapping.validation import load_source_catalog
from stagelink.settings import AppConfig
from stagelink.storage import (
    Connection,
    CrmOpportunity,
    TokenKind,
    UsageEvent,
    UsageStatus,
    get_or_create_connection,
    utcnow,
)
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.runner import Storage, open_connector
from stagelink.usage.models import AssignResult, EventResult, UsageEventIn
from stagelink.usage.notify import notify_accepted
from stagelink.usage.outbox import AcceptedEvent, add_outbox_rows
from stagelink.usage.resolve import HeldResolver, held_reason
from stagelink.usage.tokens import TokenInfo, authenticate

__all__ = [
    "AssignConflict",
    "AssignForbidden",
    "EventNotFound",
    "IntakeLimits",
    "UsageService",
]

log = structlog.get_logger(__name__)


class EventNotFound(StagelinkError, LookupError):
    """No usage event with that client event id."""


class AssignForbidden(StagelinkError, PermissionError):
    """This token may not assign that event."""


class AssignConflict(StagelinkError):
    """The event already has another opportunity, or is being resolved."""


@dataclass(frozen=True)
class IntakeLimits:
    """What the API takes; larger or implausible input is refused."""

    #: Events per batch; more is 413 (clients split their queue).
    max_events: int = 500
    #: Bytes per request body; more is 413.
    max_body_bytes: int = 1_000_000
    #: Clock skew tolerated for ``occurred_at`` in the future.
    max_future: timedelta = timedelta(minutes=5)
    #: How old an event may be (a phone offline for months is not reporting today's use).
    max_age: timedelta = timedelta(days=90)


@dataclass
class _Candidate:
    """An event that passed the checks that need no database."""

    index: int
    event: UsageEventIn
    rep: str
    #: None for a connection that is not configured (rejected unless a duplicate).
    connection_id: int | None
    status: UsageStatus = UsageStatus.UNASSIGNED


class UsageService:
    """The usage API's logic, shared by every request of an app (thread-safe).

    Loads the content catalog once; ``resolver`` (built unless given) resolves held
    events in the background and is closed by :meth:`close`.
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage,
        *,
        catalog: Catalog | None = None,
        limits: IntakeLimits = IntakeLimits(),
        resolver: HeldResolver | None = None,
        connector_factory: Callable[[ConnectionConfig], Connector] = open_connector,
        clock: Callable[[], datetime] = utcnow,
        signer: LinkSigner | None = None,
    ) -> None:
        self.config = config
        #: Accepts rep pages' ``sls_`` session bearers when set.
        self.signer = signer
        self.storage = storage
        self.limits = limits
        self.catalog = catalog if catalog is not None else load_source_catalog(config)
        if not len(self.catalog):
            log.warning("usage_catalog_empty", hint="every usage event will be rejected")
        self._own_resolver = resolver is None
        self.resolver = resolver or HeldResolver(
            config, storage, connector_factory=connector_factory
        )
        self.clock = clock
        self._connections: dict[str, int] = {}
        self._lock = threading.Lock()
        # SQLite has one writer at a time and its busy handler polls with sleeps of up to
        # 100 ms: queueing this process's writers on a lock instead cut the p99 of 4
        # concurrent clients from about 1,000 ms to under 200 (bench/bench_usage_ingest.py).
        # PostgreSQL needs none.
        self._gate: AbstractContextManager[object] = (
            threading.Lock() if storage.engine.dialect.name == "sqlite" else nullcontext()
        )

    def authenticate(self, authorization: str | None, *, scope: str = "usage:write") -> TokenInfo:
        """The request's token (see :func:`stagelink.usage.tokens.authenticate`)."""
        with self._gate:
            return authenticate(
                self.storage.sessions, authorization, scope=scope, signer=self.signer
            )

    def close(self) -> None:
        """Finish resolving what is queued (a resolver passed in belongs to the caller)."""
        if self._own_resolver:
            self.resolver.close()

    # -- batches --------------------------------------------------------------------------

    def ingest(self, token: TokenInfo, events: Sequence[UsageEventIn]) -> list[EventResult]:
        """Store ``events`` reported with ``token``; one result per event, in order."""
        now = self.clock()
        results: dict[int, EventResult] = {}
        candidates: list[_Candidate] = []
        first_index: dict[uuid.UUID, int] = {}
        for index, event in enumerate(events):
            problem, rep = self._authorized(token, event, first_index.get(event.client_event_id))
            first_index.setdefault(event.client_event_id, index)
            if rep is None:
                results[index] = _rejected(index, event, problem or "rejected")
            else:
                connection_id = self._connection_ids().get(event.connection)
                candidates.append(_Candidate(index, event, rep, connection_id))
        accepted_by_connection: Counter[str] = Counter()
        held: dict[str, set[str]] = {}
        with self._gate, self.storage.sessions.begin() as session:
            # Known ids answer as duplicates even where a check below would fail today (the
            # catalog changed, the event got older): what was stored stands.
            known = _stored(session, [c.event.client_event_id for c in candidates])
            fresh: list[_Candidate] = []
            for candidate in candidates:
                event = candidate.event
                stored = known.get(event.client_event_id)
                if stored is not None:
                    results[candidate.index] = _duplicate(candidate.index, event, *stored)
                    continue
                problem = self._semantic(candidate, now)
                if problem is not None:
                    results[candidate.index] = _rejected(candidate.index, event, problem)
                    continue
                fresh.append(candidate)
            _classify(session, fresh)
            inserted = _insert(session, fresh, token, now)
            accepted: list[AcceptedEvent] = []
            raced: list[_Candidate] = []
            for candidate in fresh:
                event = candidate.event
                event_id = inserted.get(event.client_event_id)
                if event_id is None:
                    raced.append(candidate)  # another request stored it meanwhile
                    continue
                reason = None
                if candidate.status is UsageStatus.ACCEPTED:
                    assert candidate.connection_id is not None
                    accepted.append((event_id, candidate.connection_id, event.client_event_id))
                    accepted_by_connection[event.connection] += 1
                elif candidate.status is UsageStatus.HELD:
                    assert event.opportunity_id is not None
                    reason = held_reason(event.opportunity_id)
                    held.setdefault(event.connection, set()).add(event.opportunity_id)
                results[candidate.index] = EventResult(
                    index=candidate.index,
                    client_event_id=str(event.client_event_id),
                    status=candidate.status,
                    reason=reason,
                )
            add_outbox_rows(session, accepted, now)
            if raced:
                again = _stored(session, [c.event.client_event_id for c in raced])
                for candidate in raced:
                    status, reason = again[candidate.event.client_event_id]
                    results[candidate.index] = _duplicate(
                        candidate.index, candidate.event, status, reason
                    )
        self._after_commit(accepted_by_connection, held)
        ordered = [results[i] for i in range(len(events))]
        log.info(
            "usage_batch",
            token=token.prefix,
            events=len(events),
            duplicates=sum(r.duplicate for r in ordered),
            **Counter(r.status.value for r in ordered),
        )
        return ordered

    @staticmethod
    def _authorized(
        token: TokenInfo, event: UsageEventIn, earlier: int | None
    ) -> tuple[str | None, str | None]:
        """``(problem, rep)``: the rep this event counts for, or why it is refused."""
        if earlier is not None:
            return f"client_event_id repeats event {earlier} of this batch", None
        if token.connection is not None and event.connection != token.connection:
            return f"this page reports for connection {token.connection!r} only", None
        if token.kind is TokenKind.REP:
            rep = token.rep_email
            if rep is None:  # a rep token stored without a rep: refuse rather than guess
                return "this token has no rep", None
            if event.rep is not None and event.rep != rep:
                return f"this token reports for {rep}, not for {event.rep}", None
            return None, rep
        if event.rep is None:
            return "rep is required with an integration token", None
        return None, event.rep

    def _semantic(self, candidate: _Candidate, now: datetime) -> str | None:
        """Why a new event cannot be taken (connection, content, time), or None."""
        event = candidate.event
        if candidate.connection_id is None:
            known = ", ".join(c.name for c in self.config.connections) or "none"
            return f"unknown connection {event.connection!r} (configured: {known})"
        if self.catalog.get(event.content_id) is None:
            return f"unknown content {event.content_id!r} (not in the content catalog)"
        ahead = event.occurred_at - now
        if ahead > self.limits.max_future:
            return (
                f"occurred_at is {_span(ahead)} in the future (at most "
                f"{_span(self.limits.max_future)} of clock skew is allowed)"
            )
        if now - event.occurred_at > self.limits.max_age:
            return f"occurred_at is older than {_span(self.limits.max_age)}"
        return None

    def _connection_ids(self) -> dict[str, int]:
        """Configured connection name → its row id (rows created once, on first use)."""
        with self._lock:
            if len(self._connections) == len(self.config.connections):
                return self._connections
            with self.storage.sessions.begin() as session:
                for settings in self.config.connections:
                    row = get_or_create_connection(session, settings.name, settings.kind)
                    self._connections[settings.name] = row.id
            return self._connections

    def _after_commit(self, accepted: Counter[str], held: dict[str, set[str]]) -> None:
        for connection, count in accepted.items():
            if count:
                notify_accepted(connection)
        for connection, crm_ids in held.items():
            if not self.resolver.submit(connection, sorted(crm_ids)):
                log.info("usage_held_deferred", connection=connection, ids=len(crm_ids))

    # -- assigning --------------------------------------------------------------------------

    def assign(
        self, token: TokenInfo, client_event_id: uuid.UUID, opportunity_id: str
    ) -> AssignResult:
        """Give an unassigned (or rejected) event its opportunity, then resolve it like a
        new event: accepted with its outbox row, or held while it is read from the CRM.

        Raises :class:`EventNotFound`, :class:`AssignForbidden` (only an integration token,
        the token that reported the event or another token of the same rep may assign) and
        :class:`AssignConflict` (it already has another opportunity and is not rejected).
        Assigning the opportunity it already has answers its status (``duplicate``).
        """
        opportunity_id = opportunity_id.strip()
        now = self.clock()
        # Before the transaction: a first use creates connection rows in one of its own.
        names = {row_id: name for name, row_id in self._connection_ids().items()}
        with self._gate, self.storage.sessions.begin() as session:
            event = session.scalars(
                select(UsageEvent)
                .where(UsageEvent.client_event_id == client_event_id)
                .with_for_update()
            ).one_or_none()
            if event is None:
                raise EventNotFound(f"no usage event {client_event_id}")
            if not _may_assign(token, event):
                raise AssignForbidden(
                    f"token {token.prefix}… may not assign event {client_event_id}: another "
                    "rep reported it (integration tokens may assign any event)"
                )
            current = event.opportunity_crm_id
            if current == opportunity_id and event.status is not UsageStatus.UNASSIGNED:
                return _assign_result(event, duplicate=True)
            if event.status not in (UsageStatus.UNASSIGNED, UsageStatus.REJECTED):
                raise AssignConflict(
                    f"event {client_event_id} is {event.status.value} for opportunity "
                    f"{current!r}; only unassigned or rejected events can be assigned"
                )
            live = session.scalar(
                select(CrmOpportunity.id).where(
                    CrmOpportunity.connection_id == event.connection_id,
                    CrmOpportunity.crm_id == opportunity_id,
                    CrmOpportunity.deleted_at.is_(None),
                )
            )
            event.opportunity_crm_id = opportunity_id
            event.updated_at = now
            if live is not None:
                event.status, event.reason = UsageStatus.ACCEPTED, None
                session.flush()
                add_outbox_rows(
                    session, [(event.id, event.connection_id, event.client_event_id)], now
                )
            else:
                event.status, event.reason = UsageStatus.HELD, held_reason(opportunity_id)
            result = _assign_result(event)
            connection = self._connection_name(session, event.connection_id, names)
        if result.status is UsageStatus.ACCEPTED:
            notify_accepted(connection)
        elif result.status is UsageStatus.HELD:
            self.resolver.submit(connection, [opportunity_id])
        log.info(
            "usage_event_assigned",
            client_event_id=str(client_event_id),
            status=result.status.value,
            token=token.prefix,
        )
        return result

    @staticmethod
    def _connection_name(session: Session, connection_id: int, names: dict[int, str]) -> str:
        if connection_id in names:
            return names[connection_id]
        stored = session.scalar(select(Connection.name).where(Connection.id == connection_id))
        assert stored is not None
        return stored


# -- helpers ----------------------------------------------------------------------------------


def _stored(
    session: Session, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[UsageStatus, str | None]]:
    wanted = list(dict.fromkeys(ids))
    found: dict[uuid.UUID, tuple[UsageStatus, str | None]] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(UsageEvent.client_event_id, UsageEvent.status, UsageEvent.reason).where(
                UsageEvent.client_event_id.in_(wanted[start : start + 500])
            )
        )
        for client_event_id, status, reason in rows:
            found[client_event_id] = (status, reason)
    return found


def _classify(session: Session, candidates: list[_Candidate]) -> None:
    """accepted (opportunity stored, live), held (not stored, or stored deleted: read it
    again, it may have been restored) or unassigned."""
    by_connection: dict[int, set[str]] = {}
    for candidate in candidates:
        if candidate.event.opportunity_id is not None and candidate.connection_id is not None:
            by_connection.setdefault(candidate.connection_id, set()).add(
                candidate.event.opportunity_id
            )
    live: set[tuple[int, str]] = set()
    for connection_id, crm_ids in by_connection.items():
        wanted = sorted(crm_ids)
        for start in range(0, len(wanted), 500):
            rows = session.scalars(
                select(CrmOpportunity.crm_id).where(
                    CrmOpportunity.connection_id == connection_id,
                    CrmOpportunity.crm_id.in_(wanted[start : start + 500]),
                    CrmOpportunity.deleted_at.is_(None),
                )
            )
            live.update((connection_id, crm_id) for crm_id in rows)
    for candidate in candidates:
        opportunity = candidate.event.opportunity_id
        if opportunity is None:
            candidate.status = UsageStatus.UNASSIGNED
        elif (candidate.connection_id, opportunity) in live:
            candidate.status = UsageStatus.ACCEPTED
        else:
            candidate.status = UsageStatus.HELD


def _insert(
    session: Session, candidates: list[_Candidate], token: TokenInfo, now: datetime
) -> dict[uuid.UUID, int]:
    """Insert the events, skipping ids stored meanwhile; client event id → row id."""
    if not candidates:
        return {}
    rows: list[dict[str, Any]] = []
    for candidate in candidates:
        event = candidate.event
        rows.append(
            {
                "client_event_id": event.client_event_id,
                "connection_id": candidate.connection_id,
                "rep_email": candidate.rep,
                "opportunity_crm_id": event.opportunity_id,
                "content_id": event.content_id,
                "action": event.action,
                "occurred_at": event.occurred_at,
                "received_at": now,
                "duration_seconds": event.duration_seconds,
                "channel": event.channel,
                "status": candidate.status,
                "reason": held_reason(event.opportunity_id)
                if candidate.status is UsageStatus.HELD and event.opportunity_id
                else None,
                "api_token_id": token.id,
                "updated_at": now,
            }
        )
    table = UsageEvent.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["client_event_id"])
        .returning(table.c.id, table.c.client_event_id)
    )
    # executemany: one cached statement, sent as multi-row batches ("insertmanyvalues").
    result = session.connection().execute(statement, rows)
    return {client_event_id: row_id for row_id, client_event_id in result}


def _may_assign(token: TokenInfo, event: UsageEvent) -> bool:
    if token.kind is TokenKind.INTEGRATION or (
        token.id is not None and event.api_token_id == token.id
    ):
        return True
    # A rep who rotated their token still owns their events.
    return token.rep_email is not None and token.rep_email == event.rep_email


def _assign_result(event: UsageEvent, *, duplicate: bool = False) -> AssignResult:
    return AssignResult(
        client_event_id=str(event.client_event_id),
        opportunity_id=event.opportunity_crm_id,
        status=event.status,
        duplicate=duplicate,
        reason=event.reason,
    )


def _rejected(index: int, event: UsageEventIn, reason: str) -> EventResult:
    return EventResult(
        index=index,
        client_event_id=str(event.client_event_id),
        status=UsageStatus.REJECTED,
        reason=reason,
    )


def _duplicate(
    index: int, event: UsageEventIn, status: UsageStatus, reason: str | None
) -> EventResult:
    return EventResult(
        index=index,
        client_event_id=str(event.client_event_id),
        status=status,
        duplicate=True,
        reason=reason,
    )


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
