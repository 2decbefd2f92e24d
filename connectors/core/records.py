"""The normalized records every connector yields and the sync engine stores.

A connector turns the CRM's payloads into these plain, immutable values (timezone-aware UTC
datetimes, ``Decimal`` money with its ISO currency, probability as a 0..1 fraction) and keeps
the payload it was built from in ``raw``. It never touches the database: the engine stores
what it is given, so a third-party connector only has to produce these.

Besides records, a stream may yield:

* :class:`Deletion` — the CRM deleted or archived a record;
* :class:`LiveIds` — the complete set of ids that still exist, when the CRM's delete log
  cannot be trusted (purged); the engine marks every other stored record deleted;
* :class:`BadRecord` — a payload that could not be normalized; the engine quarantines it
  with the reason and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class ObjectType(StrEnum):
    """The kinds of CRM record stagelink stores (also the quarantine's ``object_type``)."""

    OWNER = "owner"
    PIPELINE = "pipeline"
    STAGE = "stage"
    ACCOUNT = "account"
    OPPORTUNITY = "opportunity"
    STAGE_CHANGE = "stage_change"


@dataclass(frozen=True, slots=True)
class Owner:
    """A CRM user who owns records (Salesforce User, HubSpot owner)."""

    crm_id: str
    email: str | None
    name: str | None
    active: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    object_type = ObjectType.OWNER


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A deal pipeline; Salesforce has one, ``default``."""

    crm_id: str
    label: str
    display_order: int = 0
    active: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    object_type = ObjectType.PIPELINE


@dataclass(frozen=True, slots=True)
class Stage:
    """A stage of a pipeline (Salesforce ``StageName`` value, HubSpot stage id)."""

    pipeline_crm_id: str
    crm_id: str
    label: str
    display_order: int = 0
    probability: float | None = None  # 0.0 .. 1.0
    is_closed: bool = False
    is_won: bool = False
    active: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    object_type = ObjectType.STAGE


@dataclass(frozen=True, slots=True)
class Account:
    """A customer account (Salesforce Account, HubSpot company)."""

    crm_id: str
    name: str | None
    industry: str | None = None
    country: str | None = None
    region: str | None = None
    type: str | None = None
    owner_crm_id: str | None = None
    currency: str | None = None  # ISO 4217 of annual_revenue
    annual_revenue: Decimal | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    crm_created_at: datetime | None = None
    crm_modified_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    object_type = ObjectType.ACCOUNT


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A deal (Salesforce Opportunity, HubSpot deal)."""

    crm_id: str
    name: str | None
    account_crm_id: str | None = None
    pipeline_crm_id: str | None = None
    stage_crm_id: str | None = None
    stage_label: str | None = None
    amount: Decimal | None = None
    currency: str | None = None  # ISO 4217 of amount; multi-currency orgs differ per record
    close_date: date | None = None
    probability: float | None = None  # 0.0 .. 1.0
    is_closed: bool = False
    is_won: bool = False
    type: str | None = None
    record_type: str | None = None
    owner_crm_id: str | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    crm_created_at: datetime | None = None
    crm_modified_at: datetime | None = None
    stage_entered_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    object_type = ObjectType.OPPORTUNITY


@dataclass(frozen=True, slots=True)
class StageChange:
    """An opportunity entered ``to_stage`` at ``changed_at``; stored once per transition."""

    opportunity_crm_id: str
    to_stage: str
    changed_at: datetime
    from_stage: str | None = None
    #: field_history, opportunity_history, date_entered, sync
    source: str = "sync"
    #: The CRM's own id of the history row, when it has one.
    crm_id: str | None = None

    object_type = ObjectType.STAGE_CHANGE


@dataclass(frozen=True, slots=True)
class Deletion:
    """The CRM deleted (or archived) this record."""

    object_type: ObjectType
    crm_id: str
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveIds:
    """Every id of ``object_type`` that still exists in the CRM (a full reconciliation)."""

    object_type: ObjectType
    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A payload that could not be normalized: quarantined with ``reason``, never dropped."""

    object_type: ObjectType
    crm_id: str | None
    reason: str
    raw: dict[str, Any] | None = None


CrmRecord = Owner | Pipeline | Stage | Account | Opportunity | StageChange
"""A normalized record the engine upserts."""

Item = CrmRecord | Deletion | LiveIds | BadRecord
"""Anything a stream yields inside a batch."""
