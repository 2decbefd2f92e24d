"""Accepted usage events straight into storage, for tests, benchmarks and demos.

The usage API is the way events arrive in production; this helper skips it (no tokens, no
validation) and writes what an accepted event leaves behind: a ``usage_events`` row and its
``writeback_outbox`` row with the marker ``sl-<client event id>``, ready for write-back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from stagelink.storage import (
    OutboxState,
    UsageAction,
    UsageEvent,
    UsageStatus,
    WritebackOutbox,
    get_or_create_connection,
    utcnow,
)

__all__ = ["EventSpec", "insert_accepted_events", "marker_of"]


def marker_of(client_event_id: uuid.UUID) -> str:
    """The outbox marker of an event (the agreed ``sl-<client event id>``)."""
    return f"sl-{client_event_id}"


@dataclass(frozen=True)
class EventSpec:
    """One usage event to insert."""

    opportunity_crm_id: str | None
    rep_email: str
    content_id: str
    action: UsageAction = UsageAction.VIEWED
    occurred_at: datetime = field(default_factory=utcnow)
    duration_seconds: int | None = None
    channel: str | None = "mobile_page"
    client_event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def marker(self) -> str:
        """The outbox marker this event gets."""
        return marker_of(self.client_event_id)


def insert_accepted_events(
    sessions: sessionmaker[Session],
    connection_name: str,
    kind: str,
    events: Iterable[EventSpec],
    *,
    chunk: int = 2_000,
) -> list[str]:
    """Insert ``events`` as accepted, each with a pending outbox row; their markers."""
    markers: list[str] = []
    batch: list[EventSpec] = []

    def flush() -> None:
        now = utcnow()
        with sessions.begin() as session:
            connection = get_or_create_connection(session, connection_name, kind)
            for spec in batch:
                event = UsageEvent(
                    client_event_id=spec.client_event_id,
                    connection_id=connection.id,
                    rep_email=spec.rep_email,
                    opportunity_crm_id=spec.opportunity_crm_id,
                    content_id=spec.content_id,
                    action=spec.action,
                    occurred_at=spec.occurred_at,
                    received_at=now,
                    duration_seconds=spec.duration_seconds,
                    channel=spec.channel,
                    status=UsageStatus.ACCEPTED,
                )
                event.outbox = WritebackOutbox(
                    connection_id=connection.id,
                    state=OutboxState.PENDING,
                    external_marker=spec.marker,
                    next_attempt_at=now,
                )
                session.add(event)
        batch.clear()

    for spec in events:
        batch.append(spec)
        markers.append(spec.marker)
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return markers
