"""The one retry policy for HubSpot reads: transient errors only, bounded, with jitter.

Only translated errors reach it (see ``errors.py``). It retries
:class:`~connectors.core.errors.TransientError` except :class:`BudgetExhaustedError` (the
daily allowance does not come back within a call), waits exponentially with jitter — at
least as long as the rate-limit wait the server or the pacer asked for — stops after
``attempts`` tries or ``max_total_seconds``, and re-raises the last error unchanged.
Writes are never retried here: write-back repeats them itself, with idempotency keys.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from connectors.core.errors import TransientError
from connectors.hubspot.errors import BudgetExhaustedError
from connectors.hubspot.ratelimit import Sleep

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "is_retryable"]

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """True for transient errors that may pass if the same request is sent again soon."""
    return isinstance(exc, TransientError) and not isinstance(exc, BudgetExhaustedError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop around one idempotent HubSpot call."""

    attempts: int = 5
    max_total_seconds: float = 90.0
    initial_wait: float = 0.5
    max_wait: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < self.initial_wait:
            raise ValueError("waits must satisfy 0 <= initial_wait <= max_wait")

    def wait_for(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never shorter than the error's ``retry_after``
        (capped at ``max_wait``)."""
        # Computed here rather than with wait_exponential_jitter, whose ``initial`` argument
        # tenacity 9.2 deprecates and 8.x lacks the replacement of.
        exponential = self.initial_wait * 2.0 ** (state.attempt_number - 1)
        delay = min(self.max_wait, exponential + random.uniform(0, self.initial_wait))
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, timedelta):
            delay = max(delay, min(retry_after.total_seconds(), self.max_wait))
        return delay

    def call(self, operation: Callable[[], T], *, sleep: Sleep = time.sleep) -> T:
        """Run ``operation``, retrying it under this policy; re-raises the last error."""
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_total_seconds),
            wait=self.wait_for,
            sleep=sleep,
            reraise=True,
        )
        return retrying(operation)


DEFAULT_RETRY = RetryPolicy()
"""Five tries within 90 s: 0.5 s, 1 s, 2 s, 4 s (+ jitter) between them, longer on 429s."""
