"""CRM stages to canonical stages: a connection's ``stage_map``, then an optional fallback.

Keys of a stage map may be written as ``pipeline/stage-id`` (HubSpot), a bare stage id or
``StageName`` value (Salesforce), or a stage label; they are tried in that order, exactly
first and then ignoring case. A stage that matches no key is *unmapped*: the fallback may
still place it by its closed/won flags or probability, but it is always reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mapping.config import StageFallback

Via = Literal["map", "fallback", "unmapped"]


@dataclass(frozen=True, slots=True)
class StageResolution:
    """Where one CRM stage lands, and how."""

    canonical: str | None
    via: Via
    #: What a person calls the CRM stage: its label, else its id.
    crm_stage: str
    #: The ``stage_map`` key that matched (``via == "map"``).
    key: str | None = None
    #: Why the fallback chose the stage, e.g. ``probability 55%``.
    detail: str = ""

    @property
    def mapped(self) -> bool:
        """Whether the stage landed on a canonical stage (by map or fallback)."""
        return self.canonical is not None

    def describe(self) -> str:
        """``stage Proposal → proposal``, with the fallback reason when there is one."""
        if self.canonical is None:
            return f"stage {self.crm_stage} is not mapped to a canonical stage"
        text = f"stage {self.crm_stage} → {self.canonical}"
        if self.via == "fallback":
            text += f" (not in the stage map, placed by {self.detail})"
        return text


@dataclass(frozen=True, slots=True)
class CrmStageRef:
    """The facts about a CRM stage the mapper uses (from the deal or the synced metadata)."""

    pipeline: str | None
    stage_id: str | None
    label: str | None = None
    probability: float | None = None
    is_closed: bool = False
    is_won: bool = False

    @property
    def name(self) -> str:
        """The label, else the id (``?`` when the deal has no stage at all)."""
        return self.label or self.stage_id or "?"


class StageMapper:
    """Resolves CRM stages of one connection; results are cached per distinct stage."""

    def __init__(
        self,
        stage_map: Mapping[str, str],
        *,
        fallback: StageFallback | None = None,
        canonical_stages: Sequence[str] = (),
    ) -> None:
        self.stage_map = dict(stage_map)
        self.fallback = fallback
        self.canonical_stages = tuple(canonical_stages)
        self._exact = dict(stage_map)
        self._folded: dict[str, str] = {}
        for key in stage_map:
            self._folded.setdefault(_fold(key), key)
        self._cache: dict[CrmStageRef, StageResolution] = {}

    def resolve(self, ref: CrmStageRef) -> StageResolution:
        """The canonical stage of ``ref`` (cached)."""
        cached = self._cache.get(ref)
        if cached is None:
            cached = self._cache[ref] = self._resolve(ref)
        return cached

    def matching_key(self, ref: CrmStageRef) -> str | None:
        """The stage-map key that names ``ref``, if any."""
        candidates: list[str] = []
        if ref.pipeline and ref.stage_id:
            candidates.append(f"{ref.pipeline}/{ref.stage_id}")
        if ref.stage_id:
            candidates.append(ref.stage_id)
        if ref.pipeline and ref.label:
            candidates.append(f"{ref.pipeline}/{ref.label}")
        if ref.label:
            candidates.append(ref.label)
        for candidate in candidates:
            if candidate in self._exact:
                return candidate
        for candidate in candidates:
            key = self._folded.get(_fold(candidate))
            if key is not None:
                return key
        return None

    def _resolve(self, ref: CrmStageRef) -> StageResolution:
        key = self.matching_key(ref)
        if key is not None:
            return StageResolution(self._exact[key], "map", ref.name, key=key)
        canonical, detail = self._fall_back(ref)
        if canonical is not None:
            return StageResolution(canonical, "fallback", ref.name, detail=detail)
        return StageResolution(None, "unmapped", ref.name)

    def _fall_back(self, ref: CrmStageRef) -> tuple[str | None, str]:
        fallback = self.fallback
        if fallback is None:
            return None, ""
        if ref.is_closed:
            if ref.is_won:
                return fallback.won, "closed won"
            return fallback.lost, "closed lost"
        if ref.probability is not None:
            for band in fallback.by_probability:
                if ref.probability <= band.up_to + 1e-9:
                    return band.stage, f"probability {ref.probability:.0%}"
        return None, ""


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())
