"""The mapping part of the configuration: canonical stages, content sources and rules.

Only the shape is checked here; cross-references (a rule naming a stage that does not
exist, a stage map pointing nowhere) are checked by the application when the whole file is
loaded, so each error can name its key path.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from connectors.core.config import ExistingPath, StrictModel

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]

DEFAULT_CANONICAL_STAGES = (
    "discover",
    "qualify",
    "solution",
    "proposal",
    "negotiate",
    "closed_won",
    "closed_lost",
)


class ContentSettings(StrictModel):
    """Where the content catalog lives and how many items a rep sees."""

    catalogs: list[ExistingPath] = Field(
        default_factory=list, description="YAML or CSV files, or directories of them."
    )
    top_n: int = Field(default=5, ge=1, le=20)


class AmountRange(StrictModel):
    """An amount range, optionally in one currency."""

    min: float | None = None
    max: float | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class RuleConditions(StrictModel):
    """What an opportunity must look like for a rule to apply (all given conditions must hold)."""

    stages: list[Slug] = []
    industries: list[str] = []
    countries: list[str] = []
    regions: list[str] = []
    types: list[str] = []
    amount: AmountRange | None = None
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="Any synced field (custom ones too) to allowed values."
    )


class RuleSelection(StrictModel):
    """Which content a rule picks."""

    tags: list[str] = []
    content_ids: list[str] = []

    @model_validator(mode="after")
    def _not_empty(self) -> RuleSelection:
        if not self.tags and not self.content_ids:
            raise ValueError("a rule must select content by tags or content_ids")
        return self


class Rule(StrictModel):
    """One content rule."""

    id: Slug
    description: str = ""
    when: RuleConditions = RuleConditions()
    select: RuleSelection
    boost: float = Field(default=1.0, gt=0, le=100)
    exclude: bool = Field(default=False, description="Remove the selected content instead.")
