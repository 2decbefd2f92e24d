"""Sandbox CRMs, a configuration for them and helpers to shorten the schedule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from stagelink.settings import AppConfig
from stagelink.storage import Connection, JobRun
from stagelink.sync import Storage
from tests.sync.conftest import World, start_world


@pytest.fixture
def world(tmp_path: Path, sqlite_database_url: str) -> Iterator[World]:
    """Sandboxes and a SQLite database (the PostgreSQL tests ask for their own)."""
    yield from start_world(tmp_path, sqlite_database_url)


def reschedule(
    config: AppConfig,
    *,
    sync: float | None = None,
    writeback: float | None = None,
    writeback_enabled: bool | None = None,
    only: list[str] | None = None,
    **scheduler: Any,
) -> AppConfig:
    """``config`` with other intervals (seconds), scheduler settings or connections."""
    connections = []
    for connection in config.connections:
        if only is not None and connection.name not in only:
            continue
        update: dict[str, Any] = {}
        if sync is not None:
            update["sync"] = connection.sync.model_copy(
                update={"interval": timedelta(seconds=sync)}
            )
        wb: dict[str, Any] = {}
        if writeback is not None:
            wb["interval"] = timedelta(seconds=writeback)
        if writeback_enabled is not None:
            wb["enabled"] = writeback_enabled
        if wb:
            update["writeback"] = connection.writeback.model_copy(update=wb)
        connections.append(connection.model_copy(update=update))
    settings = config.scheduler.model_copy(update=scheduler)
    return config.model_copy(update={"connections": connections, "scheduler": settings})


def job_runs(storage: Storage, kind: str | None = None) -> list[tuple[str, JobRun]]:
    """(connection name, run) of every job run, oldest first."""
    with storage.sessions() as session:
        query = (
            select(Connection.name, JobRun)
            .join(Connection, Connection.id == JobRun.connection_id)
            .order_by(JobRun.id)
        )
        if kind is not None:
            query = query.where(JobRun.kind == kind)
        return [(name, run) for name, run in session.execute(query)]


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.05) -> float:
    """Poll until ``predicate()`` is true; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started
