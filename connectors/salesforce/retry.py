"""The one retry policy for Salesforce reads: transient errors only, bounded, with jitter.

Only translated errors reach it (see ``errors.py``). It retries :class:`TransientError`
except those that a retry within the same call cannot cure (the spent daily allocation, a
lost query cursor), waits exponentially with jitter — longer when the server sent
``Retry-After`` — stops after ``attempts`` tries or ``max_total_seconds``, and then re-raises
the last error unchanged. Writes are never retried here: write-back repeats them itself,
with idempotency keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from connectors.core.errors import TransientError
from connectors.salesforce.errors import NOT_RETRIED_IN_CALL

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "is_retryable"]

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    """True for transient errors that may pass if the same request is sent again soon."""
    return isinstance(exc, TransientError) and not isinstance(exc, NOT_RETRIED_IN_CALL)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop around one idempotent Salesforce call."""

    attempts: int = 5
    max_total_seconds: float = 60.0
    initial_wait: float = 0.5
    max_wait: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < self.initial_wait:
            raise ValueError("waits must satisfy 0 <= initial_wait <= max_wait")

    def _wait(self) -> Callable[[RetryCallState], float]:
        # initial_wait * 2**n, capped, plus up to initial_wait of jitter so that clients that
        # failed together do not come back together.
        backoff = wait_exponential(multiplier=self.initial_wait, max=self.max_wait) + wait_random(
            0, self.initial_wait
        )

        def wait(state: RetryCallState) -> float:
            delay = backoff(state)
            error = state.outcome.exception() if state.outcome is not None else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                # Honour the server, within this policy's ceiling.
                delay = max(delay, min(retry_after.total_seconds(), self.max_wait))
            return delay

        return wait

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation``, retrying it under this policy; re-raises the last error."""
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_total_seconds),
            wait=self._wait(),
            reraise=True,
        )
        return retrying(operation)


DEFAULT_RETRY = RetryPolicy()
"""Five tries within a minute: 0.5 s, 1 s, 2 s, 4 s (+ jitter) between them."""
