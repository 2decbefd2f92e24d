"""Golden tests on the shipped example: config.example.yaml and examples/content/.

What a rep would see for typical deals of both example connections, with explanations, and
what `stagelink coverage` says about the example catalog. Regenerate after an intended
change with ``STAGELINK_UPDATE_GOLDEN=1 pytest tests/mapping/test_golden.py`` and review the
diff of ``tests/mapping/golden/``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mapping import OpportunityFacts, build_engine
from mapping.coverage import ObservedStage, coverage_report
from mapping.stages import CrmStageRef
from stagelink.cli.mapping_commands import coverage_json
from stagelink.settings import AppConfig, load_config
from tests.mapping.helpers import NOW, deal

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"

DEALS: dict[str, OpportunityFacts] = {
    "salesforce: EUR bank at proposal, stuck for 45 days": deal(
        connection="salesforce-prod",
        stage_crm_id="Proposal/Price Quote",
        amount=120000,
        currency="EUR",
        type="New Customer",
        account={"industry": "Banking", "region": "EMEA", "country": "Germany"},
        stage_entered_at=NOW - timedelta(days=45),
        custom_fields={"Product_Line__c": "Analytics"},
    ),
    "salesforce: small new retail logo qualifying (no pricing yet)": deal(
        connection="salesforce-prod",
        stage_crm_id="Qualification",
        amount=8000,
        currency="USD",
        type="New Customer",
        account={"industry": "Retail", "region": "AMER"},
        custom_fields={"Product_Line__c": "Mobile"},
    ),
    "salesforce: customer upgrade in needs analysis": deal(
        connection="salesforce-prod",
        stage_crm_id="Needs Analysis",
        amount=30000,
        currency="GBP",
        type="Existing Customer - Upgrade",
        account={"industry": "Manufacturing", "region": "EMEA"},
    ),
    "salesforce: stage missing from the map, placed by probability": deal(
        connection="salesforce-prod",
        stage_crm_id="Technical Validation",
        probability=0.55,
        amount=2000000,
        currency="JPY",
        account={"industry": "Telecommunications", "region": "APAC"},
    ),
    "salesforce: on a phone, at proposal": deal(
        connection="salesforce-prod",
        stage_crm_id="Proposal/Price Quote",
        amount=20000,
        currency="USD",
        account={"industry": "Healthcare", "region": "AMER"},
    ),
    "hubspot: financial services deal, contract sent": deal(
        connection="hubspot-eu",
        pipeline_crm_id="default",
        stage_crm_id="contractsent",
        amount=70000,
        currency="EUR",
        type="existingbusiness",
        account={"industry": "FINANCIAL_SERVICES"},
        custom_fields={"product_line": "Services"},
    ),
    "hubspot: a pipeline nobody mapped": deal(
        connection="hubspot-eu", pipeline_crm_id="999", stage_crm_id="123", amount=1000
    ),
}


@pytest.fixture(scope="module")
def example() -> AppConfig:
    return load_config(REPO / "config.example.yaml", environ={})


def check_golden(name: str, actual: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("STAGELINK_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == actual


def test_example_recommendations(example: AppConfig) -> None:
    engine = build_engine(example)
    actual = {}
    for name, facts in DEALS.items():
        evaluation = engine.evaluate(facts, now=NOW, mobile="phone" in name)
        actual[name] = {
            "stage": evaluation.stage.describe(),
            "recommendations": [
                {"id": r.content.id, "score": r.score, "why": r.explanation}
                for r in evaluation.recommendations
            ],
        }
    check_golden("example_recommendations.json", actual)


def test_example_coverage(example: AppConfig) -> None:
    engine = build_engine(example)
    observed = {
        "salesforce-prod": [
            *(
                ObservedStage(CrmStageRef("default", name), 10, 5)
                for name in example.connection("salesforce-prod").stage_map
            ),
            ObservedStage(CrmStageRef("default", "Technical Validation", probability=0.55), 4, 4),
            ObservedStage(CrmStageRef("default", "Legacy", is_closed=True), 2, 0),
        ],
        "hubspot-eu": [ObservedStage(CrmStageRef("default", "closedwon", "Closed won"), 3, 0)],
    }
    report = coverage_report(engine, observed=observed, deals=DEALS.values(), now=NOW)
    check_golden("example_coverage.json", coverage_json(report))
