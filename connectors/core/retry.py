"""The one retry policy for CRM reads: transient errors only, bounded, with jitter.

Only translated errors reach it (each connector's ``errors.py`` does the translating). It
retries :class:`TransientError` except the kinds a connector lists in ``not_retried`` (a
spent daily allowance, a lost query cursor: a retry within the same call cannot cure them),
waits exponentially with jitter — never shorter than the ``retry_after`` the server or a
pacer asked for, within ``max_wait`` — stops after ``attempts`` tries or
``max_total_seconds``, and re-raises the last error unchanged. Writes are never retried
here: write-back repeats them itself, with idempotency keys.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

from connectors.core.errors import TransientError

__all__ = ["RetryPolicy", "Sleep"]

T = TypeVar("T")
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop around one idempotent CRM call.

    Connectors subclass it to name the transient errors a retry cannot cure
    (``not_retried``) and, if they like, other default bounds.
    """

    not_retried: ClassVar[tuple[type[BaseException], ...]] = ()

    attempts: int = 5
    max_total_seconds: float = 60.0
    initial_wait: float = 0.5
    max_wait: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < self.initial_wait:
            raise ValueError("waits must satisfy 0 <= initial_wait <= max_wait")

    @classmethod
    def is_retryable(cls, exc: BaseException) -> bool:
        """True for transient errors that may pass if the same request is sent again soon."""
        return isinstance(exc, TransientError) and not isinstance(exc, cls.not_retried)

    def wait_for(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, but never shorter than the error's ``retry_after``
        (capped at ``max_wait``)."""
        # initial_wait * 2**n plus up to initial_wait of jitter, so clients that failed
        # together do not come back together. Computed here rather than with
        # wait_exponential_jitter, whose ``initial`` argument tenacity 9.2 deprecates.
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
            retry=retry_if_exception(self.is_retryable),
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.max_total_seconds),
            wait=self.wait_for,
            sleep=sleep,
            reraise=True,
        )
        return retrying(operation)
