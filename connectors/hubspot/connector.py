"""The HubSpot connector: owners, deal pipelines, companies and deals as stagelink streams.

Streams, in the order the engine reads them: ``owners``, ``stages`` (pipelines and their
stages), ``accounts`` (companies), ``opportunities`` (deals, with their primary company and
the stage history of the ``hs_*date_entered_*`` properties).

How companies and deals are read (positions are the small dicts the engine stores):

* **full** (and the first sync): the list endpoints, 100 records a request at the
  ten-second limit — about 1,900 records/s at 190 requests/10 s, twice what search allows
  (facts, throughput ceilings). Position ``{"phase": "list", "after": cursor,
  "started_ms": t0}`` after each page, so a killed read resumes at the same page; at the end
  ``{"modified_ms": t0}`` — the time the read *started*, not the newest modification seen,
  so records changed while the list was read are picked up by the next incremental run.
* **incremental**: search on ``hs_lastmodifieddate`` from ``modified_ms`` minus the
  configured lookback (which covers the search index lag), through
  :class:`~connectors.hubspot.search.ModifiedSince` (it owns the 10,000-result cap). Deal
  pages get their companies from one v4 association batch read per page.
* **deletes**: archiving changes no modification date and search never returns archived
  records, so archived deals/companies are listed (``archived=true``) and yielded as
  :class:`~connectors.core.records.Deletion` — on every full read, and on an incremental read
  when the number of live records does not add up (one search count per run: live now must
  equal live at the last count plus the records created since) or when
  ``archived_checked_ms`` is older than ``sync.archive_check_interval`` (the safety net).
* **backfill**: the list endpoints, keeping records created in ``since``..``until``.

An incremental run that finds nothing costs two searches per object stream (the changes and
the live count; deals add one association read when the lookback window holds records), the
owners two and the pipelines one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.core.activities import Activity, FoundActivity, WriteResult
from connectors.core.connector import Batch, Connector, ReadMode, ReadRequest, StreamInfo
from connectors.core.errors import ConfigurationError
from connectors.core.probe import ApiBudget
from connectors.core.records import (
    BadRecord,
    Deletion,
    Item,
    ObjectType,
)
from connectors.core.suggest import did_you_mean
from connectors.hubspot import convert
from connectors.hubspot.client import BATCH_MAX, LIST_LIMIT_MAX, HubSpotClient
from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.hubspot.errors import HubSpotTransientError, UnknownPropertyError
from connectors.hubspot.search import MAX_PAGE_SIZE, ModifiedSince
from connectors.hubspot.wire import CrmObject, parse_datetime
from connectors.hubspot.writeback import HubSpotActivityWriter

__all__ = ["STREAMS", "HubSpotConnector", "open_connector"]

Position = dict[str, Any]
#: The live-record count an incremental read compares with to notice archived records.
_COUNT_KEYS = ("live_total", "counted_ms")

STREAMS: tuple[StreamInfo, ...] = (
    StreamInfo("owners", "HubSpot owners (archived ones as inactive)"),
    StreamInfo("stages", "deal pipelines and their stages"),
    StreamInfo("accounts", "companies"),
    StreamInfo("opportunities", "deals with their primary company and stage history"),
)


@dataclass(frozen=True)
class _ObjectStream:
    """A stream of CRM objects read through the list, search and archived endpoints."""

    name: str
    hubspot_type: str
    object_type: ObjectType


_ACCOUNTS = _ObjectStream("accounts", "companies", ObjectType.ACCOUNT)
_OPPORTUNITIES = _ObjectStream("opportunities", "deals", ObjectType.OPPORTUNITY)
_OBJECT_STREAMS = {s.name: s for s in (_ACCOUNTS, _OPPORTUNITIES)}
_BY_OBJECT_TYPE = {s.object_type: s for s in (_ACCOUNTS, _OPPORTUNITIES)}


def open_connector(config: HubSpotConnectionConfig) -> HubSpotConnector:
    """The plugin's ``open``: a connector for ``config`` (nothing is sent until a read)."""
    return HubSpotConnector(config)


class HubSpotConnector(Connector):
    """One HubSpot portal as stagelink streams. See the module docstring for the reads."""

    kind = "hubspot"

    def __init__(
        self,
        config: HubSpotConnectionConfig,
        *,
        client: HubSpotClient | None = None,
        clock: Callable[[], float] = time.time,
        search_page_size: int = MAX_PAGE_SIZE,
        list_page_size: int = LIST_LIMIT_MAX,
    ) -> None:
        self.config = config
        self.client = client or HubSpotClient(config)
        self._clock = clock
        self._search_page_size = search_page_size
        self._list_page_size = list_page_size
        self._catalog: convert.StageCatalog | None = None
        # Pipelines are read once per read (the stages stream refreshes them); a deal naming
        # a stage we do not know refreshes them once more, in case it was added since.
        self._catalog_refreshed = False
        self._properties_checked: set[str] = set()
        self.activity_writer = HubSpotActivityWriter(self.client, config.writeback)

    # -- the contract --------------------------------------------------------------------

    def streams(self) -> Sequence[StreamInfo]:
        """``owners``, ``stages``, ``accounts``, ``opportunities``."""
        return STREAMS

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        """Batches of one stream (see the module docstring for modes and positions)."""
        self._catalog_refreshed = False
        if request.stream == "owners":
            yield self._read_owners()
        elif request.stream == "stages":
            yield self._read_stages()
        elif request.stream in _OBJECT_STREAMS:
            yield from self._read_objects(_OBJECT_STREAMS[request.stream], request)
        else:
            known = ", ".join(s.name for s in STREAMS)
            raise ConfigurationError(f"HubSpot has no stream {request.stream!r} (streams: {known})")

    def estimate(self, request: ReadRequest) -> int | None:
        """Records a read of ``accounts`` or ``opportunities`` would return (one search)."""
        stream = _OBJECT_STREAMS.get(request.stream)
        if stream is None:
            return None
        filters: list[dict[str, str]] = []
        position = request.position or {}
        if request.mode is ReadMode.BACKFILL:
            if request.since is not None:
                filters.append(_filter("createdate", "GTE", _ms(request.since)))
            if request.until is not None:
                filters.append(_filter("createdate", "LT", _ms(request.until)))
        elif request.mode is ReadMode.INCREMENTAL and _is_incremental(position):
            filters.append(_filter("hs_lastmodifieddate", "GTE", self._since_ms(position)))
        body: dict[str, Any] = {"limit": 1, "properties": ["hs_object_id"]}
        if filters:
            body["filterGroups"] = [{"filters": filters}]
        return self.client.search(stream.hubspot_type, body).total

    def read_ids(self, object_type: ObjectType, crm_ids: Sequence[str]) -> Batch:
        """Deals or companies by id (batch read, 100 a request, plus deal associations);
        ids HubSpot does not find (deleted or archived) come back as deletions."""
        stream = _BY_OBJECT_TYPE.get(object_type)
        if stream is None:
            raise NotImplementedError(f"HubSpot connector cannot read {object_type} records by id")
        self._catalog_refreshed = False
        before = self.client.requests_sent
        ids = list(dict.fromkeys(str(i) for i in crm_ids))
        items: list[Item] = []
        for start in range(0, len(ids), BATCH_MAX):
            chunk = ids[start : start + BATCH_MAX]
            found = self._batch_read(stream, chunk)
            items.extend(self._convert(stream, found))
            present = {obj.id for obj in found}
            items.extend(Deletion(object_type, i) for i in chunk if i not in present)
        return Batch(items, position=None, requests=self.client.requests_sent - before)

    def write_activities(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """Notes (or tasks) on the deal and its company; see ``writeback.py``."""
        return self.activity_writer.write(activities)

    def find_activities(
        self, activities: Sequence[Activity], *, sent_after: datetime | None = None
    ) -> list[FoundActivity]:
        """Notes (or tasks) HubSpot already holds, by the unique property or a body token."""
        return self.activity_writer.find(activities)

    def activity_batch_size(self) -> int:
        """100: one batch create."""
        return BATCH_MAX

    def activity_lookup_delay(self) -> timedelta:
        """The search lag when notes must be found by a body token, else zero."""
        return self.activity_writer.lookup_delay()

    def api_budget(self) -> list[ApiBudget]:
        """HubSpot's daily and ten-second budgets from the latest rate-limit headers."""
        return self.client.api_budget()

    def requests_made(self) -> int:
        """Requests this connector's client has sent to HubSpot."""
        return self.client.requests_sent

    def close(self) -> None:
        """Release the client's connection pools."""
        self.client.close()

    def __enter__(self) -> HubSpotConnector:
        return self

    # -- metadata streams ----------------------------------------------------------------

    def _read_owners(self) -> Batch:
        before = self.client.requests_sent
        owners = [*self.client.owners(), *self.client.owners(archived=True)]
        items: list[Item] = [convert.owner_to_record(o) for o in owners]
        return Batch(items, done=True, requests=self.client.requests_sent - before)

    def _read_stages(self) -> Batch:
        before = self.client.requests_sent
        catalog = self._refresh_catalog()
        items: list[Item] = [r for p in catalog.pipelines for r in convert.pipeline_to_records(p)]
        return Batch(items, done=True, requests=self.client.requests_sent - before)

    def _refresh_catalog(self) -> convert.StageCatalog:
        self._catalog = convert.StageCatalog(self.client.pipelines("deals"))
        self._catalog_refreshed = True
        return self._catalog

    def _stage_catalog(self) -> convert.StageCatalog:
        return self._catalog if self._catalog is not None else self._refresh_catalog()

    # -- object streams ------------------------------------------------------------------

    def _read_objects(self, stream: _ObjectStream, request: ReadRequest) -> Iterator[Batch]:
        self._check_extra_properties(stream)
        position = dict(request.position or {})
        phase = position.get("phase")
        if phase == "list":
            yield from self._list(stream, request, position)
        elif phase == "archived":
            yield from self._archived(stream, position)
        elif request.mode is ReadMode.INCREMENTAL and _is_incremental(position):
            yield from self._incremental(stream, position)
        else:
            # FULL, BACKFILL, or a first sync: the list endpoint from the start.
            started = self._now_ms()
            yield from self._list(stream, request, {"phase": "list", "started_ms": started})

    def _list(
        self, stream: _ObjectStream, request: ReadRequest, position: Position
    ) -> Iterator[Batch]:
        """Every live record through the list endpoint, one batch per page."""
        started = int(position.get("started_ms") or self._now_ms())
        after: str | None = position.get("after")
        backfill = request.mode is ReadMode.BACKFILL
        before = self.client.requests_sent
        if not backfill and after is None and "live_total" not in position:
            # Counted when the read starts: the next incremental compares with it.
            position = {**position, "live_total": self._live_total(stream), "counted_ms": started}
        while True:
            page = self.client.get_page(
                stream.hubspot_type,
                properties=self._properties(stream),
                after=after,
                limit=self._list_page_size,
                associations=["companies"] if stream is _OPPORTUNITIES else (),
            )
            records = page.results
            if backfill:
                records = [o for o in records if _created_within(o, request.since, request.until)]
            items = self._convert(stream, records)
            after = page.next_after
            requests = self.client.requests_sent - before
            counted = {k: position[k] for k in _COUNT_KEYS if k in position}
            if after is not None:
                next_position = {"phase": "list", "after": after, "started_ms": started, **counted}
                yield Batch(items, position=next_position, requests=requests)
                before = self.client.requests_sent
                continue
            final: Position = {"modified_ms": started, **counted}
            if backfill:
                yield Batch(items, position=final, done=True, requests=requests)
                return
            # A full read always reconciles archived records (the engine cannot see them).
            archived = {**final, "phase": "archived", "archive_started_ms": self._now_ms()}
            yield Batch(items, position=archived, requests=requests)
            yield from self._archived(stream, archived)
            return

    def _incremental(self, stream: _ObjectStream, position: Position) -> Iterator[Batch]:
        """What changed since the position (minus the lookback), then archived if due."""
        before = self.client.requests_sent
        since = self._since_ms(position)
        cursor_ms = int(position["modified_ms"])
        last_id = position.get("last_id")
        checked = position.get("archived_checked_ms")
        interval_ms = self.config.sync.archive_check_interval.total_seconds() * 1000
        now = self._now_ms()
        archive_due = checked is None or now - int(checked) >= interval_ms
        # Archiving changes no modification date, so search cannot see it; but it lowers the
        # number of live records. One count per run (live now vs live last time plus the
        # records created since, which the search below returns) tells whether anything was
        # archived or restored; only then are the archived records listed.
        previous_total = position.get("live_total")
        previous_count_ms = position.get("counted_ms")
        live_total = self._live_total(stream)
        created = 0
        walk = ModifiedSince(
            self.client.search,
            stream.hubspot_type,
            since_ms=since,
            properties=self._properties(stream),
            page_size=self._search_page_size,
        )
        for step in walk:
            records = step.results
            if previous_count_ms is not None:
                created += sum(
                    1
                    for obj in records
                    if obj.created_at is not None
                    and int(previous_count_ms) < _ms(obj.created_at) <= now
                )
            if stream is _OPPORTUNITIES and records:
                records = self._with_companies(records)
            items = self._convert(stream, records)
            # The lookback re-reads older records: never move the cursor backwards.
            if step.modified_ms is not None and step.modified_ms >= cursor_ms:
                cursor_ms, last_id = step.modified_ms, step.last_id
            next_position: Position = {"modified_ms": cursor_ms}
            if last_id is not None:
                next_position["last_id"] = last_id
            if checked is not None:
                next_position["archived_checked_ms"] = checked
            requests = self.client.requests_sent - before
            if step.done:
                next_position.update(live_total=live_total, counted_ms=now)
                if previous_total is None or int(previous_total) + created != live_total:
                    archive_due = True
            else:
                # Mid-walk positions keep the last complete count: a resumed walk cannot
                # know what it counted before, and a mismatch only costs an archived check.
                for key in _COUNT_KEYS:
                    if key in position:
                        next_position[key] = position[key]
            if not step.done:
                yield Batch(items, next_position, requests=requests, remaining=step.remaining)
                # The walk's next search happens on resumption: count it with its batch.
                before = self.client.requests_sent
            elif not archive_due:
                yield Batch(items, next_position, done=True, requests=requests, remaining=0)
            else:
                archived = {**next_position, "phase": "archived", "archive_started_ms": now}
                if checked is not None:
                    # Records archived before the last check were reported then.
                    lookback = int(self.config.sync.lookback.total_seconds() * 1000)
                    archived["archived_since_ms"] = int(checked) - lookback
                yield Batch(items, archived, requests=requests, remaining=0)
                yield from self._archived(stream, archived)

    def _archived(self, stream: _ObjectStream, position: Position) -> Iterator[Batch]:
        """Archived records as deletions, through ``archived=true`` list pages."""
        after: str | None = position.get("after")
        since: int | None = position.get("archived_since_ms")
        final: Position = {
            key: position[key]
            for key in ("modified_ms", "last_id", *_COUNT_KEYS)
            if key in position
        }
        final["archived_checked_ms"] = int(position.get("archive_started_ms") or self._now_ms())
        while True:
            before = self.client.requests_sent
            page = self.client.get_page(
                stream.hubspot_type,
                properties=["hs_object_id"],
                after=after,
                limit=self._list_page_size,
                archived=True,
            )
            items: list[Item] = [
                Deletion(stream.object_type, obj.id, deleted_at=obj.archived_at)
                for obj in page.results
                if since is None or obj.archived_at is None or _ms(obj.archived_at) >= since
            ]
            after = page.next_after
            requests = self.client.requests_sent - before
            if after is None:
                yield Batch(items, final, done=True, requests=requests)
                return
            yield Batch(items, {**position, "after": after}, requests=requests)

    # -- helpers -------------------------------------------------------------------------

    def _properties(self, stream: _ObjectStream) -> list[str]:
        extra = self.config.extra_properties
        if stream is _OPPORTUNITIES:
            return convert.deal_properties(self._stage_catalog(), extra.deals)
        return convert.company_properties(extra.companies)

    def _batch_read(self, stream: _ObjectStream, ids: list[str]) -> list[CrmObject]:
        """Records by id; a transient per-record failure is retried once in a new batch."""
        wanted, found = ids, []
        for attempt in range(2):
            answer = self.client.batch_read(
                stream.hubspot_type, wanted, properties=self._properties(stream)
            )
            found.extend(answer.results)
            failed = [
                i
                for error in answer.errors
                if error.category != "OBJECT_NOT_FOUND"
                for i in (error.ids or wanted)
            ]
            present = {obj.id for obj in found}
            wanted = [i for i in wanted if i in set(failed) and i not in present]
            if not wanted:
                break
            if attempt == 1:
                raise HubSpotTransientError(
                    f"HubSpot batch read of {stream.hubspot_type}: "
                    f"{len(wanted)} record(s) failed twice ({', '.join(wanted[:5])})"
                )
        if stream is _OPPORTUNITIES and found:
            found = self._with_companies(found)
        return found

    def _with_companies(self, deals: list[CrmObject]) -> list[CrmObject]:
        """``deals`` with their companies from one v4 association batch read."""
        linked = self.client.associations("deals", "companies", [d.id for d in deals])
        return [d.with_associations("companies", tuple(linked.get(d.id, ()))) for d in deals]

    def _convert(self, stream: _ObjectStream, records: Sequence[CrmObject]) -> list[Item]:
        extra = self.config.extra_properties
        items: list[Item] = []
        if stream is _ACCOUNTS:
            items.extend(convert.company_to_account(o, extra.companies) for o in records)
            return items
        catalog = self._stage_catalog()
        if not self._catalog_refreshed and any(_unknown_stage(o, catalog) for o in records):
            catalog = self._refresh_catalog()
        for obj in records:
            converted = convert.deal_to_records(obj, catalog, extra.deals)
            if isinstance(converted, BadRecord):
                items.append(converted)
            else:
                items.extend(converted)
        return items

    def _check_extra_properties(self, stream: _ObjectStream) -> None:
        """Refuse to sync a configured extra property the portal does not have: HubSpot
        ignores unknown properties, so rules using it would silently never match. One
        request per stream and connector, only when extra properties are configured."""
        extra = self.config.extra_properties
        wanted = extra.deals if stream is _OPPORTUNITIES else extra.companies
        if not wanted or stream.name in self._properties_checked:
            return
        existing = {prop.name for prop in self.client.properties(stream.hubspot_type)}
        missing = [name for name in wanted if name not in existing]
        if missing:
            hints = [f"{name!r}{did_you_mean(name, sorted(existing))}" for name in missing]
            key = "deals" if stream is _OPPORTUNITIES else "companies"
            raise UnknownPropertyError(
                f"connection {self.config.name!r}: extra_properties.{key} names "
                f"{', '.join(hints)}, which {stream.hubspot_type} do not have in this portal; "
                "create the property in HubSpot or remove it from the configuration",
                property_names=missing,
            )
        self._properties_checked.add(stream.name)

    def _live_total(self, stream: _ObjectStream) -> int:
        """How many live (not archived) records of the stream's type HubSpot has."""
        body = {"limit": 1, "properties": ["hs_object_id"]}
        return self.client.search(stream.hubspot_type, body).total

    def _since_ms(self, position: Position) -> int:
        lookback = int(self.config.sync.lookback.total_seconds() * 1000)
        return max(0, int(position["modified_ms"]) - lookback)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _is_incremental(position: Position) -> bool:
    return position.get("modified_ms") is not None and position.get("phase") is None


def _unknown_stage(obj: CrmObject, catalog: convert.StageCatalog) -> bool:
    pipeline, stage = obj.properties.get("pipeline"), obj.properties.get("dealstage")
    return bool(pipeline and stage) and catalog.stage(str(pipeline), str(stage)) is None


def _created_within(obj: CrmObject, since: datetime | None, until: datetime | None) -> bool:
    """Whether a record was created in ``since``..``until`` (a backfill window)."""
    if since is None and until is None:
        return True
    try:
        moment = parse_datetime(obj.properties.get("createdate")) or obj.created_at
    except (ValueError, TypeError):
        moment = obj.created_at
    if moment is None:
        return True  # keep it: conversion reports what is wrong with it
    created = _ms(moment)
    if since is not None and created < _ms(since):
        return False
    return until is None or created < _ms(until)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _filter(name: str, operator: str, value: int) -> dict[str, str]:
    return {"propertyName": name, "operator": operator, "value": str(value)}
