"""Switches for configurable emulator behaviour (limits, and the unconfirmed bits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DuplicateEventPolicy = Literal["conflict", "ignore", "overwrite"]


@dataclass
class HubSpotOptions:
    """Behaviour of one :class:`~sandbox.hubspot.HubSpotSandbox`.

    Defaults follow ``crm-api-facts.md``; fields marked *unconfirmed* there are switchable.
    """

    ten_second_limit: int = (
        190  # requests per rolling 10 s per app install (Professional/Enterprise)
    )
    daily_limit: int = 1_000_000  # requests per day (Enterprise)
    search_per_second: int = 5  # search requests per second per account
    retry_after_on_429: bool = False  # unconfirmed: send Retry-After on 429s
    search_index_lag_seconds: float = 0.0  # records modified this recently are not searchable yet
    oauth_token_ttl_seconds: int = 1800  # expires_in of OAuth access tokens
    duplicate_timeline_event_id: DuplicateEventPolicy = "conflict"  # unconfirmed upstream
    search_result_cap: int = 10_000  # search cannot page past this many results
    association_page_size: int = 500  # v4 association reads: targets per input per page

    def __post_init__(self) -> None:
        if self.duplicate_timeline_event_id not in ("conflict", "ignore", "overwrite"):
            raise ValueError(
                "duplicate_timeline_event_id must be 'conflict', 'ignore' or 'overwrite'"
            )
        for name in (
            "ten_second_limit",
            "daily_limit",
            "search_per_second",
            "search_result_cap",
            "association_page_size",
            "oauth_token_ttl_seconds",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
