"""The closed value sets stored in status and kind columns.

They are stored as their lower-case ``value`` in a VARCHAR with no CHECK constraint:
SQLAlchemy validates them in Python, and adding a member later needs no table rebuild
on SQLite (only a code change).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Enum


class UsageAction(StrEnum):
    """What a rep did with a piece of content."""

    VIEWED = "viewed"
    SHARED = "shared"
    PRESENTED = "presented"
    DOWNLOADED = "downloaded"


class UsageStatus(StrEnum):
    """Where a usage event stands.

    ``accepted`` events have an outbox row and will be written back; ``held`` events wait
    for their opportunity to be synced; ``unassigned`` events have no opportunity yet;
    ``rejected`` events are kept only with the reason.
    """

    ACCEPTED = "accepted"
    HELD = "held"
    UNASSIGNED = "unassigned"
    REJECTED = "rejected"


class OutboxState(StrEnum):
    """Life of one writeback: ``pending`` → ``in_flight`` → ``written`` (or ``dead``)."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    WRITTEN = "written"
    DEAD = "dead"


class JobKind(StrEnum):
    """What a job run does."""

    SYNC = "sync"
    BACKFILL = "backfill"
    WRITEBACK = "writeback"


class JobStatus(StrEnum):
    """How a job run ended (``running`` while it runs).

    ``paused_budget`` means the API budget ran out and the job stopped at a checkpoint;
    ``interrupted`` means it was stopped (Ctrl-C, SIGTERM) at a checkpoint.
    """

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PAUSED_BUDGET = "paused_budget"
    INTERRUPTED = "interrupted"


class TokenKind(StrEnum):
    """Who an API token belongs to: one rep, or an integration (app, page, server)."""

    REP = "rep"
    INTEGRATION = "integration"


def enum_column(enum_class: type[StrEnum], name: str) -> Enum:
    """A portable column type storing ``enum_class`` members by value (VARCHAR(20))."""

    def values(members: Any) -> list[str]:
        return [member.value for member in members]

    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=values,
        validate_strings=True,
    )
