"""Usage activities as HubSpot notes (or tasks) on the deal and its company.

One note per usage event (``writeback.activity: task`` writes completed tasks instead):
``hs_timestamp`` places it on the timeline when the rep used the content, the body says
what, who and how long, ``hubspot_owner_id`` is the rep's owner (or the fallback the engine
chose), and it is associated with the deal (type 214, task 216) and the deal's company
(190, task 192) inline, in the same create (facts B5, B6). Batches of 100 go through
``POST /crm/v3/objects/{notes|tasks}/batch/create`` (facts B2).

**Idempotency.** HubSpot has no idempotency key on create (facts B6). Where the portal has
the unique-value property ``writeback.event_id_property`` (checked once through the
properties API), each note carries the marker in it, so HubSpot itself refuses a second
note for the same event: a per-input ``CONFLICT`` names the existing note, which counts as
written. Lookups read by that property (``batch/read`` with ``idProperty``, 100 a request;
reads are consistent, no search lag).

Batch *upsert* by ``idProperty`` would be the other way, but upsert inputs carry no
associations (the library's ``SimplePublicObjectBatchInputUpsert`` has none): every batch
would cost two more association requests, and a crash between them would leave notes on no
deal. Create-with-a-unique-property keeps one request per 100 events and the note and its
associations one atomic write.

Without the property, the marker goes into the body as one alphanumeric word
(``stagelink event: sl1b4e…``; token search splits words at punctuation) and lookups search
``CONTAINS_TOKEN`` for it, five markers a search (one filter group each, facts B3). Search
lags behind writes, so :attr:`HubSpotActivityWriter.lookup_settle` tells the engine to wait
that long before trusting a "not found".

**Refusals.** A create whose association names a deal that no longer exists is refused as a
whole (400) and nothing is applied; the batch is split in halves until the refused input is
alone, which then fails with HubSpot's message — unless the refusal names the company (a
company deleted since the last sync: the note goes on the deal alone) or the owner (one
deactivated since: the note is written without an owner, and says so). A half refused as a
whole (budget spent, token refused) only marks its own inputs ``retry``: the other half may
be written already, so the refusal is never raised for the batch. 429s are resent
after the pacer's wait (nothing was applied); other failures of the request are raised and
leave the batch ``unknown``.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.core.activities import (
    Activity,
    FoundActivity,
    WriteResult,
    WriteStatus,
    clip,
    marker_token,
)
from connectors.core.errors import BudgetExhaustedError, ConfigurationError
from connectors.hubspot.client import BATCH_MAX, HubSpotClient
from connectors.hubspot.config import HubSpotWriteback
from connectors.hubspot.errors import (
    ErrorBody,
    HubSpotFatalError,
    HubSpotRecordError,
    RateLimitedError,
)
from connectors.hubspot.wire import CrmObject

__all__ = ["ASSOCIATION_TYPES", "SEARCH_SETTLE", "HubSpotActivityWriter"]

log = logging.getLogger(__name__)

#: HubSpot-defined association type ids (facts B5): (to deal, to company).
ASSOCIATION_TYPES = {"notes": (214, 190), "tasks": (216, 192)}
#: How long search may take to see a new note (HubSpot documents "a few seconds").
SEARCH_SETTLE = timedelta(seconds=15)
SUBJECT_MAX = 255
BODY_MAX = 65_536  # hs_note_body (facts B6)
SEARCH_GROUPS = 5  # filter groups per search request (facts B3)
_RATE_LIMIT_RESENDS = 3
_MARKER_LABEL = "stagelink event"


@dataclass(frozen=True)
class _Prepared:
    activity: Activity
    properties: dict[str, str]
    associations: list[dict[str, Any]]

    @property
    def with_company(self) -> bool:
        """True while the company association is still part of the input."""
        return len(self.associations) > 1

    def payload(self) -> dict[str, Any]:
        # objectWriteTraceId comes back in per-input errors: it names the failed input.
        return {
            "properties": self.properties,
            "associations": self.associations,
            "objectWriteTraceId": self.activity.marker,
        }


class HubSpotActivityWriter:
    """Writes and finds usage activities for one HubSpot connection."""

    def __init__(self, client: HubSpotClient, settings: HubSpotWriteback) -> None:
        self.client = client
        self.settings = settings
        self.object_type = "tasks" if settings.activity == "task" else "notes"
        self.body_property = "hs_task_body" if self.object_type == "tasks" else "hs_note_body"
        self.lookup_settle = SEARCH_SETTLE
        self._unique: bool | None = None

    # -- the portal ---------------------------------------------------------------------------

    @property
    def event_id_property(self) -> str | None:
        """The unique property holding the marker, when the portal has it (checked once)."""
        name = self.settings.event_id_property
        if name is None:
            return None
        if self._unique is None:
            found = {p.name: p for p in self.client.properties(self.object_type)}
            prop = found.get(name)
            self._unique = prop is not None and prop.has_unique_value
            if not self._unique:
                state = "is not a unique-value property" if prop else "does not exist"
                log.warning(
                    "hubspot %s: %s.%s %s; write-back finds notes by a marker in the body "
                    "(create it as a unique single-line text property for exact lookups)",
                    self.client.config.name,
                    self.object_type,
                    name,
                    state,
                )
        return name if self._unique else None

    def lookup_delay(self) -> timedelta:
        """Zero with the unique property (reads); the search lag without it."""
        return timedelta(0) if self.event_id_property else self.lookup_settle

    # -- what is written ----------------------------------------------------------------------

    def prepare(self, activity: Activity) -> _Prepared:
        """Properties and inline associations of the note or task for ``activity``."""
        unique = self.event_id_property
        properties: dict[str, str] = {
            "hs_timestamp": _iso(activity.occurred_at),
            self.body_property: self.body(activity),
        }
        if self.object_type == "tasks":
            properties.update(
                hs_task_subject=activity.subject(SUBJECT_MAX),
                hs_task_status="COMPLETED",
                hs_task_type="TODO",
            )
        if activity.owner_crm_id:
            properties["hubspot_owner_id"] = activity.owner_crm_id
        if unique:
            properties[unique] = activity.marker
        to_deal, to_company = ASSOCIATION_TYPES[self.object_type]
        associations = [_association(activity.opportunity_crm_id, to_deal)]
        if activity.account_crm_id:
            associations.append(_association(activity.account_crm_id, to_company))
        return _Prepared(activity, properties, associations)

    def body(self, activity: Activity) -> str:
        """The HTML body: subject in bold, then one paragraph per detail, marker last."""
        paragraphs = [f"<p><strong>{html.escape(activity.subject(SUBJECT_MAX))}</strong></p>"]
        for label, value in activity.details():
            if label == _MARKER_LABEL:
                value = marker_token(value)
            elif label == "Link":
                link = html.escape(value, quote=True)
                paragraphs.append(f'<p>{label}: <a href="{link}">{link}</a></p>')
                continue
            paragraphs.append(f"<p>{html.escape(label)}: {html.escape(value)}</p>")
        text = "".join(paragraphs)
        if len(text) > BODY_MAX:  # only an absurd title gets here; keep the marker
            marker = paragraphs[-1]
            text = clip("".join(paragraphs[:-1]), BODY_MAX - len(marker)) + marker
        return text

    # -- writing ------------------------------------------------------------------------------

    def write(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """Create ``activities`` (100 a request); one result each."""
        prepared = [self.prepare(a) for a in activities]
        results: list[WriteResult] = []
        for start in range(0, len(prepared), BATCH_MAX):
            results.extend(self._create(prepared[start : start + BATCH_MAX]))
        return results

    def _create(self, items: list[_Prepared]) -> list[WriteResult]:
        try:
            answer = self._send(items)
        except (HubSpotRecordError, HubSpotFatalError) as exc:
            # A 4xx for the request: nothing was applied. Find the refused input by halving.
            if len(items) > 1:
                middle = len(items) // 2
                return self._half(items[:middle]) + self._half(items[middle:])
            return [self._alone_refused(items[0], exc)]
        return self._judge(items, answer)

    def _half(self, items: list[_Prepared]) -> list[WriteResult]:
        """One half of a refused batch. The other half may be written by now, so a refusal
        of this half as a whole (budget spent, token refused) must not be raised: the
        engine would take the whole batch for unsent and create the written notes again.
        Only these inputs wait for a later pass. Anything else (may have been applied)
        still raises, and the engine looks every input up before resending."""
        try:
            return self._create(items)
        except (BudgetExhaustedError, ConfigurationError) as exc:
            return [
                WriteResult(i.activity.marker, WriteStatus.RETRY, error=str(exc)) for i in items
            ]

    def _alone_refused(
        self, item: _Prepared, exc: HubSpotRecordError | HubSpotFatalError
    ) -> WriteResult:
        marker = item.activity.marker
        said = exc.message.lower()
        if exc.status == 409 and self.event_id_property:
            # The portal refused a duplicate of the unique marker: it is there already.
            return WriteResult(marker, WriteStatus.UNKNOWN, error=exc.message)
        if item.with_company and "company" in said:
            # A company deleted since the last sync must not keep the note off the deal.
            return self._create([replace(item, associations=item.associations[:1])])[0]
        owner = item.activity.owner_crm_id
        if owner and "owner" in said:
            # An owner deactivated since the last sync: leave the note without one.
            reason = f"HubSpot refused the owner {owner}; left without an owner."
            retried = self.prepare(item.activity.without_owner(reason))
            if not item.with_company:
                retried = replace(retried, associations=retried.associations[:1])
            return self._create([retried])[0]
        return WriteResult(marker, WriteStatus.FAILED, error=exc.message)

    def _send(self, items: list[_Prepared]) -> dict[str, Any]:
        for attempt in range(_RATE_LIMIT_RESENDS + 1):
            try:
                return self.client.batch_create(self.object_type, [i.payload() for i in items])
            except RateLimitedError:
                # Nothing was applied; the client holds the pacer for the wait it was told.
                if attempt == _RATE_LIMIT_RESENDS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _judge(self, items: list[_Prepared], answer: Mapping[str, Any]) -> list[WriteResult]:
        by_marker = {i.activity.marker: i for i in items}
        outcome: dict[str, WriteResult] = {}
        for raw in answer.get("results") or []:
            try:
                created = CrmObject.from_json(raw)
            except ValueError:
                continue
            marker = self._marker_of(created, by_marker)
            if marker is not None:
                outcome[marker] = WriteResult(
                    marker, WriteStatus.WRITTEN, created.id, self.object_type
                )
        for error in answer.get("errors") or []:
            if not isinstance(error, dict):
                continue
            marker = _errored_marker(error, items)
            if marker is None or marker in outcome:
                continue
            outcome[marker] = self._error_result(marker, error)
        return [
            outcome.get(
                marker,
                WriteResult(
                    marker, WriteStatus.UNKNOWN, error="HubSpot's answer did not mention it"
                ),
            )
            for marker in by_marker
        ]

    def _error_result(self, marker: str, error: Mapping[str, Any]) -> WriteResult:
        parsed = ErrorBody.from_json(error)
        text = f"{parsed.category or 'error'} — {parsed.message}".strip(" —")
        if parsed.category == "CONFLICT":
            existing = _context(error, "id")
            if self.event_id_property and existing:
                return WriteResult(marker, WriteStatus.WRITTEN, existing[0], self.object_type)
            return WriteResult(marker, WriteStatus.UNKNOWN, error=text)
        if parsed.category in ("VALIDATION_ERROR", "OBJECT_NOT_FOUND", "INVALID_OBJECT"):
            return WriteResult(marker, WriteStatus.FAILED, error=text)
        return WriteResult(marker, WriteStatus.RETRY, error=text)

    def _marker_of(self, created: CrmObject, by_marker: Mapping[str, _Prepared]) -> str | None:
        unique = self.event_id_property
        if unique:
            value = created.properties.get(unique)
            return value if value in by_marker else None
        body = created.properties.get(self.body_property) or ""
        return next((m for m in by_marker if marker_token(m) in body), None)

    # -- finding ------------------------------------------------------------------------------

    def find(self, activities: Sequence[Activity]) -> list[FoundActivity]:
        """The activities HubSpot already holds: read by the unique property, else search."""
        markers = list(dict.fromkeys(a.marker for a in activities))
        unique = self.event_id_property
        if unique:
            return list(self._read_by_property(unique, markers))
        return list(self._search_tokens(markers))

    def _read_by_property(self, unique: str, markers: list[str]) -> Iterator[FoundActivity]:
        for start in range(0, len(markers), BATCH_MAX):
            chunk = markers[start : start + BATCH_MAX]
            read = self.client.batch_read(
                self.object_type, chunk, properties=[unique], id_property=unique
            )
            for found in read.results:
                value = found.properties.get(unique)
                if value in chunk:
                    yield FoundActivity(value, found.id, self.object_type)

    def _search_tokens(self, markers: list[str]) -> Iterator[FoundActivity]:
        for start in range(0, len(markers), SEARCH_GROUPS):
            chunk = markers[start : start + SEARCH_GROUPS]
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": self.body_property,
                                "operator": "CONTAINS_TOKEN",
                                "value": marker_token(marker),
                            }
                        ]
                    }
                    for marker in chunk
                ],
                "properties": [self.body_property],
                "limit": 100,
            }
            page = self.client.search(self.object_type, body)
            for found in page.results:
                text = found.properties.get(self.body_property) or ""
                for marker in chunk:
                    if marker_token(marker) in text:
                        yield FoundActivity(marker, found.id, self.object_type)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": str(to_id)},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context(error: Mapping[str, Any], key: str) -> list[str]:
    context = error.get("context")
    values = context.get(key) if isinstance(context, dict) else None
    return [str(v) for v in values] if isinstance(values, list) else []


def _errored_marker(error: Mapping[str, Any], items: Sequence[_Prepared]) -> str | None:
    """Which input a per-input error is about: its trace id, else its index."""
    known = {i.activity.marker for i in items}
    for trace in _context(error, "objectWriteTraceId"):
        if trace in known:
            return trace
    for index in _context(error, "index"):
        if index.isdigit() and int(index) < len(items):
            return items[int(index)].activity.marker
    return None
