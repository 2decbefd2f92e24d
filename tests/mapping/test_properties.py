"""Property tests: for any catalog, rules and deal, recommendations are deterministic, never
show expired or excluded content, never exceed N, and equal a brute-force ranking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping import Catalog, CatalogItem, Effect, OpportunityFacts
from mapping.config import DEFAULT_CANONICAL_STAGES, MappingSettings, Rule
from mapping.facts import norm
from mapping.recommend import AFFINITY_POINTS, MISMATCH_FACTOR, NOT_MOBILE_FACTOR
from tests.mapping.helpers import NOW, deal, item, make_engine

OPEN_STAGES = DEFAULT_CANONICAL_STAGES[:5]
INDUSTRIES = ["Banking", "Retail", "Healthcare"]
IDS = [f"c{i:02d}" for i in range(30)]
# Boosts and lifts are exact binary fractions, so a different summation order in the
# reference cannot flip a tie.
TAG_CHOICES: list[dict[str, list[str]]] = [
    {},
    {"industries": ["Banking"]},
    {"industries": ["Retail", "Healthcare"]},
    {"segments": ["enterprise"]},
]
STAGES_BY_NAME = {
    "Prospecting": "discover",
    "Qualification": "qualify",
    "Value Proposition": "solution",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiate",
}
BOOSTS = [0.5, 1.0, 1.5, 2.0, 3.0]
LIFTS = [-0.5, -0.25, 0.25, 0.5, 1.0]


@st.composite
def catalogs(draw: st.DrawFn) -> list[CatalogItem]:
    chosen = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=25, unique=True))
    items = []
    for content_id in chosen:
        window = draw(st.sampled_from(["always", "expired", "future"]))
        items.append(
            item(
                content_id,
                stages=draw(
                    st.lists(st.sampled_from(OPEN_STAGES), min_size=1, max_size=3, unique=True)
                ),
                tags=draw(st.sampled_from(TAG_CHOICES)),
                mobile_ready=draw(st.booleans()),
                expires_at=NOW - timedelta(days=1) if window == "expired" else None,
                valid_from=NOW + timedelta(days=1) if window == "future" else None,
            )
        )
    return items


@st.composite
def rule_sets(draw: st.DrawFn, catalog: list[CatalogItem]) -> list[Rule]:
    rules = []
    for index in range(draw(st.integers(0, 12))):
        when: dict[str, Any] = {}
        if draw(st.booleans()):
            when["stages"] = draw(st.lists(st.sampled_from(OPEN_STAGES), min_size=1, max_size=3))
        if draw(st.booleans()):
            when["industries"] = draw(st.lists(st.sampled_from(INDUSTRIES), min_size=1))
        if draw(st.booleans()):
            when["amount"] = {"min": draw(st.sampled_from([0, 1000, 50000])), "currency": "USD"}
        select: dict[str, Any] = {
            "content_ids": draw(
                st.lists(st.sampled_from([i.id for i in catalog]), min_size=1, max_size=4)
            )
        }
        if draw(st.booleans()):
            select["tags"] = [draw(st.sampled_from(["enterprise", "industries:Banking"]))]
        rules.append(
            Rule.model_validate(
                {
                    "id": f"r{index}",
                    "when": when,
                    "select": select,
                    "boost": draw(st.sampled_from(BOOSTS)),
                    "exclude": draw(st.booleans()) and draw(st.booleans()),
                }
            )
        )
    return rules


deals = st.builds(
    lambda stage, industry, amount: deal(
        stage,
        account={"industry": industry} if industry else None,
        amount=amount,
        currency="USD",
    ),
    st.sampled_from(OPEN_STAGES),
    st.sampled_from([None, *INDUSTRIES]),
    st.sampled_from([None, 500, 5000, 90000]),
)


def reference(
    catalog: list[CatalogItem],
    rules: list[Rule],
    facts: OpportunityFacts,
    effects: dict[str, float],
    blend: float,
    mobile: bool,
    limit: int,
) -> list[tuple[str, float]]:
    """The ranking written the slow, obvious way."""
    stage = STAGES_BY_NAME[facts.opportunity.stage_crm_id or ""]
    industry = norm(facts.account.industry) if facts.account and facts.account.industry else None
    amount = facts.opportunity.amount

    def applies(rule: Rule) -> bool:
        when = rule.when
        if when.stages and stage not in when.stages:
            return False
        if when.industries and industry not in {norm(i) for i in when.industries}:
            return False
        return not (when.amount and (amount is None or amount < (when.amount.min or 0)))

    def selects(rule: Rule, candidate: CatalogItem) -> bool:
        if candidate.id in rule.select.content_ids:
            return True
        for tag in rule.select.tags:
            facet, _, value = tag.rpartition(":")
            for item_facet, values in candidate.tags.items():
                if (not facet or facet == item_facet) and norm(value) in map(norm, values):
                    return True
        return False

    scored = []
    for candidate in catalog:
        if stage not in candidate.stages or candidate.unavailable_reason(NOW):
            continue
        matching = [r for r in rules if applies(r) and selects(r, candidate)]
        if any(r.exclude for r in matching):
            continue
        points = 1.0 + sum(r.boost for r in matching if not r.exclude)
        tagged = {norm(v) for v in candidate.tags.get("industries", ())}
        factor = 1.0
        if industry and tagged:
            if industry in tagged:
                points += AFFINITY_POINTS
            else:
                factor *= MISMATCH_FACTOR
        if mobile and not candidate.mobile_ready:
            factor *= NOT_MOBILE_FACTOR
        lift = effects.get(candidate.id)
        if lift is not None:
            factor *= 1.0 + blend * lift
        scored.append((candidate.id, points * factor))
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return [(cid, round(score, 6)) for cid, score in scored[:limit]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_recommendations_match_a_brute_force_ranking(data: st.DataObject) -> None:
    catalog = data.draw(catalogs())
    rules = data.draw(rule_sets(catalog))
    facts = data.draw(deals)
    limit = data.draw(st.integers(0, 8))
    mobile = data.draw(st.booleans())
    blend = data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    lifts = data.draw(
        st.dictionaries(st.sampled_from([i.id for i in catalog]), st.sampled_from(LIFTS))
    )
    effects = [
        Effect(cid, stage, 9, 9, 9, 5, 50, 20, 0.4, 0.5, 0.5, lift)
        for cid, lift in lifts.items()
        for stage in OPEN_STAGES
    ]
    engine = make_engine(
        catalog,
        rules,
        settings={
            "effectiveness": {"blend": blend, "min_closed": 1},
            "tag_facts": {"industries": ["account.industry"]},
        },
        effects=effects,
    )
    recs = engine.recommend_for(facts, now=NOW, mobile=mobile, limit=limit)
    got = [(r.content.id, r.score) for r in recs]

    assert len(got) <= limit
    shown = {r.content.id: r.content for r in recs}
    assert all(c.unavailable_reason(NOW) is None for c in shown.values())
    excluded = {
        rule_id
        for rule_id in engine.matching_rules(facts, now=NOW)
        if next(r for r in rules if r.id == rule_id).exclude
    }
    for rule in rules:
        if rule.id in excluded:
            assert not set(rule.select.content_ids) & set(shown)
    assert got == reference(catalog, rules, facts, lifts, blend, mobile, limit)

    # Deterministic: again, and from an engine built anew from the same input.
    assert engine.recommend_for(facts, now=NOW, mobile=mobile, limit=limit) == recs
    rebuilt = make_engine(
        list(catalog),
        list(rules),
        settings={
            "effectiveness": {"blend": blend, "min_closed": 1},
            "tag_facts": {"industries": ["account.industry"]},
        },
        effects=list(reversed(effects)),
    )
    assert rebuilt.recommend_for(facts, now=NOW, mobile=mobile, limit=limit) == recs


@settings(max_examples=300, deadline=None)
@given(
    catalog=catalogs(),
    facts=deals,
    limit=st.integers(1, 6),
    mobile=st.booleans(),
    lifts=st.dictionaries(st.sampled_from(IDS), st.sampled_from(LIFTS)),
)
def test_without_rules_the_short_walk_still_finds_the_true_top(
    catalog: list[CatalogItem],
    facts: OpportunityFacts,
    limit: int,
    mobile: bool,
    lifts: dict[str, float],
) -> None:
    # Few deal-specific boosts: most of the top N comes from the walk down the static order,
    # where penalties (other industry, not mobile-ready) must not stop it too early.
    effects = [
        Effect(cid, stage, 9, 9, 9, 5, 50, 20, 0.4, 0.5, 0.5, lift)
        for cid, lift in lifts.items()
        for stage in OPEN_STAGES
    ]
    engine = make_engine(
        catalog,
        settings={
            "effectiveness": {"blend": 1.0, "min_closed": 1},
            "tag_facts": {"industries": ["account.industry"]},
        },
        effects=effects,
    )
    recs = engine.recommend_for(facts, now=NOW, mobile=mobile, limit=limit)
    known = {c.id for c in catalog}
    expected = reference(
        catalog, [], facts, {k: v for k, v in lifts.items() if k in known}, 1.0, mobile, limit
    )
    assert [(r.content.id, r.score) for r in recs] == expected


@settings(max_examples=100, deadline=None)
@given(catalog=catalogs(), facts=deals, top_n=st.integers(1, 6))
def test_never_more_than_top_n(
    catalog: list[CatalogItem], facts: OpportunityFacts, top_n: int
) -> None:
    engine = make_engine(catalog, top_n=top_n)
    assert len(engine.recommend_for(facts, now=NOW)) <= top_n
    assert isinstance(engine.catalog, Catalog)
    assert isinstance(engine.settings, MappingSettings)
