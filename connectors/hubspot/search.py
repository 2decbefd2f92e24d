"""Every record modified since a moment, through HubSpot's search, around its limits.

HubSpot's search (``POST /crm/v3/objects/{type}/search``, facts B3) returns at most 200
records per request and **refuses to page past 10,000 results** of one query (a 400, not a
truncation; https://developers.hubspot.com/docs/api/crm/search#limitations). Its ``after`` is
an offset, which has a second problem: a record modified while we page moves to the end of
the ascending order, every later record shifts one place forward, and the next offset skips
one of them — possibly for good, once the cursor has moved past the lookback.

So :class:`ModifiedSince` never follows ``after``. Every page is a fresh query on the
modification time (keyset paging):

* ``hs_lastmodifieddate GTE t`` sorted ascending, where ``t`` is the last modification time
  seen; records at exactly ``t`` that were already returned are dropped by id (closed start,
  de-duplicated at the boundary). No query ever reaches offset 200, let alone 10,000;
* when a whole page shares the lower bound ``t`` (a bulk edit or import touched at least a
  page of records in the same millisecond), the next queries **slice that timestamp** by id:
  ``hs_lastmodifieddate EQ t AND hs_object_id GT <last id>`` sorted by ``hs_object_id`` —
  exact whatever order HubSpot gives ties, and any block size (also more than 10,000) — and
  then go on with ``hs_lastmodifieddate GT t``.

Each query costs one request of the search allowance (5 per second, paced by the client).
Archived records never match a search, and the search index lags writes by a few seconds:
the connector's lookback covers the lag, the archived listing covers deletes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.hubspot.errors import HubSpotFatalError
from connectors.hubspot.wire import CrmObject, SearchPage, parse_datetime

__all__ = [
    "MAX_PAGE_SIZE",
    "RESULT_CAP",
    "ModifiedSince",
    "SearchFunction",
    "SearchStep",
    "modified_ms",
]

#: Results per search request (facts B3).
MAX_PAGE_SIZE = 200
#: Results one search query can page through; keyset paging never gets near it (facts B3).
RESULT_CAP = 10_000
OBJECT_ID = "hs_object_id"

SearchFunction = Callable[[str, Mapping[str, Any]], SearchPage]
"""``client.search``: object type and request body to one page of results."""


def modified_ms(obj: CrmObject, modified_property: str = "hs_lastmodifieddate") -> int | None:
    """The record's modification time in epoch ms (the property, else ``updatedAt``)."""
    try:
        moment = parse_datetime(obj.properties.get(modified_property))
    except (ValueError, TypeError):
        moment = None
    moment = moment or obj.updated_at
    return None if moment is None else int(moment.timestamp() * 1000)


@dataclass
class SearchStep:
    """One search request's worth of new records, and the cursor after them."""

    results: list[CrmObject]
    #: Modification time (ms) and id of the last record read so far (``None``: none yet).
    modified_ms: int | None
    last_id: str | None
    #: True on the last step: nothing more matched.
    done: bool = False
    #: Records still to come in this read, as HubSpot counted them.
    remaining: int | None = None


@dataclass
class _Boundary:
    """Ids already returned at the current lower bound (dropped when the bound repeats)."""

    ms: int | None = None
    ids: set[str] = field(default_factory=set)

    def seen(self, ms: int | None, object_id: str) -> bool:
        return ms is not None and ms == self.ms and object_id in self.ids

    def add(self, ms: int | None, object_id: str) -> None:
        if ms is None:
            return
        if self.ms is None or ms > self.ms:
            self.ms, self.ids = ms, set()
        if ms == self.ms:
            self.ids.add(object_id)


class ModifiedSince:
    """Walks every record of ``object_type`` modified at or after ``since_ms``, oldest first.

    Iterating yields one :class:`SearchStep` per request. Stop at any step and start a new
    walk from its ``modified_ms`` to resume (records at that millisecond come again; callers
    upsert by id).
    """

    def __init__(
        self,
        search: SearchFunction,
        object_type: str,
        *,
        since_ms: int,
        properties: Sequence[str],
        page_size: int = MAX_PAGE_SIZE,
        modified_property: str = "hs_lastmodifieddate",
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self._search = search
        self._object_type = object_type
        self._since_ms = since_ms
        self._properties = list(properties)
        self._page_size = page_size
        self._modified = modified_property

    def __iter__(self) -> Iterator[SearchStep]:
        lower, operator = self._since_ms, "GTE"
        boundary = _Boundary()
        last_ms: int | None = None
        last_id: str | None = None
        while True:
            page = self._search(self._object_type, self._window_body(lower, operator))
            fresh: list[CrmObject] = []
            page_ms: list[int | None] = []
            for obj in page.results:
                ms = modified_ms(obj, self._modified)
                page_ms.append(ms)
                if boundary.seen(ms, obj.id):
                    continue
                fresh.append(obj)
            for obj, ms in zip(page.results, page_ms, strict=True):
                boundary.add(ms, obj.id)
                if ms is not None and (last_ms is None or ms >= last_ms):
                    last_ms, last_id = ms, obj.id
            full = len(page.results) >= self._page_size and page.next_after is not None
            remaining = max(0, page.total - len(page.results)) if full else 0
            if not full:
                yield SearchStep(fresh, last_ms, last_id, done=True, remaining=0)
                return
            known = [ms for ms in page_ms if ms is not None]
            if not known:
                # No record carries a readable modification time: nothing to move the bound
                # by. HubSpot always sends it; refuse to loop forever on a broken answer.
                raise HubSpotFatalError(
                    f"HubSpot search of {self._object_type}: results without modification times"
                )
            top = max(known)
            yield SearchStep(fresh, last_ms, last_id, remaining=remaining)
            if top > lower:
                lower, operator = top, "GTE"
                continue
            # A whole page at the lower bound: slice that millisecond by id, then go past it.
            for step in self._slice(lower, boundary):
                last_ms, last_id = lower, step.last_id or last_id
                yield SearchStep(step.results, last_ms, last_id, remaining=step.remaining)
            operator = "GT"

    def _slice(self, at_ms: int, boundary: _Boundary) -> Iterator[SearchStep]:
        """Every record modified at exactly ``at_ms``, by ascending id (keyset on the id)."""
        after_id: str | None = None
        while True:
            page = self._search(self._object_type, self._slice_body(at_ms, after_id))
            fresh = [obj for obj in page.results if not boundary.seen(at_ms, obj.id)]
            if page.results:
                after_id = page.results[-1].id
            full = len(page.results) >= self._page_size and page.next_after is not None
            remaining = max(0, page.total - len(page.results))
            yield SearchStep(fresh, at_ms, after_id, remaining=remaining)
            if not full:
                return

    # -- request bodies ----------------------------------------------------------------------

    def _window_body(self, lower: int, operator: str) -> dict[str, Any]:
        return {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": self._modified, "operator": operator, "value": str(lower)}
                    ]
                }
            ],
            "sorts": [{"propertyName": self._modified, "direction": "ASCENDING"}],
            "properties": self._properties,
            "limit": self._page_size,
        }

    def _slice_body(self, at_ms: int, after_id: str | None) -> dict[str, Any]:
        filters: list[dict[str, str]] = [
            {"propertyName": self._modified, "operator": "EQ", "value": str(at_ms)}
        ]
        if after_id is not None:
            filters.append({"propertyName": OBJECT_ID, "operator": "GT", "value": after_id})
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": OBJECT_ID, "direction": "ASCENDING"}],
            "properties": self._properties,
            "limit": self._page_size,
        }
