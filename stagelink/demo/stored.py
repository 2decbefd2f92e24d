"""What the demo shows of the synced data: read back from stagelink's own storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from stagelink.storage import Connection, CrmAccount, CrmOpportunity, CrmOwner


def largest_open_opportunities(session: Session, limit: int = 3) -> list[dict[str, Any]]:
    """The largest open opportunities of each connection, as rows for a table."""
    rows: list[dict[str, Any]] = []
    for connection in session.scalars(select(Connection).order_by(Connection.name)):
        query = (
            select(CrmOpportunity, CrmAccount.name)
            .outerjoin(
                CrmAccount,
                and_(
                    CrmAccount.connection_id == CrmOpportunity.connection_id,
                    CrmAccount.crm_id == CrmOpportunity.account_crm_id,
                ),
            )
            .where(
                CrmOpportunity.connection_id == connection.id,
                CrmOpportunity.is_closed.is_(False),
                CrmOpportunity.deleted_at.is_(None),
                CrmOpportunity.amount.is_not(None),
            )
            .order_by(CrmOpportunity.amount.desc(), CrmOpportunity.crm_id)
            .limit(limit)
        )
        for opportunity, account in session.execute(query):
            rows.append(
                {
                    "connection": connection.name,
                    "crm_id": opportunity.crm_id,
                    "name": opportunity.name or opportunity.crm_id,
                    "stage": opportunity.stage_label or opportunity.stage_crm_id or "",
                    "amount": f"{opportunity.amount:,.2f} {opportunity.currency or ''}".strip(),
                    "account": account or "",
                }
            )
    return rows


@dataclass(frozen=True)
class OwnedDeal:
    """A live deal whose owner has an e-mail: someone a rep surface can be shown to."""

    connection: str
    crm_id: str
    name: str | None
    owner_crm_id: str
    owner_email: str
    pipeline_crm_id: str | None
    stage_crm_id: str | None
    is_closed: bool


def owned_deals(
    session: Session,
    connection: str | None = None,
    *,
    open_only: bool = False,
    active_owners: bool = False,
    largest_first: bool = False,
    limit: int | None = None,
) -> list[OwnedDeal]:
    """Live (not deleted) deals with an owner who has an e-mail, by connection then id
    (or largest amount first); the demo, benchmarks and tests pick the reps they act as here."""
    query = (
        select(
            Connection.name,
            CrmOpportunity.crm_id,
            CrmOpportunity.name,
            CrmOwner.crm_id,
            CrmOwner.email,
            CrmOpportunity.pipeline_crm_id,
            CrmOpportunity.stage_crm_id,
            CrmOpportunity.is_closed,
        )
        .join(Connection, Connection.id == CrmOpportunity.connection_id)
        .join(
            CrmOwner,
            and_(
                CrmOwner.connection_id == CrmOpportunity.connection_id,
                CrmOwner.crm_id == CrmOpportunity.owner_crm_id,
            ),
        )
        .where(CrmOpportunity.deleted_at.is_(None), CrmOwner.email.is_not(None))
    )
    if connection is not None:
        query = query.where(Connection.name == connection)
    if open_only:
        query = query.where(CrmOpportunity.is_closed.is_(False))
    if active_owners:
        query = query.where(CrmOwner.active.is_(True))
    if largest_first:
        query = query.where(CrmOpportunity.amount.is_not(None)).order_by(
            Connection.name, CrmOpportunity.amount.desc(), CrmOpportunity.crm_id
        )
    else:
        query = query.order_by(Connection.name, CrmOpportunity.crm_id)
    if limit is not None:
        query = query.limit(limit)
    return [
        OwnedDeal(name, crm_id, title, owner, email, pipeline, stage, closed)
        for name, crm_id, title, owner, email, pipeline, stage, closed in session.execute(query)
        if email  # the query filters NULLs; this narrows the type
    ]
