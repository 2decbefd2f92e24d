"""Ranking: what a rep sees for a deal, in which order, and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mapping import Effect
from mapping.recommend import RecommendationEngine
from tests.mapping.helpers import NOW, deal, ids, item, make_engine, rule


def effect(content_id: str, stage: str, lift: float, closed: int = 12) -> Effect:
    return Effect(
        content_id=content_id,
        stage=stage,
        uses=closed * 2,
        opportunities=closed,
        closed_touched=closed,
        won_touched=closed // 2,
        closed_untouched=100,
        won_untouched=40,
        baseline=0.4,
        win_rate_touched=0.5,
        win_rate_untouched=0.5 / (1 + lift),
        lift=lift,
    )


CATALOG = [
    item("discovery-questions", stages=["discover", "qualify"]),
    item("roi-calculator", stages=["solution", "proposal"], tags={"segments": ["enterprise"]}),
    item("banking-case-study", stages=["proposal"], tags={"industries": ["Banking"]}),
    item("retail-case-study", stages=["proposal"], tags={"industries": ["Retail"]}),
    item("pricing", stages=["proposal", "negotiate"], mobile_ready=False),
    item("old-pricing", stages=["proposal"], expires_at=NOW - timedelta(days=1)),
    item("next-year-pricing", stages=["proposal"], valid_from=NOW + timedelta(days=1)),
    item("a-generic-deck", stages=["proposal"]),
]


@pytest.mark.parametrize(
    ("rules", "facts", "options", "expected"),
    [
        pytest.param(
            [], deal("proposal"), {},
            ["a-generic-deck", "banking-case-study", "pricing", "retail-case-study",
             "roi-calculator"],
            id="stage-only-ties-broken-by-id-expired-and-future-left-out",
        ),
        pytest.param(
            [], deal("proposal"), {"limit": 2}, ["a-generic-deck", "banking-case-study"],
            id="never-more-than-the-limit",
        ),
        pytest.param(
            [rule("big", when={"amount": {"min": 1000}}, select={"tags": ["enterprise"]},
                  boost=2)],
            deal("proposal", amount=5000), {"limit": 3},
            ["roi-calculator", "a-generic-deck", "banking-case-study"],
            id="boost-moves-up",
        ),
        pytest.param(
            [], deal("proposal", account={"industry": "banking"}), {"limit": 3},
            ["banking-case-study", "a-generic-deck", "pricing"],
            id="own-industry-up-other-industry-down",
        ),
        pytest.param(
            [rule("boost-pricing", select={"content_ids": ["pricing"]}, boost=5),
             rule("no-pricing", when={"types": ["New Customer"]},
                  select={"content_ids": ["pricing"]}, exclude=True)],
            deal("proposal", type="New Customer"), {},
            ["a-generic-deck", "banking-case-study", "retail-case-study", "roi-calculator"],
            id="exclusion-beats-any-boost",
        ),
        pytest.param(
            [rule("boost-pricing", select={"content_ids": ["pricing"]}, boost=5)],
            deal("proposal"), {"mobile": True, "limit": 2},
            ["pricing", "a-generic-deck"],
            id="not-mobile-ready-halved-on-mobile",
        ),
        pytest.param(
            [rule("boost-pricing", select={"content_ids": ["pricing"]}, boost=0.5)],
            deal("proposal"), {"mobile": True, "limit": 5},
            ["a-generic-deck", "banking-case-study", "retail-case-study", "roi-calculator",
             "pricing"],
            id="small-boost-loses-to-mobile-penalty",
        ),
        pytest.param(
            [rule("pricing-early", select={"content_ids": ["pricing"]}, boost=9)],
            deal("qualify"), {}, ["discovery-questions"],
            id="rules-never-show-content-made-for-other-stages",
        ),
        pytest.param(
            [], deal("Technical Validation"), {}, [], id="unmapped-stage-shows-nothing",
        ),
    ],
)  # fmt: skip
def test_ranking(
    rules: list[Any], facts: Any, options: dict[str, Any], expected: list[str]
) -> None:
    assert ids(make_engine(CATALOG, rules), facts, **options) == expected


def test_win_rate_lift_reorders_and_is_explained() -> None:
    engine = make_engine(
        [item("case-a", stages=["proposal"]), item("case-b", stages=["proposal"])],
        [
            rule(
                "fintech-proof-points",
                when={"industries": ["Banking"]},
                select={"content_ids": ["case-b"]},
            )
        ],
        settings={"effectiveness": {"blend": 1.0}},
        effects=[effect("case-a", "proposal", 0.9), effect("case-b", "proposal", 0.32)],
    )
    recs = engine.recommend_for(deal("proposal", account={"industry": "Banking"}), now=NOW)
    assert [(r.content.id, r.score) for r in recs] == [("case-b", 2.64), ("case-a", 1.9)]
    assert recs[0].explanation == (
        "stage Proposal/Price Quote → proposal; industry Banking matched rule "
        "fintech-proof-points (+1); boosted by 32% win-rate lift (12 closed deals used it at "
        "proposal)"
    )


@pytest.mark.parametrize(
    ("settings", "lift", "closed", "score"),
    [
        ({"effectiveness": {"blend": 0.0}}, 0.5, 50, 1.0),
        ({"effectiveness": {"blend": 0.5}}, 0.5, 50, 1.25),
        ({"effectiveness": {"blend": 1.0, "min_closed": 5}}, 0.5, 4, 1.0),
        ({"effectiveness": {"blend": 1.0, "max_lift": 0.25}}, 3.0, 50, 1.25),
        ({"effectiveness": {"blend": 1.0}}, -0.9, 50, 0.5),
    ],
)
def test_effectiveness_blend_is_bounded(
    settings: dict[str, Any], lift: float, closed: int, score: float
) -> None:
    engine = make_engine(
        [item("x", stages=["proposal"])],
        settings=settings,
        effects=[effect("x", "proposal", lift, closed=closed)],
    )
    [rec] = engine.recommend_for(deal("proposal"), now=NOW)
    assert rec.score == score


def test_affinity_and_mismatch_are_explained() -> None:
    engine = make_engine(
        [
            item(
                "mine", stages=["proposal"], tags={"industries": ["Banking"], "regions": ["EMEA"]}
            ),
            item("theirs", stages=["proposal"], tags={"industries": ["Retail", "Apparel"]}),
        ],
        settings={"tag_facts": {"industries": ["account.industry"],
                                "regions": ["account.region"]}},
    )  # fmt: skip
    facts = deal("proposal", account={"industry": "Banking", "region": "EMEA"})
    mine, theirs = engine.recommend_for(facts, now=NOW)
    assert (mine.score, mine.reasons[1:]) == (
        2.0,
        ("made for industry Banking (+0.5)", "made for region EMEA (+0.5)"),
    )
    assert (theirs.score, theirs.reasons[1:]) == (
        0.5,
        ("made for industry Retail, Apparel, not Banking (×0.5)",),
    )


def test_explain_lists_matched_rules_and_everything_left_out() -> None:
    engine = make_engine(
        CATALOG,
        [
            rule(
                "no-pricing",
                when={"types": ["New Customer"]},
                select={"content_ids": ["pricing"]},
                exclude=True,
            )
        ],
    )
    evaluation = engine.evaluate(deal("proposal", type="New Customer"), now=NOW, explain=True)
    assert evaluation.stage.canonical == "proposal"
    assert evaluation.candidates == 7
    assert evaluation.matched_rules == [
        ("no-pricing", "type New Customer excluded by rule no-pricing")
    ]
    assert evaluation.excluded == [
        ("pricing", "excluded by rule no-pricing"),
        ("old-pricing", "expired on 2026-05-31T12:00+00:00"),
        ("next-year-pricing", "not valid before 2026-06-02T12:00+00:00"),
    ]


def test_stage_fallback_uses_synced_stage_metadata() -> None:
    engine = make_engine(
        CATALOG,
        settings={"stage_fallback": {"by_probability": [{"up_to": 0.8, "stage": "proposal"}]}},
    )
    facts = deal("Technical Validation", probability=0.55)
    evaluation = engine.evaluate(facts, now=NOW)
    assert evaluation.stage.describe() == (
        "stage Technical Validation → proposal (not in the stage map, placed by probability 55%)"
    )
    assert len(evaluation.recommendations) == 5


def test_with_effects_leaves_the_original_engine_alone() -> None:
    engine = make_engine(
        [item("a", stages=["proposal"]), item("b", stages=["proposal"])],
        settings={"effectiveness": {"blend": 1.0}},
    )
    lifted = engine.with_effects([effect("b", "proposal", 0.5)])
    assert ids(engine, deal("proposal")) == ["a", "b"]
    assert ids(lifted, deal("proposal")) == ["b", "a"]
    assert isinstance(lifted, RecommendationEngine)
