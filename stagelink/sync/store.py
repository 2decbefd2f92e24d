"""Writes connector batches into storage: upserts by CRM id, tombstones, history, quarantine.

:class:`RecordWriter` is the only code that turns :mod:`connectors.core.records` into rows.
It works inside the caller's transaction (the engine commits the batch and its position
together) and is idempotent: a record that is already stored with the same values is
counted as ``unchanged`` and not written, so running a sync twice changes nothing.

Every value is checked against what the columns can hold before it is written (ids longer
than 255 characters, amounts beyond 18 digits, NUL characters PostgreSQL refuses): a record
that does not fit is quarantined with the reason instead of failing the whole batch.
"""

from __future__ import annotations

import dataclasses
import json
import marshal
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Date,
    Dialect,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from connectors.core.records import (
    Account,
    BadRecord,
    CrmRecord,
    Deletion,
    Item,
    LiveIds,
    ObjectType,
    Opportunity,
    Owner,
    Pipeline,
    Stage,
    StageChange,
)
from stagelink.storage import (
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmPipeline,
    CrmStage,
    CrmStageHistory,
    QuarantinedRecord,
    utcnow,
)
from stagelink.storage.models.base import Base
from stagelink.storage.types import UTCDateTime

__all__ = ["MODELS", "BoundRows", "Counts", "PreparedBatch", "RecordWriter"]

#: The table of each object type that has one row per CRM record.
MODELS: dict[ObjectType, type[Base]] = {
    ObjectType.OWNER: CrmOwner,
    ObjectType.PIPELINE: CrmPipeline,
    ObjectType.STAGE: CrmStage,
    ObjectType.ACCOUNT: CrmAccount,
    ObjectType.OPPORTUNITY: CrmOpportunity,
}
_RECORD_TYPES: dict[type[Any], ObjectType] = {
    Owner: ObjectType.OWNER,
    Pipeline: ObjectType.PIPELINE,
    Stage: ObjectType.STAGE,
    Account: ObjectType.ACCOUNT,
    Opportunity: ObjectType.OPPORTUNITY,
}
_ID_LENGTH = 255
_CURRENCY_LENGTH = 16
_MAX_MONEY = Decimal(10) ** 14  # Numeric(18, 4): 14 digits before the point
# IN lists stay well under SQLite's and psycopg's parameter limits.
_CHUNK = 900


class Counts(Counter[str]):
    """Per-job tallies: read, inserted, updated, unchanged, deleted, quarantined, history."""

    def as_dict(self) -> dict[str, int]:
        """Plain dict for JSON columns, zero counts included for the standard keys."""
        keys = ("read", "inserted", "updated", "unchanged", "deleted", "quarantined", "history")
        result = {key: int(self.get(key, 0)) for key in keys}
        result.update({k: int(v) for k, v in self.items() if k not in result})
        return result


@dataclass
class BoundRows:
    """SQLite rows of one object type, bound half-way (see ``_SqliteColumns``): each variant
    is the column names and the rows that carry exactly those columns."""

    object_type: ObjectType
    variants: list[tuple[tuple[str, ...], list[list[Any]]]]

    def __getstate__(self) -> tuple[ObjectType, bytes | None, Any]:
        # Bound values are text, numbers, None and JSON-like dicts, which marshal writes and
        # reads several times faster than pickle: this is what a writer process receives.
        try:
            return self.object_type, marshal.dumps(self.variants), None
        except ValueError:  # a value of another type (a connector's own): pickle it
            return self.object_type, None, self.variants

    def __setstate__(self, state: tuple[ObjectType, bytes | None, Any]) -> None:
        self.object_type, packed, plain = state
        self.variants = marshal.loads(packed) if packed is not None else plain


@dataclass
class PreparedBatch:
    """A batch sorted for writing by :meth:`RecordWriter.prepare`. Plain values only, cheap
    to pickle: a writer process may store it (see ``stagelink/sync/engine.py``)."""

    read: int = 0
    live: list[LiveIds] = field(default_factory=list)
    #: Records to upsert through SQLAlchemy (PostgreSQL), by object type.
    records: list[tuple[ObjectType, list[CrmRecord]]] = field(default_factory=list)
    #: Rows to upsert through the DB-API (SQLite).
    bound: list[BoundRows] = field(default_factory=list)
    changes: list[StageChange] = field(default_factory=list)
    deletions: dict[ObjectType, list[Deletion]] = field(default_factory=dict)
    bad: list[BadRecord] = field(default_factory=list)


class RecordWriter:
    """Applies batches for one connection; ``job_run_id`` tags quarantined records."""

    def __init__(self, connection_id: int, *, job_run_id: int | None = None) -> None:
        self.connection_id = connection_id
        self.job_run_id = job_run_id
        #: Stored opportunities whose stage changed and whose CRM gives no stage entry time
        #: (Salesforce): re-derived by :meth:`derive_stage_entry` once the job has read the
        #: stage history. New ones have none yet and are found by that (no id kept for them:
        #: a backfill of a million deals must not hold a million ids).
        self.needs_stage_entry: set[str] = set()
        self.derive_pending = False
        self._names: dict[tuple[type[Any], bool], tuple[str, ...]] = {}
        self._columns: dict[tuple[ObjectType, tuple[str, ...]], _SqliteColumns] = {}

    def apply(self, session: Session, items: Sequence[Item]) -> Counts:
        """Store ``items`` in ``session`` (not committed) and return what changed."""
        return self.write(session, self.prepare(items, session.connection().dialect))

    def prepare(self, items: Sequence[Item], dialect: Dialect) -> PreparedBatch:
        """The database-free half of :meth:`apply`: sort ``items``, find the ones that cannot
        be stored and, on SQLite, bind the records' rows (the costly part of a sync)."""
        prepared = PreparedBatch()
        records: dict[ObjectType, list[CrmRecord]] = {}
        for item in items:
            prepared.read += 1
            if isinstance(item, BadRecord):
                prepared.bad.append(item)
            elif isinstance(item, Deletion):
                prepared.deletions.setdefault(item.object_type, []).append(item)
            elif isinstance(item, LiveIds):
                prepared.read -= 1
                prepared.live.append(item)
            elif isinstance(item, StageChange):
                problem = _history_problem(item)
                if problem:
                    prepared.bad.append(_bad(item, problem))
                else:
                    prepared.changes.append(item)
            else:
                problem = _record_problem(item)
                if problem:
                    prepared.bad.append(_bad(item, problem))
                else:
                    records.setdefault(_RECORD_TYPES[type(item)], []).append(item)
        for object_type, group in records.items():
            if object_type is ObjectType.OPPORTUNITY and any(
                cast(Opportunity, record).stage_entered_at is None for record in group
            ):
                # Not known to the CRM: derived from the stored history after the job.
                self.derive_pending = True
            if dialect.name == "sqlite":
                prepared.bound.append(self._bind(dialect, object_type, group))
            else:
                prepared.records.append((object_type, group))
        return prepared

    def write(self, session: Session, prepared: PreparedBatch) -> Counts:
        """Store a :meth:`prepare` d batch in ``session`` (not committed); what changed."""
        counts = Counts()
        if prepared.read or prepared.live:
            counts["read"] += prepared.read
        for live in prepared.live:
            counts["deleted"] += self.tombstone_missing(session, live.object_type, live.ids)
        for object_type, group in prepared.records:
            crm_ids = self._upsert_orm(session, object_type, group, counts)
            if self._has_open_quarantine(session, object_type):
                self._resolve_quarantine(session, object_type, crm_ids)
        for bound in prepared.bound:
            crm_ids = self._upsert_bound(session.connection(), bound, counts)
            if self._has_open_quarantine(session, bound.object_type):
                self._resolve_quarantine(session, bound.object_type, crm_ids)
        if prepared.changes:
            counts["history"] += self._insert_history(session, prepared.changes)
        for object_type, gone in prepared.deletions.items():
            counts["deleted"] += self._delete(session, object_type, gone)
        if prepared.bad:
            counts["quarantined"] += self._quarantine(session, prepared.bad)
        return counts

    # -- records --------------------------------------------------------------------------

    def _upsert_orm(
        self, session: Session, object_type: ObjectType, group: list[CrmRecord], counts: Counts
    ) -> list[str]:
        """Upsert ``group`` through SQLAlchemy (PostgreSQL); returns the crm ids."""
        model = MODELS[object_type]
        table = model.__table__
        rows: dict[tuple[str, ...], dict[str, Any]] = {}
        for record in group:  # the last version of a record in a batch wins
            row = _row(record)
            if object_type is ObjectType.OPPORTUNITY and row["stage_entered_at"] is None:
                # Not known to the CRM: keep the derived value instead of erasing it.
                del row["stage_entered_at"]
                self.derive_pending = True
            rows[_key(object_type, row)] = row
        columns = sorted(set().union(*(row.keys() for row in rows.values())))
        existing: dict[tuple[str, ...], Any] = {}
        crm_ids = sorted({row["crm_id"] for row in rows.values()})
        wanted = [table.c.id, table.c.deleted_at, *(table.c[name] for name in columns)]
        for chunk in _chunks(crm_ids):
            query = select(*wanted).where(
                table.c.connection_id == self.connection_id, table.c.crm_id.in_(chunk)
            )
            for found in session.execute(query).mappings():
                existing[_key(object_type, found)] = found
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, row in rows.items():
            stored = existing.get(key)
            if stored is None:
                inserts.append({**row, "connection_id": self.connection_id, "synced_at": now})
            elif stored["deleted_at"] is not None or _differs(stored, row):
                updates.append({**row, "id": stored["id"], "deleted_at": None, "synced_at": now})
                moved = row.get("stage_crm_id") != stored.get("stage_crm_id")
                if moved and "stage_entered_at" not in row:
                    self.needs_stage_entry.add(row["crm_id"])
            else:
                counts["unchanged"] += 1
        if inserts:
            _insert_many(session, model, inserts)
            counts["inserted"] += len(inserts)
        if updates:
            _update_many(session, model, updates)
            counts["updated"] += len(updates)
        return crm_ids

    def _bind(self, dialect: Dialect, object_type: ObjectType, group: list[CrmRecord]) -> BoundRows:
        """SQLite: ``group``'s rows as stored, the last version of a record in a batch winning.

        An opportunity the CRM gives no stage entry time for leaves out that column, so the
        derived value stored is kept (as :meth:`_upsert_orm` does)."""
        rows: dict[tuple[str, ...], tuple[_SqliteColumns, list[Any]]] = {}
        kind = type(group[0])  # one record class per object type (see _RECORD_TYPES)
        full = self._sqlite_columns(dialect, object_type, kind, keep_entry=True)
        short = full
        if object_type is ObjectType.OPPORTUNITY:
            short = self._sqlite_columns(dialect, object_type, kind, keep_entry=False)
        for record in group:
            columns = short if getattr(record, "stage_entered_at", True) is None else full
            values = columns.bind(record)
            rows[columns.key(values)] = (columns, values)
        variants: dict[tuple[str, ...], list[list[Any]]] = {}
        for columns, values in rows.values():
            variants.setdefault(columns.names, []).append(values)
        return BoundRows(object_type, list(variants.items()))

    def _upsert_bound(self, connection: Connection, bound: BoundRows, counts: Counts) -> list[str]:
        """:meth:`_upsert_orm` for SQLite rows bound by :meth:`_bind`, through the DB-API:
        stored rows are compared with the new ones in their stored form (SQLAlchemy's
        per-row work was most of an initial sync's time). Returns the crm ids."""
        now = _sqlite_now(connection)
        crm_ids: set[str] = set()
        for names, rows in bound.variants:
            columns = self._columns_of(connection.dialect, bound.object_type, names)
            keyed = {columns.key(values): values for values in columns.finish(rows)}
            crm_ids.update(values[columns.crm_id] for values in keyed.values())
            existing = columns.stored(connection, self.connection_id, keyed)
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            for key, values in keyed.items():
                found = existing.get(key)
                if found is None:
                    inserts.append((self.connection_id, now, *values))
                elif found[1] is not None or columns.differs(found[2:], values):
                    updates.append((*values, now, found[0]))
                    moved = (
                        columns.stage is not None
                        and values[columns.stage] != found[2 + columns.stage]
                    )
                    if moved and not columns.has_entry:
                        self.needs_stage_entry.add(values[columns.crm_id])
                else:
                    counts["unchanged"] += 1
            if inserts:
                connection.exec_driver_sql(columns.insert_sql, inserts)
                counts["inserted"] += len(inserts)
            if updates:
                connection.exec_driver_sql(columns.update_sql, updates)
                counts["updated"] += len(updates)
        return sorted(crm_ids)

    def _sqlite_columns(
        self, dialect: Dialect, object_type: ObjectType, kind: type[Any], keep_entry: bool
    ) -> _SqliteColumns:
        names = self._names.get((kind, keep_entry))
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(kind))
            if not keep_entry:
                names = tuple(name for name in names if name != "stage_entered_at")
            self._names[(kind, keep_entry)] = names
        return self._columns_of(dialect, object_type, names)

    def _columns_of(
        self, dialect: Dialect, object_type: ObjectType, names: tuple[str, ...]
    ) -> _SqliteColumns:
        found = self._columns.get((object_type, names))
        if found is None or found.dialect is not dialect:
            table = cast(Table, MODELS[object_type].__table__)
            found = self._columns[(object_type, names)] = _SqliteColumns(table, names, dialect)
        return found

    def _delete(self, session: Session, object_type: ObjectType, gone: list[Deletion]) -> int:
        model = MODELS.get(object_type)
        if model is None:
            return 0
        table = model.__table__
        deleted = 0
        now = utcnow()
        by_id = {d.crm_id: d for d in gone}
        for chunk in _chunks(sorted(by_id)):
            live = session.execute(
                select(table.c.id, table.c.crm_id).where(
                    table.c.connection_id == self.connection_id,
                    table.c.crm_id.in_(chunk),
                    table.c.deleted_at.is_(None),
                )
            ).all()
            if live:
                stamps = [
                    {"id": row.id, "deleted_at": by_id[row.crm_id].deleted_at or now}
                    for row in live
                ]
                _update_many(session, model, stamps)
                deleted += len(live)
        return deleted

    def derive_stage_entry(self, session: Session, crm_ids: Iterable[str] | None = None) -> None:
        """Set ``stage_entered_at`` of opportunities the CRM gave none for: the latest stored
        change into their current stage, else their creation time ("days in stage")."""
        ids = sorted(self.needs_stage_entry if crm_ids is None else crm_ids)
        history, opportunity = CrmStageHistory, CrmOpportunity
        latest = (
            select(func.max(history.changed_at))
            .where(
                history.connection_id == opportunity.connection_id,
                history.opportunity_crm_id == opportunity.crm_id,
                history.to_stage == opportunity.stage_crm_id,
            )
            .scalar_subquery()
        )
        derived = func.coalesce(latest, opportunity.crm_created_at)
        if crm_ids is None:
            # Every opportunity that has no entry time yet (new ones), in one statement.
            session.execute(
                update(opportunity)
                .where(
                    opportunity.connection_id == self.connection_id,
                    opportunity.stage_entered_at.is_(None),
                )
                .values(stage_entered_at=derived)
                .execution_options(synchronize_session=False)
            )
        for chunk in _chunks(ids):
            session.execute(
                update(opportunity)
                .where(
                    opportunity.connection_id == self.connection_id,
                    opportunity.crm_id.in_(chunk),
                )
                .values(stage_entered_at=derived)
                .execution_options(synchronize_session=False)
            )
        if crm_ids is None:
            self.needs_stage_entry.clear()
            self.derive_pending = False

    def tombstone_missing(
        self, session: Session, object_type: ObjectType, live_ids: Iterable[str]
    ) -> int:
        """Mark every stored, not yet deleted record of ``object_type`` whose id is not in
        ``live_ids`` as deleted (a full reconciliation); returns how many."""
        model = MODELS.get(object_type)
        if model is None:
            return 0
        table = model.__table__
        keep = set(live_ids)
        stored = session.execute(
            select(table.c.id, table.c.crm_id).where(
                table.c.connection_id == self.connection_id, table.c.deleted_at.is_(None)
            )
        ).all()
        missing = [row.id for row in stored if row.crm_id not in keep]
        now = utcnow()
        for chunk in _chunks(missing):
            _update_many(session, model, [{"id": row_id, "deleted_at": now} for row_id in chunk])
        return len(missing)

    # -- history --------------------------------------------------------------------------

    def _insert_history(self, session: Session, changes: list[StageChange]) -> int:
        table = CrmStageHistory.__table__
        wanted = {(c.opportunity_crm_id, c.to_stage, c.changed_at): c for c in changes}
        opportunity_ids = sorted({c.opportunity_crm_id for c in changes})
        known: set[tuple[str, str, datetime]] = set()
        for chunk in _chunks(opportunity_ids):
            rows = session.execute(
                select(table.c.opportunity_crm_id, table.c.to_stage, table.c.changed_at).where(
                    table.c.connection_id == self.connection_id,
                    table.c.opportunity_crm_id.in_(chunk),
                )
            )
            known.update((r[0], r[1], r[2]) for r in rows)
        fresh = [c for key, c in wanted.items() if key not in known]
        if fresh:
            now = utcnow()
            _insert_many(
                session,
                CrmStageHistory,
                [
                    {
                        "connection_id": self.connection_id,
                        "opportunity_crm_id": c.opportunity_crm_id,
                        "from_stage": c.from_stage,
                        "to_stage": c.to_stage,
                        "changed_at": c.changed_at,
                        "source": c.source,
                        "crm_id": c.crm_id,
                        "synced_at": now,
                    }
                    for c in fresh
                ],
            )
        return len(fresh)

    # -- quarantine -----------------------------------------------------------------------

    def _quarantine(self, session: Session, bad: list[BadRecord]) -> int:
        table = QuarantinedRecord.__table__
        now = utcnow()
        keyed = {(b.object_type.value, b.crm_id): b for b in bad if b.crm_id is not None}
        anonymous = [b for b in bad if b.crm_id is None]
        existing: dict[tuple[str, str], Any] = {}
        for object_type in {k[0] for k in keyed}:
            ids = sorted(k[1] for k in keyed if k[0] == object_type and k[1] is not None)
            for chunk in _chunks(ids):
                for row in session.execute(
                    select(table.c.id, table.c.crm_id, table.c.occurrences).where(
                        table.c.connection_id == self.connection_id,
                        table.c.object_type == object_type,
                        table.c.crm_id.in_(chunk),
                    )
                ):
                    existing[(object_type, row.crm_id)] = row
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for (object_type, crm_id), record in keyed.items():
            values = {
                "reason": _scrub(record.reason)[:4000],
                "raw": _scrub(record.raw) if record.raw is not None else None,
                "job_run_id": self.job_run_id,
                "last_seen": now,
                "resolved_at": None,
            }
            stored = existing.get((object_type, str(crm_id)))
            if stored is None:
                inserts.append(self._quarantine_row(object_type, crm_id, values, now))
            else:
                updates.append({**values, "id": stored.id, "occurrences": stored.occurrences + 1})
        for record in anonymous:
            values = {
                "reason": _scrub(record.reason)[:4000],
                "raw": _scrub(record.raw) if record.raw is not None else None,
                "job_run_id": self.job_run_id,
                "last_seen": now,
                "resolved_at": None,
            }
            inserts.append(self._quarantine_row(record.object_type.value, None, values, now))
        if inserts:
            _insert_many(session, QuarantinedRecord, inserts)
        if updates:
            _update_many(session, QuarantinedRecord, updates)
        return len(bad)

    def _quarantine_row(
        self, object_type: str, crm_id: str | None, values: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        return {
            **values,
            "connection_id": self.connection_id,
            "object_type": object_type,
            "crm_id": crm_id[:_ID_LENGTH] if crm_id else None,
            "occurrences": 1,
            "first_seen": now,
        }

    def _has_open_quarantine(self, session: Session, object_type: ObjectType) -> bool:
        found = session.execute(
            select(QuarantinedRecord.id)
            .where(
                QuarantinedRecord.connection_id == self.connection_id,
                QuarantinedRecord.object_type == object_type.value,
                QuarantinedRecord.resolved_at.is_(None),
            )
            .limit(1)
        ).first()
        return found is not None

    def _resolve_quarantine(
        self, session: Session, object_type: ObjectType, crm_ids: list[str]
    ) -> None:
        # A record that arrives good again is no longer a problem to look at.
        for chunk in _chunks(crm_ids):
            session.execute(
                update(QuarantinedRecord)
                .where(
                    QuarantinedRecord.connection_id == self.connection_id,
                    QuarantinedRecord.object_type == object_type.value,
                    QuarantinedRecord.crm_id.in_(chunk),
                    QuarantinedRecord.resolved_at.is_(None),
                )
                .values(resolved_at=utcnow())
            )


# -- rows -----------------------------------------------------------------------------------


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _row(record: CrmRecord) -> dict[str, Any]:
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in dataclasses.fields(record))
    row = {name: getattr(record, name) for name in names}
    for name, value in row.items():
        # ``raw`` comes through clip_raw, which already removed NULs (and the JSON
        # serializer strips any left); the other fields are short. (The hot loop of a sync:
        # plain class checks instead of isinstance.)
        kind = value.__class__
        if (kind is str and "\x00" in value) or (
            kind is dict and name != "raw" and _has_nul(value)
        ):
            row[name] = _scrub(value)
    email = row.get("email")
    if isinstance(email, str):
        row["email"] = email.strip().lower()  # the column stores it lower-cased
    return row


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _key(object_type: ObjectType, row: Any) -> tuple[str, ...]:
    if object_type is ObjectType.STAGE:
        return (str(row["pipeline_crm_id"]), str(row["crm_id"]))
    return (str(row["crm_id"]),)


def _differs(stored: Any, row: dict[str, Any]) -> bool:
    stored_at, incoming_at = stored.get("crm_modified_at"), row.get("crm_modified_at")
    if stored_at is not None and incoming_at is not None and incoming_at < stored_at:
        # An older read (a slow page racing a webhook-triggered read) never undoes a newer one.
        return False
    return any(stored[name] != value for name, value in row.items())


def _record_problem(record: CrmRecord) -> str | None:
    """Why ``record`` cannot be stored as it is, or ``None`` when it fits the columns."""
    if not isinstance(record, StageChange):
        crm_id = getattr(record, "crm_id", None)
        if not crm_id:
            return "record has no id"
        if len(crm_id) > _ID_LENGTH:
            return f"id longer than {_ID_LENGTH} characters"
    for name in ("account_crm_id", "owner_crm_id", "pipeline_crm_id", "stage_crm_id"):
        value = getattr(record, name, None)
        if isinstance(value, str) and len(value) > _ID_LENGTH:
            return f"field {name!r}: id longer than {_ID_LENGTH} characters"
    currency = getattr(record, "currency", None)
    if isinstance(currency, str) and len(currency) > _CURRENCY_LENGTH:
        return f"field 'currency': {currency[:20]!r} is not a currency code"
    for name in ("amount", "annual_revenue"):
        value = getattr(record, name, None)
        if isinstance(value, Decimal) and abs(value) >= _MAX_MONEY:
            return f"field {name!r}: {value} has more than 14 digits before the point"
    email = getattr(record, "email", None)
    if isinstance(email, str) and len(email) > 320:
        return "field 'email': longer than 320 characters"
    return None


def _history_problem(change: StageChange) -> str | None:
    for name in ("opportunity_crm_id", "to_stage", "from_stage", "crm_id"):
        value = getattr(change, name)
        if isinstance(value, str) and len(value) > _ID_LENGTH:
            return f"field {name!r}: longer than {_ID_LENGTH} characters"
    if not change.opportunity_crm_id or not change.to_stage:
        return "stage change without an opportunity or a stage"
    return None


def _bad(record: CrmRecord, reason: str) -> BadRecord:
    raw = getattr(record, "raw", None)
    crm_id = getattr(record, "crm_id", None) or getattr(record, "opportunity_crm_id", None)
    return BadRecord(
        record.object_type,
        str(crm_id)[:_ID_LENGTH] if crm_id else None,
        reason,
        raw if isinstance(raw, dict) else None,
    )


def _scrub(value: Any) -> Any:
    """``value`` without NUL characters, which PostgreSQL text and JSONB refuse."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _insert_many(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    # Core executemany: the ORM's bulk insert splits rows into one statement per pattern of
    # NULLs, which made a 12,000-row sync send 5,000 INSERTs.
    table = cast(Table, model.__table__)
    keys = sorted(set().union(*(row.keys() for row in rows)))
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        _insert_many_sqlite(connection, table, keys, rows)
        return
    session.execute(insert(table), [{key: row.get(key) for key in keys} for row in rows])


def _insert_many_sqlite(
    connection: Any, table: Table, keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """The same INSERT through the DB-API: SQLAlchemy's per-row parameter handling cost five
    times more than SQLite itself on an initial sync. Values go through each column type's
    own bind processor, so what is stored is exactly what ``session.execute`` would store."""
    dialect = connection.dialect
    processors = [table.c[key].type._cached_bind_processor(dialect) for key in keys]
    columns = ", ".join(f'"{key}"' for key in keys)
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({", ".join("?" * len(keys))})'
    pairs = list(zip(keys, processors, strict=True))
    params = [
        tuple(
            value if process is None or value is None else process(value)
            for value, process in ((row.get(key), process) for key, process in pairs)
        )
        for row in rows
    ]
    connection.exec_driver_sql(sql, params)


def _update_many(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    # One executemany per set of columns: a column a row does not carry is left as it is.
    table = cast(Table, model.__table__)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(set(row) - {"id"})), []).append(row)
    for keys, group in groups.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_row_id"))
            .values({key: bindparam(key) for key in keys})
        )
        session.execute(
            statement, [{"_row_id": row["id"], **{k: row[k] for k in keys}} for row in group]
        )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# -- SQLite: rows bound once, compared in their stored form ---------------------------------


class _SqliteColumns:
    """How records of one class become SQLite rows of ``table`` without SQLAlchemy per row.

    ``bind`` then ``finish`` give a record's values in ``names`` order exactly as
    ``session.execute`` would send them: NULs removed from text (as :func:`_row` does; in
    JSON documents the serializer drops them), then each column type's own bind processor —
    datetimes and dates through equivalents several times faster, proven equal by the tests.
    Stored rows are read back unprocessed, so "unchanged" is a plain comparison of stored
    forms (a JSON document that differs only in key order is parsed and compared as data).
    """

    def __init__(self, table: Table, names: tuple[str, ...], dialect: Dialect) -> None:
        self.dialect = dialect
        self.names = names
        self.has_entry = "stage_entered_at" in names
        self._get = operator.attrgetter(*names)
        # Two stages: ``bind`` turns values marshal cannot carry (datetimes, dates, Decimals)
        # into what SQLite stores; ``finish``, on the writing side, removes NULs from text
        # and writes JSON documents (most of the cost, which a writer process then bears).
        self._bind_texts: list[int] = []  # text with a processor (e-mail): scrubbed first
        self._bind_process: list[tuple[int, Callable[[Any], Any]]] = []
        self._finish_texts: list[int] = []
        self._finish_process: list[tuple[int, Callable[[Any], Any]]] = []
        self._json: set[int] = set()
        for index, name in enumerate(names):
            kind = table.c[name].type
            processor = _fast_processor(kind, kind._cached_bind_processor(dialect))
            document = isinstance(kind, JSON)
            late = processor is None or document
            if _python_type(kind) is str:
                (self._finish_texts if late else self._bind_texts).append(index)
            if processor is not None:
                (self._finish_process if late else self._bind_process).append((index, processor))
            if document:
                self._json.add(index)
        self._texts_of = operator.itemgetter(*self._finish_texts or [0])
        self.crm_id = names.index("crm_id")
        self._pipeline = names.index("pipeline_crm_id") if table.name == "crm_stages" else None
        self.stage = names.index("stage_crm_id") if "stage_crm_id" in names else None
        self._modified = names.index("crm_modified_at") if "crm_modified_at" in names else None
        quote = dialect.identifier_preparer.quote
        quoted = [quote(name) for name in names]
        name = quote(table.name)
        self._select = (
            f"SELECT {quote('id')}, {quote('deleted_at')}, {', '.join(quoted)} FROM {name} "
            f"WHERE {quote('connection_id')} = ? AND {quote('crm_id')} IN "
        )
        self.insert_sql = (
            f"INSERT INTO {name} ({quote('connection_id')}, {quote('synced_at')}, "
            f"{', '.join(quoted)}) VALUES ({', '.join('?' * (len(names) + 2))})"
        )
        assignments = [f"{column} = ?" for column in quoted]
        assignments += [f"{quote('deleted_at')} = NULL", f"{quote('synced_at')} = ?"]
        self.update_sql = f"UPDATE {name} SET {', '.join(assignments)} WHERE {quote('id')} = ?"

    def bind(self, record: CrmRecord) -> list[Any]:
        """``record``'s values in ``names`` order, half-way to stored (see ``finish``)."""
        values = list(self._get(record))
        if self._bind_texts:
            _scrub_texts(values, self._bind_texts)
        for index, process in self._bind_process:
            value = values[index]
            if value is not None:
                values[index] = process(value)
        return values

    def finish(self, rows: list[list[Any]]) -> list[list[Any]]:
        """``bind``'s ``rows`` as stored: as ``session.execute`` would send them."""
        if self._finish_texts and _any_nul(self._texts_of, rows, len(self._finish_texts)):
            for values in rows:
                _scrub_texts(values, self._finish_texts)
        for values in rows:
            _process(values, self._finish_process)
        return rows

    def key(self, values: Sequence[Any]) -> tuple[str, ...]:
        """The row's identity in the table (as :func:`_key`)."""
        if self._pipeline is not None:
            return (str(values[self._pipeline]), str(values[self.crm_id]))
        return (str(values[self.crm_id]),)

    def stored(
        self, connection: Connection, connection_id: int, keyed: dict[tuple[str, ...], Any]
    ) -> dict[tuple[str, ...], Sequence[Any]]:
        """The stored ``(id, deleted_at, *values)`` of the rows ``keyed`` names."""
        found: dict[tuple[str, ...], Sequence[Any]] = {}
        crm_ids = sorted({values[self.crm_id] for values in keyed.values()})
        for chunk in _chunks(crm_ids):
            sql = self._select + f"({', '.join('?' * len(chunk))})"
            for row in connection.exec_driver_sql(sql, (connection_id, *chunk)).fetchall():
                found[self.key(row[2:])] = row
        return found

    def differs(self, stored: Sequence[Any], values: Sequence[Any]) -> bool:
        """Whether ``values`` must be written over ``stored`` (as :func:`_differs`)."""
        if tuple(stored) == tuple(values):
            return False
        if self._modified is not None:
            stored_at, incoming_at = stored[self._modified], values[self._modified]
            # Both in SQLite's fixed-width UTC text, whose order is the time order.
            if stored_at is not None and incoming_at is not None and incoming_at < stored_at:
                return False  # an older read never undoes a newer one
        for index, (old, new) in enumerate(zip(stored, values, strict=True)):
            if old == new:
                continue
            if index in self._json and old is not None and new is not None:
                if json.loads(old) == json.loads(new):
                    continue
            return True
        return False


def _any_nul(texts_of: Callable[[Any], Any], rows: list[list[Any]], count: int) -> bool:
    """Whether a text of ``rows`` may hold a NUL, tested on all of them at once (C loops)."""
    found = map(texts_of, rows) if count == 1 else chain.from_iterable(map(texts_of, rows))
    try:
        return "\x00" in "".join(filter(None, found))
    except TypeError:  # not only text (a connector's own values): check one by one
        return True


def _scrub_texts(values: list[Any], indexes: list[int]) -> None:
    # NULs out of text, as _row does (PostgreSQL refuses them; both databases store alike).
    for index in indexes:
        value = values[index]
        if value.__class__ is str and "\x00" in value:
            values[index] = value.replace("\x00", "")


def _process(values: list[Any], processors: list[tuple[int, Callable[[Any], Any]]]) -> None:
    for index, process in processors:
        value = values[index]
        if value is not None:
            values[index] = process(value)


def _python_type(kind: TypeEngine[Any]) -> type[Any] | None:
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def _fast_processor(
    kind: TypeEngine[Any], processor: Callable[[Any], Any] | None
) -> Callable[[Any], Any] | None:
    """``processor``, or an equivalent fast path for the values a sync binds most (used only
    when it gives what ``processor`` gives for a probe value)."""
    if processor is None:
        return None
    slow = processor
    fast: Callable[[Any], Any] | None = None
    probe: Any = None
    if isinstance(kind, UTCDateTime):
        probe = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)

        def fast(value: Any) -> Any:
            # UTCDateTime then SQLite's DATETIME: "YYYY-MM-DD HH:MM:SS.ffffff" of the UTC time.
            if value.__class__ is datetime and value.tzinfo is UTC:
                return value.isoformat(" ", "microseconds")[:26]
            return slow(value)

    elif isinstance(kind, Date):
        probe = date(2001, 2, 3)

        def fast(value: Any) -> Any:
            if value.__class__ is date:
                return value.isoformat()  # SQLite's DATE: "YYYY-MM-DD"
            return slow(value)

    elif isinstance(kind, Boolean):
        probe, stored = True, (slow(True), slow(False))

        def fast(value: Any) -> Any:
            if value is True or value is False:
                return stored[0] if value else stored[1]
            return slow(value)

    if fast is None or fast(probe) != slow(probe):
        return processor
    return fast


def _sqlite_now(connection: Connection) -> Any:
    synced_at = CrmOpportunity.__table__.c.synced_at.type
    processor = synced_at._cached_bind_processor(connection.dialect)
    now = utcnow()
    return processor(now) if processor is not None else now
