"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

``make_engine`` is lazy: it validates the URL but does not connect. ``ping``,
``upgrade`` and ``current_revision`` connect, and turn a database that cannot be reached
or opened into :class:`StorageUnavailable` with a one-line, password-free message.

SQLite notes:

- WAL journal, foreign keys on, a busy timeout, and ``synchronous=NORMAL`` (durable
  across process crashes; the WAL makes it safe).
- Every transaction starts with ``BEGIN IMMEDIATE`` by default: SQLite has one writer,
  and a transaction that reads and then writes would otherwise fail at once with
  "database is locked" when another connection wrote in between, instead of waiting.
  The price: do not keep a session open (even after only reading) while another
  session in the same process writes; it would wait for the first one's lock. Pass
  ``sqlite_begin="deferred"`` for a read-mostly engine that must not take the lock.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import JSON, URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from stagelink.storage.errors import SchemaVersionError, StorageUnavailable
from stagelink.storage.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: Tables in the database that stagelink's migrations do not own (APScheduler's job
#: store creates its own); model-vs-database comparisons ignore them.
FOREIGN_TABLE_PREFIXES = ("apscheduler_",)

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
# Any constant shared by all stagelink nodes; serializes concurrent `upgrade` calls.
_MIGRATION_LOCK_KEY = 0x57A6E11E


def normalize_database_url(database_url: str | URL) -> URL:
    """Parse ``database_url`` and pick the driver stagelink uses for it.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://`` (psycopg 3);
    ``sqlite:///~/x.db`` has ``~`` expanded. Anything else that is not SQLite or
    PostgreSQL is refused with :class:`StorageUnavailable`.
    """
    # Parse errors quote pieces of the URL (a password, even), so say what is wrong
    # in our own words.
    problem: str | None = None
    try:
        url = make_url(database_url) if isinstance(database_url, str) else database_url
    except ArgumentError:
        problem = "it cannot be parsed"
    except ValueError:
        problem = "the port is not a number"
    else:
        if url.host and "@" in url.host:
            problem = "the host contains '@'"
    if problem is not None:
        raw = str(database_url)
        if raw.split("?", 1)[0].count("@") > 1:
            problem = "more than one '@'; percent-encode the password ('@' is %40)"
        raise StorageUnavailable(
            f"invalid database URL {redact_url(raw)}: {problem}; expected "
            "sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"
        )
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if url.database and url.database != ":memory:" and url.database.startswith("~"):
            url = url.set(database=str(Path(url.database).expanduser()))
    else:
        raise StorageUnavailable(
            f"unsupported database {backend!r} in {redact_url(url)}: "
            "stagelink supports sqlite:/// and postgresql://"
        )
    return url


def redact_url(database_url: str | URL) -> str:
    """``database_url`` with any password replaced by ``***`` (safe to log and print)."""
    if isinstance(database_url, str):
        try:
            url = make_url(database_url)
        except (ArgumentError, ValueError):
            url = None
        if url is None or (url.host and "@" in url.host):
            # Not parseable, or an unescaped "@" in the password: hide everything
            # between "user:" and the last "@".
            return re.sub(r"(://[^/:@]*:).*@", r"\1***@", database_url)
    else:
        url = database_url
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def make_engine(
    database_url: str | URL,
    *,
    sqlite_begin: Literal["immediate", "deferred"] = "immediate",
    echo: bool = False,
) -> Engine:
    """Create an engine for ``database_url`` with stagelink's connection settings.

    Does not connect. Raises :class:`StorageUnavailable` for an invalid or unsupported
    URL, a missing driver, or a SQLite directory that cannot be created.
    """
    url = normalize_database_url(database_url)
    kwargs: dict[str, Any] = {
        "echo": echo,
        "pool_pre_ping": True,
        # Readable unicode in JSON columns on SQLite; psycopg uses it for JSONB too.
        "json_serializer": _json_dumps,
    }
    if url.get_backend_name() == "sqlite":
        _create_sqlite_directory(url)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        connect_args: dict[str, Any] = {}
        # libpq's defaults wait forever on a black-holed host; the URL may override.
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
        if "application_name" not in url.query:
            connect_args["application_name"] = "stagelink"
        kwargs["connect_args"] = connect_args
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StorageUnavailable(
            f"cannot use database {redact_url(url)}: {_one_line(exc)}"
        ) from None
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, begin=sqlite_begin)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Connect and run ``SELECT 1``; raise :class:`StorageUnavailable` if that fails."""
    with _connect(engine) as conn, _unavailable_on_error(engine):
        conn.execute(text("SELECT 1"))


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at, or None for an empty database."""
    with _connect(engine) as conn, _unavailable_on_error(engine):
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest migration revision this version of stagelink ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError("stagelink ships no migrations")
    return head


def upgrade(database: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest). Idempotent.

    Safe to call from several nodes at once: on PostgreSQL an advisory lock makes the
    others wait and then find nothing to do. On SQLite foreign keys are switched off
    while migrating (table rebuilds in batch mode would otherwise cascade deletes) and
    checked before commit.

    Raises :class:`StorageUnavailable` if the database cannot be reached and
    :class:`SchemaVersionError` if it is at a revision this version does not know.
    """
    owned = not isinstance(database, Engine)
    engine = make_engine(database) if not isinstance(database, Engine) else database
    try:
        with _connect(engine) as conn, _unavailable_on_error(engine):
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                _sqlite_pragma(conn, "PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    if not sqlite:
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": _MIGRATION_LOCK_KEY},
                        )
                    config = _alembic_config(conn)
                    try:
                        command.upgrade(config, revision)
                    except CommandError as exc:
                        raise _schema_version_error(engine, exc) from None
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
            finally:
                if sqlite:
                    _sqlite_pragma(conn, "PRAGMA foreign_keys=ON")
    finally:
        if owned:
            engine.dispose()


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic autogenerate would change to make the database match the models.

    Empty when the migrations and the models agree (the ``alembic check`` test).
    """
    with _connect(engine) as conn, _unavailable_on_error(engine):
        context = MigrationContext.configure(conn, opts=migration_context_options())
        diffs: list[Any] = compare_metadata(context, Base.metadata)
        return diffs


def migration_context_options() -> dict[str, Any]:
    """Options for Alembic's ``context.configure`` shared by env.py and comparisons."""
    return {
        "target_metadata": Base.metadata,
        "compare_type": True,
        "compare_server_default": True,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        "render_as_batch": True,
        "include_name": _include_name,
        "render_item": _render_item,
    }


# -- internals -------------------------------------------------------------------------


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    # ConfigParser interpolates "%"; a checkout path could contain one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table" and name is not None:
        return not name.startswith(FOREIGN_TABLE_PREFIXES)
    return True


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render stagelink's TypeDecorators as their plain SQLAlchemy types, so migrations
    do not import application code that may change after they are written."""
    if type_ != "type":
        return False
    if isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        # Alembic's own rendering of JSONB references an unimported ``Text``.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return (
            "sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "
            '"postgresql")'
        )
    return False


def _schema_version_error(engine: Engine, exc: CommandError) -> Exception:
    message = _one_line(exc)
    if "Can't locate revision" in message or "No such revision" in message:
        return SchemaVersionError(
            f"database {redact_url(engine.url)} is at a schema revision this version of "
            f"stagelink does not know ({message}); it was migrated by a newer stagelink — "
            "upgrade stagelink or point it at another database"
        )
    return exc


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise _unavailable(engine, exc) from None
    with conn:
        yield conn


@contextmanager
def _unavailable_on_error(engine: Engine) -> Iterator[None]:
    # OperationalError is the DB-API's "not the caller's fault" class: dropped
    # connections, a locked or unreadable SQLite file, a server shutting down.
    try:
        yield
    except OperationalError as exc:
        raise _unavailable(engine, exc) from None


def _unavailable(engine: Engine, exc: BaseException) -> StorageUnavailable:
    reason = _one_line(getattr(exc, "orig", None) or exc)
    password = engine.url.password
    if password:
        reason = reason.replace(str(password), "***")
    return StorageUnavailable(f"cannot use database {redact_url(engine.url)}: {reason}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# A JSON ``\u0000`` escape not itself escaped (preceded by an even number of backslashes).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_dumps(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if "\\u0000" in text:
        # PostgreSQL's JSONB refuses NUL; SQLite and PostgreSQL must store the same.
        text = _NUL_ESCAPE.sub(r"\1", text)
    return text


def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    parent = Path(database).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageUnavailable(
            f"cannot use database {redact_url(url)}: cannot create directory {parent}: "
            f"{exc.strerror or exc}"
        ) from None


def _configure_sqlite(engine: Engine, *, begin: Literal["immediate", "deferred"]) -> None:
    begin_sql = "BEGIN IMMEDIATE" if begin == "immediate" else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (pysqlite's own
        # implicit BEGIN skips DDL and breaks SAVEPOINT); see SQLAlchemy's pysqlite docs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
            _switch_to_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin_sql)


_SQLITE_PRAGMAS: Sequence[str] = (
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    # 64 MiB of page cache (the default is 2 MiB): a sync writes each row into six
    # indexes, and a large initial sync otherwise spends most of its time re-reading pages.
    "PRAGMA cache_size=-65536",
)


def _switch_to_wal(cursor: Any) -> None:
    # WAL is persistent, so usually there is nothing to do. Switching needs an exclusive
    # lock and SQLite reports "database is locked" at once (no busy wait) when another
    # connection is switching a new database at the same moment: retry for a while.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        else:
            return


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    # Outside any transaction (PRAGMA foreign_keys is a no-op inside one), so on the
    # DB-API connection rather than through SQLAlchemy's autobegin.
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_connection.execute(pragma)
