"""Job bookkeeping: sync cursors, backfill checkpoints, job runs and leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stagelink.storage.enums import JobKind, JobStatus, enum_column
from stagelink.storage.models.base import Base, BigIntKey, IdMixin
from stagelink.storage.types import utcnow


class SyncCursor(IdMixin, Base):
    """Where incremental sync of one object type resumes, e.g.
    ``{"modstamp": "2026-01-02T03:04:05Z", "last_id": "006..."}``.

    Saved only in the transaction that commits the records it covers.
    """

    __tablename__ = "sync_cursors"
    __table_args__ = (
        UniqueConstraint("connection_id", "object_type", name="uq_sync_cursors_object_type"),
    )

    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    object_type: Mapped[str] = mapped_column(String(50))
    cursor: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Checkpoint(IdMixin, Base):
    """Resumable state of a long job (a backfill), keyed by a job key such as
    ``backfill:acme-salesforce:opportunity:2020-01-01..2024-01-01``."""

    __tablename__ = "checkpoints"

    job_key: Mapped[str] = mapped_column(String(255), unique=True)
    connection_id: Mapped[int | None] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobRun(IdMixin, Base):
    """One run of a sync, backfill or writeback job, with its counts and outcome.

    ``counts`` keys: read, inserted, updated, deleted, quarantined, written (as relevant).
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_connection_kind", "connection_id", "kind", "started_at"),
        Index("ix_job_runs_status", "status"),
    )

    connection_id: Mapped[int | None] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE")
    )
    kind: Mapped[JobKind] = mapped_column(enum_column(JobKind, "job_kind"))
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "job_status"), default=JobStatus.RUNNING
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    #: Last sign of life of a running job; a stale heartbeat means its node died.
    heartbeat_at: Mapped[datetime | None]
    #: Which process ran it (hostname:pid or a configured node id).
    node_id: Mapped[str | None] = mapped_column(String(200))
    #: What was asked: objects, since/until, dry_run, full...
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class Lease(IdMixin, Base):
    """A named, expiring lock shared by all nodes (e.g. ``sync:acme-salesforce``).

    ``generation`` increases on every takeover; a holder can pass it along as a fencing
    token.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    generation: Mapped[int] = mapped_column(Integer, default=1)
