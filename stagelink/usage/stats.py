"""Counts of usage events by status, for ``/metrics`` and the CLI."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stagelink.storage import Connection, UsageEvent, UsageStatus

__all__ = ["usage_counts", "usage_counts_by_connection"]


def usage_counts(session: Session) -> dict[str, int]:
    """Stored usage events per status (every status present, zero when none).

    Events rejected when they arrived are not stored, so ``rejected`` counts only those
    rejected later (their opportunity could not be resolved).
    """
    counts = dict.fromkeys((status.value for status in UsageStatus), 0)
    rows = session.execute(select(UsageEvent.status, func.count()).group_by(UsageEvent.status))
    for status, count in rows:
        counts[status.value] = count
    return counts


def usage_counts_by_connection(session: Session) -> dict[str, dict[str, int]]:
    """Like :func:`usage_counts`, per connection name (connections without events left out)."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Connection.name, UsageEvent.status, func.count())
        .join(Connection, Connection.id == UsageEvent.connection_id)
        .group_by(Connection.name, UsageEvent.status)
    )
    for name, status, count in rows:
        per = out.setdefault(name, dict.fromkeys((s.value for s in UsageStatus), 0))
        per[status.value] = count
    return out
