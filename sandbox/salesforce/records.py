"""The record engine: validate, derive and save records as an org would.

Every write resource (sObject create/update/upsert/delete, sObject Collections, Composite,
the mutator) goes through :class:`RecordEngine`, so they all enforce the same rules:

* unknown fields → ``INVALID_FIELD``; read-only fields → ``INVALID_FIELD_FOR_INSERT_UPDATE``;
  values of the wrong JSON type → ``JSON_PARSER_ERROR``;
* ``REQUIRED_FIELD_MISSING`` (e.g. Opportunity Name/StageName/CloseDate, Account Name),
  ``STRING_TOO_LONG`` (Task Subject 255, Description 32,000), restricted picklists →
  ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`` (StageName must be an *active* OpportunityStage),
  invalid email → ``INVALID_EMAIL_ADDRESS``;
* lookups: malformed id → ``MALFORMED_ID``, id of another sObject → ``FIELD_INTEGRITY_EXCEPTION``
  ("id value of incorrect type"), no such record → ``INVALID_CROSS_REFERENCE_KEY``, a record in
  the Recycle Bin → ``ENTITY_IS_DELETED``, an inactive owner → ``INACTIVE_OWNER_OR_USER``;
* unique external ids → ``DUPLICATE_VALUE``.

Messages follow Salesforce's wording where it is known (facts A5, vendor error samples);
where it is not, the code is right and the message is close.

Derived values: Opportunity IsClosed/IsWon/ForecastCategoryName/Probability from
OpportunityStage; Task IsClosed from Status; User Name; Event end/duration. Audit stamps
(CreatedDate, LastModifiedDate, SystemModstamp) are set on every write; a StageName, Amount
or CloseDate change writes OpportunityFieldHistory rows and an OpportunityHistory snapshot.
Deletes move records to the Recycle Bin (``IsDeleted = 1``), log them for Get Deleted and
cascade like Salesforce (an Account takes its Opportunities and activities along).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce import timefmt
from sandbox.salesforce.errors import ErrorItem, RecordError
from sandbox.salesforce.ids import PREFIX_TO_SOBJECT, key_prefix, normalize_id
from sandbox.salesforce.schema import SCHEMA, FieldDef, SObjectDef, get_sobject
from sandbox.salesforce.store import Store, quote

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TEXT_TYPES = frozenset({"string", "textarea", "picklist", "email", "url"})
_FLOAT_TYPES = frozenset({"currency", "double", "percent"})
# Fields the platform fills when the client leaves them out.
_AUDIT_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
_HISTORY_TRACKED = ("StageName", "Amount", "CloseDate")
_SNAPSHOT_FIELDS = ("StageName", "Amount", "Probability", "CloseDate", "ForecastCategoryName")
_FORECAST_API = {
    "Pipeline": "Pipeline",
    "Best Case": "BestCase",
    "Commit": "Forecast",
    "Closed": "Closed",
    "Omitted": "Omitted",
}
_ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)


def rolled_back_error() -> ErrorItem:
    """The error sObject Collections report for valid records undone by ``allOrNone``.

    Code and message as seen in Salesforce answers [wording unconfirmed, facts A8].
    """
    return ErrorItem("ALL_OR_NONE_OPERATION_ROLLED_BACK", _ROLLED_BACK_MESSAGE, [])


@dataclass(frozen=True)
class StageInfo:
    """What an OpportunityStage row implies for an Opportunity in that stage."""

    api_name: str
    probability: float | None
    is_closed: bool
    is_won: bool
    forecast: str | None
    is_active: bool


@dataclass(frozen=True)
class UpsertOutcome:
    """Result of an upsert by external id."""

    record_id: str
    created: bool


class MultipleMatches(Exception):
    """An external id value matched several records (HTTP 300)."""

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} records match")
        self.ids = ids


class RecordEngine:
    """Creates, updates, upserts and deletes records in a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- lookups ------------------------------------------------------------------------------

    def sobject(self, name: str) -> SObjectDef:
        """The definition of ``name`` (any case); 404 NOT_FOUND if the org has no such type."""
        obj = get_sobject(name)
        if obj is None:
            raise RecordError.one(
                "NOT_FOUND",
                f"The requested resource does not exist: sObject type '{name}'",
                status=404,
            )
        return obj

    def stages(self) -> dict[str, StageInfo]:
        """OpportunityStage rows by ApiName."""
        rows = self.store.fetch_all(
            'SELECT "ApiName", "DefaultProbability", "IsClosed", "IsWon", '
            '"ForecastCategoryName", "IsActive" FROM "OpportunityStage" ORDER BY "SortOrder"'
        )
        return {
            row[0]: StageInfo(row[0], row[1], bool(row[2]), bool(row[3]), row[4], bool(row[5]))
            for row in rows
        }

    def fetch(self, obj: SObjectDef, record_id: str) -> dict[str, Any] | None:
        """The stored row of one record (deleted ones included) as a dict, or ``None``."""
        with self.store.locked() as conn:
            cursor = conn.execute(f'SELECT * FROM {quote(obj.name)} WHERE "Id" = ?', (record_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            names = [d[0] for d in cursor.description]
        return dict(zip(names, row, strict=True))

    def find_by_external_id(self, obj: SObjectDef, fdef: FieldDef, value: str) -> list[str]:
        """Ids of live records whose external id ``fdef`` equals ``value`` (ignoring case)."""
        if fdef.name == "Id":
            canonical = normalize_id(value)
            if canonical is None:
                return []
            rows = self.store.fetch_all(
                f'SELECT "Id" FROM {quote(obj.name)} WHERE "Id" = ? AND "IsDeleted" = 0',
                (canonical,),
            )
        else:
            rows = self.store.fetch_all(
                f'SELECT "Id" FROM {quote(obj.name)} WHERE {quote(fdef.name)} = ? COLLATE NOCASE '
                'AND "IsDeleted" = 0 ORDER BY "Id"',
                (value,),
            )
        return [row[0] for row in rows]

    # -- writes -------------------------------------------------------------------------------

    def create(
        self,
        sobject: str,
        data: Mapping[str, Any],
        *,
        user_id: str,
        now: dt.datetime | None = None,
    ) -> str:
        """Insert one record; returns its id. Raises :class:`RecordError`."""
        obj = self.sobject(sobject)
        if not obj.createable:
            raise RecordError.one(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support insert"
            )
        stamp = timefmt.to_storage(now or timefmt.utc_now())
        with self.store.transaction() as conn:
            values = self._prepare(conn, obj, data, existing=None, user_id=user_id)
            record_id = self.store.allocate_ids(obj.key_prefix)[0]
            values["Id"] = record_id
            for name in _AUDIT_FIELDS:
                if name in obj.fields:
                    values[name] = stamp
            values["IsDeleted"] = 0
            self._insert(conn, obj.name, values)
            if obj.name == "Opportunity":
                self._opportunity_history(conn, values, None, user_id=user_id, stamp=stamp)
        return record_id

    def update(
        self,
        sobject: str,
        record_id: str,
        data: Mapping[str, Any],
        *,
        user_id: str,
        now: dt.datetime | None = None,
    ) -> None:
        """Update one record by id. Raises :class:`RecordError` (404 if absent or deleted)."""
        obj = self.sobject(sobject)
        stamp = timefmt.to_storage(now or timefmt.utc_now())
        with self.store.transaction() as conn:
            existing = self.existing(obj, record_id)
            body = dict(data)
            given_id = _pop_case_insensitive(body, "Id")
            if given_id is not None and normalize_id(str(given_id)) != existing["Id"]:
                raise RecordError.one(
                    "INVALID_ID_FIELD", "The Id field should not be specified in the sobject data."
                )
            values = self._prepare(conn, obj, body, existing=existing, user_id=user_id)
            for name in ("LastModifiedDate", "SystemModstamp"):
                if name in obj.fields:
                    values[name] = stamp
            self._update(conn, obj.name, existing["Id"], values)
            if obj.name == "Opportunity":
                self._opportunity_history(
                    conn, {**existing, **values}, existing, user_id=user_id, stamp=stamp
                )

    def upsert(
        self,
        sobject: str,
        field_name: str,
        value: str,
        data: Mapping[str, Any],
        *,
        user_id: str,
        update_only: bool = False,
        now: dt.datetime | None = None,
    ) -> UpsertOutcome:
        """Create or update the record whose external id ``field_name`` is ``value``.

        Raises :class:`MultipleMatches` when several records match (HTTP 300) and
        :class:`RecordError` (404 NOT_FOUND for a field that is not an external id).
        """
        obj = self.sobject(sobject)
        fdef = self.external_id_field(obj, field_name)
        body = dict(data)
        in_body = _pop_case_insensitive(body, fdef.name)
        if in_body is not None and str(in_body) != value:
            raise RecordError.one(
                "INVALID_FIELD",
                f"The value of the external ID field in the body ({in_body}) does not match "
                f"the value in the URL ({value})",
            )
        with self.store.transaction():
            matches = self.find_by_external_id(obj, fdef, value)
            if len(matches) > 1:
                raise MultipleMatches(matches)
            if matches:
                self.update(obj.name, matches[0], body, user_id=user_id, now=now)
                return UpsertOutcome(matches[0], created=False)
            if update_only or fdef.name == "Id":
                raise RecordError.one(
                    "NOT_FOUND", "The requested resource does not exist", status=404
                )
            body[fdef.name] = value
            return UpsertOutcome(self.create(obj.name, body, user_id=user_id, now=now), True)

    def external_id_field(self, obj: SObjectDef, field_name: str) -> FieldDef:
        """The external id field ``field_name`` of ``obj`` (``Id`` counts); 404 otherwise."""
        fdef = obj.field(field_name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise RecordError.one(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
                status=404,
            )
        return fdef

    def delete(
        self, sobject: str, record_id: str, *, user_id: str, now: dt.datetime | None = None
    ) -> None:
        """Move a record (and its cascade) to the Recycle Bin."""
        obj = self.sobject(sobject)
        if not obj.deletable:
            raise RecordError.one(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {obj.name} does not support delete"
            )
        stamp = timefmt.to_storage(now or timefmt.utc_now())
        with self.store.transaction() as conn:
            existing = self.existing(obj, record_id)
            self._delete_cascade(conn, obj.name, existing["Id"], stamp)

    # -- internals ----------------------------------------------------------------------------

    def existing(self, obj: SObjectDef, record_id: str) -> dict[str, Any]:
        """The stored row of a live record; 404 NOT_FOUND or ENTITY_IS_DELETED otherwise."""
        canonical = normalize_id(record_id)
        row = self.fetch(obj, canonical) if canonical else None
        if row is None or key_prefix(row["Id"]) != obj.key_prefix:
            raise RecordError.one("NOT_FOUND", "The requested resource does not exist", status=404)
        if row.get("IsDeleted"):
            raise RecordError.one("ENTITY_IS_DELETED", "entity is deleted", status=404)
        return row

    def _prepare(
        self,
        conn: sqlite3.Connection,
        obj: SObjectDef,
        data: Mapping[str, Any],
        *,
        existing: dict[str, Any] | None,
        user_id: str,
    ) -> dict[str, Any]:
        """Check and convert client values; add defaults and derived values."""
        if not isinstance(data, Mapping):
            raise RecordError.one("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject")
        creating = existing is None
        given: dict[str, tuple[FieldDef, Any]] = {}
        for key, raw in data.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None:
                raise RecordError.one(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            given[fdef.name] = (fdef, raw)
        read_only = [
            name
            for name, (fdef, _) in given.items()
            if not (fdef.createable if creating else fdef.updateable)
        ]
        if read_only:
            raise RecordError.one(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. "
                "Please check the security settings of this field and verify that it is "
                "read/write for your profile or permission set.",
                read_only,
            )
        values = {name: _convert(fdef, raw) for name, (fdef, raw) in given.items()}
        if creating:
            self._defaults(obj, values, user_id)
        errors: list[ErrorItem] = []
        self._check_required(obj, values, creating, errors)
        for name, value in values.items():
            fdef = obj.fields[name]
            if value is None:
                continue
            if existing is not None and existing.get(name) == value and fdef.type == "picklist":
                continue  # an unchanged value is not re-validated (retired stages stay put)
            self._check_value(conn, obj, fdef, value, errors, own_id=(existing or {}).get("Id"))
        if errors:
            raise RecordError(errors)
        self._derive(conn, obj, values, existing)
        return values

    def _defaults(self, obj: SObjectDef, values: dict[str, Any], user_id: str) -> None:
        for fdef in obj.fields.values():
            if fdef.name in values or not fdef.createable:
                continue
            if fdef.default_value is not None:
                values[fdef.name] = fdef.default_value
            elif fdef.name == "OwnerId":
                values["OwnerId"] = user_id  # records belong to the API user by default
            elif fdef.type == "boolean":
                values[fdef.name] = 0

    def _check_required(
        self, obj: SObjectDef, values: dict[str, Any], creating: bool, errors: list[ErrorItem]
    ) -> None:
        missing = []
        for fdef in obj.fields.values():
            if fdef.nillable or fdef.type == "boolean":
                continue
            writable = fdef.createable if creating else fdef.updateable
            if not writable:
                continue
            if (creating and values.get(fdef.name) is None) or (
                not creating and fdef.name in values and values[fdef.name] is None
            ):
                if obj.name == "Opportunity" and fdef.name == "Probability":
                    continue
                missing.append(fdef.name)
        if obj.name == "Event" and creating:
            if values.get("StartDateTime") is None and values.get("ActivityDateTime") is None:
                missing.append("ActivityDateTime")
            if values.get("DurationInMinutes") is None and values.get("EndDateTime") is None:
                missing.append("DurationInMinutes")
        if missing:
            errors.append(
                ErrorItem(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            )

    def _check_value(
        self,
        conn: sqlite3.Connection,
        obj: SObjectDef,
        fdef: FieldDef,
        value: Any,
        errors: list[ErrorItem],
        *,
        own_id: str | None,
    ) -> None:
        label = fdef.label or fdef.name
        if fdef.type in _TEXT_TYPES and fdef.length and len(value) > fdef.length:
            shown = value if len(value) <= 60 else value[:57] + "..."
            errors.append(
                ErrorItem(
                    "STRING_TOO_LONG",
                    f"{label}: data value too large: {shown} (max length={fdef.length})",
                    [fdef.name],
                )
            )
            return
        if fdef.type == "email" and not _EMAIL.match(value):
            errors.append(
                ErrorItem(
                    "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [fdef.name]
                )
            )
        if fdef.type == "picklist":
            allowed: set[str] | None = None
            if obj.name == "Opportunity" and fdef.name == "StageName":
                allowed = {name for name, s in self.stages().items() if s.is_active}
            elif fdef.restricted_picklist:
                allowed = set(fdef.picklist_values)
            if allowed is not None and value not in allowed:
                errors.append(
                    ErrorItem(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{label}: bad value for restricted picklist field: {value}",
                        [fdef.name],
                    )
                )
        if fdef.type == "reference":
            self._check_reference(conn, fdef, value, errors)
        if fdef.unique:
            self._check_unique(conn, obj, fdef, value, errors, own_id=own_id)

    def _check_reference(
        self, conn: sqlite3.Connection, fdef: FieldDef, value: str, errors: list[ErrorItem]
    ) -> None:
        label = fdef.label or fdef.name
        canonical = normalize_id(value)
        if canonical is None:
            errors.append(
                ErrorItem(
                    "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [fdef.name]
                )
            )
            return
        target = PREFIX_TO_SOBJECT.get(key_prefix(canonical))
        if target not in fdef.reference_to:
            errors.append(
                ErrorItem(
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"{label}: id value of incorrect type: {value}",
                    [fdef.name],
                )
            )
            return
        row = None
        if target in SCHEMA:
            columns = '"IsDeleted", "IsActive"' if target == "User" else '"IsDeleted", 1'
            row = conn.execute(
                f'SELECT {columns} FROM {quote(target)} WHERE "Id" = ?', (canonical,)
            ).fetchone()
        if row is None:
            errors.append(
                ErrorItem("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            )
        elif row[0]:
            errors.append(ErrorItem("ENTITY_IS_DELETED", "entity is deleted", [fdef.name]))
        elif not row[1]:
            errors.append(
                ErrorItem(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{canonical}] as owner",
                    [fdef.name],
                )
            )

    def _check_unique(
        self,
        conn: sqlite3.Connection,
        obj: SObjectDef,
        fdef: FieldDef,
        value: Any,
        errors: list[ErrorItem],
        *,
        own_id: str | None,
    ) -> None:
        row = conn.execute(
            f'SELECT "Id" FROM {quote(obj.name)} WHERE {quote(fdef.name)} = ? COLLATE NOCASE '
            'AND "IsDeleted" = 0 LIMIT 1',
            (value,),
        ).fetchone()
        if row is not None and row[0] != own_id:
            errors.append(
                ErrorItem(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {fdef.name} duplicates value on record "
                    f"with id: {row[0]}",
                    [],
                )
            )

    def _derive(
        self,
        conn: sqlite3.Connection,
        obj: SObjectDef,
        values: dict[str, Any],
        existing: dict[str, Any] | None,
    ) -> None:
        if obj.name == "Opportunity" and "StageName" in values:
            stage = self.stages()[values["StageName"]]
            changed = existing is None or existing.get("StageName") != stage.api_name
            values["IsClosed"] = int(stage.is_closed)
            values["IsWon"] = int(stage.is_won)
            # A new stage brings its default probability and forecast category, unless the
            # client set them in the same call (what the UI and API both do).
            if changed:
                values.setdefault("Probability", stage.probability)
                if "ForecastCategoryName" not in values or stage.is_closed:
                    values["ForecastCategoryName"] = stage.forecast
        if obj.name == "Task" and "Status" in values:
            values["IsClosed"] = int(values["Status"] == "Completed")
        if obj.name == "User" and ("FirstName" in values or "LastName" in values):
            merged = {**(existing or {}), **values}
            values["Name"] = " ".join(
                part for part in (merged.get("FirstName"), merged.get("LastName")) if part
            )
        if obj.name == "Event":
            merged = {**(existing or {}), **values}
            start = merged.get("StartDateTime") or merged.get("ActivityDateTime")
            if start:
                values.setdefault("StartDateTime", start)
                values["ActivityDateTime"] = start
                begin = timefmt.from_storage(start)
                if values.get("EndDateTime"):
                    end = timefmt.from_storage(values["EndDateTime"])
                    values["DurationInMinutes"] = int((end - begin).total_seconds() // 60)
                elif merged.get("DurationInMinutes") is not None:
                    minutes = int(merged["DurationInMinutes"])
                    values["EndDateTime"] = timefmt.to_storage(
                        begin + dt.timedelta(minutes=minutes)
                    )

    def _insert(self, conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(quote(k) for k in values)
        marks = ", ".join("?" for _ in values)
        conn.execute(
            f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", list(values.values())
        )

    def _update(
        self, conn: sqlite3.Connection, table: str, record_id: str, values: dict[str, Any]
    ) -> None:
        assignments = ", ".join(f"{quote(k)} = ?" for k in values)
        conn.execute(
            f'UPDATE {quote(table)} SET {assignments} WHERE "Id" = ?', [*values.values(), record_id]
        )

    def _opportunity_history(
        self,
        conn: sqlite3.Connection,
        current: dict[str, Any],
        previous: dict[str, Any] | None,
        *,
        user_id: str,
        stamp: str,
    ) -> None:
        """Field history for tracked changes and an OpportunityHistory snapshot."""
        opportunity_id = current["Id"]
        if previous is not None:
            for name in _HISTORY_TRACKED:
                old, new = previous.get(name), current.get(name)
                if old == new:
                    continue
                self._insert(
                    conn,
                    "OpportunityFieldHistory",
                    {
                        "Id": self.store.allocate_ids("017")[0],
                        "OpportunityId": opportunity_id,
                        "Field": name,
                        "OldValue": _history_text(old),
                        "NewValue": _history_text(new),
                        "CreatedDate": stamp,
                        "CreatedById": user_id,
                        "IsDeleted": 0,
                    },
                )
            if all(previous.get(n) == current.get(n) for n in _SNAPSHOT_FIELDS):
                return
        forecast = current.get("ForecastCategoryName")
        self._insert(
            conn,
            "OpportunityHistory",
            {
                "Id": self.store.allocate_ids("008")[0],
                "OpportunityId": opportunity_id,
                "StageName": current.get("StageName"),
                "Amount": current.get("Amount"),
                "Probability": current.get("Probability"),
                "CloseDate": current.get("CloseDate"),
                "ForecastCategory": _FORECAST_API.get(forecast or "", forecast),
                "CreatedDate": stamp,
                "CreatedById": user_id,
                "SystemModstamp": stamp,
                "IsDeleted": 0,
            },
        )

    def _delete_cascade(
        self, conn: sqlite3.Connection, sobject: str, record_id: str, stamp: str
    ) -> None:
        conn.execute(
            f'UPDATE {quote(sobject)} SET "IsDeleted" = 1, "SystemModstamp" = ?, '
            '"LastModifiedDate" = ? WHERE "Id" = ?',
            (stamp, stamp, record_id),
        )
        conn.execute(
            'INSERT INTO "_sl_deleted" (sobject, record_id, deleted_date) VALUES (?, ?, ?)',
            (sobject, record_id, stamp),
        )
        if sobject in ("Account", "Opportunity"):
            for activity in ("Task", "Event"):
                children = conn.execute(
                    f'SELECT "Id" FROM {quote(activity)} WHERE "WhatId" = ? AND "IsDeleted" = 0',
                    (record_id,),
                ).fetchall()
                for (child,) in children:
                    self._delete_cascade(conn, activity, child, stamp)
        if sobject == "Opportunity":
            for table in ("OpportunityHistory", "OpportunityFieldHistory"):
                conn.execute(
                    f'UPDATE {quote(table)} SET "IsDeleted" = 1 WHERE "OpportunityId" = ?',
                    (record_id,),
                )
        if sobject == "Account":
            opportunities = conn.execute(
                'SELECT "Id" FROM "Opportunity" WHERE "AccountId" = ? AND "IsDeleted" = 0',
                (record_id,),
            ).fetchall()
            for (child,) in opportunities:
                self._delete_cascade(conn, "Opportunity", child, stamp)
            # Child accounts keep existing; their Parent lookup is cleared.
            conn.execute(
                'UPDATE "Account" SET "ParentId" = NULL, "SystemModstamp" = ? '
                'WHERE "ParentId" = ? AND "IsDeleted" = 0',
                (stamp, record_id),
            )


def _pop_case_insensitive(body: dict[str, Any], name: str) -> Any:
    for key in list(body):
        if key.lower() == name.lower():
            return body.pop(key)
    return None


def _history_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _json_error(fdef: FieldDef, raw: Any) -> RecordError:
    kind = {
        "boolean": "boolean",
        "int": "int",
        "date": "date",
        "datetime": "datetime",
    }.get(fdef.type, "double" if fdef.type in _FLOAT_TYPES else "string")
    token = {str: "VALUE_STRING", bool: "VALUE_TRUE" if raw else "VALUE_FALSE"}.get(
        type(raw), "VALUE_NUMBER_INT" if isinstance(raw, int) else "START_OBJECT"
    )
    return RecordError.one(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {raw} or request may be "
        "missing a required field",
    )


def _convert(fdef: FieldDef, raw: Any) -> Any:
    """A JSON value → the stored value for ``fdef``, as Salesforce's deserializer accepts it."""
    if raw is None:
        return None
    if isinstance(raw, (dict, list)):
        raise _json_error(fdef, raw)
    ftype = fdef.type
    if ftype in _TEXT_TYPES or ftype in ("id", "reference"):
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            text = repr(raw) if isinstance(raw, float) else str(raw)
        else:
            text = str(raw)
        if text == "":
            return None  # Salesforce stores empty text as null
        if ftype == "reference":
            canonical = normalize_id(text)
            return canonical or text  # malformed ids are reported by the checks
        return text
    if ftype == "boolean":
        if isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return int(raw.lower() == "true")
        raise _json_error(fdef, raw)
    if ftype in _FLOAT_TYPES or ftype == "int":
        if isinstance(raw, bool):
            raise _json_error(fdef, raw)
        if isinstance(raw, str):
            if raw.strip() == "":
                return None
            try:
                number = float(raw)
            except ValueError:
                raise _json_error(fdef, raw) from None
        else:
            number = float(raw)
        if not math.isfinite(number):
            raise _json_error(fdef, raw)
        if ftype == "int":
            if number != int(number):
                raise _json_error(fdef, raw)
            return int(number)
        return number
    if ftype == "date":
        if not isinstance(raw, str):
            raise _json_error(fdef, raw)
        if raw == "":
            return None
        date = timefmt.parse_input_date(raw)
        if date is None:
            raise _json_error(fdef, raw)
        return date.isoformat()
    if ftype == "datetime":
        if not isinstance(raw, str):
            raise _json_error(fdef, raw)
        if raw == "":
            return None
        moment = timefmt.parse_input_datetime(raw)
        if moment is None:
            raise _json_error(fdef, raw)
        return timefmt.to_storage(moment)
    return raw
