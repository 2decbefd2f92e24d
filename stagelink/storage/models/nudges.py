"""Stage-change nudges: where detection stands, one ledger row per transition, the nudges
sent to reps, and the reps' Web Push subscriptions.

Exactly once per transition: ``nudge_transitions.history_id`` is unique, so a transition
is queued once however many nodes look at it; a nudge is sent by the node that moved its
row from ``pending`` to ``sending`` (a conditional update only one node can win).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stagelink.storage.enums import enum_column
from stagelink.storage.models.base import Base, BigIntKey, IdMixin
from stagelink.storage.types import email_type, utcnow

__all__ = [
    "Nudge",
    "NudgeCursor",
    "NudgeKind",
    "NudgeState",
    "NudgeTransition",
    "PushSubscription",
    "TransitionStatus",
]


class TransitionStatus(StrEnum):
    """A detected stage change: ``waiting`` for its nudge, ``nudged``, or ``skipped`` (why
    in ``reason``: closed, deleted, stale, moved on, ...)."""

    WAITING = "waiting"
    NUDGED = "nudged"
    SKIPPED = "skipped"


class NudgeKind(StrEnum):
    """One deal's nudge, or a digest of several."""

    SINGLE = "single"
    DIGEST = "digest"


class NudgeState(StrEnum):
    """``pending`` → ``sending`` → ``sent`` (or ``failed``: see ``results`` and ``last_error``)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class NudgeCursor(IdMixin, Base):
    """How far detection has read a connection's ``crm_stage_history``.

    Rows with ``id <= settled_id`` are examined for good (synced long enough ago that no
    transaction still adding older ids can be open); newer ones are looked at again until
    they are settled, skipping those already in the ledger.
    """

    __tablename__ = "nudge_cursors"

    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE"), unique=True
    )
    settled_id: Mapped[int] = mapped_column(BigIntKey, default=0)
    #: The highest history id seen so far (reports count stale rows once).
    seen_id: Mapped[int] = mapped_column(BigIntKey, default=0)
    #: When nudges began for this connection: history before it is never nudged.
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Nudge(IdMixin, Base):
    """One message to one rep (on one or more channels): a deal's new stage, or a digest."""

    __tablename__ = "nudges"
    __table_args__ = (
        Index("ix_nudges_rep", "rep_email", "created_at"),
        Index("ix_nudges_due", "state", "due_at"),
    )

    rep_email: Mapped[str] = mapped_column(email_type())
    kind: Mapped[NudgeKind] = mapped_column(enum_column(NudgeKind, "nudge_kind"))
    state: Mapped[NudgeState] = mapped_column(
        enum_column(NudgeState, "nudge_state"), default=NudgeState.PENDING
    )
    #: e.g. ``["email", "push"]``.
    channels: Mapped[list[str]] = mapped_column(default=list)
    #: Per channel: ``{"state": "sent"|"failed"|"skipped", "at": ..., "detail": ...}``.
    results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subject: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class NudgeTransition(IdMixin, Base):
    """The ledger: one row per stage-history row detection looked at and decided on."""

    __tablename__ = "nudge_transitions"
    __table_args__ = (
        Index("ix_nudge_transitions_waiting", "status", "rep_email"),
        Index("ix_nudge_transitions_opportunity", "connection_id", "opportunity_crm_id"),
    )

    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    history_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("crm_stage_history.id", ondelete="CASCADE"), unique=True
    )
    opportunity_crm_id: Mapped[str] = mapped_column(String(255))
    to_stage: Mapped[str] = mapped_column(String(255))
    canonical_stage: Mapped[str | None] = mapped_column(String(100))
    previous_canonical_stage: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime]
    #: The deal owner's e-mail (None when the owner has none).
    rep_email: Mapped[str | None] = mapped_column(email_type())
    status: Mapped[TransitionStatus] = mapped_column(
        enum_column(TransitionStatus, "nudge_transition_status")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    nudge_id: Mapped[int | None] = mapped_column(
        BigIntKey, ForeignKey("nudges.id", ondelete="SET NULL"), index=True
    )
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PushSubscription(IdMixin, Base):
    """A browser's Web Push subscription (``PushSubscription.toJSON()``) for one rep."""

    __tablename__ = "push_subscriptions"

    rep_email: Mapped[str] = mapped_column(email_type(), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    #: Hex SHA-256 of ``endpoint``: unique, and short enough to index on every database.
    endpoint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: base64url P-256 public key and 16-byte auth secret of the browser.
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(Text)
    #: The connection of the page session that subscribed (for the record).
    connection_name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_sent_at: Mapped[datetime | None]
    #: Consecutive failed deliveries; the subscription is dropped after too many.
    failures: Mapped[int] = mapped_column(Integer, default=0)
