"""Everything one emulated HubSpot account holds at run time, in one place for the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.common import CallLog, FaultPlan
from sandbox.hubspot.auth import HubSpotCredentials, TokenRegistry
from sandbox.hubspot.crm import Crm
from sandbox.hubspot.options import HubSpotOptions
from sandbox.hubspot.ratelimit import RateLimiter
from sandbox.hubspot.store import Store
from sandbox.hubspot.timeutil import Clock


@dataclass
class Account:
    """State shared by the HTTP handlers and the Python API of :class:`HubSpotSandbox`."""

    store: Store
    credentials: HubSpotCredentials
    options: HubSpotOptions
    faults: FaultPlan
    calls: CallLog
    clock: Clock = field(default_factory=Clock)
    crm: Crm = field(init=False)
    tokens: TokenRegistry = field(init=False)
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.crm = Crm(self.store, self.clock)
        self.tokens = TokenRegistry(
            self.credentials, self.clock, self.options.oauth_token_ttl_seconds
        )
        self.limiter = RateLimiter(
            ten_second=self.options.ten_second_limit,
            daily=self.options.daily_limit,
            search_per_second=self.options.search_per_second,
            retry_after=self.options.retry_after_on_429,
        )

    def search_visible_before_ms(self) -> int | None:
        """Upper bound on ``hs_lastmodifieddate`` for search visibility (index lag), if any."""
        lag = self.options.search_index_lag_seconds
        if lag <= 0:
            return None
        return self.clock.now_ms() - int(lag * 1000)
