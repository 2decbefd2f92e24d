"""Usage capture and writeback: API tokens, usage events and the writeback outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stagelink.storage.enums import OutboxState, TokenKind, UsageAction, UsageStatus, enum_column
from stagelink.storage.models.base import Base, BigIntKey, IdMixin
from stagelink.storage.types import email_type, utcnow


class ApiToken(IdMixin, Base):
    """A bearer token for the usage API. Only its SHA-256 is stored, never the token."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(100), index=True)
    #: Hex SHA-256 of the full token; look a presented token up by its hash.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The first characters of the token, safe to show in ``stagelink tokens list``.
    prefix: Mapped[str] = mapped_column(String(16))
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind, "token_kind"))
    #: The rep a ``rep`` token acts as.
    rep_email: Mapped[str | None] = mapped_column(email_type())
    #: e.g. ``["usage:write"]``.
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class UsageEvent(IdMixin, Base):
    """A rep used a piece of content; idempotent by the client's event id."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_status", "connection_id", "status"),
        Index("ix_usage_events_opportunity", "connection_id", "opportunity_crm_id"),
        Index("ix_usage_events_content", "content_id", "occurred_at"),
    )

    #: The UUID the client generated; a retried batch is recognised by it.
    client_event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    rep_email: Mapped[str] = mapped_column(email_type())
    #: None while the event is ``unassigned`` (used before the deal existed).
    opportunity_crm_id: Mapped[str | None] = mapped_column(String(255))
    content_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[UsageAction] = mapped_column(enum_column(UsageAction, "usage_action"))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    #: Where it happened: hubspot_card, salesforce_canvas, mobile_page, tracked_link, app...
    channel: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[UsageStatus] = mapped_column(enum_column(UsageStatus, "usage_status"))
    #: Why an event is held or rejected.
    reason: Mapped[str | None] = mapped_column(Text)
    api_token_id: Mapped[int | None] = mapped_column(
        BigIntKey, ForeignKey("api_tokens.id", ondelete="SET NULL")
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    outbox: Mapped[WritebackOutbox | None] = relationship(back_populates="usage_event")


class WritebackOutbox(IdMixin, Base):
    """The exactly-once ledger: one row per usage event to write to the CRM.

    A writer claims ``pending`` rows whose ``next_attempt_at`` has passed, marks them
    ``in_flight`` with a ``batch_id`` *before* sending, and records ``crm_activity_id``
    and ``written`` after. Rows found ``in_flight`` after a crash are reconciled against
    the CRM by ``external_marker`` before anything is resent.
    """

    __tablename__ = "writeback_outbox"
    __table_args__ = (
        Index("ix_writeback_outbox_due", "connection_id", "state", "next_attempt_at"),
    )

    usage_event_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("usage_events.id", ondelete="CASCADE"), unique=True
    )
    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    state: Mapped[OutboxState] = mapped_column(
        enum_column(OutboxState, "outbox_state"), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: Node that claimed the row, and when (stale ``in_flight`` rows need reconciling).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    #: Task, Event, note, task, timeline_event ... as written.
    crm_object_type: Mapped[str | None] = mapped_column(String(50))
    crm_activity_id: Mapped[str | None] = mapped_column(String(255))
    #: The idempotency key written into the activity (external id value or a marker in
    #: its body) so a crashed batch can be found in the CRM.
    external_marker: Mapped[str] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    written_at: Mapped[datetime | None]

    usage_event: Mapped[UsageEvent] = relationship(back_populates="outbox")
