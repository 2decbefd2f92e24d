"""HubSpot's retry policy: the shared one, minus the spent daily allowance (it does not come
back within a call), with room for the ten-second window's waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.core.retry import RetryPolicy as _CoreRetryPolicy
from connectors.hubspot.errors import BudgetExhaustedError

__all__ = ["DEFAULT_RETRY", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy(_CoreRetryPolicy):
    """Bounds of the retry loop around one idempotent HubSpot call."""

    not_retried: ClassVar[tuple[type[BaseException], ...]] = (BudgetExhaustedError,)

    max_total_seconds: float = 90.0


DEFAULT_RETRY = RetryPolicy()
"""Five tries within 90 s: 0.5 s, 1 s, 2 s, 4 s (+ jitter) between them, longer on 429s."""
