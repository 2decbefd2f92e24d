"""The recommendation engine: pure, deterministic, explained, fast.

For a deal at canonical stage ``s`` every catalog item made for ``s`` is a candidate with
one point. Matching rules add their ``boost`` to the items they select (or remove them:
exclusions always win); an item tagged for the deal's industry/region/... (see
``mapping.tag_facts``) gains half a point, one tagged only for *other* values is halved;
items that are not mobile-ready are halved on mobile; the sum is multiplied by the item's
win-rate lift at ``s`` when effectiveness blending is on. Expired and not-yet-valid items
never appear. Ties are broken by content id, so equal input always gives equal output.

Speed: everything that does not depend on the deal is prepared up front: items by stage
and tag; rules grouped by the content they select (boosts are summed per group, so an item
is touched once per group, not once per rule); rules with no condition but the stage folded
into per-stage constants; per stage an order of items by their score without deal-specific
points. One recommendation scores only the items a matched rule or tag touches and merges
them with that precomputed order, stopping as soon as the top N is known.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mapping.catalog import Catalog, CatalogItem
from mapping.config import MappingSettings, Rule
from mapping.effectiveness import Effect
from mapping.facts import OpportunityFacts, norm
from mapping.rules import (
    CompiledRule,
    FactView,
    FieldRef,
    RuleIndex,
    compile_rules,
    resolve_field,
)
from mapping.stages import CrmStageRef, StageMapper, StageResolution

log = logging.getLogger(__name__)

#: Points an item gains per tag facet that names the deal's own value.
AFFINITY_POINTS = 0.5
#: Factor for an item tagged only for other values of a facet (another industry...).
MISMATCH_FACTOR = 0.5
#: Factor for an item that is not mobile-ready, when the rep is on a phone.
NOT_MOBILE_FACTOR = 0.5

_FACET_WORDS = {
    "industries": "industry",
    "products": "product",
    "regions": "region",
    "countries": "country",
    "languages": "language",
    "segments": "segment",
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommended item, its score and why it is here."""

    content: CatalogItem
    score: float
    #: Human-readable reasons, first the stage, then rules, tags and effectiveness.
    reasons: tuple[str, ...]
    #: Ids of the rules that boosted it.
    rules: tuple[str, ...] = ()

    @property
    def explanation(self) -> str:
        """The reasons in one line: ``stage Proposal → proposal; industry Banking matched ...``."""
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Evaluation:
    """Everything the engine decided for one deal (``--explain`` prints it)."""

    stage: StageResolution
    recommendations: list[Recommendation]
    #: (rule id, explanation) of every rule whose conditions held (with ``explain``).
    matched_rules: list[tuple[str, str]] = field(default_factory=list)
    #: (content id, reason) of items made for the stage that are left out.
    excluded: list[tuple[str, str]] = field(default_factory=list)
    #: Items made for the deal's stage.
    candidates: int = 0


def _by_index(rule: CompiledRule) -> int:
    return rule.index


def _stage_only(rule: CompiledRule) -> bool:
    """Whether the rule has no condition but (maybe) the stage."""
    when = rule.rule.when
    return not any(value for name, value in when if name != "stages")


@dataclass
class _Fixed:
    """What stage-only rules do at one stage, for every deal there."""

    rules: list[CompiledRule] = field(default_factory=list)
    points: dict[int, float] = field(default_factory=dict)
    excluded: set[int] = field(default_factory=set)
    boosters: dict[int, list[CompiledRule]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _DealFacet:
    facet: str
    values: frozenset[str]
    shown: str


class RecommendationEngine:
    """Recommends catalog content for deals; build once, call from many threads.

    Construct from already *validated* parts (:func:`mapping.validation.build_engine` does
    that from the configuration); :meth:`recommend_for` is the pure entry point.
    """

    def __init__(
        self,
        *,
        catalog: Catalog,
        rules: Sequence[Rule] = (),
        stage_maps: Mapping[str, Mapping[str, str]] | None = None,
        canonical_stages: Sequence[str] = (),
        settings: MappingSettings | None = None,
        top_n: int = 5,
        custom_fields: Mapping[str, set[str]] | None = None,
        effects: Iterable[Effect] = (),
    ) -> None:
        self.catalog = catalog
        self.rules = tuple(rules)
        self.settings = settings or MappingSettings()
        self.top_n = top_n
        self.canonical_stages = tuple(canonical_stages) or tuple(
            dict.fromkeys(s for item in catalog.items for s in item.stages)
        )
        self.custom_fields = {k: set(v) for k, v in (custom_fields or {}).items()}
        self.mappers = {
            name: StageMapper(
                stage_map,
                fallback=self.settings.stage_fallback,
                canonical_stages=self.canonical_stages,
            )
            for name, stage_map in (stage_maps or {}).items()
        }
        self.default_mapper = StageMapper(
            {}, fallback=self.settings.stage_fallback, canonical_stages=self.canonical_stages
        )
        self._warned: set[tuple[str, str]] = set()

        items = catalog.items
        self._items = items
        position = {cid: rank for rank, cid in enumerate(sorted(i.id for i in items))}
        self._tie = [position[item.id] for item in items]
        self._negtie = [-rank for rank in self._tie]
        self._index_of = {item.id: i for i, item in enumerate(items)}
        stage_items: dict[str, list[int]] = {stage: [] for stage in self.canonical_stages}
        for i, item in enumerate(items):
            for stage in item.stages:
                stage_items.setdefault(stage, []).append(i)
        self._stage_items = stage_items
        self._stage_sets = {stage: frozenset(ids) for stage, ids in stage_items.items()}

        self.compiled: tuple[CompiledRule, ...] = tuple(
            compile_rules(self.rules, catalog, self.custom_fields)
        )
        # Rules with no condition but the stage hold for every deal at that stage: their
        # points and exclusions are folded into per-stage constants (see ``_Fixed``).
        self._rule_index = RuleIndex([r for r in self.compiled if not _stage_only(r)])
        # Rules selecting the same content share one "selection": a deal's boosts are summed
        # per selection first, so each item is touched once per selection, not per rule.
        selection_ids: dict[tuple[str, ...], int] = {}
        self._rule_selection = [
            selection_ids.setdefault(rule.selected, len(selection_ids)) for rule in self.compiled
        ]
        self._selection_members: dict[str, list[tuple[int, ...]]] = {}
        self._selection_sets: dict[str, list[frozenset[int]]] = {}
        for stage, members in self._stage_sets.items():
            per_selection = [
                tuple(i for i in (self._index_of[cid] for cid in selected) if i in members)
                for selected in selection_ids
            ]
            self._selection_members[stage] = per_selection
            self._selection_sets[stage] = [frozenset(ids) for ids in per_selection]
        self._fixed: dict[str, _Fixed] = {}
        for stage in self._stage_sets:
            fixed = _Fixed()
            for rule in self.compiled:
                if not _stage_only(rule) or (
                    rule.rule.when.stages and stage not in rule.rule.when.stages
                ):
                    continue
                fixed.rules.append(rule)
                selection = self._rule_selection[rule.index]
                chosen = self._selection_members[stage][selection]
                if rule.rule.exclude:
                    fixed.excluded.update(chosen)
                else:
                    fixed.boosters.setdefault(selection, []).append(rule)
                    for i in chosen:
                        fixed.points[i] = fixed.points.get(i, 0.0) + rule.rule.boost
            for i in fixed.excluded:
                fixed.points.pop(i, None)
            self._fixed[stage] = fixed

        self._facet_facts: list[tuple[str, tuple[FieldRef, ...]]] = []
        for facet, paths in self.settings.tag_facts.items():
            refs = tuple(
                ref
                for ref in (resolve_field(path, self.custom_fields) for path in paths)
                if not isinstance(ref, str)
            )
            if refs:
                self._facet_facts.append((facet, refs))
        used_facets = {facet for facet, _ in self._facet_facts}
        self._item_facets: list[dict[str, frozenset[str]]] = [
            {
                facet: frozenset(norm(v) for v in values)
                for facet, values in item.tags.items()
                if facet in used_facets
            }
            for item in items
        ]
        facet_index: dict[tuple[str, str, str], list[int]] = {}
        for i, item in enumerate(items):
            for facet, values in self._item_facets[i].items():
                for value in sorted(values):
                    for stage in item.stages:
                        facet_index.setdefault((stage, facet, value), []).append(i)
        self._facet_index = {key: tuple(ids) for key, ids in facet_index.items()}
        # Per item: a bit per tag facet it carries (in ``_facet_facts`` order), and its
        # factor on a phone; per deal: a bit per facet the deal has a value for. An item that
        # carries a facet the deal has but not the deal's value is penalized once per facet.
        bits = {facet: 1 << n for n, (facet, _) in enumerate(self._facet_facts)}
        self._facet_bits = bits
        self._masks = [sum(bits[f] for f in self._item_facets[i]) for i in range(len(items))]
        self._popcount = [bin(mask).count("1") for mask in range(1 << len(bits))]
        self._powers = [MISMATCH_FACTOR**k for k in range(len(bits) + 1)]
        self._undo_mismatch = [1 / MISMATCH_FACTOR**k for k in range(len(bits) + 1)]
        self._mobile_factor = [1.0 if item.mobile_ready else NOT_MOBILE_FACTOR for item in items]
        self._set_effects(effects)

    # --- effectiveness ------------------------------------------------------------------

    def _set_effects(self, effects: Iterable[Effect]) -> None:
        self.effects: dict[tuple[str, str], Effect] = {
            (effect.content_id, effect.stage): effect for effect in effects
        }
        self._multiplier: dict[str, dict[int, float]] = {s: {} for s in self._stage_items}
        for (content_id, stage), effect in self.effects.items():
            i = self._index_of.get(content_id)
            if i is None or stage not in self._stage_sets or i not in self._stage_sets[stage]:
                continue
            factor = effect.multiplier(self.settings.effectiveness)
            if factor != 1.0:
                self._multiplier[stage][i] = factor
        self._static: dict[
            tuple[str, int, bool], tuple[list[float], list[tuple[float, int, int]]]
        ] = {}

    def _static_order(
        self, stage: str, deal_mask: int, mobile: bool
    ) -> tuple[list[float], list[tuple[float, int, int]]]:
        """Each item's factor at ``stage`` (win-rate lift, mismatch and phone penalties as if
        it matched none of the deal's facets) and the stage's items in that order, best first.

        Depends on the deal only through which tag facets it has values for and whether it
        is on a phone: at most a few dozen variants per stage, built on first use.
        """
        key = (stage, deal_mask, mobile)
        cached = self._static.get(key)
        if cached is None:
            lift = self._multiplier[stage]
            masks, count, powers = self._masks, self._popcount, self._powers
            shared: dict[float, float] = {}  # one float object per distinct value
            factors = [
                shared.setdefault(value, value)
                for value in (
                    lift.get(i, 1.0)
                    * powers[count[masks[i] & deal_mask]]
                    * (self._mobile_factor[i] if mobile else 1.0)
                    for i in range(len(self._items))
                )
            ]
            fixed = self._fixed[stage]
            order = sorted(
                (
                    ((1.0 + fixed.points.get(i, 0.0)) * factors[i], self._negtie[i], i)
                    for i in self._stage_items[stage]
                    if i not in fixed.excluded
                ),
                reverse=True,
            )
            cached = self._static[key] = (factors, order)
        return cached

    def with_effects(self, effects: Iterable[Effect]) -> RecommendationEngine:
        """A copy of this engine ranking with new effectiveness figures."""
        clone = object.__new__(RecommendationEngine)
        clone.__dict__.update(self.__dict__)
        clone._warned = set()
        clone._set_effects(effects)
        return clone

    # --- stages -------------------------------------------------------------------------

    def resolve_stage(self, facts: OpportunityFacts) -> StageResolution:
        """The canonical stage of the deal (stage map, else fallback, else unmapped)."""
        opportunity, meta = facts.opportunity, facts.stage
        ref = CrmStageRef(
            pipeline=opportunity.pipeline_crm_id,
            stage_id=opportunity.stage_crm_id,
            label=opportunity.stage_label or (meta.label if meta else None),
            probability=(
                meta.probability
                if meta is not None and meta.probability is not None
                else opportunity.probability
            ),
            is_closed=meta.is_closed if meta is not None else opportunity.is_closed,
            is_won=meta.is_won if meta is not None else opportunity.is_won,
        )
        mapper = self.mappers.get(facts.connection, self.default_mapper)
        resolution = mapper.resolve(ref)
        if resolution.via != "map":
            warned = (facts.connection, resolution.crm_stage)
            if warned not in self._warned:
                self._warned.add(warned)
                log.warning(
                    "CRM stage %r of connection %s is not in its stage_map; %s",
                    resolution.crm_stage,
                    facts.connection,
                    f"fallback → {resolution.canonical} ({resolution.detail})"
                    if resolution.mapped
                    else "no content is recommended until it is mapped",
                )
        return resolution

    def matching_rules(self, facts: OpportunityFacts, *, now: datetime | None = None) -> list[str]:
        """Ids of the rules whose conditions hold for the deal (whatever they select)."""
        resolution = self.resolve_stage(facts)
        view = FactView(
            facts, resolution.canonical, now or datetime.now(UTC), self.settings.currency
        )
        return [rule.id for rule in self._matching(view)]

    def _matching(self, view: FactView) -> list[CompiledRule]:
        dynamic = self._rule_index.matching(view)
        fixed = self._fixed[view.stage].rules if view.stage in self._fixed else []
        if not fixed:
            return dynamic
        return sorted([*fixed, *dynamic], key=_by_index)

    def reachable_content(self) -> set[str]:
        """Ids of the items some include rule can show (selected and made for its stages)."""
        reached: set[str] = set()
        for rule, selection in zip(self.compiled, self._rule_selection, strict=True):
            if rule.rule.exclude:
                continue
            for stage, per_selection in self._selection_members.items():
                if not rule.rule.when.stages or stage in rule.rule.when.stages:
                    reached.update(self._items[i].id for i in per_selection[selection])
        return reached

    # --- recommending -------------------------------------------------------------------

    def recommend_for(
        self,
        facts: OpportunityFacts,
        *,
        now: datetime | None = None,
        mobile: bool = False,
        limit: int | None = None,
    ) -> list[Recommendation]:
        """The top items for the deal, best first (at most ``limit``, default ``top_n``)."""
        return self.evaluate(facts, now=now, mobile=mobile, limit=limit).recommendations

    def evaluate(
        self,
        facts: OpportunityFacts,
        *,
        now: datetime | None = None,
        mobile: bool = False,
        limit: int | None = None,
        explain: bool = False,
    ) -> Evaluation:
        """Recommendations plus the stage, matched rules and (``explain``) every exclusion."""
        now = now or datetime.now(UTC)
        limit = self.top_n if limit is None else limit
        resolution = self.resolve_stage(facts)
        stage = resolution.canonical
        if stage is None or stage not in self._stage_items:
            return Evaluation(resolution, [])
        view = FactView(facts, stage, now, self.settings.currency)
        fixed = self._fixed[stage]
        dynamic = self._rule_index.matching(view)
        members = self._selection_members[stage]

        # Points per item: boosts summed per selection, then spread over its members.
        weights: dict[int, float] = {}
        boosters: dict[int, list[CompiledRule]] = {}
        excluded: set[int] = set(fixed.excluded)
        for rule in dynamic:
            selection = self._rule_selection[rule.index]
            if rule.rule.exclude:
                excluded.update(members[selection])
            else:
                weights[selection] = weights.get(selection, 0.0) + rule.rule.boost
                boosters.setdefault(selection, []).append(rule)
        points: dict[int, float] = {}
        get = points.get
        for selection, weight in weights.items():
            for i in members[selection]:
                points[i] = get(i, 0.0) + weight
        deal_facets = self._deal_facets(view)
        hits: dict[int, int] = {}
        for facet in deal_facets:
            lists = [self._facet_index.get((stage, facet.facet, v), ()) for v in facet.values]
            # Once per facet, however many of the deal's values the item names.
            for i in lists[0] if len(lists) == 1 else set().union(*lists):
                points[i] = get(i, 0.0) + AFFINITY_POINTS
                hits[i] = hits.get(i, 0) + 1
        for i in excluded:
            points.pop(i, None)

        deal_mask = sum(self._facet_bits[facet.facet] for facet in deal_facets)
        top = self._top(stage, points, hits, excluded, deal_mask, mobile, now, limit)
        matched = sorted([*fixed.rules, *dynamic], key=_by_index) if fixed.rules else dynamic
        for selection, group in fixed.boosters.items():
            boosters[selection] = [*group, *boosters.get(selection, ())]
        stage_text = resolution.describe()
        explained: dict[int, str] = {}
        recommendations = [
            self._recommendation(
                i, score, stage, stage_text, view, boosters, explained, deal_facets, mobile
            )
            for score, _, i in top
        ]
        excluded_list: list[tuple[str, str]] = []
        if explain:
            for i in self._stage_items[stage]:
                reason = (
                    self._exclusion(i, stage, matched) if i in excluded else None
                ) or self._items[i].unavailable_reason(now)
                if reason is not None:
                    excluded_list.append((self._items[i].id, reason))
        return Evaluation(
            stage=resolution,
            recommendations=recommendations,
            matched_rules=[(rule.id, rule.explain(view)) for rule in matched] if explain else [],
            excluded=excluded_list,
            candidates=len(self._stage_items[stage]),
        )

    def _top(
        self,
        stage: str,
        points: dict[int, float],
        hits: dict[int, int],
        excluded: set[int],
        deal_mask: int,
        mobile: bool,
        now: datetime,
        limit: int,
    ) -> list[tuple[float, int, int]]:
        """The best ``limit`` available items as (score, -tie, index), best first.

        Two streams of exact scores, each best first: the items with deal-specific points
        (scored here), and the stage's other items in a precomputed order. Merging them and
        skipping what is expired or not yet valid gives the answer after a few steps.
        """
        if limit <= 0:
            return []
        factors, static = self._static_order(stage, deal_mask, mobile)
        negtie, undo = self._negtie, self._undo_mismatch
        hit = hits.get
        # The static factor assumed a mismatch on every facet the item carries; each facet
        # it matched (``hits``) takes that back.
        base = self._fixed[stage].points.get
        touched = [
            ((1.0 + base(i, 0.0) + p) * factors[i] * undo[hit(i, 0)], negtie[i], i)
            for i, p in points.items()
        ]
        chunk = 4 * limit + 16
        complete = len(touched) <= chunk
        head = sorted(touched, reverse=True) if complete else heapq.nlargest(chunk, touched)
        items = self._items
        top: list[tuple[float, int, int]] = []
        t = s = 0
        while len(top) < limit:
            if t == len(head) and not complete:
                head, complete = sorted(touched, reverse=True), True  # rare: chunk too small
            while s < len(static) and (static[s][2] in points or static[s][2] in excluded):
                s += 1
            if t < len(head) and (s == len(static) or head[t] > static[s]):
                entry = head[t]
                t += 1
            elif s < len(static):
                entry = static[s]
                s += 1
            else:
                break
            if items[entry[2]].unavailable_reason(now) is None:
                top.append(entry)
        return top

    def _exclusion(self, i: int, stage: str, matched: Sequence[CompiledRule]) -> str | None:
        sets = self._selection_sets[stage]
        for rule in matched:
            if rule.rule.exclude and i in sets[self._rule_selection[rule.index]]:
                return f"excluded by rule {rule.id}"
        return None

    def _deal_facets(self, view: FactView) -> list[_DealFacet]:
        found = []
        for facet, refs in self._facet_facts:
            values: list[str] = []
            shown: list[str] = []
            for ref in refs:
                normalized = view.field_values(ref)
                if normalized:
                    values += normalized
                    shown.append(str(view.facts.value(*ref)))
            if values:
                found.append(_DealFacet(facet, frozenset(values), ", ".join(shown)))
        return found

    def _recommendation(
        self,
        i: int,
        score: float,
        stage: str,
        stage_text: str,
        view: FactView,
        boosters: Mapping[int, list[CompiledRule]],
        explained: dict[int, str],
        deal_facets: list[_DealFacet],
        mobile: bool,
    ) -> Recommendation:
        item = self._items[i]
        reasons = [stage_text]
        sets = self._selection_sets[stage]
        rules = sorted(
            (rule for sel, group in boosters.items() if i in sets[sel] for rule in group),
            key=_by_index,
        )
        for rule in rules:
            text = explained.get(rule.index)
            if text is None:
                text = explained[rule.index] = f"{rule.explain(view)} (+{rule.rule.boost:g})"
            reasons.append(text)
        tags = self._item_facets[i]
        for facet in deal_facets:
            mine = tags.get(facet.facet)
            if not mine:
                continue
            word = _FACET_WORDS.get(facet.facet, facet.facet)
            if mine.isdisjoint(facet.values):
                made_for = ", ".join(item.tags.get(facet.facet, ()))
                reasons.append(
                    f"made for {word} {made_for}, not {facet.shown} (×{MISMATCH_FACTOR:g})"
                )
            else:
                reasons.append(f"made for {word} {facet.shown} (+{AFFINITY_POINTS:g})")
        if mobile and not item.mobile_ready:
            reasons.append(f"not mobile-ready (×{NOT_MOBILE_FACTOR:g})")
        effect = self.effects.get((item.id, stage))
        if effect is not None and self._multiplier[stage].get(i, 1.0) != 1.0:
            reasons.append(effect.describe())
        return Recommendation(
            content=item,
            score=round(score, 6),
            reasons=tuple(reasons),
            rules=tuple(rule.id for rule in rules),
        )
