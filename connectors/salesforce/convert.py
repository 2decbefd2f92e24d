"""Pure converters: one Salesforce record dict → one normalized record.

The same functions read REST JSON records (typed values, ``null``, an ``attributes`` key)
and Bulk API 2.0 CSV rows (every value a string, ``""`` for null, dateTimes ending in
``Z``), through the converters of ``connectors/core/normalize.py``.

Nothing here does I/O and nothing raises for bad data: a record that cannot be read comes
back as a :class:`~connectors.core.records.BadRecord` naming the field and keeping the
(clipped) payload, so one bad row is quarantined instead of stopping a sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from connectors.core.errors import RecordError
from connectors.core.normalize import (
    MAX_RAW_STRING,
    MAX_TEXT,
    clip_raw,
    to_bool,
    to_date,
    to_datetime,
    to_decimal,
    to_fraction,
    to_text,
)
from connectors.core.records import (
    Account,
    BadRecord,
    Deletion,
    ObjectType,
    Opportunity,
    Owner,
    Pipeline,
    Stage,
    StageChange,
)

__all__ = [
    "DEFAULT_PIPELINE",
    "FieldContext",
    "account",
    "custom_value",
    "default_pipeline",
    "field_history_change",
    "opportunity",
    "opportunity_history_changes",
    "owner",
    "raw_payload",
    "stage",
    "timestamp",
]

#: Salesforce has one pipeline per org (sales processes only filter its stages).
DEFAULT_PIPELINE = "default"

Record = Mapping[str, Any]
T = TypeVar("T")

# Describe types whose values are numbers, by how they are stored in ``custom_fields``.
_INTEGER_TYPES = frozenset({"int", "long"})
_FLOAT_TYPES = frozenset({"double", "currency", "percent"})


@dataclass(frozen=True)
class FieldContext:
    """What the org has, learned from describe: the extra fields and its currency setup."""

    #: Configured extra fields present in the org: API name → describe type (``picklist``...).
    extra_fields: Mapping[str, str] = field(default_factory=dict)
    #: The object has ``CurrencyIsoCode`` (a multi-currency org): each record names its own.
    multi_currency: bool = False
    #: The org's currency, for single-currency orgs (``None`` when not known).
    default_currency: str | None = None


def raw_payload(record: Record) -> dict[str, Any]:
    """The record as stored with its normalized form: no ``attributes``, long text clipped."""
    raw = dict(record)
    raw.pop("attributes", None)
    # Fast path (the sync's hot loop): flat rows of short strings, numbers, booleans and
    # nulls are already storable; only the others need clip_raw's walk.
    for value in raw.values():
        kind = value.__class__
        if kind is str:
            if len(value) > MAX_RAW_STRING or "\x00" in value:
                return clip_raw(raw)
        elif kind is float:
            if not math.isfinite(value):
                return clip_raw(raw)
        elif value is not None and kind is not bool and kind is not int:
            return clip_raw(raw)
    return raw


def _text(value: Any, name: str) -> str | None:
    """:func:`to_text`, with a fast path for the common short, non-blank string."""
    if value.__class__ is str and 0 < len(value) <= MAX_TEXT and not value[0].isspace():
        return value
    return to_text(value, name)


# The helpers below are their normalize.py converter with a fast path for the value JSON
# gives (a sync calls them a million times): the same library calls on the same input, so
# the same result; any other value goes to the converter itself, errors included.


def _flag(value: Any, name: str, *, default: bool = False) -> bool:
    """:func:`to_bool`."""
    if value is True or value is False:
        return value
    return to_bool(value, name, default=default)


def _number(value: Any, name: str) -> Decimal | None:
    """:func:`to_decimal`."""
    if value.__class__ is float and math.isfinite(value):
        return Decimal(str(value))
    return to_decimal(value, name)


def _percent(value: Any, name: str) -> float | None:
    """:func:`to_fraction` of a percentage (Salesforce's 0..100)."""
    if value.__class__ is float and math.isfinite(value):
        fraction = float(Decimal(str(value)) / 100)
        if 0.0 <= fraction <= 1.0:
            return fraction
    return to_fraction(value, name, percent=True)


def timestamp(value: Any, name: str) -> datetime | None:
    """:func:`~connectors.core.normalize.to_datetime`, fast for Salesforce's ISO text."""
    # Without surrounding blanks, to_datetime's strip() changes nothing; an all-digit text
    # (epoch milliseconds there) parses here without an offset and goes there.
    if value.__class__ is str and value and not value[0].isspace() and not value[-1].isspace():
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return to_datetime(value, name)


def _guard(object_type: ObjectType, record: Record, build: Callable[[], T]) -> T | BadRecord:
    """``build()``, or a BadRecord with the reason when a field cannot be read."""
    try:
        return build()
    except RecordError as error:
        return _bad(object_type, record, error)


def _bad(object_type: ObjectType, record: Record, error: RecordError) -> BadRecord:
    crm_id = record.get("Id")
    return BadRecord(
        object_type=object_type,
        crm_id=crm_id if isinstance(crm_id, str) and crm_id else None,
        reason=str(error),
        raw=raw_payload(record),
    )


def _required_id(record: Record, name: str = "Id") -> str:
    value = _text(record.get(name), name)
    if value is None:
        raise RecordError(f"field {name!r}: missing (every Salesforce record has one)")
    return value


def _deletion(object_type: ObjectType, record: Record) -> Deletion | None:
    """A Deletion when the row is a Recycle Bin row (``queryAll``'s ``IsDeleted = true``)."""
    if not _flag(record.get("IsDeleted"), "IsDeleted"):
        return None
    try:
        deleted_at = timestamp(record.get("SystemModstamp"), "SystemModstamp")
    except RecordError:
        deleted_at = None  # the deletion matters more than its exact time
    return Deletion(object_type, _required_id(record), deleted_at=deleted_at)


def custom_value(value: Any, name: str, sf_type: str) -> Any:
    """An extra field's value as JSON-friendly Python, the same from JSON and from CSV.

    Numbers become ``int``/``float``, dates and dateTimes ISO text (UTC), booleans ``bool``,
    everything else text; ``""`` and ``null`` become ``None``.
    """
    if sf_type == "boolean":
        return to_bool(value, name)
    if sf_type in _INTEGER_TYPES or sf_type in _FLOAT_TYPES:
        number = to_decimal(value, name)
        if number is None:
            return None
        if sf_type in _INTEGER_TYPES and number == number.to_integral_value():
            return int(number)
        return float(number)
    if sf_type == "date":
        day = to_date(value, name)
        return day.isoformat() if day is not None else None
    if sf_type == "datetime":
        moment = to_datetime(value, name)
        return moment.isoformat() if moment is not None else None
    return _text(value, name)


def _custom_fields(record: Record, context: FieldContext) -> dict[str, Any]:
    return {
        name: custom_value(record.get(name), name, sf_type)
        for name, sf_type in context.extra_fields.items()
    }


def _currency(record: Record, context: FieldContext) -> str | None:
    if context.multi_currency:
        return _text(record.get("CurrencyIsoCode"), "CurrencyIsoCode") or context.default_currency
    return context.default_currency


def opportunity(record: Record, context: FieldContext) -> Opportunity | Deletion | BadRecord:
    """An Opportunity row (REST or CSV) → Opportunity, Deletion (Recycle Bin) or BadRecord."""
    # No closure and _guard here, unlike the rarer objects: a sync converts millions.
    try:
        return _opportunity(record, context)
    except RecordError as error:
        return _bad(ObjectType.OPPORTUNITY, record, error)


def _opportunity(record: Record, context: FieldContext) -> Opportunity | Deletion:
    get = record.get
    if get("IsDeleted") is not False:
        deleted = _deletion(ObjectType.OPPORTUNITY, record)
        if deleted is not None:
            return deleted
    crm_id = _required_id(record)
    stage_name = _text(get("StageName"), "StageName")
    if stage_name is None:
        raise RecordError("field 'StageName': missing (an opportunity must have a stage)")
    return Opportunity(
        crm_id=crm_id,
        name=_text(get("Name"), "Name"),
        account_crm_id=_text(get("AccountId"), "AccountId"),
        pipeline_crm_id=DEFAULT_PIPELINE,
        stage_crm_id=stage_name,
        stage_label=stage_name,
        amount=_number(get("Amount"), "Amount"),
        currency=_currency(record, context),
        close_date=to_date(get("CloseDate"), "CloseDate"),
        probability=_percent(get("Probability"), "Probability"),
        is_closed=_flag(get("IsClosed"), "IsClosed"),
        is_won=_flag(get("IsWon"), "IsWon"),
        type=_text(get("Type"), "Type"),
        record_type=_text(get("RecordTypeId"), "RecordTypeId"),
        owner_crm_id=_text(get("OwnerId"), "OwnerId"),
        custom_fields=_custom_fields(record, context),
        crm_created_at=timestamp(get("CreatedDate"), "CreatedDate"),
        crm_modified_at=timestamp(get("SystemModstamp"), "SystemModstamp"),
        raw=raw_payload(record),
    )


def _region(custom: Mapping[str, Any]) -> str | None:
    # Region is not a standard Account field: orgs add their own (Region__c, Sales_Region__c).
    # A configured extra field called "Region" (any case, any namespace-free __c) fills it.
    for name, value in custom.items():
        if name.lower().removesuffix("__c") == "region" and value is not None:
            return str(value)
    return None


def account(record: Record, context: FieldContext) -> Account | Deletion | BadRecord:
    """An Account row (REST or CSV) → Account, Deletion (Recycle Bin) or BadRecord."""
    try:
        return _account(record, context)
    except RecordError as error:
        return _bad(ObjectType.ACCOUNT, record, error)


def _account(record: Record, context: FieldContext) -> Account | Deletion:
    get = record.get
    if get("IsDeleted") is not False:
        deleted = _deletion(ObjectType.ACCOUNT, record)
        if deleted is not None:
            return deleted
    custom = _custom_fields(record, context)
    return Account(
        crm_id=_required_id(record),
        name=_text(get("Name"), "Name"),
        industry=_text(get("Industry"), "Industry"),
        country=_text(get("BillingCountry"), "BillingCountry"),
        region=_region(custom),
        type=_text(get("Type"), "Type"),
        owner_crm_id=_text(get("OwnerId"), "OwnerId"),
        currency=_currency(record, context),
        annual_revenue=_number(get("AnnualRevenue"), "AnnualRevenue"),
        custom_fields=custom,
        crm_created_at=timestamp(get("CreatedDate"), "CreatedDate"),
        crm_modified_at=timestamp(get("SystemModstamp"), "SystemModstamp"),
        raw=raw_payload(record),
    )


def owner(record: Record) -> Owner | BadRecord:
    """A User row → Owner."""

    def build() -> Owner:
        return Owner(
            crm_id=_required_id(record),
            email=_text(record.get("Email"), "Email"),
            name=_text(record.get("Name"), "Name"),
            active=to_bool(record.get("IsActive"), "IsActive", default=True),
            raw=raw_payload(record),
        )

    return _guard(ObjectType.OWNER, record, build)


def default_pipeline() -> Pipeline:
    """The one pipeline of a Salesforce org."""
    return Pipeline(crm_id=DEFAULT_PIPELINE, label="Opportunities")


def stage(record: Record) -> Stage | BadRecord:
    """An OpportunityStage row → Stage of the default pipeline.

    ``crm_id`` is the value opportunities carry in ``StageName`` (``ApiName``); the label is
    what users see (``MasterLabel``).
    """

    def build() -> Stage:
        api_name = _text(record.get("ApiName"), "ApiName") or _text(
            record.get("MasterLabel"), "MasterLabel"
        )
        if api_name is None:
            raise RecordError("field 'ApiName': missing (a stage needs its picklist value)")
        order = to_decimal(record.get("SortOrder"), "SortOrder")
        return Stage(
            pipeline_crm_id=DEFAULT_PIPELINE,
            crm_id=api_name,
            label=_text(record.get("MasterLabel"), "MasterLabel") or api_name,
            display_order=int(order) if order is not None else 0,
            probability=to_fraction(
                record.get("DefaultProbability"), "DefaultProbability", percent=True
            ),
            is_closed=to_bool(record.get("IsClosed"), "IsClosed"),
            is_won=to_bool(record.get("IsWon"), "IsWon"),
            active=to_bool(record.get("IsActive"), "IsActive", default=True),
            raw=raw_payload(record),
        )

    return _guard(ObjectType.STAGE, record, build)


def _changed_at(record: Record) -> datetime:
    moment = to_datetime(record.get("CreatedDate"), "CreatedDate")
    if moment is None:
        raise RecordError("field 'CreatedDate': missing (a history row has a time)")
    return moment


def field_history_change(record: Record) -> StageChange | BadRecord:
    """An ``OpportunityFieldHistory`` row of ``Field = 'StageName'`` → StageChange."""

    def build() -> StageChange:
        to_stage = _text(record.get("NewValue"), "NewValue")
        if to_stage is None:
            raise RecordError("field 'NewValue': missing (a stage change needs its new stage)")
        return StageChange(
            opportunity_crm_id=_required_id(record, "OpportunityId"),
            to_stage=to_stage,
            changed_at=_changed_at(record),
            from_stage=_text(record.get("OldValue"), "OldValue"),
            source="field_history",
            crm_id=_required_id(record),
        )

    return _guard(ObjectType.STAGE_CHANGE, record, build)


def opportunity_history_changes(
    records: Iterable[Record],
) -> list[StageChange | BadRecord]:
    """``OpportunityHistory`` rows (ordered by CreatedDate) → the stage transitions among them.

    OpportunityHistory snapshots an opportunity on every change of stage, amount, probability,
    close date or forecast category, so consecutive rows of one opportunity that keep the
    stage are not transitions and are left out. ``from_stage`` is the previous row's stage
    of the same opportunity within ``records`` (one page), else ``None``.
    """
    previous: dict[str, str] = {}
    changes: list[StageChange | BadRecord] = []
    for record in records:

        def build(record: Record = record) -> StageChange:
            to_stage = _text(record.get("StageName"), "StageName")
            if to_stage is None:
                raise RecordError("field 'StageName': missing (a history row has a stage)")
            return StageChange(
                opportunity_crm_id=_required_id(record, "OpportunityId"),
                to_stage=to_stage,
                changed_at=_changed_at(record),
                from_stage=None,
                source="opportunity_history",
                crm_id=_required_id(record),
            )

        change = _guard(ObjectType.STAGE_CHANGE, record, build)
        if isinstance(change, BadRecord):
            changes.append(change)
            continue
        before = previous.get(change.opportunity_crm_id)
        previous[change.opportunity_crm_id] = change.to_stage
        if before == change.to_stage:
            continue  # an amount or date change: same stage, not a transition
        changes.append(change if before is None else replace(change, from_stage=before))
    return changes
