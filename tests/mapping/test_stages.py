"""CRM stages to canonical stages: stage maps, labels, case, fallback, and reporting."""

from __future__ import annotations

import pytest

from mapping.config import StageFallback
from mapping.stages import CrmStageRef, StageMapper

HUBSPOT_MAP = {
    "default/appointmentscheduled": "discover",
    "default/contractsent": "negotiate",
    "2871935/2871937": "solution",
    "Decision maker bought-in": "proposal",
}
SALESFORCE_MAP = {"Prospecting": "discover", "Proposal/Price Quote": "proposal"}
FALLBACK = StageFallback.model_validate(
    {
        "won": "closed_won",
        "lost": "closed_lost",
        "by_probability": [
            {"up_to": 0.2, "stage": "discover"},
            {"up_to": 0.6, "stage": "solution"},
            {"up_to": 1.0, "stage": "negotiate"},
        ],
    }
)


@pytest.mark.parametrize(
    ("stage_map", "ref", "canonical", "via", "text"),
    [
        pytest.param(
            SALESFORCE_MAP,
            CrmStageRef("default", "Proposal/Price Quote"),
            "proposal",
            "map",
            "stage Proposal/Price Quote → proposal",
            id="salesforce-stagename-with-slash",
        ),
        pytest.param(
            SALESFORCE_MAP,
            CrmStageRef(None, "prospecting"),
            "discover",
            "map",
            "stage prospecting → discover",
            id="case-insensitive",
        ),
        pytest.param(
            HUBSPOT_MAP,
            CrmStageRef("default", "contractsent", "Contract sent"),
            "negotiate",
            "map",
            "stage Contract sent → negotiate",
            id="hubspot-pipeline-and-id",
        ),
        pytest.param(
            HUBSPOT_MAP,
            CrmStageRef("2871935", "2871937", "Demo"),
            "solution",
            "map",
            "stage Demo → solution",
            id="hubspot-custom-pipeline-numeric-ids",
        ),
        pytest.param(
            HUBSPOT_MAP,
            CrmStageRef("default", "decisionmakerboughtin", "Decision maker bought-in"),
            "proposal",
            "map",
            "stage Decision maker bought-in → proposal",
            id="hubspot-by-label",
        ),
        pytest.param(
            HUBSPOT_MAP,
            CrmStageRef("2871935", "contractsent"),
            None,
            "unmapped",
            "stage contractsent is not mapped to a canonical stage",
            id="same-id-other-pipeline-is-not-mapped",
        ),
    ],
)
def test_stage_map_resolution(
    stage_map: dict[str, str], ref: CrmStageRef, canonical: str | None, via: str, text: str
) -> None:
    resolution = StageMapper(stage_map).resolve(ref)
    assert (resolution.canonical, resolution.via, resolution.describe()) == (canonical, via, text)


@pytest.mark.parametrize(
    ("ref", "canonical", "detail"),
    [
        (CrmStageRef("default", "Won it", is_closed=True, is_won=True), "closed_won", "closed won"),
        (CrmStageRef("default", "Lost it", is_closed=True), "closed_lost", "closed lost"),
        (CrmStageRef("default", "Technical Validation", probability=0.55), "solution",
         "probability 55%"),
        (CrmStageRef("default", "Early", probability=0.2), "discover", "probability 20%"),
        (CrmStageRef("default", "Mystery"), None, ""),
    ],
)  # fmt: skip
def test_fallback_by_metadata_is_used_but_marked(
    ref: CrmStageRef, canonical: str | None, detail: str
) -> None:
    resolution = StageMapper(SALESFORCE_MAP, fallback=FALLBACK).resolve(ref)
    assert resolution.canonical == canonical
    assert resolution.detail == detail
    assert resolution.via == ("fallback" if canonical else "unmapped")
    if canonical:
        assert "not in the stage map, placed by" in resolution.describe()


def test_a_mapped_stage_ignores_the_fallback() -> None:
    mapper = StageMapper(SALESFORCE_MAP, fallback=FALLBACK)
    resolution = mapper.resolve(CrmStageRef("default", "Prospecting", probability=0.99))
    assert (resolution.canonical, resolution.via) == ("discover", "map")


def test_fallback_bands_must_ascend() -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        StageFallback.model_validate(
            {"by_probability": [{"up_to": 0.5, "stage": "a"}, {"up_to": 0.2, "stage": "b"}]}
        )
