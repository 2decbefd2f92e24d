"""Mapping: canonical stages, the content catalog, rules, recommendations, effectiveness.

Pure: imports only ``connectors.core``. The application loads deals from storage and
passes them in as :class:`OpportunityFacts`::

    engine = build_engine(config)                   # validates; raises MappingError
    for rec in engine.recommend_for(facts):
        print(rec.content.title, rec.score, rec.explanation)
"""

from mapping.catalog import Catalog, CatalogItem, load_catalog
from mapping.coverage import CoverageReport, ObservedStage, coverage_report
from mapping.effectiveness import Effect, Outcome, Touch, compute_effectiveness
from mapping.facts import OpportunityFacts, norm
from mapping.problems import MappingError, MappingProblem
from mapping.recommend import Evaluation, Recommendation, RecommendationEngine
from mapping.stages import CrmStageRef, StageMapper, StageResolution
from mapping.validation import MappingSource, build_engine, mapping_problems

__all__ = [
    "Catalog",
    "CatalogItem",
    "CoverageReport",
    "CrmStageRef",
    "Effect",
    "Evaluation",
    "MappingError",
    "MappingProblem",
    "MappingSource",
    "ObservedStage",
    "OpportunityFacts",
    "Outcome",
    "Recommendation",
    "RecommendationEngine",
    "StageMapper",
    "StageResolution",
    "Touch",
    "build_engine",
    "compute_effectiveness",
    "coverage_report",
    "load_catalog",
    "mapping_problems",
    "norm",
]
