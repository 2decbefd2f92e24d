"""Engines: URL handling, SQLite settings, and one-line errors for unusable databases."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from stagelink.storage import (
    Connection,
    StorageUnavailable,
    current_revision,
    make_engine,
    normalize_database_url,
    ping,
    redact_url,
    session_factory,
    upgrade,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def _assert_cli_ready(message: str, *, secret: str | None = None) -> None:
    assert "\n" not in message
    assert "Traceback" not in message
    if secret is not None:
        assert secret not in message


def test_ping_works_on_both_backends(engine: Engine) -> None:
    ping(engine)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_urls_use_psycopg3(scheme: str) -> None:
    url = normalize_database_url(f"{scheme}://u:pw@db.example:5432/stagelink")
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "db.example"
    assert url.database == "stagelink"


def test_unreachable_postgres_names_url_without_password() -> None:
    port = _closed_port()
    url = f"postgresql://stagelink:s3cr3t-pw@127.0.0.1:{port}/stagelink"
    engine = make_engine(url)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            ping(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    _assert_cli_ready(message, secret="s3cr3t-pw")
    assert f"postgresql+psycopg://stagelink:***@127.0.0.1:{port}/stagelink" in message
    assert "refused" in message.lower()


def test_upgrade_of_unreachable_database_raises_storage_unavailable() -> None:
    url = f"postgres://admin:hunter2@127.0.0.1:{_closed_port()}/prod?sslmode=disable"
    with pytest.raises(StorageUnavailable) as caught:
        upgrade(url)
    _assert_cli_ready(str(caught.value), secret="hunter2")
    assert "admin:***@" in str(caught.value)


@pytest.mark.postgres
def test_missing_postgres_database_is_named(postgresql_database_url: str) -> None:
    url = postgresql_database_url.rsplit("/", 1)[0] + "/no_such_db_for_stagelink"
    engine = make_engine(url)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            current_revision(engine)
    finally:
        engine.dispose()
    _assert_cli_ready(str(caught.value))
    assert 'database "no_such_db_for_stagelink" does not exist' in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid database URL"),
        ("postgresql://u:pw@h:port/db", "the port is not a number"),
        ("postgresql://u:pw@ret:pw@h/db", "percent-encode"),
        ("mysql://root:pw@localhost/db", "unsupported database 'mysql'"),
        ("postgresql+nosuchdriver://u:pw@localhost/db", "cannot use database"),
    ],
)
def test_invalid_urls_are_refused_in_one_line(url: str, expected: str) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        make_engine(url)
    assert expected in str(caught.value)
    _assert_cli_ready(str(caught.value), secret="pw")


def test_redact_url_hides_passwords_in_all_places() -> None:
    assert redact_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert "secret" not in redact_url("postgresql://u@h/db?password=secret")
    assert redact_url("postgresql://u:pw@h:notaport/db") == "postgresql://u:***@h:notaport/db"
    # An unescaped "@" in a password must not leak the part after it.
    assert redact_url("postgresql://u:sec@ret@h/db") == "postgresql://u:***@h/db"


def test_sqlite_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "stagelink.db"
    upgrade(f"sqlite:///{path}")
    assert path.is_file()


def test_sqlite_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageUnavailable) as caught:
        make_engine(f"sqlite:///{blocker / 'sub' / 'stagelink.db'}")
    assert "cannot create directory" in str(caught.value)
    _assert_cli_ready(str(caught.value))


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StorageUnavailable) as caught:
        upgrade(f"sqlite:///{path}")
    assert "file is not a database" in str(caught.value)
    assert str(path) in str(caught.value)
    _assert_cli_ready(str(caught.value))


def test_sqlite_engine_settings(sqlite_database_url: str) -> None:
    engine = make_engine(sqlite_database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
    finally:
        engine.dispose()


def test_sqlite_concurrent_read_then_write_transactions_wait_instead_of_failing(
    sqlite_database_url: str,
) -> None:
    """Two threads each read, then write, many times: none may see "database is locked"."""
    engine = make_engine(sqlite_database_url)
    factory = session_factory(engine)
    with factory.begin() as session:
        session.add(Connection(name="counter", kind="0"))
    errors: list[BaseException] = []
    rounds = 40

    def bump() -> None:
        try:
            for _ in range(rounds):
                with factory.begin() as session:
                    row = session.scalars(select(Connection)).one()
                    row.kind = str(int(row.kind) + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        with factory() as session:
            # No lost update either: each increment saw the previous one.
            assert session.scalars(select(Connection.kind)).one() == str(2 * rounds)
    finally:
        engine.dispose()


def test_deferred_sqlite_engine_reads_without_blocking_writers(sqlite_database_url: str) -> None:
    reader = make_engine(sqlite_database_url, sqlite_begin="deferred")
    writer = make_engine(sqlite_database_url)
    try:
        with reader.connect() as reading:
            assert reading.execute(select(Connection.id)).all() == []  # transaction open
            with session_factory(writer).begin() as session:
                session.add(Connection(name="written-meanwhile", kind="hubspot"))
            assert reading.in_transaction()
            assert reading.execute(select(Connection.id)).all() == []  # its own snapshot
        with reader.connect() as reading:
            assert len(reading.execute(select(Connection.id)).all()) == 1
    finally:
        reader.dispose()
        writer.dispose()
