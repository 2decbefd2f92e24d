"""The Salesforce connector: owners, stages, accounts, opportunities and stage history.

Streams, in the order the engine reads them:

============== =========================== ================================================
stream         Salesforce object           cursor
============== =========================== ================================================
owners         User                        (SystemModstamp, Id)
stages         OpportunityStage            none: read whole (a dozen rows), ``done``
accounts       Account                     (SystemModstamp, Id), queryAll for deletes
opportunities  Opportunity                 (SystemModstamp, Id), queryAll for deletes
stage_history  OpportunityFieldHistory     (CreatedDate, Id); OpportunityHistory when
                                           field history is not available
============== =========================== ================================================

**Incremental reads.** ``SELECT ... WHERE SystemModstamp >= start ORDER BY SystemModstamp,
Id`` through ``queryAll``, so Recycle Bin rows arrive with ``IsDeleted = true`` and become
:class:`~connectors.core.records.Deletion` s. ``start`` is the saved cursor minus the
configured lookback, floored to the second (SOQL literals have whole seconds, facts A4): a
closed start, so records sharing the cursor's timestamp — a bulk update stamps thousands
with one SystemModstamp — or committed late are read again rather than skipped. Only with a
zero lookback are rows at or before the saved ``(modstamp, last_id)`` dropped, which is safe
because the order is total. Pages follow ``nextRecordsUrl``; each page is one
:class:`~connectors.core.connector.Batch` whose position is the last row's cursor. The next
page is requested while the current one is converted (one page ahead, ``_read_ahead``).

**Purged delete log.** Deleted rows stay in the Recycle Bin for a limited time. When the
last complete read (``synced_at``) is more than a day old, the Get Deleted resource's
``earliestDateAvailable`` says whether deletions may have been purged since; if so (or when
the gap exceeds its 30-day window) the stream first yields
:class:`~connectors.core.records.LiveIds`, every id that still exists.

**Full reads** (``ReadMode.FULL``) read everything and end with ``Batch(done=True)``: the
engine marks what was not returned as deleted. A killed full read resumes from its position
(marked ``"full": true``) instead of starting over.

**Backfill** (``ReadMode.BACKFILL``) reads a ``CreatedDate`` window: through Bulk API 2.0
when ``SELECT COUNT()`` estimates more than ``bulk_threshold`` records, else through REST.
A Bulk position names the job, the results page (``locator``) and the rows of it already
delivered, so a killed run resumes within the same job; when the job is gone, a new one
starts from the last committed ``(CreatedDate, Id)``.

**Positions** are small JSON dicts the engine saves after committing each batch::

    {"modstamp": "2026-01-02T03:04:05.123000+00:00", "last_id": "006...",
     "synced_at": "...",                      # start of the last complete read
     "fields": [...], "extra_types": {...},   # describe cache (24 h), so an
     "default_currency": null, "described_at": "..."}   # idle run costs one query

History streams keep ``"created"`` instead of ``"modstamp"`` and ``"source"``; backfills add
``"mode": "backfill"``, ``"via"``, the window and, for Bulk, ``job_id``/``locator``/``offset``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import requests

from connectors.core.activities import Activity, FoundActivity, WriteResult
from connectors.core.connector import Batch, Connector, ReadMode, ReadRequest, StreamInfo
from connectors.core.errors import ConfigurationError, RecordError, StagelinkError
from connectors.core.normalize import to_datetime
from connectors.core.probe import ApiBudget
from connectors.core.records import BadRecord, Deletion, Item, LiveIds, ObjectType
from connectors.salesforce import bulk, convert
from connectors.salesforce.client import QueryPage, SalesforceClient
from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.errors import (
    PermissionDeniedError,
    SalesforceConfigurationError,
    SalesforceFatalError,
    SalesforceRecordError,
    SchemaMismatchError,
)
from connectors.salesforce.queries import (
    DESCRIBE_TTL,
    OPPORTUNITY_STAGE_FIELDS,
    USER_FIELDS,
    ObjectSchema,
    before_condition,
    count_query,
    describe_object,
    equals_condition,
    field_history_fields,
    ids_query,
    live_ids_query,
    select_query,
    since_condition,
)
from connectors.salesforce.retry import DEFAULT_RETRY, RetryPolicy
from connectors.salesforce.writeback import MAX_RECORDS, SalesforceActivityWriter

__all__ = [
    "DELETE_LOG_CHECK_AFTER",
    "STREAMS",
    "Cursor",
    "SalesforceConnector",
    "UnknownStreamError",
    "open_connector",
]

Position = dict[str, Any]
Record = Mapping[str, Any]
T = TypeVar("T")

STREAMS: tuple[StreamInfo, ...] = (
    StreamInfo("owners", "Users who own accounts and opportunities"),
    StreamInfo("stages", "The pipeline and its stages (OpportunityStage)"),
    StreamInfo("accounts", "Accounts"),
    StreamInfo("opportunities", "Opportunities"),
    StreamInfo("stage_history", "Stage changes (OpportunityFieldHistory / OpportunityHistory)"),
)

#: Check the delete log when the last complete read is older than this.
DELETE_LOG_CHECK_AFTER = timedelta(days=1)
# Get Deleted covers the last 30 days only (facts A7); keep an hour of margin.
_DELETE_LOG_WINDOW = timedelta(days=30) - timedelta(hours=1)
# A batch never holds more records than one REST page may (facts A4: 2,000).
MAX_BATCH = 2000
# Ids per `WHERE Id IN (...)`: keeps the GET URL well under Salesforce's 16 KB limit.
ID_CHUNK = 200
_SF_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")


class UnknownStreamError(ConfigurationError):
    """A stream name this connector does not offer."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in ``ORDER BY <time field>, Id``: ids break ties between equal times."""

    at: datetime
    id: str

    @classmethod
    def of(cls, record: Record, field_name: str) -> Cursor | None:
        """The cursor of a row (REST or CSV), ``None`` when its time or id is unreadable."""
        found = _cursor_of(record, field_name)
        return cls(*found) if found is not None else None

    @classmethod
    def from_position(cls, position: Mapping[str, Any] | None, key: str) -> Cursor | None:
        """The cursor saved under ``key`` (``modstamp`` or ``created``) and ``last_id``."""
        if not position:
            return None
        moment = _parse_time(position.get(key))
        last_id = position.get("last_id")
        if moment is None or not isinstance(last_id, str):
            return None
        return cls(moment, last_id)

    def to_position(self, key: str) -> Position:
        """``{key: ISO, "last_id": id}``."""
        return {key: self.at.isoformat(), "last_id": self.id}


def _cursor_of(record: Record, field_name: str) -> tuple[datetime, str] | None:
    """:meth:`Cursor.of` as a tuple."""
    record_id = record.get("Id")
    if not isinstance(record_id, str) or not record_id:
        return None
    try:
        moment = convert.timestamp(record.get(field_name), field_name)
    except RecordError:
        return None
    return (moment, record_id) if moment is not None else None


# -- what a stream reads ---------------------------------------------------------------------


class _Target:
    """The object a stream reads right now; describe or a fallback may change it mid-read."""

    sobject: str
    include_deleted: bool = False

    def fields(self) -> Sequence[str]:
        raise NotImplementedError

    def conditions(self) -> list[str]:
        """Conditions every query of this stream has (besides cursors and windows)."""
        return []

    def convert(self, records: Sequence[Record]) -> list[Item]:
        raise NotImplementedError

    def refresh(self, error: StagelinkError) -> bool:
        """After ``error`` (INVALID_FIELD, INVALID_TYPE...): adapt and say whether to retry."""
        return False

    def cache(self) -> Position:
        """Position entries that spare the next read its describe call."""
        return {}


class _FixedTarget(_Target):
    """A standard object read with a fixed field list (User)."""

    def __init__(self, sobject: str, fields: Sequence[str], one: Callable[[Record], Item]) -> None:
        self.sobject = sobject
        self._fields = tuple(fields)
        self._one = one

    def fields(self) -> Sequence[str]:
        return self._fields

    def convert(self, records: Sequence[Record]) -> list[Item]:
        return [self._one(record) for record in records]


class _ObjectTarget(_Target):
    """Account or Opportunity: fields from describe, extras from the configuration."""

    include_deleted = True

    def __init__(
        self,
        connector: SalesforceConnector,
        sobject: str,
        one: Callable[[Record, convert.FieldContext], Item],
        position: Mapping[str, Any] | None,
        now: datetime,
    ) -> None:
        self.sobject = sobject
        self._connector = connector
        self._one = one
        self._now = now
        self.schema = connector._schema(sobject, position, now)

    def fields(self) -> Sequence[str]:
        return self.schema.fields

    def convert(self, records: Sequence[Record]) -> list[Item]:
        context = self.schema.context
        return [self._one(record, context) for record in records]

    def refresh(self, error: StagelinkError) -> bool:
        # A field was dropped (or hidden) since the cached describe: describe again, once.
        if not isinstance(error, SchemaMismatchError) or not self.schema.cached:
            return False
        self.schema = self._connector._describe(self.sobject, self._now)
        return True

    def cache(self) -> Position:
        return self.schema.to_position()


class _HistoryTarget(_Target):
    """OpportunityFieldHistory (``Field = 'StageName'``), else OpportunityHistory."""

    def __init__(
        self, connector: SalesforceConnector, position: Mapping[str, Any] | None, now: datetime
    ) -> None:
        self._connector = connector
        cached = (position or {}).get("source")
        described_at = _parse_time((position or {}).get("described_at"))
        if (
            cached in ("field_history", "opportunity_history")
            and described_at is not None
            and now - described_at < DESCRIBE_TTL
        ):
            self.source: str = cached
            self.described_at = described_at
        else:
            self.source = connector._history_source()
            self.described_at = now

    @property
    def sobject(self) -> str:  # type: ignore[override]
        return "OpportunityFieldHistory" if self.source == "field_history" else "OpportunityHistory"

    def fields(self) -> Sequence[str]:
        return field_history_fields(self.source)

    def conditions(self) -> list[str]:
        if self.source == "field_history":
            return [equals_condition("Field", "StageName")]
        return []

    def convert(self, records: Sequence[Record]) -> list[Item]:
        if self.source == "field_history":
            return [convert.field_history_change(record) for record in records]
        return list(convert.opportunity_history_changes(records))

    def refresh(self, error: StagelinkError) -> bool:
        # Field history is an org feature (and a permission): without it, fall back.
        if self.source != "field_history":
            return False
        if not isinstance(error, SchemaMismatchError | PermissionDeniedError):
            return False
        self.source = "opportunity_history"
        return True

    def cache(self) -> Position:
        return {"source": self.source, "described_at": _iso(self.described_at)}


# -- the connector ---------------------------------------------------------------------------


class SalesforceConnector(Connector):
    """One Salesforce connection's streams (see the module docstring)."""

    kind = "salesforce"

    def __init__(
        self,
        config: SalesforceConnectionConfig,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        batch_size: int | None = None,
        bulk_page_size: int = bulk.DEFAULT_PAGE_SIZE,
        bulk_batch_size: int | None = None,
        bulk_poll_interval: float = 1.0,
        bulk_timeout: float = 6 * 3600.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``batch_size``: REST page size (200-2,000; ``None`` lets Salesforce pick 2,000).

        ``bulk_page_size`` is ``maxRecords`` per Bulk results page, ``bulk_batch_size`` the rows
        per batch cut from it (default: as many as a REST page); ``bulk_poll_interval`` the
        first wait between job status checks; ``clock`` the source of "now" (tests).
        """
        self.config = config
        self.client = SalesforceClient(config, session=session, retry=retry)
        self._batch_size = batch_size
        self._bulk_page_size = bulk_page_size
        # Batches as large as REST pages by default, so both paths checkpoint equally often.
        self._bulk_batch_size = bulk_batch_size or batch_size or MAX_BATCH
        self._bulk_poll_interval = bulk_poll_interval
        self._bulk_timeout = bulk_timeout
        self._now = clock
        self._schemas: dict[str, ObjectSchema] = {}
        self._mark = 0
        self.activity_writer = SalesforceActivityWriter(self.client, config.writeback)

    # -- contract ---------------------------------------------------------------------------

    def streams(self) -> Sequence[StreamInfo]:
        """owners, stages, accounts, opportunities, stage_history."""
        return STREAMS

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """Batches of ``request.stream`` (see the module docstring for modes and positions)."""
        return self._metered(self._batches(request))

    def _batches(self, request: ReadRequest) -> Iterator[Batch]:
        if request.stream == "stages":
            return self._read_stages()
        now = self._now()
        if request.stream == "owners":
            target: _Target = _FixedTarget("User", USER_FIELDS, convert.owner)
            if request.mode is ReadMode.BACKFILL:  # no history to slice: read them all
                return self._read_cursor(target, replace(request, position=None), now, done=False)
            return self._read_cursor(target, request, now)
        if request.stream in ("accounts", "opportunities"):
            return self._read_object(request, now)
        if request.stream == "stage_history":
            return self._read_history(request, now)
        raise self._unknown_stream(request.stream)

    def _metered(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        # Requests are counted from the first step of the read (login and describe included).
        self._mark = self.client.requests_made
        yield from batches

    def estimate(self, request: ReadRequest) -> int | None:
        """``SELECT COUNT()`` of what ``request`` would read (one request; deletes excluded)."""
        if request.stream == "stages":
            return self.client.count(count_query("OpportunityStage")) + 1
        sobject, cursor_field, key, fixed = {
            "owners": ("User", "SystemModstamp", "modstamp", []),
            "accounts": ("Account", "SystemModstamp", "modstamp", []),
            "opportunities": ("Opportunity", "SystemModstamp", "modstamp", []),
            "stage_history": (
                "OpportunityFieldHistory",
                "CreatedDate",
                "created",
                [equals_condition("Field", "StageName")],
            ),
        }.get(request.stream, (None, "", "", []))
        if sobject is None:
            raise self._unknown_stream(request.stream)
        conditions = list(fixed)
        position = request.position or {}
        if request.mode is ReadMode.BACKFILL and request.stream != "owners":
            conditions += self._window(request, "CreatedDate")
        elif request.mode is ReadMode.INCREMENTAL:
            cursor = Cursor.from_position(position, key)
            if cursor is not None:
                conditions.append(since_condition(cursor_field, cursor.at - self._lookback))
        if request.stream == "stage_history" and position.get("source") == "opportunity_history":
            sobject, conditions = "OpportunityHistory", conditions[1:]
        try:
            return self.client.count(count_query(sobject, conditions))
        except (SchemaMismatchError, PermissionDeniedError):
            if sobject != "OpportunityFieldHistory":
                raise
            return self.client.count(count_query("OpportunityHistory", conditions[1:]))

    def read_ids(self, object_type: ObjectType, crm_ids: Sequence[str]) -> Batch:
        """Current state of accounts or opportunities by id; gone ones come back as Deletions."""
        ones: dict[ObjectType, tuple[str, Callable[[Record, convert.FieldContext], Item]]] = {
            ObjectType.OPPORTUNITY: ("Opportunity", convert.opportunity),
            ObjectType.ACCOUNT: ("Account", convert.account),
        }
        if object_type not in ones:
            raise NotImplementedError(f"salesforce connector cannot read {object_type} by id")
        sobject, one = ones[object_type]
        self._mark = self.client.requests_made
        target = _ObjectTarget(self, sobject, one, None, self._now())
        items: list[Item] = []
        wanted: list[str] = []
        for crm_id in dict.fromkeys(crm_ids):
            if _SF_ID.match(crm_id):
                wanted.append(crm_id)
            else:
                items.append(
                    BadRecord(object_type, crm_id, f"{crm_id!r} is not a Salesforce record id")
                )

        def fetch(chunk: list[str]) -> list[Record]:
            query = ids_query(sobject, target.fields(), chunk)
            return list(self.client.query_all_iter(query, include_deleted=True))

        for start in range(0, len(wanted), ID_CHUNK):
            chunk = wanted[start : start + ID_CHUNK]
            records = self._retrying(target, partial(fetch, chunk))
            # 15-character ids are the case-sensitive core of the 18-character ones.
            found = {str(record.get("Id", ""))[:15] for record in records}
            items.extend(target.convert(records))
            items.extend(Deletion(object_type, i) for i in chunk if i[:15] not in found)
        return Batch(items=items, position=None, requests=self._spent())

    def write_activities(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """Tasks (or Events) through sObject Collections; see ``writeback.py``."""
        return self.activity_writer.write(activities)

    def find_activities(
        self, activities: Sequence[Activity], *, sent_after: datetime | None = None
    ) -> list[FoundActivity]:
        """Activities Salesforce already holds, by external id or description marker."""
        return self.activity_writer.find(activities, sent_after=sent_after)

    def activity_batch_size(self) -> int:
        """200: one sObject Collections request."""
        return MAX_RECORDS

    def api_budget(self) -> list[ApiBudget]:
        """The daily allocation as the latest ``Sforce-Limit-Info`` reported it."""
        budget = self.client.api_budget()
        return [budget] if budget.limit is not None else []

    def requests_made(self) -> int:
        """HTTP requests this connector's client sent (logins included)."""
        return self.client.requests_made

    def close(self) -> None:
        """Close the client's session."""
        self.client.close()

    # -- describe ---------------------------------------------------------------------------

    @property
    def _lookback(self) -> timedelta:
        return self.config.sync.lookback

    def _extras(self, sobject: str) -> list[str]:
        if sobject == "Opportunity":
            return list(self.config.extra_fields.opportunity)
        return list(self.config.extra_fields.account)

    def _schema(
        self, sobject: str, position: Mapping[str, Any] | None, now: datetime
    ) -> ObjectSchema:
        """The cached schema (position, then this connector's memory) or a fresh describe."""
        extras = self._extras(sobject)
        cached = ObjectSchema.from_position(sobject, position)
        if cached is not None and cached.fresh(now, extras):
            return cached
        remembered = self._schemas.get(sobject)
        if remembered is not None and remembered.fresh(now, extras):
            return replace(remembered, cached=True)
        return self._describe(sobject, now)

    def _describe(self, sobject: str, now: datetime) -> ObjectSchema:
        schema = describe_object(self.client, sobject, self._extras(sobject), now=now)
        self._schemas[sobject] = schema
        return schema

    def _history_source(self) -> str:
        """``field_history`` when OpportunityFieldHistory is queryable, else the fallback."""
        try:
            described = self.client.describe("OpportunityFieldHistory")
        except (SchemaMismatchError, PermissionDeniedError, SalesforceRecordError):
            return "opportunity_history"
        return "field_history" if described.get("queryable", True) else "opportunity_history"

    # -- helpers ----------------------------------------------------------------------------

    def _unknown_stream(self, name: str) -> UnknownStreamError:
        names = ", ".join(info.name for info in STREAMS)
        return UnknownStreamError(
            f"connection {self.config.name!r}: the salesforce connector has no stream "
            f"{name!r} (streams: {names})"
        )

    def _spent(self, upto: int | None = None) -> int:
        """Requests since the last call (for ``Batch.requests``), counted up to ``upto``
        (the client's count when a page read ahead arrived) or now."""
        now = self.client.requests_made if upto is None else upto
        spent, self._mark = now - self._mark, now
        return spent

    def _retrying(self, target: _Target, call: Callable[[], T]) -> T:
        """``call()``; after a schema error the target can fix (re-describe, fall back), again."""
        try:
            return call()
        except (SchemaMismatchError, PermissionDeniedError) as error:
            if not target.refresh(error):
                raise
            return call()

    def _pages(
        self, target: _Target, build: Callable[[], str], *, include_deleted: bool
    ) -> Iterator[tuple[QueryPage, int]]:
        """The pages of ``build()``'s query, each with the client's request count once it
        arrived; the first one may be retried after a refresh, the others are read ahead."""

        def first() -> tuple[QueryPage, Iterator[QueryPage]]:
            pages = self.client.query_pages(
                build(), self._batch_size, include_deleted=include_deleted
            )
            return next(pages), pages

        page, rest = self._retrying(target, first)
        yield page, self.client.requests_made
        yield from _read_ahead(rest, self.client)

    def _window(self, request: ReadRequest, field_name: str) -> list[str]:
        conditions = []
        if request.since is not None:
            conditions.append(since_condition(field_name, request.since))
        if request.until is not None:
            conditions.append(before_condition(field_name, request.until))
        return conditions

    def _scan(
        self,
        target: _Target,
        pages: Iterable[tuple[QueryPage, int]],
        *,
        cursor_field: str,
        cursor_key: str,
        start: Cursor | None,
        skip: bool,
        base: Callable[[], Position],
        final: Position,
        done: bool,
    ) -> Iterator[Batch]:
        """One batch per page; each position holds the highest cursor seen so far.

        With ``skip``, rows at or before ``start`` (already delivered) are dropped. The
        position never moves back, even when a lookback re-reads older rows.
        """
        # Cursors as plain (time, id) tuples here, which order as Cursor does: this loop sees
        # every row of a sync.
        high = (start.at, start.id) if start is not None else None
        floor = high if skip else None
        consumed = 0
        for page, requests_made in pages:
            kept = []
            for record in page.records:
                at = _cursor_of(record, cursor_field)
                if at is not None:
                    if floor is not None and at <= floor:
                        continue
                    if high is None or at > high:
                        high = at
                kept.append(record)
            consumed += len(page.records)
            position = base()
            if high is not None:
                position.update(Cursor(*high).to_position(cursor_key))
            if page.done:
                position.pop("full", None)
                position.update(final)
            yield Batch(
                items=target.convert(kept),
                position=position,
                done=done and page.done,
                requests=self._spent(upto=requests_made),
                remaining=max(page.total_size - consumed, 0),
            )

    # -- streams ----------------------------------------------------------------------------

    def _read_stages(self) -> Iterator[Batch]:
        query = select_query("OpportunityStage", OPPORTUNITY_STAGE_FIELDS, order_by=("SortOrder",))
        items: list[Item] = [convert.default_pipeline()]
        items.extend(convert.stage(record) for record in self.client.query_all_iter(query))
        yield Batch(items=items, position=None, done=True, requests=self._spent())

    def _read_object(self, request: ReadRequest, now: datetime) -> Iterator[Batch]:
        if request.stream == "opportunities":
            target = _ObjectTarget(self, "Opportunity", convert.opportunity, request.position, now)
        else:
            target = _ObjectTarget(self, "Account", convert.account, request.position, now)
        if request.mode is ReadMode.BACKFILL:
            yield from self._backfill(target, request)
            return
        object_type = (
            ObjectType.OPPORTUNITY if request.stream == "opportunities" else ObjectType.ACCOUNT
        )
        yield from self._read_cursor(target, request, now, delete_log=object_type)

    def _read_history(self, request: ReadRequest, now: datetime) -> Iterator[Batch]:
        target = _HistoryTarget(self, request.position, now)
        if request.mode is ReadMode.BACKFILL:
            yield from self._backfill(target, request)
            return
        position = request.position or {}
        if position.get("source") not in (None, target.source) and position.get("last_id"):
            # The saved id belongs to the other history object: keep the time, not the tie-break.
            request = replace(request, position={**position, "last_id": ""})
        yield from self._read_cursor(
            target, request, now, cursor_field="CreatedDate", cursor_key="created"
        )

    def _read_cursor(
        self,
        target: _Target,
        request: ReadRequest,
        now: datetime,
        *,
        cursor_field: str = "SystemModstamp",
        cursor_key: str = "modstamp",
        delete_log: ObjectType | None = None,
        done: bool | None = None,
    ) -> Iterator[Batch]:
        """An incremental or full read ordered by ``(cursor_field, Id)``."""
        position = dict(request.position or {})
        cursor = Cursor.from_position(position, cursor_key)
        full = request.mode is not ReadMode.INCREMENTAL
        if full:
            # Resume only an unfinished full read; an incremental cursor is no place to start.
            start = cursor if position.get("full") else None
            skip = True
            lookback_start = start.at if start is not None else None
        else:
            start = cursor
            skip = self._lookback <= timedelta(0)
            lookback_start = start.at - self._lookback if start is not None else None
        if delete_log is not None and not full and cursor is not None:
            live = self._live_ids_if_purged(target.sobject, delete_log, position, cursor, now)
            if live is not None:
                yield live

        def build() -> str:
            conditions = target.conditions()
            if lookback_start is not None:
                conditions.append(since_condition(cursor_field, lookback_start))
            return select_query(target.sobject, target.fields(), conditions, (cursor_field, "Id"))

        def base() -> Position:
            entries: Position = {**target.cache(), "synced_at": position.get("synced_at")}
            if full:
                entries["full"] = True
            return entries

        yield from self._scan(
            target,
            self._pages(target, build, include_deleted=target.include_deleted),
            cursor_field=cursor_field,
            cursor_key=cursor_key,
            start=start,
            skip=skip,
            base=base,
            final={"synced_at": now.isoformat()},
            done=(request.mode is ReadMode.FULL) if done is None else done,
        )

    def _live_ids_if_purged(
        self,
        sobject: str,
        object_type: ObjectType,
        position: Mapping[str, Any],
        cursor: Cursor,
        now: datetime,
    ) -> Batch | None:
        """LiveIds when deletions since the last complete read may have left the Recycle Bin.

        Recycle Bin rows come through ``queryAll`` only until they are purged; Get Deleted's
        ``earliestDateAvailable`` tells how far back its log (and so the bin) still reaches
        (facts A7).
        """
        synced = _parse_time(position.get("synced_at")) or cursor.at
        if now - synced <= DELETE_LOG_CHECK_AFTER:
            return None
        if now - synced < _DELETE_LOG_WINDOW:
            answer = self.client.deleted(sobject, synced, now)
            try:
                earliest = to_datetime(answer.get("earliestDateAvailable"), "earliestDateAvailable")
            except RecordError:
                earliest = None
            if earliest is not None and earliest <= synced:
                return None  # nothing purged since we last looked
        ids = frozenset(
            str(record["Id"])
            for record in self.client.query_all_iter(live_ids_query(sobject))
            if record.get("Id")
        )
        return Batch(items=[LiveIds(object_type, ids)], position=None, requests=self._spent())

    # -- backfill ---------------------------------------------------------------------------

    def _backfill(self, target: _Target, request: ReadRequest) -> Iterator[Batch]:
        """A ``CreatedDate`` window, through Bulk API 2.0 when large, else REST."""
        window = {"since": _iso(request.since), "until": _iso(request.until)}
        saved = dict(request.position or {})
        same_job = saved.get("mode") == "backfill" and all(
            saved.get(key) == value for key, value in window.items()
        )
        position: Position = saved if same_job else {}
        if position.get("complete"):
            return
        cursor = Cursor.from_position(position, "created")

        def conditions(after: Cursor | None) -> list[str]:
            found = target.conditions() + self._window(request, "CreatedDate")
            if after is not None:
                found.append(since_condition("CreatedDate", after.at))
            return found

        def build(after: Cursor | None) -> str:
            return select_query(
                target.sobject, target.fields(), conditions(after), ("CreatedDate", "Id")
            )

        def base() -> Position:
            return {**target.cache(), "mode": "backfill", **window}

        via = position.get("via")
        if via is None:
            estimate = self._retrying(
                target, lambda: self.client.count(count_query(target.sobject, conditions(cursor)))
            )
            via = "bulk" if estimate > self.config.bulk_threshold else "rest"
        if via == "bulk":
            yield from self._bulk_backfill(target, position, cursor, build, base)
            return
        yield from self._scan(
            target,
            self._pages(target, lambda: build(cursor), include_deleted=target.include_deleted),
            cursor_field="CreatedDate",
            cursor_key="created",
            start=cursor,
            skip=True,
            base=lambda: {**base(), "via": "rest"},
            final={"complete": True},
            done=False,
        )

    def _start_job(self, target: _Target, query: Callable[[], str]) -> bulk.JobInfo:
        created = self._retrying(
            target,
            lambda: bulk.create_job(
                self.client, target.sobject, query(), include_deleted=target.include_deleted
            ),
        )
        return bulk.wait_for_job(
            self.client,
            target.sobject,
            created.id,
            poll_interval=self._bulk_poll_interval,
            timeout=self._bulk_timeout,
        )

    def _bulk_backfill(
        self,
        target: _Target,
        position: Position,
        cursor: Cursor | None,
        build: Callable[[Cursor | None], str],
        base: Callable[[], Position],
    ) -> Iterator[Batch]:
        """Read a Bulk query job page by page, a REST page's worth of rows per batch."""
        job_id = position.get("job_id") if isinstance(position.get("job_id"), str) else None
        locator = position.get("locator") if isinstance(position.get("locator"), str) else None
        offset = int(position.get("offset") or 0)
        consumed = int(position.get("consumed") or 0)
        total = position.get("total") if isinstance(position.get("total"), int) else None
        # Rows at or before the cursor the job started from were delivered by an earlier job.
        job_from = Cursor.from_position(position.get("job_from"), "created")
        resumed = job_id is not None
        if job_id is None:
            job_from = cursor
            info = self._start_job(target, partial(build, job_from))
            job_id, total = info.id, info.records
        high = cursor
        rows_per_batch = self._bulk_batch_size

        def batch(items: list[Item], page_locator: str | None, page_offset: int) -> Batch:
            entries = {
                **base(),
                "via": "bulk",
                "job_id": job_id,
                "locator": page_locator,
                "offset": page_offset,
                "consumed": consumed,
                "total": total,
                "job_from": job_from.to_position("created") if job_from else None,
            }
            if high is not None:
                entries.update(high.to_position("created"))
            remaining = max(total - consumed, 0) if total is not None else None
            return Batch(items, entries, requests=self._spent(), remaining=remaining)

        while True:
            try:
                page = bulk.fetch_page(
                    self.client,
                    target.sobject,
                    job_id,
                    locator=locator,
                    max_records=self._bulk_page_size,
                )
            except (SalesforceRecordError, SalesforceFatalError, SalesforceConfigurationError) as e:
                # A saved job that is gone (deleted, expired after 7 days, another API
                # version): start a new one from the last committed row.
                if not resumed or e.status not in (400, 404, 409):
                    raise
                resumed = False
                job_from, locator, offset, consumed = high, None, 0, 0
                info = self._start_job(target, partial(build, job_from))
                job_id, total = info.id, info.records
                continue
            resumed = False
            chunk: list[Record] = []
            row_number = offset
            for row in itertools.islice(bulk.iter_rows(page.text), offset, None):
                row_number += 1
                consumed += 1
                at = Cursor.of(row, "CreatedDate")
                if job_from is not None and at is not None and at <= job_from:
                    continue
                chunk.append(row)
                if at is not None and (high is None or at > high):
                    high = at
                if len(chunk) >= rows_per_batch:
                    yield batch(target.convert(chunk), locator, row_number)
                    chunk = []
            last = page.next_locator is None
            if chunk or last:
                ended = batch(target.convert(chunk), page.next_locator, 0)
                if last:
                    assert ended.position is not None
                    ended.position["complete"] = True
                yield ended
            if last:
                return
            locator, offset = page.next_locator, 0


def _read_ahead(
    pages: Iterator[QueryPage], client: SalesforceClient
) -> Iterator[tuple[QueryPage, int]]:
    """``pages``, each next one requested while the caller converts the one before, with the
    client's request count once it arrived (so each batch reports the requests it took).

    A query's pages come one after the other (each names the next), so without this the
    CRM waits while a page is converted and the converter waits while the CRM prepares the
    next. One page ahead at most; an error arrives where its page would have.
    """

    def fetch() -> tuple[QueryPage, int] | None:
        page = next(pages, None)
        return None if page is None else (page, client.requests_made)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="salesforce-read-ahead") as pool:
        upcoming = pool.submit(fetch)
        try:
            while (fetched := upcoming.result()) is not None:
                upcoming = pool.submit(fetch)
                yield fetched
        finally:
            wait([upcoming])  # a generator cannot be closed while another thread runs it
            close = getattr(pages, "close", None)
            if close is not None:
                close()


def open_connector(config: SalesforceConnectionConfig) -> SalesforceConnector:
    """The plugin's ``open``: a connector for one configured Salesforce connection."""
    return SalesforceConnector(config)
