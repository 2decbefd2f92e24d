"""Synced CRM data for mapping tests, written through the storage models."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from stagelink.storage import (
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmStage,
    CrmStageHistory,
    UsageAction,
    UsageEvent,
    UsageStatus,
    get_or_create_connection,
    make_engine,
    session_factory,
)

NOW = datetime.now(UTC)
SF_STAGES = [
    # (StageName, probability, closed, won)
    ("Prospecting", 0.1, False, False),
    ("Qualification", 0.1, False, False),
    ("Proposal/Price Quote", 0.75, False, False),
    ("Technical Validation", 0.55, False, False),
    ("Closed Won", 1.0, True, True),
    ("Closed Lost", 0.0, True, False),
]


def seed(database_url: str) -> None:
    """A small Salesforce org's worth of synced data, inserted through the storage models.

    Deals: 006NORD (EUR bank at proposal, 45 days in stage), 006SHOP (retail, proposal),
    006TECH (a stage only the fallback maps), 006ODD (a stage nobody maps), 006GONE
    (deleted), and ten closed deals 006C0..9 that went through proposal; the ROI calculator
    was used (viewed + shared) at proposal on 006C0..3, which all won; one other won.
    """
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        conn = get_or_create_connection(session, "salesforce-prod", "salesforce").id
        for order, (name, probability, closed, won) in enumerate(SF_STAGES):
            session.add(
                CrmStage(
                    connection_id=conn, crm_id=name, pipeline_crm_id="default", label=name,
                    display_order=order, probability=probability, is_closed=closed, is_won=won,
                )
            )  # fmt: skip
        session.add(CrmOwner(connection_id=conn, crm_id="005A", email="ana@example.com"))
        session.add_all(
            [
                CrmAccount(connection_id=conn, crm_id="001BANK", name="Nordbank AG",
                           industry="Banking", region="EMEA", country="Germany"),
                CrmAccount(connection_id=conn, crm_id="001SHOP", name="Shopwell Inc.",
                           industry="Retail", region="AMER", country="United States"),
            ]
        )  # fmt: skip

        def opportunity(crm_id: str, stage: str, account: str = "001SHOP", **kw: object) -> None:
            known = {n: (p, c, w) for n, p, c, w in SF_STAGES}
            probability, closed, won = known.get(stage, (None, False, False))
            session.add(
                CrmOpportunity(
                    connection_id=conn, crm_id=crm_id, name=f"Deal {crm_id}",
                    account_crm_id=account, owner_crm_id="005A", pipeline_crm_id="default",
                    stage_crm_id=stage, stage_label=stage, probability=probability,
                    is_closed=closed, is_won=won, close_date=date(2026, 12, 1), **kw,
                )
            )  # fmt: skip

        opportunity(
            "006NORD", "Proposal/Price Quote", "001BANK", amount=Decimal("120000"),
            currency="EUR", type="New Customer", stage_entered_at=NOW - timedelta(days=45),
            custom_fields={"Product_Line__c": "Analytics"},
        )  # fmt: skip
        opportunity("006SHOP", "Proposal/Price Quote", amount=Decimal("9000"), currency="USD")
        opportunity("006TECH", "Technical Validation", amount=Decimal("9000"), currency="USD")
        opportunity("006ODD", "Mystery Stage", amount=Decimal("100"), currency="USD")
        opportunity("006GONE", "Prospecting", deleted_at=NOW)
        # History: ten closed deals went through the proposal stage; the ROI calculator was
        # used at proposal on four of them, and all four won; of the six others one won.
        for i in range(10):
            crm_id = f"006C{i}"
            final = "Closed Won" if i < 5 else "Closed Lost"
            opportunity(crm_id, final, amount=Decimal("5000"), currency="USD")
            entered = NOW - timedelta(days=60)
            session.add_all(
                [
                    CrmStageHistory(connection_id=conn, opportunity_crm_id=crm_id,
                                    to_stage="Proposal/Price Quote", changed_at=entered,
                                    source="field_history"),
                    CrmStageHistory(connection_id=conn, opportunity_crm_id=crm_id,
                                    from_stage="Proposal/Price Quote", to_stage=final,
                                    changed_at=entered + timedelta(days=20),
                                    source="field_history"),
                ]
            )  # fmt: skip
            if i < 4:
                for action in (UsageAction.VIEWED, UsageAction.SHARED):
                    session.add(
                        UsageEvent(
                            client_event_id=uuid.uuid4(), connection_id=conn,
                            rep_email="ana@example.com", opportunity_crm_id=crm_id,
                            content_id="roi-calculator", action=action,
                            occurred_at=entered + timedelta(days=3), status=UsageStatus.ACCEPTED,
                        )
                    )  # fmt: skip
    engine.dispose()
