"""Alembic environment, configured in code (no alembic.ini on disk).

:func:`stagelink.storage.db.upgrade` passes an open connection in
``config.attributes["connection"]`` inside a transaction it owns; the migration
options live in :func:`stagelink.storage.db.migration_context_options` so that
comparisons in tests use exactly the same settings.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from stagelink.storage.db import make_engine, migration_context_options


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **migration_context_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection handed over by the caller, or a URL's new engine."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection or sqlalchemy.url given to the migrations")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("stagelink migrations run online only (use `stagelink db upgrade`)")
run_migrations_online()
