"""Usage activities as Salesforce Tasks (or Events), through sObject Collections.

One Task per usage event: ``WhatId`` the opportunity, ``OwnerId`` the rep's user (or the
fallback the engine chose), ``Status = Completed``, ``ActivityDate`` the day it happened,
``Subject`` "Presented: <content title>" and the details in ``Description`` (facts A10).
With ``presented_as_event``, "presented" becomes a calendar ``Event`` lasting the
presentation, as enablement tools record meetings. ``daily_digest`` (one Task per
opportunity and day) is not implemented yet and is refused with a configuration error.

Two ways to stay idempotent, chosen by ``writeback.external_id_field``:

* **External id** (recommended): ``PATCH /composite/sobjects/{Task|Event}/{field}``
  upserts up to 200 records by the field holding the marker (facts A5, A8), so sending a
  record twice updates it instead of creating a second one. Lookups after a crash query the
  field (``WHERE field IN (...)``, 200 markers a query).
* **No external id**: ``POST /composite/sobjects`` (``allOrNone: false``) creates up to 200
  records and the marker goes into ``Description`` as ``stagelink event: sl-...``. SOQL
  cannot filter long text areas and a marker in ``Subject`` would clutter every timeline
  line a rep reads, so a lookup asks for the Tasks of the batch's opportunities created
  since the batch was sent (``WhatId IN (...) AND CreatedDate >= sent - 1 h``; both fields
  are filterable and indexed) and matches the full marker in their descriptions here. The
  hour of margin absorbs clock skew between this host and Salesforce.

Both endpoints answer one SaveResult per record in input order; each is judged on its own
(per-record ``statusCode`` , facts A8): success → written; a lock or a rolled-back
transaction → retry; a duplicate external id → unknown (look it up); a refused owner
(``INACTIVE_OWNER_OR_USER``, or ``INVALID_CROSS_REFERENCE_KEY`` on ``OwnerId``: deactivated
since the last sync) → sent once more without ``OwnerId``, so the API user gets it and the
description says why (that second request refused as a whole marks only its own records
``retry``: the first request's records are written, and must not be sent again); anything
else (a deleted opportunity is ``ENTITY_IS_DELETED``) → failed, with Salesforce's code and
message.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.core.activities import (
    Activity,
    FoundActivity,
    WriteResult,
    WriteStatus,
)
from connectors.core.errors import (
    BudgetExhaustedError,
    ConfigurationError,
    FatalError,
    RecordError,
)
from connectors.salesforce.client import SalesforceClient, soql
from connectors.salesforce.config import SalesforceWriteback
from connectors.salesforce.errors import SalesforceConfigurationError, SalesforceRecordError
from connectors.salesforce.http import DEFAULT_TIMEOUT
from connectors.salesforce.queries import ident, select_query, since_condition

__all__ = [
    "MAX_RECORDS",
    "SalesforceActivityWriter",
]

#: sObject Collections take at most 200 records per request (facts A8).
MAX_RECORDS = 200
SUBJECT_MAX = 255  # Task/Event Subject (facts A10)
DESCRIPTION_MAX = 32_000  # Task Description (facts A10)
#: Length of an Event whose usage event carries no duration.
DEFAULT_EVENT_MINUTES = 30
WRITE_TIMEOUT = DEFAULT_TIMEOUT
#: Lookups without an external id search back this far before the batch was sent.
CLOCK_MARGIN = timedelta(hours=1)

# Per-record codes that mean "not applied, try again later" (errorcodes.htm).
_RETRY_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVER_UNAVAILABLE",
        "QUERY_TIMEOUT",
    }
)
# The marker is already taken: the record exists (a resend raced a lookup); find it.
_UNKNOWN_CODES = frozenset({"DUPLICATE_EXTERNAL_ID", "DUPLICATE_VALUE"})


@dataclass(frozen=True)
class _Prepared:
    activity: Activity
    sobject: str
    record: dict[str, Any]


class SalesforceActivityWriter:
    """Writes and finds usage activities for one Salesforce connection."""

    def __init__(self, client: SalesforceClient, settings: SalesforceWriteback) -> None:
        self.client = client
        self.settings = settings
        self.external_id_field = (
            ident(settings.external_id_field) if settings.external_id_field else None
        )

    # -- what is written --------------------------------------------------------------------

    def sobject_for(self, activity: Activity) -> str:
        """``Event`` for a presentation when configured so, else ``Task``."""
        if self.settings.presented_as_event and activity.action == "presented":
            return "Event"
        return "Task"

    def record(self, activity: Activity) -> dict[str, Any]:
        """The Task or Event fields for ``activity`` (without ``attributes``)."""
        sobject = self.sobject_for(activity)
        fields: dict[str, Any] = {
            "Subject": activity.subject(SUBJECT_MAX),
            "Description": activity.text_body(DESCRIPTION_MAX),
            "WhatId": activity.opportunity_crm_id,
        }
        if activity.owner_crm_id:
            fields["OwnerId"] = activity.owner_crm_id
        if sobject == "Event":
            minutes = (
                max(1, math.ceil(activity.duration_seconds / 60))
                if activity.duration_seconds
                else DEFAULT_EVENT_MINUTES
            )
            start = activity.occurred_at.astimezone(UTC)
            fields.update(
                StartDateTime=_datetime(start),
                EndDateTime=_datetime(start + timedelta(minutes=minutes)),
                ActivityDateTime=_datetime(start),
                DurationInMinutes=minutes,
            )
        else:
            fields.update(
                Status="Completed",
                ActivityDate=activity.occurred_at.astimezone(UTC).date().isoformat(),
            )
        if self.external_id_field:
            fields[self.external_id_field] = activity.marker
        return fields

    # -- writing ----------------------------------------------------------------------------

    def write(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """Send ``activities`` (upsert or create, 200 a request); one result each.

        Records refused only for their owner (deactivated since the last sync) are sent
        once more without one: Salesforce then assigns them to the API user, and the
        description says so.
        """
        if self.settings.daily_digest:
            # Refuse rather than quietly write one Task per event when a digest was asked for.
            raise SalesforceConfigurationError(
                f"connection {self.client.connection!r}: writeback.daily_digest is not "
                "supported yet; remove it to write one Task per usage event",
                connection=self.client.connection,
            )
        by_marker = {r.marker: r for r in self._send_all(activities)}
        refused = [
            a.without_owner(
                f"Salesforce refused the owner {a.owner_crm_id} "
                f"({by_marker[a.marker].error}); assigned to the API user."
            )
            for a in activities
            if a.owner_crm_id and _owner_refused(by_marker[a.marker])
        ]
        if refused:
            by_marker.update((r.marker, r) for r in self._resend(refused))
        return [by_marker[a.marker] for a in activities]  # in the order given

    def _resend(self, activities: Sequence[Activity]) -> list[WriteResult]:
        """The owner-less resend: a second request, after a first one that was applied.

        A refusal of this request as a whole (budget spent, session or configuration, a 4xx)
        must not be raised: the engine would take the whole batch for unsent and send the
        records of the first request again. Only these records wait for a later pass.
        Anything else (may have been applied) still raises, and the engine looks every
        record up before resending.
        """
        try:
            return self._send_all(activities)
        except (BudgetExhaustedError, ConfigurationError, RecordError, FatalError) as exc:
            return [WriteResult(a.marker, WriteStatus.RETRY, error=str(exc)) for a in activities]

    def _send_all(self, activities: Sequence[Activity]) -> list[WriteResult]:
        prepared = [_Prepared(a, self.sobject_for(a), self.record(a)) for a in activities]
        results: list[WriteResult] = []
        if self.external_id_field:
            # The upsert resource is per object: Tasks and Events go in separate requests.
            for sobject in ("Task", "Event"):
                group = [p for p in prepared if p.sobject == sobject]
                for chunk in _chunks(group, MAX_RECORDS):
                    results.extend(self._upsert(sobject, chunk))
        else:
            for chunk in _chunks(prepared, MAX_RECORDS):
                results.extend(self._create(chunk))
        return results

    def _upsert(self, sobject: str, chunk: list[_Prepared]) -> list[WriteResult]:
        field = self.external_id_field
        assert field is not None
        body = _collection(chunk)
        path = f"composite/sobjects/{sobject}/{field}"
        try:
            answer = self._send(path, "PATCH", body, f"upsert of {sobject}s")
        except SalesforceRecordError as exc:
            if exc.status == 404:
                # facts A5: an unknown external-id field answers 404 NOT_FOUND.
                raise SalesforceConfigurationError(
                    f"Salesforce upsert for connection {self.client.connection!r} failed: "
                    f"{exc.detail} (writeback.external_id_field names {field}, which {sobject} "
                    "does not have as an External ID field: create it or remove the setting)",
                    connection=self.client.connection,
                    status=exc.status,
                    error_code=exc.error_code,
                    detail=exc.detail,
                ) from exc
            raise
        return _judge(chunk, answer)

    def _create(self, chunk: list[_Prepared]) -> list[WriteResult]:
        answer = self._send("composite/sobjects", "POST", _collection(chunk), "create of Tasks")
        return _judge(chunk, answer)

    def _send(self, path: str, method: str, body: dict[str, Any], action: str) -> Any:
        # Sent once: a write is repeated only by the engine, after a lookup (client.call).
        return self.client.call(
            lambda sf: sf.restful(path, method=method, json=body, timeout=WRITE_TIMEOUT),
            action=action,
            idempotent=False,
        )

    # -- finding ----------------------------------------------------------------------------

    def find(
        self, activities: Sequence[Activity], *, sent_after: datetime | None = None
    ) -> list[FoundActivity]:
        """The activities Salesforce already holds, by external id or by description."""
        found: list[FoundActivity] = []
        for sobject in ("Task", "Event"):
            group = [a for a in activities if self.sobject_for(a) == sobject]
            if not group:
                continue
            if self.external_id_field:
                found.extend(self._find_by_external_id(sobject, group))
            else:
                found.extend(self._find_by_description(sobject, group, sent_after))
        return found

    def _find_by_external_id(self, sobject: str, group: list[Activity]) -> Iterator[FoundActivity]:
        field = self.external_id_field
        assert field is not None
        for chunk in _chunks(group, MAX_RECORDS):
            markers = [a.marker for a in chunk]
            query = select_query(sobject, ("Id", field), [soql("{:literal} IN {}", field, markers)])
            for record in self.client.query_all_iter(query):
                marker = record.get(field)
                if isinstance(marker, str) and record.get("Id"):
                    yield FoundActivity(marker, str(record["Id"]), sobject)

    def _find_by_description(
        self, sobject: str, group: list[Activity], sent_after: datetime | None
    ) -> Iterator[FoundActivity]:
        wanted = {a.marker for a in group}
        opportunities = sorted({a.opportunity_crm_id for a in group})
        for chunk in _chunks(opportunities, MAX_RECORDS):
            conditions = [soql("WhatId IN {}", chunk)]
            if sent_after is not None:
                conditions.append(since_condition("CreatedDate", sent_after - CLOCK_MARGIN))
            query = select_query(sobject, ("Id", "Description"), conditions)
            for record in self.client.query_all_iter(query):
                description = record.get("Description")
                if not isinstance(description, str) or not record.get("Id"):
                    continue
                for marker in _markers_in(description, wanted):
                    yield FoundActivity(marker, str(record["Id"]), sobject)


def _datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, as Salesforce writes dateTimes."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _collection(chunk: Sequence[_Prepared]) -> dict[str, Any]:
    # allOrNone false: one refused record must not hold back the others (facts A8).
    return {
        "allOrNone": False,
        "records": [{"attributes": {"type": p.sobject}, **p.record} for p in chunk],
    }


def _markers_in(description: str, wanted: set[str]) -> Iterator[str]:
    # The marker has its own line ("stagelink event: sl-..."); markers are UUID-based.
    for line in description.splitlines():
        _, _, value = line.rpartition("stagelink event: ")
        value = value.strip()
        if value in wanted:
            yield value


def _judge(chunk: Sequence[_Prepared], answer: Any) -> list[WriteResult]:
    """One result per record from the SaveResults (same order as the records sent)."""
    if not isinstance(answer, list) or len(answer) != len(chunk):
        # Applied or not, we cannot tell: the engine looks the records up before resending.
        shape = f"{type(answer).__name__} of {len(answer)}" if isinstance(answer, list) else ""
        error = f"unexpected answer to a collection of {len(chunk)} records {shape}".rstrip()
        return [
            WriteResult(p.activity.marker, WriteStatus.UNKNOWN, error=error, crm_object_type=None)
            for p in chunk
        ]
    results = []
    for prepared, saved in zip(chunk, answer, strict=True):
        marker = prepared.activity.marker
        if isinstance(saved, dict) and saved.get("success") and saved.get("id"):
            results.append(
                WriteResult(marker, WriteStatus.WRITTEN, str(saved["id"]), prepared.sobject)
            )
            continue
        codes, text = _errors(saved)
        if codes & _RETRY_CODES:
            status = WriteStatus.RETRY
        elif codes & _UNKNOWN_CODES:
            status = WriteStatus.UNKNOWN
        else:
            status = WriteStatus.FAILED
        results.append(WriteResult(marker, status, crm_object_type=prepared.sobject, error=text))
    return results


def _owner_refused(result: WriteResult) -> bool:
    """A refusal that names the owner only (inactive user, or an id that is no user)."""
    error = result.error or ""
    return result.status is WriteStatus.FAILED and (
        error.startswith("INACTIVE_OWNER_OR_USER")
        or (error.startswith("INVALID_CROSS_REFERENCE_KEY") and error.endswith("(OwnerId)"))
    )


def _errors(saved: Any) -> tuple[set[str], str]:
    """The ``statusCode`` s of a failed SaveResult and a line for people."""
    entries = saved.get("errors") if isinstance(saved, dict) else None
    codes: set[str] = set()
    parts: list[str] = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        code = str(entry.get("statusCode") or entry.get("errorCode") or "UNKNOWN_ERROR")
        codes.add(code)
        message = str(entry.get("message") or "").strip()
        fields = entry.get("fields") or []
        where = f" ({', '.join(str(f) for f in fields)})" if fields else ""
        parts.append(f"{code} — {message}{where}" if message else f"{code}{where}")
    return codes, "; ".join(parts) or "Salesforce refused the record without saying why"


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
