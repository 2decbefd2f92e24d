"""Effectiveness: win rate of touched deals vs the rest, smoothed so luck does not dominate."""

from __future__ import annotations

import pytest

from mapping.config import EffectivenessSettings
from mapping.effectiveness import Outcome, Touch, compute_effectiveness


def deals(prefix: str, won: int, lost: int, stages: frozenset[str]) -> list[Outcome]:
    return [Outcome(f"{prefix}{i}", stages, i < won) for i in range(won + lost)]


def test_counts_smoothing_and_lift_for_one_item() -> None:
    reached = frozenset({"qualify", "proposal"})
    outcomes = [
        *deals("t", won=6, lost=2, stages=reached),  # touched: 6 of 8 won
        *deals("u", won=8, lost=12, stages=reached),  # untouched: 8 of 20 won
        Outcome("open", reached, None),
    ]
    touches = [Touch(f"t{i}", "roi", "proposal") for i in range(8)]
    touches += [Touch("t0", "roi", "proposal"), Touch("open", "roi", "proposal")]
    [effect] = compute_effectiveness(touches, outcomes, prior_strength=10)
    assert (effect.content_id, effect.stage) == ("roi", "proposal")
    assert (effect.uses, effect.opportunities) == (10, 9)
    assert (effect.won_touched, effect.closed_touched) == (6, 8)
    assert (effect.won_untouched, effect.closed_untouched) == (8, 20)
    # Stage baseline: 14 won of 28 closed, Laplace-smoothed: 15 / 30.
    assert effect.baseline == pytest.approx(0.5)
    assert effect.win_rate_touched == pytest.approx((6 + 5) / (8 + 10))
    assert effect.win_rate_untouched == pytest.approx((8 + 5) / (20 + 10))
    assert effect.lift == pytest.approx((11 / 18) / (13 / 30) - 1)
    assert effect.raw_win_rate_touched == pytest.approx(0.75)


def test_two_lucky_uses_do_not_beat_a_proven_item() -> None:
    reached = frozenset({"proposal"})
    outcomes = deals("d", won=50, lost=50, stages=reached)
    touches = [Touch("d0", "lucky", "proposal"), Touch("d1", "lucky", "proposal")]
    # proven: used on 40 deals, 30 of them won
    touches += [Touch(f"d{i}", "proven", "proposal") for i in range(20)]
    touches += [Touch(f"d{i}", "proven", "proposal") for i in range(50, 70)]
    outcomes = [
        Outcome(o.opportunity, o.stages, True if int(str(o.opportunity)[1:]) < 60 else o.won)
        for o in outcomes
    ]
    effects = {e.content_id: e for e in compute_effectiveness(touches, outcomes)}
    assert effects["lucky"].raw_win_rate_touched == 1.0
    assert effects["proven"].raw_win_rate_touched == 0.75
    assert effects["proven"].lift > effects["lucky"].lift
    settings = EffectivenessSettings(blend=1.0, min_closed=3)
    assert effects["lucky"].multiplier(settings) == 1.0  # too few closed deals to count
    assert effects["proven"].multiplier(settings) == pytest.approx(1 + effects["proven"].lift)


def test_a_use_at_a_stage_proves_the_deal_reached_it() -> None:
    # History is incomplete (no "negotiate" recorded), yet the deal was used there.
    outcomes = [Outcome("a", frozenset({"proposal"}), True), Outcome("b", frozenset(), False)]
    [effect] = compute_effectiveness([Touch("a", "faq", "negotiate")], outcomes)
    assert (effect.closed_touched, effect.closed_untouched) == (1, 0)


def test_ordered_by_canonical_stage_then_content() -> None:
    outcomes = [Outcome("a", frozenset({"qualify", "proposal"}), True)]
    touches = [
        Touch("a", "z-item", "qualify"),
        Touch("a", "b-item", "proposal"),
        Touch("a", "a-item", "proposal"),
    ]
    order = ("qualify", "proposal")
    effects = compute_effectiveness(touches, outcomes, stage_order=order)
    assert [(e.stage, e.content_id) for e in effects] == [
        ("qualify", "z-item"),
        ("proposal", "a-item"),
        ("proposal", "b-item"),
    ]


def test_describe_says_boosted_or_lowered() -> None:
    outcomes = [
        *deals("w", won=10, lost=0, stages=frozenset({"proposal"})),
        *deals("l", won=0, lost=10, stages=frozenset({"proposal"})),
    ]
    good = [Touch(f"w{i}", "good", "proposal") for i in range(10)]
    bad = [Touch(f"l{i}", "bad", "proposal") for i in range(10)]
    effects = {e.content_id: e for e in compute_effectiveness(good + bad, outcomes)}
    assert effects["good"].describe().startswith("boosted by ")
    assert (
        effects["good"].describe().endswith("win-rate lift (10 closed deals used it at proposal)")
    )
    assert effects["bad"].describe().startswith("lowered by ")
    assert "win-rate drop" in effects["bad"].describe()
