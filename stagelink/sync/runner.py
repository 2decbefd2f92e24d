"""Glue between the configuration, storage and the engine: what the CLI, the scheduler and
the webhook receiver call to run a connection's jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import ConfigurationError
from connectors.core.registry import load_plugin
from stagelink.settings import AppConfig
from stagelink.storage import make_engine, session_factory, upgrade
from stagelink.sync.engine import JobOutcome, Progress, SyncEngine, SyncOptions

__all__ = ["Storage", "connector_for", "open_connector", "open_storage", "run_job"]


def open_connector(connection: ConnectionConfig) -> Connector:
    """The connector of ``connection``'s plugin (not logged in yet)."""
    plugin = load_plugin(connection.kind)
    if plugin.open is None:
        raise ConfigurationError(
            f"the {connection.kind} plugin cannot sync (it has no connector); "
            f"connection {connection.name!r} can only be checked"
        )
    return plugin.open(connection)


@contextmanager
def connector_for(
    connection: ConnectionConfig, given: Connector | None = None
) -> Iterator[Connector]:
    """``given``, or the connection's own connector, closed afterwards only if opened here."""
    if given is not None:
        yield given
        return
    with open_connector(connection) as opened:
        yield opened


class Storage:
    """An engine and its session factory, migrated to the newest schema."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)

    def dispose(self) -> None:
        """Close the connection pool."""
        self.engine.dispose()


@contextmanager
def open_storage(config: AppConfig) -> Iterator[Storage]:
    """The configured database, upgraded (idempotent, locked on PostgreSQL)."""
    engine = make_engine(config.database_url)
    try:
        upgrade(engine)
        yield Storage(engine)
    finally:
        engine.dispose()


def run_job(
    config: AppConfig,
    storage: Storage,
    connection_name: str,
    options: SyncOptions,
    *,
    progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    connector: Connector | None = None,
    node_id: str | None = None,
    lease_ttl: timedelta = timedelta(minutes=5),
) -> JobOutcome:
    """Run one sync or backfill of ``connection_name`` and return its outcome.

    ``node_id`` and ``lease_ttl`` override the engine's defaults (the scheduler passes its
    configured ones, so a dead node's lease expires when the deployment says)."""
    connection = config.connection(connection_name)
    with connector_for(connection, connector) as active:
        engine = SyncEngine(
            storage.sessions,
            active,
            connection_name=connection.name,
            budget_fraction=connection.budget.max_daily_fraction,
            progress=progress,
            stop=stop,
            node_id=node_id,
            lease_ttl=lease_ttl,
        )
        return engine.run(options)
