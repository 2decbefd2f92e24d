"""Accepting an event means queueing its write-back: the outbox row, in the same transaction.

The row's shape is the contract with the writeback engine (``stagelink.writeback``): state
``pending``, due now, and ``external_marker = "sl-<client_event_id>"`` — the key written
into the CRM activity so a crashed batch can be found there again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from stagelink.storage import OutboxState, WritebackOutbox

__all__ = ["AcceptedEvent", "add_outbox_rows", "external_marker"]

#: ``(usage_event_id, connection_id, client_event_id)`` of an event being accepted.
AcceptedEvent = tuple[int, int, uuid.UUID]


def external_marker(client_event_id: uuid.UUID) -> str:
    """The idempotency key of an event's CRM activity."""
    return f"sl-{client_event_id}"


def add_outbox_rows(session: Session, accepted: Sequence[AcceptedEvent], now: datetime) -> None:
    """Insert one pending outbox row per accepted event (not committed)."""
    if not accepted:
        return
    session.execute(
        insert(WritebackOutbox),
        [
            {
                "usage_event_id": event_id,
                "connection_id": connection_id,
                "state": OutboxState.PENDING,
                "attempts": 0,
                "external_marker": external_marker(client_event_id),
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for event_id, connection_id, client_event_id in accepted
        ],
    )
