"""The mapping part of the configuration: canonical stages, content sources, rules and ranking.

Only the shape is checked here; cross-references (a rule naming a stage, field, tag or
content id that does not exist, a stage map pointing nowhere) are checked when the whole
file is loaded (:func:`mapping.validation.mapping_problems`), so each error can name its
key path and line.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from connectors.core.config import ExistingPath, StrictModel

Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: A value a synced field may have; compared case- and punctuation-insensitively as text.
FieldValue = str | bool | int | float

DEFAULT_CANONICAL_STAGES = (
    "discover",
    "qualify",
    "solution",
    "proposal",
    "negotiate",
    "closed_won",
    "closed_lost",
)

#: Tag facets a content item may carry; each is a list of values.
TAG_FACETS = ("industries", "products", "regions", "countries", "languages", "segments")


class ContentSettings(StrictModel):
    """Where the content catalog lives, which tags it may use and how many items a rep sees."""

    catalogs: list[ExistingPath] = Field(
        default_factory=list, description="YAML or CSV files, or directories of them."
    )
    top_n: int = Field(default=5, ge=1, le=20)
    tags: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Allowed tag values per facet; a catalog tag outside them is an error.",
    )

    @field_validator("tags")
    @classmethod
    def _known_facets(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(TAG_FACETS))
        if unknown:
            raise ValueError(
                f"unknown tag facet(s) {', '.join(unknown)} (allowed: {', '.join(TAG_FACETS)})"
            )
        return value


class AmountRange(StrictModel):
    """An amount range, optionally in one currency (see :class:`CurrencySettings`)."""

    min: float | None = None
    max: float | None = None
    currency: CurrencyCode | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class DayRange(StrictModel):
    """A number of days, both ends included."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class RuleConditions(StrictModel):
    """What an opportunity must look like for a rule to apply.

    Every given condition must hold; within one condition any listed value may match.
    Text is compared ignoring case and punctuation, so ``Financial Services`` matches
    HubSpot's ``FINANCIAL_SERVICES``.
    """

    stages: list[Slug] = Field(default=[], description="Canonical stages.")
    pipelines: list[str] = Field(default=[], description="CRM pipeline ids or labels.")
    industries: list[str] = Field(default=[], description="The account's industry.")
    countries: list[str] = Field(default=[], description="The account's country.")
    regions: list[str] = Field(default=[], description="The account's region.")
    account_types: list[str] = Field(default=[], description="The account's type.")
    types: list[str] = Field(default=[], description="The opportunity's type.")
    record_types: list[str] = Field(default=[], description="The opportunity's record type.")
    owners: list[str] = Field(default=[], description="The opportunity owner's e-mail.")
    amount: AmountRange | None = None
    days_in_stage: DayRange | None = None
    fields: dict[str, list[FieldValue]] = Field(
        default_factory=dict,
        description="Synced fields (custom ones too), e.g. opportunity.Product_Line__c, to "
        "allowed values.",
    )


class RuleSelection(StrictModel):
    """Which content a rule picks: items carrying any of ``tags`` (``value`` or
    ``facet:value``) and the items named in ``content_ids``."""

    tags: list[str] = []
    content_ids: list[str] = []

    @model_validator(mode="after")
    def _not_empty(self) -> RuleSelection:
        if not self.tags and not self.content_ids:
            raise ValueError("a rule must select content by tags or content_ids")
        return self


class Rule(StrictModel):
    """One content rule.

    When the opportunity matches ``when``, the selected content that fits the deal's stage
    gains ``boost`` points (every fitting item starts with 1), or is removed when
    ``exclude`` is set. Exclusions always win over boosts.
    """

    id: Slug
    description: str = ""
    when: RuleConditions = RuleConditions()
    select: RuleSelection
    boost: float = Field(default=1.0, gt=0, le=100, description="Points added when it applies.")
    exclude: bool = Field(default=False, description="Remove the selected content instead.")


class ProbabilityBand(StrictModel):
    """Open CRM stages whose probability is at most ``up_to`` map to ``stage``."""

    up_to: float = Field(ge=0, le=1, description="Probability as a fraction, 0.0 to 1.0.")
    stage: Slug


class StageFallback(StrictModel):
    """How a CRM stage missing from a connection's ``stage_map`` is mapped, from its metadata.

    Such a stage is still reported (check, coverage, logs); the fallback only keeps reps
    from seeing nothing while an admin adds the mapping.
    """

    won: Slug | None = Field(default=None, description="Closed won stages.")
    lost: Slug | None = Field(default=None, description="Closed lost stages.")
    by_probability: list[ProbabilityBand] = Field(
        default=[], description="Open stages by probability; bands in ascending order."
    )

    @model_validator(mode="after")
    def _ascending(self) -> StageFallback:
        bounds = [band.up_to for band in self.by_probability]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError("by_probability bands must have strictly ascending up_to values")
        return self


class CurrencySettings(StrictModel):
    """Conversion rates for amount conditions.

    An amount range in one currency matches a deal in another only when both currencies
    can be converted through ``base``. Deals without a currency (single-currency CRMs) and
    ranges without one are taken to be in ``base``; with no ``base`` such a range compares
    the raw amount.
    """

    base: CurrencyCode | None = None
    rates: dict[CurrencyCode, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="One unit of the currency is worth this much base."
    )

    @model_validator(mode="after")
    def _base_for_rates(self) -> CurrencySettings:
        if self.rates and self.base is None:
            raise ValueError("rates need a base currency")
        if self.base is not None and self.rates.get(self.base, 1.0) != 1.0:
            raise ValueError(f"the base currency {self.base} must have rate 1.0")
        return self


class EffectivenessSettings(StrictModel):
    """How content effectiveness (win rate of touched deals vs the rest) is computed and used."""

    blend: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="How much of the win-rate lift enters ranking (0 = not at all).",
    )
    prior_strength: float = Field(
        default=10.0, gt=0, description="Pseudo-deals of the Beta prior at the stage's win rate."
    )
    min_closed: int = Field(
        default=3, ge=1, description="Closed touched deals needed before lift is used."
    )
    max_lift: float = Field(default=1.0, gt=0, le=10, description="Cap on the lift applied.")


class MappingSettings(StrictModel):
    """Stage fallback, currency conversion, tag affinity and effectiveness blending."""

    stage_fallback: StageFallback | None = None
    currency: CurrencySettings = CurrencySettings()
    tag_facts: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "industries": ["account.industry"],
            "regions": ["account.region"],
            "countries": ["account.country"],
        },
        description="Which deal facts each tag facet is compared with (content made for the "
        "deal's industry ranks higher, content made for another ranks lower).",
    )
    effectiveness: EffectivenessSettings = EffectivenessSettings()

    @field_validator("tag_facts")
    @classmethod
    def _known_facets(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(TAG_FACETS))
        if unknown:
            raise ValueError(
                f"unknown tag facet(s) {', '.join(unknown)} (allowed: {', '.join(TAG_FACETS)})"
            )
        return value
