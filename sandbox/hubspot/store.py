"""SQLite state of one emulated HubSpot account: objects, property history, associations, owners.

One connection guarded by one re-entrant lock; the HTTP handlers (event-loop thread) and the
Python inspection API (test thread) both go through it. Objects of every type share one table;
their property values live in a JSON column as the strings HubSpot emits, except the created,
modified and id properties, which are columns (they drive paging, search and sorting).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.hubspot.schema import OBJECT_TYPES, PropertyDef

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    object_type TEXT NOT NULL,
    id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    archived_ms INTEGER,
    props TEXT NOT NULL,
    PRIMARY KEY (object_type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    object_type TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT,
    ts_ms INTEGER NOT NULL,
    source_type TEXT NOT NULL,
    source_id TEXT,
    user_id INTEGER
);
CREATE TABLE IF NOT EXISTS associations (
    from_type TEXT NOT NULL,
    from_id INTEGER NOT NULL,
    to_type TEXT NOT NULL,
    to_id INTEGER NOT NULL,
    type_id INTEGER NOT NULL,
    PRIMARY KEY (from_type, from_id, to_type, to_id, type_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unique_values (
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    PRIMARY KEY (object_type, name, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    user_id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    teams TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custom_properties (
    object_type TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (object_type, name)
);
CREATE TABLE IF NOT EXISTS timeline_templates (
    id TEXT PRIMARY KEY,
    app_id INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS timeline_events (
    template_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (template_id, event_id)
);
"""

# Built after seeding (bulk inserts are faster without them).
INDEXES = """
CREATE INDEX IF NOT EXISTS objects_modified ON objects (object_type, archived, updated_ms, id);
CREATE INDEX IF NOT EXISTS objects_created ON objects (object_type, archived, created_ms, id);
CREATE INDEX IF NOT EXISTS history_object ON history (object_type, object_id, name);
CREATE INDEX IF NOT EXISTS associations_to ON associations (to_type, to_id);
"""

_TOKEN_SPLIT = re.compile(r"[^\w@.+-]+", re.UNICODE)


def _contains_token(value: str | None, token: str | None) -> int:
    """SQL function for CONTAINS_TOKEN: whole-token, case-insensitive; ``*`` is a wildcard."""
    if value is None or token is None:
        return 0
    needle = token.strip().casefold()
    folded = value.casefold()
    words = [w for w in _TOKEN_SPLIT.split(folded) if w]
    # Emails and domains also match on their parts ("acme" matches "jo@acme.com").
    parts = words + [p for w in words for p in re.split(r"[@.+-]", w) if p]
    if "*" in needle:
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in needle.split("*")) + "$")
        return int(any(pattern.match(word) for word in parts) or bool(pattern.match(folded)))
    return int(needle in parts or needle == folded)


def _fold(value: str | None) -> str | None:
    """SQL function: Unicode case folding (SQLite's lower() only folds ASCII)."""
    return value.casefold() if isinstance(value, str) else value


@dataclass
class ObjectRow:
    """One stored CRM object. ``props`` excludes the created/modified/id properties (columns)."""

    object_type: str
    id: int
    created_ms: int
    updated_ms: int
    archived: bool
    archived_ms: int | None
    props: dict[str, str]


@dataclass(frozen=True)
class HistoryEntry:
    """One property-history value (``propertiesWithHistory``)."""

    value: str | None
    ts_ms: int
    source_type: str
    source_id: str | None
    user_id: int | None


@dataclass(frozen=True)
class Owner:
    """A CRM owner (a user who can own records)."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    user_id: int
    created_ms: int
    updated_ms: int
    archived: bool
    teams: list[dict[str, Any]]


class Store:
    """Thread-safe access to one account's SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("PRAGMA journal_mode = MEMORY")
        self.conn.execute("PRAGMA temp_store = MEMORY")
        self.conn.execute("PRAGMA cache_size = -65536")
        self.conn.create_function("hs_contains_token", 2, _contains_token, deterministic=True)
        self.conn.create_function("hs_fold", 1, _fold, deterministic=True)
        self.conn.executescript(DDL)
        self.lock = threading.RLock()
        self._next_ids: dict[str, int] = {}
        self._custom_props: dict[str, dict[str, PropertyDef]] | None = None
        self._owner_ids: set[int] | None = None

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and run the block in one SQLite transaction."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a value in the meta table."""
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
            )

    # ------------------------------------------------------------------ objects

    @staticmethod
    def _row(record: Sequence[Any]) -> ObjectRow:
        return ObjectRow(
            object_type=record[0],
            id=record[1],
            created_ms=record[2],
            updated_ms=record[3],
            archived=bool(record[4]),
            archived_ms=record[5],
            props=json.loads(record[6]),
        )

    _COLUMNS = "object_type, id, created_ms, updated_ms, archived, archived_ms, props"

    def get(self, object_type: str, object_id: int) -> ObjectRow | None:
        """One object, archived or not."""
        with self.lock:
            record = self.conn.execute(
                f"SELECT {self._COLUMNS} FROM objects WHERE object_type = ? AND id = ?",
                (object_type, object_id),
            ).fetchone()
        return None if record is None else self._row(record)

    def get_many(self, object_type: str, ids: Iterable[int]) -> dict[int, ObjectRow]:
        """Objects by id (missing ids are simply absent)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[int, ObjectRow] = {}
        with self.lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for record in self.conn.execute(
                    f"SELECT {self._COLUMNS} FROM objects WHERE object_type = ? "
                    f"AND id IN ({marks})",
                    (object_type, *chunk),
                ):
                    row = self._row(record)
                    found[row.id] = row
        return found

    def page(
        self, object_type: str, *, archived: bool, after_id: int | None, limit: int
    ) -> list[ObjectRow]:
        """Up to ``limit`` objects in id order, starting at ``after_id`` (inclusive)."""
        with self.lock:
            records = self.conn.execute(
                f"SELECT {self._COLUMNS} FROM objects WHERE object_type = ? AND id >= ? "
                "AND archived = ? ORDER BY id LIMIT ?",
                (object_type, after_id or 0, int(archived), limit),
            ).fetchall()
        return [self._row(record) for record in records]

    def all_objects(self, object_type: str, *, archived: bool) -> list[ObjectRow]:
        """Every object of a type (inspection API)."""
        with self.lock:
            records = self.conn.execute(
                f"SELECT {self._COLUMNS} FROM objects WHERE object_type = ? AND archived = ? "
                "ORDER BY id",
                (object_type, int(archived)),
            ).fetchall()
        return [self._row(record) for record in records]

    def ids(self, object_type: str, *, archived: bool) -> list[int]:
        """Ids of every object of a type, ascending."""
        with self.lock:
            return [
                record[0]
                for record in self.conn.execute(
                    "SELECT id FROM objects WHERE object_type = ? AND archived = ? ORDER BY id",
                    (object_type, int(archived)),
                )
            ]

    def count(self, object_type: str, *, archived: bool) -> int:
        """Number of objects of a type."""
        with self.lock:
            record = self.conn.execute(
                "SELECT COUNT(*) FROM objects WHERE object_type = ? AND archived = ?",
                (object_type, int(archived)),
            ).fetchone()
        return int(record[0])

    def next_id(self, object_type: str) -> int:
        """A fresh id for a new object of this type."""
        with self.lock:
            if object_type not in self._next_ids:
                record = self.conn.execute(
                    "SELECT MAX(id) FROM objects WHERE object_type = ?", (object_type,)
                ).fetchone()
                base = OBJECT_TYPES[object_type].id_base
                self._next_ids[object_type] = max(base, (record[0] or 0) + 1)
            value = self._next_ids[object_type]
            self._next_ids[object_type] = value + 1
            return value

    def insert(self, row: ObjectRow) -> None:
        """Insert a new object."""
        with self.lock:
            self.conn.execute(
                f"INSERT INTO objects ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.object_type,
                    row.id,
                    row.created_ms,
                    row.updated_ms,
                    int(row.archived),
                    row.archived_ms,
                    json.dumps(row.props, ensure_ascii=False, separators=(",", ":")),
                ),
            )

    def save(self, row: ObjectRow) -> None:
        """Write back an existing object's columns and properties."""
        with self.lock:
            self.conn.execute(
                "UPDATE objects SET created_ms = ?, updated_ms = ?, archived = ?, archived_ms = ?, "
                "props = ? WHERE object_type = ? AND id = ?",
                (
                    row.created_ms,
                    row.updated_ms,
                    int(row.archived),
                    row.archived_ms,
                    json.dumps(row.props, ensure_ascii=False, separators=(",", ":")),
                    row.object_type,
                    row.id,
                ),
            )

    def query_objects(
        self, where: str, params: Sequence[Any], order: str, limit: int, offset: int
    ) -> tuple[int, list[ObjectRow]]:
        """Search support: total count and one page for a compiled WHERE/ORDER BY."""
        with self.lock:
            total = self.conn.execute(f"SELECT COUNT(*) FROM objects o WHERE {where}", params)
            count = int(total.fetchone()[0])
            records = self.conn.execute(
                f"SELECT o.object_type, o.id, o.created_ms, o.updated_ms, o.archived, "
                f"o.archived_ms, o.props FROM objects o WHERE {where} ORDER BY {order} "
                "LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return count, [self._row(record) for record in records]

    # ------------------------------------------------------------------ unique values

    def by_unique(self, object_type: str, name: str, value: str) -> int | None:
        """The live object holding ``value`` in unique property ``name``."""
        with self.lock:
            record = self.conn.execute(
                "SELECT object_id FROM unique_values "
                "WHERE object_type = ? AND name = ? AND value = ?",
                (object_type, name, value),
            ).fetchone()
        return None if record is None else int(record[0])

    def set_unique(self, object_type: str, name: str, value: str | None, object_id: int) -> None:
        """Record (or clear, with ``None``) the unique value an object holds."""
        with self.lock:
            self.conn.execute(
                "DELETE FROM unique_values WHERE object_type = ? AND name = ? AND object_id = ?",
                (object_type, name, object_id),
            )
            if value is not None:
                self.conn.execute(
                    "INSERT INTO unique_values (object_type, name, value, object_id) "
                    "VALUES (?, ?, ?, ?)",
                    (object_type, name, value, object_id),
                )

    def drop_uniques_of(self, object_type: str, object_id: int) -> None:
        """Free every unique value an (archived) object held."""
        with self.lock:
            self.conn.execute(
                "DELETE FROM unique_values WHERE object_type = ? AND object_id = ?",
                (object_type, object_id),
            )

    # ------------------------------------------------------------------ history

    def history(
        self, object_type: str, ids: Sequence[int], names: Sequence[str]
    ) -> dict[tuple[int, str], list[HistoryEntry]]:
        """Stored history, newest first, keyed by (object id, property name)."""
        found: dict[tuple[int, str], list[HistoryEntry]] = {}
        if not ids or not names:
            return found
        id_marks = ",".join("?" * len(ids))
        name_marks = ",".join("?" * len(names))
        with self.lock:
            records = self.conn.execute(
                "SELECT object_id, name, value, ts_ms, source_type, source_id, user_id "
                f"FROM history WHERE object_type = ? AND object_id IN ({id_marks}) "
                f"AND name IN ({name_marks}) ORDER BY ts_ms DESC, rowid DESC",
                (object_type, *ids, *names),
            ).fetchall()
        for object_id, name, value, ts_ms, source_type, source_id, user_id in records:
            found.setdefault((object_id, name), []).append(
                HistoryEntry(value, ts_ms, source_type, source_id, user_id)
            )
        return found

    def add_history(
        self,
        object_type: str,
        object_id: int,
        entries: Iterable[tuple[str, str | None]],
        *,
        ts_ms: int,
        source_type: str,
        source_id: str | None,
        user_id: int | None,
    ) -> None:
        """Append history rows for changed properties."""
        with self.lock:
            self.conn.executemany(
                "INSERT INTO history (object_type, object_id, name, value, ts_ms, source_type, "
                "source_id, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (object_type, object_id, name, value, ts_ms, source_type, source_id, user_id)
                    for name, value in entries
                ],
            )

    # ------------------------------------------------------------------ associations

    def associations(
        self, from_type: str, from_ids: Sequence[int], to_type: str
    ) -> dict[int, dict[int, list[int]]]:
        """``{from_id: {to_id: [type ids]}}`` with to-ids ascending."""
        found: dict[int, dict[int, list[int]]] = {}
        with self.lock:
            for start in range(0, len(from_ids), 500):
                chunk = list(from_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for from_id, to_id, type_id in self.conn.execute(
                    "SELECT from_id, to_id, type_id FROM associations WHERE from_type = ? "
                    f"AND to_type = ? AND from_id IN ({marks}) ORDER BY from_id, to_id, type_id",
                    (from_type, to_type, *chunk),
                ):
                    found.setdefault(from_id, {}).setdefault(to_id, []).append(type_id)
        return found

    def add_association(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int
    ) -> None:
        """Store one directed association row (callers add the inverse too)."""
        with self.lock:
            self.conn.execute(
                "INSERT OR IGNORE INTO associations (from_type, from_id, to_type, to_id, type_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (from_type, from_id, to_type, to_id, type_id),
            )

    def remove_associations(
        self,
        from_type: str,
        from_id: int,
        to_type: str,
        to_id: int | None = None,
        type_id: int | None = None,
    ) -> None:
        """Delete directed association rows matching the given filters."""
        clauses = ["from_type = ?", "from_id = ?", "to_type = ?"]
        params: list[Any] = [from_type, from_id, to_type]
        if to_id is not None:
            clauses.append("to_id = ?")
            params.append(to_id)
        if type_id is not None:
            clauses.append("type_id = ?")
            params.append(type_id)
        with self.lock:
            self.conn.execute(f"DELETE FROM associations WHERE {' AND '.join(clauses)}", params)

    # ------------------------------------------------------------------ owners

    @staticmethod
    def _owner(record: Sequence[Any]) -> Owner:
        return Owner(
            id=record[0],
            email=record[1],
            first_name=record[2],
            last_name=record[3],
            user_id=record[4],
            created_ms=record[5],
            updated_ms=record[6],
            archived=bool(record[7]),
            teams=json.loads(record[8]),
        )

    _OWNER_COLUMNS = (
        "id, email, first_name, last_name, user_id, created_ms, updated_ms, archived, teams"
    )

    def owners(
        self, *, archived: bool, after_id: int | None, limit: int, email: str | None
    ) -> list[Owner]:
        """A page of owners in id order, from ``after_id`` inclusive."""
        clauses = ["archived = ?", "id >= ?"]
        params: list[Any] = [int(archived), after_id or 0]
        if email:
            clauses.append("lower(email) = lower(?)")
            params.append(email)
        with self.lock:
            records = self.conn.execute(
                f"SELECT {self._OWNER_COLUMNS} FROM owners WHERE {' AND '.join(clauses)} "
                "ORDER BY id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [self._owner(record) for record in records]

    def owner(self, owner_id: int) -> Owner | None:
        """One owner by id, archived or not."""
        with self.lock:
            record = self.conn.execute(
                f"SELECT {self._OWNER_COLUMNS} FROM owners WHERE id = ?", (owner_id,)
            ).fetchone()
        return None if record is None else self._owner(record)

    def owner_by_user_id(self, user_id: int) -> Owner | None:
        """The owner of a user id."""
        with self.lock:
            record = self.conn.execute(
                f"SELECT {self._OWNER_COLUMNS} FROM owners WHERE user_id = ?", (user_id,)
            ).fetchone()
        return None if record is None else self._owner(record)

    def active_owner_ids(self) -> set[int]:
        """Ids that ``hubspot_owner_id`` may be set to."""
        with self.lock:
            if self._owner_ids is None:
                self._owner_ids = {
                    record[0]
                    for record in self.conn.execute("SELECT id FROM owners WHERE archived = 0")
                }
            return set(self._owner_ids)

    # ------------------------------------------------------------------ custom properties

    def custom_properties(self, object_type: str) -> dict[str, PropertyDef]:
        """Properties created through the properties API, by name."""
        with self.lock:
            if self._custom_props is None:
                loaded: dict[str, dict[str, PropertyDef]] = {}
                for kind, name, body in self.conn.execute(
                    "SELECT object_type, name, body FROM custom_properties"
                ):
                    data = json.loads(body)
                    loaded.setdefault(kind, {})[name] = PropertyDef(
                        name=name,
                        label=data["label"],
                        type=data["type"],
                        field_type=data["fieldType"],
                        group=data.get("groupName", ""),
                        options=tuple((o["value"], o["label"]) for o in data.get("options", [])),
                        unique=bool(data.get("hasUniqueValue", False)),
                        hubspot_defined=False,
                        description=data.get("description", ""),
                    )
                self._custom_props = loaded
            return dict(self._custom_props.get(object_type, {}))

    def add_custom_property(self, object_type: str, body: dict[str, Any]) -> None:
        """Persist a property created through the API."""
        with self.lock:
            self.conn.execute(
                "INSERT INTO custom_properties (object_type, name, body) VALUES (?, ?, ?)",
                (object_type, body["name"], json.dumps(body)),
            )
            self._custom_props = None

    # ------------------------------------------------------------------ timeline

    def templates(self, app_id: int) -> list[dict[str, Any]]:
        """Timeline event templates of an app."""
        with self.lock:
            return [
                json.loads(record[0])
                for record in self.conn.execute(
                    "SELECT body FROM timeline_templates WHERE app_id = ? ORDER BY id", (app_id,)
                )
            ]

    def template(self, template_id: str) -> tuple[int, dict[str, Any]] | None:
        """(app id, template) by template id."""
        with self.lock:
            record = self.conn.execute(
                "SELECT app_id, body FROM timeline_templates WHERE id = ?", (template_id,)
            ).fetchone()
        return None if record is None else (int(record[0]), json.loads(record[1]))

    def save_template(self, app_id: int, body: dict[str, Any]) -> None:
        """Insert or replace a template."""
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO timeline_templates (id, app_id, body) VALUES (?, ?, ?)",
                (body["id"], app_id, json.dumps(body, ensure_ascii=False)),
            )

    def delete_template(self, template_id: str) -> None:
        """Remove a template."""
        with self.lock:
            self.conn.execute("DELETE FROM timeline_templates WHERE id = ?", (template_id,))

    def timeline_event(self, template_id: str, event_id: str) -> dict[str, Any] | None:
        """A stored timeline event."""
        with self.lock:
            record = self.conn.execute(
                "SELECT body FROM timeline_events WHERE template_id = ? AND event_id = ?",
                (template_id, event_id),
            ).fetchone()
        return None if record is None else dict(json.loads(record[0]))

    def save_timeline_event(self, template_id: str, event_id: str, body: dict[str, Any]) -> None:
        """Insert or replace a timeline event."""
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO timeline_events (template_id, event_id, body) "
                "VALUES (?, ?, ?)",
                (template_id, event_id, json.dumps(body, ensure_ascii=False)),
            )

    def timeline_events(self) -> list[dict[str, Any]]:
        """Every stored timeline event (inspection API)."""
        with self.lock:
            return [
                json.loads(record[0])
                for record in self.conn.execute("SELECT body FROM timeline_events ORDER BY rowid")
            ]
