"""What the demo shows of the synced data: read back from stagelink's own storage."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from stagelink.storage import Connection, CrmAccount, CrmOpportunity


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
