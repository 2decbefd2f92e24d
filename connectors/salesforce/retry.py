"""Salesforce's retry policy: the shared one, minus what a retry within a call cannot cure
(the spent daily allocation, a lost query cursor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.core.retry import RetryPolicy as _CoreRetryPolicy
from connectors.salesforce.errors import NOT_RETRIED_IN_CALL

__all__ = ["DEFAULT_RETRY", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy(_CoreRetryPolicy):
    """Bounds of the retry loop around one idempotent Salesforce call."""

    not_retried: ClassVar[tuple[type[BaseException], ...]] = NOT_RETRIED_IN_CALL


DEFAULT_RETRY = RetryPolicy()
"""Five tries within a minute: 0.5 s, 1 s, 2 s, 4 s (+ jitter) between them."""
