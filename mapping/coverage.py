"""What the mapping does not cover: stages without content, CRM stages without a mapping,
rules that match no deal, content no rule can reach.

Pure: the application passes in the CRM stages it has seen and the deals it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mapping.facts import OpportunityFacts
from mapping.recommend import RecommendationEngine
from mapping.stages import CrmStageRef


@dataclass(frozen=True, slots=True)
class ObservedStage:
    """A CRM stage seen in synced stage metadata or on synced deals."""

    ref: CrmStageRef
    opportunities: int = 0
    open_opportunities: int = 0


@dataclass(frozen=True, slots=True)
class StageCoverage:
    """One canonical stage: content available, content out of date, what maps to it."""

    stage: str
    items: int
    unavailable: int
    #: Stage-map entries (all connections) pointing at this stage.
    crm_stages: int
    #: Rules that can apply at this stage (with no stage condition, or naming it).
    rules: int


@dataclass(frozen=True, slots=True)
class UnmappedStage:
    """A CRM stage no stage-map key names; ``fallback`` is where the fallback puts it."""

    connection: str
    crm_stage: str
    pipeline: str | None
    stage_id: str | None
    opportunities: int
    open_opportunities: int
    fallback: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class CoverageReport:
    """Everything ``stagelink coverage`` prints."""

    stages: list[StageCoverage]
    unmapped: list[UnmappedStage]
    #: (connection, stage-map key) naming no CRM stage seen in the synced data.
    unused_map_keys: list[tuple[str, str]]
    #: Rule ids whose conditions held for none of the deals looked at.
    idle_rules: list[str]
    deals_checked: int
    #: Content ids no include rule can show (they still appear by stage alone).
    unreached_content: list[str]
    #: (content id, reason) of items that are expired or not valid yet.
    unavailable_content: list[tuple[str, str]] = field(default_factory=list)
    #: Distinct CRM stages seen in synced metadata and deals (all connections).
    crm_stages_seen: int = 0

    @property
    def empty_stages(self) -> list[str]:
        """Canonical stages with no available content."""
        return [s.stage for s in self.stages if s.items == 0]


def coverage_report(
    engine: RecommendationEngine,
    *,
    observed: Mapping[str, Iterable[ObservedStage]],
    deals: Iterable[OpportunityFacts] = (),
    now: datetime | None = None,
) -> CoverageReport:
    """Coverage of ``engine``'s catalog and rules over the observed stages and deals."""
    now = now or datetime.now(UTC)
    catalog = engine.catalog
    unavailable = catalog.unavailable(now)
    unavailable_ids = {item.id for item, _ in unavailable}
    mapped_to: dict[str, int] = {}
    for each in engine.mappers.values():
        for target in each.stage_map.values():
            mapped_to[target] = mapped_to.get(target, 0) + 1
    stages = []
    for canonical in engine.canonical_stages:
        items = [item for item in catalog.items if canonical in item.stages]
        stages.append(
            StageCoverage(
                stage=canonical,
                items=sum(1 for item in items if item.id not in unavailable_ids),
                unavailable=sum(1 for item in items if item.id in unavailable_ids),
                crm_stages=mapped_to.get(canonical, 0),
                rules=sum(
                    1
                    for rule in engine.rules
                    if not rule.when.stages or canonical in rule.when.stages
                ),
            )
        )

    unmapped: list[UnmappedStage] = []
    unused: list[tuple[str, str]] = []
    seen_count = 0
    for connection, seen in observed.items():
        mapper = engine.mappers.get(connection)
        used_keys: set[str] = set()
        merged: dict[tuple[str | None, str | None], ObservedStage] = {}
        for stage in seen:
            ident = (stage.ref.pipeline, stage.ref.stage_id)
            if stage.ref.pipeline is None:  # a deal without pipeline: its stage's metadata
                ident = next((k for k in merged if k[1] == stage.ref.stage_id), ident)
            previous = merged.get(ident)
            if previous is None:
                merged[ident] = stage
            else:  # the same stage from metadata and from deals: keep metadata, add counts
                ref = previous.ref if previous.ref.label else stage.ref
                merged[ident] = ObservedStage(
                    ref,
                    previous.opportunities + stage.opportunities,
                    previous.open_opportunities + stage.open_opportunities,
                )
        seen_count += len(merged)
        for stage in merged.values():
            key = mapper.matching_key(stage.ref) if mapper is not None else None
            if key is not None:
                used_keys.add(key)
                continue
            resolution = (mapper or engine.default_mapper).resolve(stage.ref)
            unmapped.append(
                UnmappedStage(
                    connection=connection,
                    crm_stage=stage.ref.name,
                    pipeline=stage.ref.pipeline,
                    stage_id=stage.ref.stage_id,
                    opportunities=stage.opportunities,
                    open_opportunities=stage.open_opportunities,
                    fallback=resolution.canonical,
                    detail=resolution.detail,
                )
            )
        if mapper is not None and merged:
            unused += [(connection, key) for key in mapper.stage_map if key not in used_keys]
    unmapped.sort(key=lambda u: (u.connection, -u.opportunities, u.crm_stage))

    matched: set[str] = set()
    checked = 0
    all_ids = {rule.id for rule in engine.rules}
    for deal in deals:
        checked += 1
        if len(matched) < len(all_ids):
            matched.update(engine.matching_rules(deal, now=now))
    reached = engine.reachable_content()
    return CoverageReport(
        stages=stages,
        unmapped=unmapped,
        unused_map_keys=unused,
        idle_rules=[rule.id for rule in engine.rules if rule.id not in matched],
        deals_checked=checked,
        unreached_content=[item.id for item in catalog.items if item.id not in reached],
        unavailable_content=[(item.id, reason) for item, reason in unavailable],
        crm_stages_seen=seen_count,
    )
