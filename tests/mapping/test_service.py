"""The Recommender the web layer and CLI share, on SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapping import OpportunityFacts
from stagelink.recommendations import OpportunityNotFound, Recommender
from stagelink.settings import AppConfig, parse_config
from stagelink.storage import make_engine
from tests.mapping.crm_data import seed

REPO = Path(__file__).resolve().parents[2]


def config_for(database_url: str, tmp_path: Path, blend: float = 0.5) -> AppConfig:
    text = textwrap.dedent(
        f"""\
        database_url: {database_url}
        connections:
          - name: salesforce-prod
            kind: salesforce
            allow_plaintext_secrets: true
            auth: {{method: password, username: api@example.com, password: demo}}
            extra_fields: {{opportunity: [Product_Line__c]}}
            stage_map:
              Prospecting: discover
              Qualification: qualify
              Proposal/Price Quote: proposal
              Closed Won: closed_won
              Closed Lost: closed_lost
        content:
          catalogs: [{REPO / "examples" / "content"}]
        rules:
          - id: banking-proof
            when: {{industries: [Banking]}}
            select: {{content_ids: [banking-case-study]}}
            boost: 2
        mapping:
          stage_fallback:
            by_probability: [{{up_to: 0.6, stage: solution}}]
          effectiveness: {{blend: {blend}}}
        """
    )
    return parse_config(text, source=tmp_path / "stagelink.yaml", environ={})


@pytest.fixture
def recommender(database_url: str, tmp_path: Path) -> Iterator[Recommender]:
    seed(database_url)
    storage = make_engine(database_url)
    try:
        yield Recommender.open(config_for(database_url, tmp_path), storage)
    finally:
        storage.dispose()


def test_recommend_reads_the_deal_its_account_and_stage(recommender: Recommender) -> None:
    recs = recommender.recommend("salesforce-prod", "006NORD")
    assert recs[0].content.id == "banking-case-study"
    assert recs[0].rules == ("banking-proof",)
    assert recs[0].explanation.startswith(
        "stage Proposal/Price Quote → proposal; industry Banking matched rule banking-proof (+2)"
    )
    facts = recommender.facts("salesforce-prod", "006NORD")
    assert isinstance(facts, OpportunityFacts)
    assert facts.account is not None
    assert facts.account.name == "Nordbank AG"
    assert facts.owner is not None
    assert facts.owner.email == "ana@example.com"
    assert facts.stage is not None
    assert facts.stage.probability == 0.75
    # The pure entry point gives the same answer without the database.
    assert recommender.recommend_for(facts) == recs
    assert recommender.content("banking-case-study") == recs[0].content


def test_effectiveness_enters_ranking_when_blended(recommender: Recommender) -> None:
    recs = {r.content.id: r for r in recommender.recommend("salesforce-prod", "006SHOP")}
    assert "roi-calculator" in recs
    assert recs["roi-calculator"].reasons[-1].startswith("boosted by ")
    effects = recommender.effectiveness()
    assert [(e.content_id, e.stage, e.won_touched, e.closed_touched) for e in effects] == [
        ("roi-calculator", "proposal", 4, 4)
    ]


def test_stage_metadata_drives_the_fallback(recommender: Recommender) -> None:
    _, evaluation = recommender.evaluate("salesforce-prod", "006TECH")
    assert (evaluation.stage.canonical, evaluation.stage.detail) == ("solution", "probability 55%")


def test_missing_and_deleted_deals(recommender: Recommender) -> None:
    with pytest.raises(OpportunityNotFound, match="is not synced"):
        recommender.recommend("salesforce-prod", "006NOPE")
    with pytest.raises(OpportunityNotFound, match="was deleted in the CRM"):
        recommender.recommend("salesforce-prod", "006GONE")
    with pytest.raises(KeyError, match="no connection named 'elsewhere'"):
        recommender.recommend("elsewhere", "006NORD")


def test_coverage_from_the_database(recommender: Recommender) -> None:
    report = recommender.coverage()
    unmapped = {u.crm_stage: u for u in report.unmapped}
    assert set(unmapped) == {"Technical Validation", "Mystery Stage"}
    assert (unmapped["Technical Validation"].fallback, unmapped["Technical Validation"].detail) == (
        "solution",
        "probability 55%",
    )
    assert (unmapped["Mystery Stage"].opportunities, unmapped["Mystery Stage"].fallback) == (
        1,
        None,
    )
    assert report.deals_checked == 14
    assert report.idle_rules == []
