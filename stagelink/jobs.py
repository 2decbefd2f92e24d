"""Bookkeeping every job engine shares (sync, backfill, writeback): the job lease, the API
budget share, and the job-run rows."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.errors import StagelinkError
from connectors.core.probe import ApiBudget
from stagelink.storage import JobKind, JobRun, JobStatus, utcnow
from stagelink.storage.leases import LeaseHeld, acquire_lease, holder_is_dead_here

__all__ = [
    "JobAlreadyRunning",
    "close_abandoned_runs",
    "daily_budget_problem",
    "default_node_id",
    "start_job_run",
    "take_job_lease",
]

#: The windows of :class:`ApiBudget` that are the CRM's daily allowance.
DAILY_WINDOWS = ("24h rolling", "daily")


class JobAlreadyRunning(StagelinkError):
    """Another live process holds this connection's job lease."""


def default_node_id() -> str:
    """``hostname:pid``: names the process in job runs and leases."""
    return f"{socket.gethostname()}:{os.getpid()}"


def take_job_lease(
    sessions: sessionmaker[Session], name: str, node_id: str, ttl: timedelta, *, what: str
) -> None:
    """Take the lease ``name`` or raise :class:`JobAlreadyRunning` naming ``what`` is running.

    A process of this host that was killed cannot renew its lease: it is taken over at once
    instead of after it expires (a restart after kill -9 resumes immediately)."""
    try:
        try:
            acquire_lease(sessions, name, node_id, ttl)
        except LeaseHeld as held:
            if not holder_is_dead_here(held.info.holder):
                raise
            acquire_lease(sessions, name, node_id, ttl, take_over_from=held.info.holder)
    except LeaseHeld as exc:
        raise JobAlreadyRunning(
            f"{what} is already running ({exc.info.holder}, lease until "
            f"{exc.info.expires_at:%H:%M:%S}Z); wait for it or let its lease expire"
        ) from None


def daily_budget_problem(budgets: Iterable[ApiBudget], fraction: float) -> str | None:
    """Why the job must pause, when the CRM's daily usage reached ``fraction`` of its limit."""
    for budget in budgets:
        if budget.window not in DAILY_WINDOWS or not budget.used or not budget.limit:
            continue
        if budget.used >= fraction * budget.limit:
            return (
                f"API budget reached: {budget.used:,} of {budget.limit:,} daily requests "
                f"used, stagelink may use up to {fraction:.0%}; the next run resumes from here"
            )
    return None


def close_abandoned_runs(
    sessions: sessionmaker[Session], connection_id: int, kind: JobKind, error: str
) -> None:
    """Mark runs of ``kind`` still ``running`` as interrupted: the caller holds the lease, so
    no process is running them."""
    with sessions.begin() as session:
        session.execute(
            update(JobRun)
            .where(
                JobRun.connection_id == connection_id,
                JobRun.kind == kind,
                JobRun.status == JobStatus.RUNNING,
            )
            .values(status=JobStatus.INTERRUPTED, finished_at=utcnow(), error=error)
        )


def start_job_run(
    sessions: sessionmaker[Session],
    connection_id: int,
    kind: JobKind,
    node_id: str,
    params: dict[str, Any],
) -> int:
    """A committed ``running`` job-run row; returns its id."""
    with sessions.begin() as session:
        job = JobRun(
            connection_id=connection_id,
            kind=kind,
            status=JobStatus.RUNNING,
            node_id=node_id,
            params=params,
            counts={},
            heartbeat_at=utcnow(),
        )
        session.add(job)
        session.flush()
        return job.id
