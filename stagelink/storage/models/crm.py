"""Records synced from a CRM: owners, pipelines and stages, accounts, opportunities,
their stage history, and records quarantined because they could not be stored.

Conventions for every CRM table:

- ``crm_id`` is the CRM's own id (Salesforce 18-character id, HubSpot object id) and is
  unique per connection. References between CRM records (``account_crm_id``,
  ``owner_crm_id``, ``stage_crm_id``...) are CRM ids, not foreign keys: records arrive in
  any order and a referenced record may not be synced yet.
- ``raw`` is the CRM's payload as received; ``custom_fields`` holds the configured extra
  fields (e.g. ``{"Product_Line__c": "Payments"}``) that mapping rules can use.
- ``synced_at`` is when stagelink last wrote the row; ``deleted_at`` is set when the CRM
  deleted or archived the record (rows are kept, so history and usage stay explainable).
- ``probability`` is a fraction from 0.0 to 1.0 (Salesforce's percent divided by 100).
- Strings that come from users of the CRM are ``Text``: PostgreSQL would reject a
  too-long VARCHAR where SQLite silently accepts it, and the two must behave the same.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stagelink.storage.models.base import Base, BigIntKey, IdMixin
from stagelink.storage.types import email_type, utcnow

CRM_ID = String(255)


class _ConnectionScoped:
    connection_id: Mapped[int] = mapped_column(
        BigIntKey, ForeignKey("connections.id", ondelete="CASCADE"), sort_order=-90
    )


class _CrmRecord(_ConnectionScoped):
    crm_id: Mapped[str] = mapped_column(CRM_ID, sort_order=-80)
    # Bookkeeping columns go last so psql output reads like the CRM record.
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict, sort_order=90)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=91)
    deleted_at: Mapped[datetime | None] = mapped_column(sort_order=92)


class CrmOwner(IdMixin, _CrmRecord, Base):
    """A CRM user who owns records (Salesforce User, HubSpot owner); reps map by e-mail."""

    __tablename__ = "crm_owners"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_id", name="uq_crm_owners_crm_id"),
        Index("ix_crm_owners_email", "connection_id", "email"),
    )

    email: Mapped[str | None] = mapped_column(email_type())
    name: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CrmPipeline(IdMixin, _CrmRecord, Base):
    """A deal pipeline. CRMs without pipelines (Salesforce) use one fixed id, e.g. ``default``."""

    __tablename__ = "crm_pipelines"
    __table_args__ = (UniqueConstraint("connection_id", "crm_id", name="uq_crm_pipelines_crm_id"),)

    label: Mapped[str] = mapped_column(Text)
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CrmStage(IdMixin, _CrmRecord, Base):
    """A deal stage in a pipeline (HubSpot stage id; Salesforce ``StageName`` value)."""

    __tablename__ = "crm_stages"
    __table_args__ = (
        UniqueConstraint("connection_id", "pipeline_crm_id", "crm_id", name="uq_crm_stages_crm_id"),
    )

    pipeline_crm_id: Mapped[str] = mapped_column(CRM_ID)
    label: Mapped[str] = mapped_column(Text)
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    probability: Mapped[float | None] = mapped_column(Double)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CrmAccount(IdMixin, _CrmRecord, Base):
    """A customer account (Salesforce Account, HubSpot company)."""

    __tablename__ = "crm_accounts"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_id", name="uq_crm_accounts_crm_id"),
        Index("ix_crm_accounts_modified", "connection_id", "crm_modified_at"),
    )

    name: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    owner_crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    #: ISO 4217 code of ``annual_revenue``.
    currency: Mapped[str | None] = mapped_column(String(16))
    annual_revenue: Mapped[Decimal | None]
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    crm_created_at: Mapped[datetime | None]
    #: The CRM's modification cursor (Salesforce SystemModstamp, HubSpot hs_lastmodifieddate).
    crm_modified_at: Mapped[datetime | None]


class CrmOpportunity(IdMixin, _CrmRecord, Base):
    """A deal (Salesforce Opportunity, HubSpot deal), normalized plus its raw payload."""

    __tablename__ = "crm_opportunities"
    __table_args__ = (
        UniqueConstraint("connection_id", "crm_id", name="uq_crm_opportunities_crm_id"),
        Index("ix_crm_opportunities_stage", "connection_id", "stage_crm_id"),
        Index("ix_crm_opportunities_modified", "connection_id", "crm_modified_at"),
        Index("ix_crm_opportunities_account", "connection_id", "account_crm_id"),
        Index("ix_crm_opportunities_owner", "connection_id", "owner_crm_id"),
    )

    account_crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    name: Mapped[str | None] = mapped_column(Text)
    pipeline_crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    stage_crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    stage_label: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None]
    #: ISO 4217 code of ``amount`` (multi-currency orgs differ per record).
    currency: Mapped[str | None] = mapped_column(String(16))
    close_date: Mapped[date | None]
    probability: Mapped[float | None] = mapped_column(Double)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str | None] = mapped_column(Text)
    record_type: Mapped[str | None] = mapped_column(Text)
    owner_crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    crm_created_at: Mapped[datetime | None]
    #: The CRM's modification cursor (Salesforce SystemModstamp, HubSpot hs_lastmodifieddate).
    crm_modified_at: Mapped[datetime | None]
    #: When the deal entered its current stage (for "days in stage").
    stage_entered_at: Mapped[datetime | None]


class CrmStageHistory(IdMixin, _ConnectionScoped, Base):
    """One stage change of an opportunity; the same transition stored twice is one row."""

    __tablename__ = "crm_stage_history"
    __table_args__ = (
        UniqueConstraint(
            "connection_id",
            "opportunity_crm_id",
            "to_stage",
            "changed_at",
            name="uq_crm_stage_history_transition",
        ),
    )

    opportunity_crm_id: Mapped[str] = mapped_column(CRM_ID)
    #: Stage crm ids; ``from_stage`` is None for the first known stage.
    from_stage: Mapped[str | None] = mapped_column(CRM_ID)
    to_stage: Mapped[str] = mapped_column(CRM_ID)
    changed_at: Mapped[datetime]
    #: Where the change was learned: field_history, opportunity_history, date_entered, sync.
    source: Mapped[str] = mapped_column(String(50))
    #: Id of the CRM's own history row, when it has one.
    crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedRecord(IdMixin, _ConnectionScoped, Base):
    """A CRM record that could not be stored, kept with the reason and its raw payload.

    One row per (connection, object type, crm id): seeing the same bad record again
    bumps ``last_seen`` and ``occurrences`` (and clears ``resolved_at``).
    """

    __tablename__ = "quarantined_records"
    __table_args__ = (
        UniqueConstraint(
            "connection_id", "object_type", "crm_id", name="uq_quarantined_records_record"
        ),
    )

    #: account, opportunity, owner, stage, stage_history, ...
    object_type: Mapped[str] = mapped_column(String(50))
    #: None when the record is too broken to have an id.
    crm_id: Mapped[str | None] = mapped_column(CRM_ID)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None]
    job_run_id: Mapped[int | None] = mapped_column(
        BigIntKey, ForeignKey("job_runs.id", ondelete="SET NULL"), index=True
    )
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
