"""Content effectiveness: per content item and canonical stage, do touched deals win more?

For a stage ``s`` the comparison group is every closed deal that reached ``s``. Deals a
rep used the item on while at ``s`` are *touched*, the others *untouched*. Both win rates
are smoothed with a Beta prior centred on the stage's own win rate (``prior_strength``
pseudo-deals), so an item used on two lucky deals does not look like a miracle:

    smoothed = (wins + k·p) / (closed + k)        lift = smoothed_touched / smoothed_untouched − 1

Correlation, not causation: reps pick content for deals they already believe in. The lift
is a ranking hint and an insight for enablement, nothing more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from mapping.config import EffectivenessSettings


@dataclass(frozen=True, slots=True)
class Touch:
    """One use of a content item on a deal, at the deal's canonical stage at that time."""

    opportunity: Hashable
    content_id: str
    stage: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """A deal: the canonical stages it reached and how it ended (None while open)."""

    opportunity: Hashable
    stages: frozenset[str]
    won: bool | None


@dataclass(frozen=True, slots=True)
class Effect:
    """Effectiveness of one content item at one canonical stage."""

    content_id: str
    stage: str
    uses: int
    opportunities: int
    closed_touched: int
    won_touched: int
    closed_untouched: int
    won_untouched: int
    #: Win rate of every closed deal that reached the stage (Laplace-smoothed).
    baseline: float
    win_rate_touched: float
    win_rate_untouched: float
    lift: float

    @property
    def raw_win_rate_touched(self) -> float | None:
        """Unsmoothed win rate of touched deals (None when none has closed)."""
        return self.won_touched / self.closed_touched if self.closed_touched else None

    @property
    def raw_win_rate_untouched(self) -> float | None:
        """Unsmoothed win rate of untouched deals (None when none has closed)."""
        return self.won_untouched / self.closed_untouched if self.closed_untouched else None

    def multiplier(self, settings: EffectivenessSettings) -> float:
        """The ranking factor: ``1 + blend × lift``, lift capped, 1 until enough deals closed."""
        if settings.blend == 0 or self.closed_touched < settings.min_closed:
            return 1.0
        lift = max(-0.5, min(self.lift, settings.max_lift))
        return 1.0 + settings.blend * lift

    def describe(self) -> str:
        """``boosted by 32% win-rate lift (12 closed deals)`` or the drop."""
        verb = "boosted by" if self.lift >= 0 else "lowered by"
        noun = "win-rate lift" if self.lift >= 0 else "win-rate drop"
        deals = f"{self.closed_touched} closed deal{'s' if self.closed_touched != 1 else ''}"
        return f"{verb} {abs(self.lift):.0%} {noun} ({deals} used it at {self.stage})"


def compute_effectiveness(
    touches: Iterable[Touch],
    outcomes: Iterable[Outcome],
    *,
    prior_strength: float = 10.0,
    stage_order: Sequence[str] = (),
) -> list[Effect]:
    """One :class:`Effect` per (content, stage) that was used, ordered by stage then id."""
    by_opportunity = {outcome.opportunity: outcome for outcome in outcomes}
    uses: dict[tuple[str, str], int] = defaultdict(int)
    touched: dict[tuple[str, str], set[Hashable]] = defaultdict(set)
    touched_at: dict[Hashable, set[str]] = defaultdict(set)
    for touch in touches:
        key = (touch.content_id, touch.stage)
        uses[key] += 1
        touched[key].add(touch.opportunity)
        touched_at[touch.opportunity].add(touch.stage)
    # Closed deals per stage they reached (a use at a stage proves the deal was there).
    closed: dict[str, int] = defaultdict(int)
    won: dict[str, int] = defaultdict(int)
    for outcome in by_opportunity.values():
        if outcome.won is None:
            continue
        for stage in outcome.stages | touched_at.get(outcome.opportunity, set()):
            closed[stage] += 1
            won[stage] += outcome.won
    order = {stage: i for i, stage in enumerate(stage_order)}
    effects = []
    for (content_id, stage), opportunities in touched.items():
        closed_touched = won_touched = 0
        for opportunity in opportunities:
            result = by_opportunity.get(opportunity)
            if result is not None and result.won is not None:
                closed_touched += 1
                won_touched += result.won
        closed_untouched = closed[stage] - closed_touched
        won_untouched = won[stage] - won_touched
        baseline = (won[stage] + 1) / (closed[stage] + 2)
        prior_wins = prior_strength * baseline
        rate_touched = (won_touched + prior_wins) / (closed_touched + prior_strength)
        rate_untouched = (won_untouched + prior_wins) / (closed_untouched + prior_strength)
        effects.append(
            Effect(
                content_id=content_id,
                stage=stage,
                uses=uses[(content_id, stage)],
                opportunities=len(opportunities),
                closed_touched=closed_touched,
                won_touched=won_touched,
                closed_untouched=closed_untouched,
                won_untouched=won_untouched,
                baseline=baseline,
                win_rate_touched=rate_touched,
                win_rate_untouched=rate_untouched,
                lift=rate_touched / rate_untouched - 1.0,
            )
        )
    effects.sort(key=lambda e: (order.get(e.stage, len(order)), e.stage, e.content_id))
    return effects
