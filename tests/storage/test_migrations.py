"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text

from stagelink.storage import (
    Base,
    Connection,
    SchemaVersionError,
    current_revision,
    head_revision,
    make_engine,
    schema_differences,
    session_factory,
    upgrade,
)


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) is None
        upgrade(empty_database_url)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        # The `alembic check` of this project: autogenerate would produce nothing.
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_model_check_notices_a_schema_that_drifted(empty_database_url: str) -> None:
    # Its own schema: the shared test database must keep matching the models.
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_crm_opportunities_stage"))
        diffs = schema_differences(engine)
        assert [diff[0] for diff in diffs] == ["add_index"]
        assert diffs[0][1].name == "ix_crm_opportunities_stage"
    finally:
        engine.dispose()


def test_second_upgrade_changes_nothing_and_keeps_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with session_factory(engine).begin() as session:
            session.add(Connection(name="acme", kind="salesforce"))
        before = current_revision(engine)

        upgrade(database_url)
        upgrade(engine)

        assert current_revision(engine) == before == head_revision()
        with session_factory(engine)() as session:
            assert session.scalars(select(Connection.name)).all() == ["acme"]
    finally:
        engine.dispose()


def test_nodes_upgrading_at_the_same_time_both_succeed(empty_database_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def node() -> None:
        try:
            start.wait()
            upgrade(empty_database_url)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    engine = make_engine(empty_database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_database_from_a_newer_stagelink_gives_a_clear_error(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff00000000'"))
        with pytest.raises(SchemaVersionError) as caught:
            upgrade(engine)
        message = str(caught.value)
        assert "newer stagelink" in message
        assert "ffff00000000" in message
        assert "\n" not in message
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced_after_upgrade(database_url: str) -> None:
    """SQLite turns foreign keys off while migrating; they must be back on afterwards."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)  # the pooled connection it used is the one used next
        with session_factory(engine).begin() as session:
            acme = Connection(name="acme", kind="hubspot", created_at=datetime.now(UTC))
            session.add(acme)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sync_cursors (connection_id, object_type, cursor, updated_at) "
                    "VALUES (:id, 'deal', '{}', :now)"
                ),
                {"id": acme.id, "now": datetime.now(UTC)},
            )
            conn.execute(text("DELETE FROM connections"))
            # ON DELETE CASCADE only works when the foreign keys are being enforced.
            assert conn.execute(text("SELECT count(*) FROM sync_cursors")).scalar_one() == 0
    finally:
        engine.dispose()
