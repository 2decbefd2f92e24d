"""Builders for mapping tests: catalog items, rules, deals and engines in one line each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.core.records import Account, Opportunity, Owner, Stage
from mapping import Catalog, CatalogItem, OpportunityFacts, RecommendationEngine
from mapping.config import DEFAULT_CANONICAL_STAGES, MappingSettings, Rule
from mapping.effectiveness import Effect

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STAGE_MAP = {
    "Prospecting": "discover",
    "Qualification": "qualify",
    "Value Proposition": "solution",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiate",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
STAGE_NAMES = {canonical: crm for crm, canonical in STAGE_MAP.items()}


def item(content_id: str, stages: Sequence[str] = ("proposal",), **fields: Any) -> CatalogItem:
    """A catalog item with sensible defaults."""
    tags = {facet: tuple(values) for facet, values in fields.pop("tags", {}).items()}
    return CatalogItem(
        id=content_id,
        title=fields.pop("title", content_id.replace("-", " ").title()),
        url=fields.pop("url", f"https://content.example.com/{content_id}"),
        type=fields.pop("type", "deck"),
        stages=tuple(stages),
        tags=tags,
        **fields,
    )


def rule(rule_id: str, **data: Any) -> Rule:
    """A validated rule; ``select`` defaults to nothing, so pass it."""
    return Rule.model_validate({"id": rule_id, **data})


def deal(
    stage: str = "proposal",
    *,
    connection: str = "crm",
    account: Mapping[str, Any] | None = None,
    owner: str | None = None,
    **opportunity: Any,
) -> OpportunityFacts:
    """A deal at canonical ``stage`` (through STAGE_MAP) with optional account facts."""
    if "amount" in opportunity and opportunity["amount"] is not None:
        opportunity["amount"] = Decimal(str(opportunity["amount"]))
    opportunity.setdefault("stage_crm_id", STAGE_NAMES.get(stage, stage))
    return OpportunityFacts(
        connection=connection,
        opportunity=Opportunity(
            crm_id=opportunity.pop("crm_id", "006X"), name="Deal", **opportunity
        ),
        account=Account(crm_id="001X", name="Account", **account) if account is not None else None,
        owner=Owner(crm_id="005X", email=owner, name="Rep") if owner else None,
    )


def stage_meta(stage_id: str, **fields: Any) -> Stage:
    """Synced metadata of a CRM stage."""
    return Stage(pipeline_crm_id="default", crm_id=stage_id, label=stage_id, **fields)


def make_engine(
    items: Iterable[CatalogItem],
    rules: Sequence[Rule] = (),
    *,
    settings: Mapping[str, Any] | None = None,
    top_n: int = 5,
    custom_fields: Mapping[str, set[str]] | None = None,
    effects: Iterable[Effect] = (),
    stage_map: Mapping[str, str] = STAGE_MAP,
) -> RecommendationEngine:
    """An engine over ``items`` for connection ``crm``."""
    return RecommendationEngine(
        catalog=Catalog(items),
        rules=rules,
        stage_maps={"crm": stage_map},
        canonical_stages=DEFAULT_CANONICAL_STAGES,
        settings=MappingSettings.model_validate(settings or {}),
        top_n=top_n,
        custom_fields=custom_fields,
        effects=effects,
    )


def ids(engine: RecommendationEngine, facts: OpportunityFacts, **kwargs: Any) -> list[str]:
    """The recommended content ids, best first."""
    return [r.content.id for r in engine.recommend_for(facts, now=kwargs.pop("now", NOW), **kwargs)]
