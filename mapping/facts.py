"""What the engine knows about one opportunity, and how facts are compared.

Input is the normalized records of :mod:`connectors.core.records`, so the engine never
touches storage: the application loads them, tests and benchmarks build them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.core.records import Account, Opportunity, Owner, Stage

_WORDS = re.compile(r"[^\W_]+")

#: Fact paths every connector fills, per object (``opportunity.type``, ``account.industry``).
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "opportunity": (
        "name",
        "type",
        "record_type",
        "pipeline_crm_id",
        "stage_crm_id",
        "stage_label",
        "currency",
        "owner_crm_id",
        "account_crm_id",
    ),
    "account": ("name", "industry", "country", "region", "type", "currency"),
    "owner": ("email", "name"),
}
OBJECTS = tuple(STANDARD_FIELDS)


def norm(value: Any) -> str:
    """Compare form of a value: lower case, punctuation and spacing folded to ``_``.

    ``"Financial Services"``, ``"FINANCIAL_SERVICES"`` and ``"financial-services"`` are
    equal; ``True`` is ``"true"``; ``100.0`` is ``"100"``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    return "_".join(_WORDS.findall(str(value).casefold()))


@dataclass(frozen=True, slots=True)
class OpportunityFacts:
    """One opportunity with its account, owner and the metadata of its CRM stage."""

    connection: str
    opportunity: Opportunity
    account: Account | None = None
    owner: Owner | None = None
    #: The CRM stage's synced metadata (probability, closed, won), when known.
    stage: Stage | None = None

    def value(self, obj: str, name: str) -> Any:
        """The value of ``obj.name`` (standard attribute or synced custom field), or None."""
        record: Any = {
            "opportunity": self.opportunity,
            "account": self.account,
            "owner": self.owner,
        }.get(obj)
        if record is None:
            return None
        if name in STANDARD_FIELDS[obj]:
            return getattr(record, name)
        custom = getattr(record, "custom_fields", None)
        return custom.get(name) if custom else None
