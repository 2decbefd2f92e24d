"""The emulator's SQLite database: one connection, one lock, savepoint transactions.

Tables follow the shared storage convention (one table per sObject, one column per field,
``IsDeleted`` everywhere — see schema.py). The emulator adds three bookkeeping tables of its
own, prefixed ``_sl_`` so they never collide with sObject names:

* ``_sl_sequence``: the next id number per key prefix;
* ``_sl_deleted``: when each record was deleted (the Get Deleted resource reads it);
* ``_sl_meta``: key/value facts about the seed (seed, size, fingerprint).

Request handlers run on worker threads and the Python inspection API on the caller's
thread, so every statement goes through :meth:`Store.locked` / :meth:`Store.transaction`.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.salesforce.ids import make_id

BOOKKEEPING_SQL = (
    'CREATE TABLE IF NOT EXISTS "_sl_sequence" (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL)',
    'CREATE TABLE IF NOT EXISTS "_sl_deleted" '
    "(sobject TEXT NOT NULL, record_id TEXT NOT NULL, deleted_date TEXT NOT NULL)",
    'CREATE INDEX IF NOT EXISTS "_sl_deleted_date" ON "_sl_deleted" (sobject, deleted_date)',
    'CREATE TABLE IF NOT EXISTS "_sl_meta" (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
)


def quote(identifier: str) -> str:
    """Quote a table or column name for SQL (``User`` and ``Order`` are keywords)."""
    return '"' + identifier.replace('"', '""') + '"'


class Store:
    """A locked SQLite connection to one sandbox instance's database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection shared by worker threads, serialised by the lock below.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        self._temp_names = itertools.count(1)
        with self.locked() as conn:
            # Durability is irrelevant for an emulator; speed is not.
            conn.execute("PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA temp_store=FILE")
            conn.execute("PRAGMA cache_size=-65536")
            for statement in BOOKKEEPING_SQL:
                conn.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and use the connection (autocommit outside a transaction)."""
        with self._lock:
            yield self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A savepoint: committed on success, rolled back if the block raises. Nests."""
        with self._lock:
            self._depth += 1
            name = f"sp{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            else:
                self._conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1

    # -- queries ---------------------------------------------------------------------------

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a SELECT and return every row."""
        with self.locked() as conn:
            return list(conn.execute(sql, params).fetchall())

    def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Run a SELECT and return its first row, if any."""
        with self.locked() as conn:
            row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
            return row

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a SELECT and return the first column of its first row (``None`` if empty)."""
        row = self.fetch_one(sql, params)
        return None if row is None else row[0]

    # -- ids ---------------------------------------------------------------------------------

    def allocate_ids(self, prefix: str, count: int = 1) -> list[str]:
        """Reserve ``count`` new ids with key ``prefix``."""
        with self.transaction() as conn:
            row = conn.execute(
                'SELECT next FROM "_sl_sequence" WHERE prefix = ?', (prefix,)
            ).fetchone()
            start = int(row[0]) if row else 1
            conn.execute(
                'INSERT INTO "_sl_sequence" (prefix, next) VALUES (?, ?) '
                "ON CONFLICT(prefix) DO UPDATE SET next = excluded.next",
                (prefix, start + count),
            )
        return [make_id(prefix, number) for number in range(start, start + count)]

    # -- cursors -------------------------------------------------------------------------------

    def materialize(self, sql: str, params: Sequence[Any]) -> tuple[str, int]:
        """Copy a query's result into a temp table, keeping its order in ``rowid``.

        Query cursors and Bulk results page through such a snapshot instead of holding rows
        in memory; SQLite keeps temp tables in a temp file (``temp_store=FILE``).
        """
        name = f"_sl_cursor_{next(self._temp_names)}"
        with self.locked() as conn:
            conn.execute(f"CREATE TEMP TABLE {quote(name)} AS {sql}", params)
            count = conn.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
        return name, int(count)

    def read_cursor(self, name: str, offset: int, limit: int) -> list[tuple[Any, ...]]:
        """Rows ``offset+1 … offset+limit`` of a materialized result, in order."""
        with self.locked() as conn:
            return list(
                conn.execute(
                    f"SELECT * FROM {quote(name)} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (offset, limit),
                ).fetchall()
            )

    def drop_cursor(self, name: str) -> None:
        """Forget a materialized result."""
        with self.locked() as conn:
            conn.execute(f"DROP TABLE IF EXISTS temp.{quote(name)}")

    # -- meta ----------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A value from ``_sl_meta``."""
        value = self.scalar('SELECT value FROM "_sl_meta" WHERE key = ?', (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        """Store a value in ``_sl_meta``."""
        with self.locked() as conn:
            conn.execute(
                'INSERT INTO "_sl_meta" (key, value) VALUES (?, ?) '
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
