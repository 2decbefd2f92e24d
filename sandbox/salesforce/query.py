"""REST ``/query`` and ``/queryAll``: results in batches behind query locators.

A result that fits one batch is answered directly. A larger one is snapshotted into a
temp table (``Store.materialize``) and served page by page through a query locator —
``nextRecordsUrl`` is the **relative** path ``/services/data/vXX.X/query/01g…-2000``
(facts A4; the offset after the dash, ``query`` even for queryAll, as Salesforce does).
Nothing but the current page is ever held in memory.

Cursor rules (Salesforce knowledge article 000004410): a locator lives for two days; each
user has at most ``max_open_query_cursors`` open, opening another drops the oldest, and an
unknown, expired or dropped locator answers ``INVALID_QUERY_LOCATOR``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce import soql
from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.options import SalesforceOptions
from sandbox.salesforce.store import Store

MIN_BATCH, MAX_BATCH = 200, 2000  # Query Options header limits (facts A4)
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
_LOCATOR = re.compile(r"^(01g[0-9A-Za-z]{15})-(\d+)$")


def _invalid_locator() -> ApiError:
    # HTTP status as the team's brief specifies [unconfirmed against a live org].
    return ApiError(404, "INVALID_QUERY_LOCATOR", "invalid query locator")


def batch_size_from_header(value: str | None, default: int) -> int:
    """The batch size a ``Sforce-Query-Options`` header asks for, clamped to 200…2,000."""
    if not value:
        return default
    match = _BATCH_OPTION.search(value)
    if not match:
        return default
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))


@dataclass
class _Cursor:
    locator: str
    table: str
    total: int
    compiled: soql.CompiledQuery
    batch_size: int
    user_id: str
    token: str
    expires_at: float


class QueryService:
    """Runs SOQL for the REST query resources and keeps their cursors."""

    def __init__(self, store: Store, options: SalesforceOptions) -> None:
        self.store = store
        self.options = options
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._counter = 0

    def compile(self, text: str, *, include_deleted: bool) -> soql.CompiledQuery:
        """Parse and compile; SOQL errors become 400 answers with Salesforce's error codes."""
        try:
            return soql.compile_query(soql.parse_soql(text), include_deleted=include_deleted)
        except soql.SoqlError as error:
            raise ApiError(400, error.error_code, error.message) from None

    def run(
        self,
        text: str | None,
        *,
        include_deleted: bool,
        batch_size: int,
        user_id: str,
        token: str,
        api_version: str,
    ) -> dict[str, Any]:
        """Answer ``GET /query/?q=…`` (or queryAll): the first batch and, if needed, a locator."""
        if not text or not text.strip():
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = self.compile(text, include_deleted=include_deleted)
        if compiled.kind == "count":
            total = int(self.store.scalar(compiled.count_sql, compiled.count_params) or 0)
            return {"totalSize": total, "done": True, "records": []}
        with self.store.locked():
            total = int(self.store.scalar(compiled.count_sql, compiled.count_params) or 0)
            if total <= batch_size:
                rows = self.store.fetch_all(compiled.sql, compiled.params)
                return self._page(compiled, rows, len(rows), None, api_version)
            table, total = self.store.materialize(compiled.sql, compiled.params)
            rows = self.store.read_cursor(table, 0, batch_size)
        locator = self._open(
            _Cursor(
                locator="",
                table=table,
                total=total,
                compiled=compiled,
                batch_size=batch_size,
                user_id=user_id,
                token=token,
                expires_at=time.monotonic() + self.options.query_locator_ttl_seconds,
            )
        )
        return self._page(compiled, rows, total, f"{locator}-{batch_size}", api_version)

    def more(self, locator_text: str, *, token: str, api_version: str) -> dict[str, Any]:
        """Answer ``GET /query/01g…-N``: the batch starting after row N."""
        match = _LOCATOR.match(locator_text)
        cursor = None
        if match:
            with self._lock:
                cursor = self._cursors.get(match.group(1))
            if cursor is not None and cursor.expires_at <= time.monotonic():
                self._forget([cursor])
                cursor = None
        if match is None or cursor is None:
            raise _invalid_locator()
        if self.options.query_locator_bound_to_session and cursor.token != token:
            # [unconfirmed] a new session cannot resume another session's locator.
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        offset = int(match.group(2))
        if offset > cursor.total:
            raise _invalid_locator()
        try:
            rows = self.store.read_cursor(cursor.table, offset, cursor.batch_size)
        except sqlite3.OperationalError:
            # The snapshot vanished with a rolled-back composite transaction.
            self._forget([cursor])
            raise _invalid_locator() from None
        end = offset + len(rows)
        next_locator = f"{cursor.locator}-{end}" if end < cursor.total else None
        if next_locator is None:
            self._forget([cursor])
        return self._page(cursor.compiled, rows, cursor.total, next_locator, api_version)

    def close_all(self) -> None:
        """Drop every cursor (used on stop)."""
        with self._lock:
            cursors = list(self._cursors.values())
        self._forget(cursors)

    def expire_cursors(self) -> int:
        """Invalidate every open query locator (for tests of INVALID_QUERY_LOCATOR)."""
        with self._lock:
            count = len(self._cursors)
        self.close_all()
        return count

    # -- internals ----------------------------------------------------------------------------

    def _open(self, cursor: _Cursor) -> str:
        with self._lock:
            self._counter += 1
            cursor.locator = make_id("01g", self._counter)
            self._cursors[cursor.locator] = cursor
            mine = [c for c in self._cursors.values() if c.user_id == cursor.user_id]
            stale = mine[: max(0, len(mine) - self.options.max_open_query_cursors)]
        self._forget(stale)
        return cursor.locator

    def _forget(self, cursors: list[_Cursor]) -> None:
        # The store is only touched outside self._lock: a composite request may hold the
        # store's lock while it opens a cursor, so the opposite order would deadlock.
        dropped = []
        with self._lock:
            for cursor in cursors:
                if self._cursors.pop(cursor.locator, None) is not None:
                    dropped.append(cursor.table)
        for table in dropped:
            self.store.drop_cursor(table)

    @staticmethod
    def _page(
        compiled: soql.CompiledQuery,
        rows: list[tuple[Any, ...]],
        total: int,
        next_locator: str | None,
        api_version: str,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"totalSize": total, "done": next_locator is None}
        if next_locator is not None:
            body["nextRecordsUrl"] = f"/services/data/v{api_version}/query/{next_locator}"
        body["records"] = [compiled.shape_row(row, api_version) for row in rows]
        return body
