"""Check the whole mapping setup at load time and build the engine from it.

The application's configuration (``stagelink.settings.AppConfig``) satisfies
:class:`MappingSource`; mapping never imports it, keeping the dependency arrow one way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from connectors.core.config import ConnectionConfig
from connectors.core.suggest import did_you_mean
from mapping.catalog import Catalog, load_catalog
from mapping.config import ContentSettings, MappingSettings, Rule
from mapping.effectiveness import Effect
from mapping.problems import MappingError, MappingProblem, PathKey
from mapping.recommend import RecommendationEngine
from mapping.rules import check_rules, resolve_field, synced_custom_fields


class MappingSource(Protocol):
    """The parts of the configuration mapping reads."""

    @property
    def canonical_stages(self) -> Sequence[str]: ...

    @property
    def connections(self) -> Sequence[ConnectionConfig]: ...

    @property
    def content(self) -> ContentSettings: ...

    @property
    def rules(self) -> Sequence[Rule]: ...

    @property
    def mapping(self) -> MappingSettings: ...


def load_source_catalog(source: MappingSource) -> Catalog:
    """The catalog the configuration names (problems collected, not raised)."""
    return load_catalog(
        source.content.catalogs,
        canonical_stages=source.canonical_stages,
        vocabulary=source.content.tags,
    )


def mapping_problems(
    source: MappingSource,
    *,
    catalog: Catalog | None = None,
    check_stage_names: bool = True,
) -> tuple[Catalog, list[MappingProblem]]:
    """Load the catalog and list every problem of catalog, rules and mapping settings.

    ``check_stage_names=False`` skips the stage-name checks the configuration loader
    already makes (stage maps and rule stages), so nothing is reported twice.
    """
    catalog = catalog if catalog is not None else load_source_catalog(source)
    stages = list(source.canonical_stages)
    custom = synced_custom_fields(source.connections)
    problems = list(catalog.problems)
    settings = source.mapping
    if settings.stage_fallback is not None:
        fallback = settings.stage_fallback
        named: list[tuple[PathKey, str | None]] = [
            (("mapping", "stage_fallback", "won"), fallback.won),
            (("mapping", "stage_fallback", "lost"), fallback.lost),
            *(
                (("mapping", "stage_fallback", "by_probability", i, "stage"), band.stage)
                for i, band in enumerate(fallback.by_probability)
            ),
        ]
        for path, stage in named:
            if stage is not None and stage not in stages:
                problems.append(
                    MappingProblem(
                        f"{stage!r} is not a canonical stage{did_you_mean(stage, stages)}",
                        path=path,
                    )
                )
    for facet, paths in settings.tag_facts.items():
        for i, key in enumerate(paths):
            ref = resolve_field(key, custom)
            if isinstance(ref, str):
                problems.append(MappingProblem(ref, path=("mapping", "tag_facts", facet, i)))
    if check_stage_names:
        for index, connection in enumerate(source.connections):
            for crm_stage, canonical in connection.stage_map.items():
                if canonical not in stages:
                    problems.append(
                        MappingProblem(
                            f"maps to {canonical!r}, which is not a canonical stage"
                            f"{did_you_mean(canonical, stages)}",
                            path=("connections", index, "stage_map", crm_stage),
                        )
                    )
    problems += check_rules(
        source.rules,
        catalog,
        custom_fields=custom,
        canonical_stages=stages,
        check_stage_names=check_stage_names,
        catalog_configured=bool(source.content.catalogs),
    )
    return catalog, problems


def build_engine(
    source: MappingSource,
    *,
    catalog: Catalog | None = None,
    effects: Iterable[Effect] = (),
    strict: bool = True,
) -> RecommendationEngine:
    """Validate the setup and build the engine.

    With ``strict`` any error raises :class:`MappingError` listing all of them; without,
    bad catalog rows are simply left out (they are in ``engine.catalog.problems``).
    """
    catalog, problems = mapping_problems(source, catalog=catalog)
    errors = [p for p in problems if p.severity == "error"]
    if strict and errors:
        raise MappingError(errors)
    return RecommendationEngine(
        catalog=catalog,
        rules=source.rules,
        stage_maps={c.name: c.stage_map for c in source.connections},
        canonical_stages=source.canonical_stages,
        settings=source.mapping,
        top_n=source.content.top_n,
        custom_fields=synced_custom_fields(source.connections),
        effects=effects,
    )
