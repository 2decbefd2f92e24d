"""What ``stagelink check`` learns about a connection: can we log in, read what we need, and
how much API budget is left."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiBudget:
    """The CRM's own API allowance as it reported it."""

    used: int | None
    limit: int | None
    window: str  # e.g. "24h rolling", "daily", "10s"

    @property
    def remaining(self) -> int | None:
        """Requests left in the window, when both numbers are known."""
        if self.used is None or self.limit is None:
            return None
        return max(self.limit - self.used, 0)


@dataclass(frozen=True)
class ObjectAccess:
    """Whether the integration user can do what stagelink needs with one CRM object."""

    name: str  # e.g. "Opportunity", "deals"
    readable: bool
    writable: bool | None = None  # None: not needed or not checked
    detail: str = ""


@dataclass
class ProbeReport:
    """The outcome of probing one connection; ``problems`` says what a person must fix."""

    connection: str
    kind: str
    authenticated: bool
    identity: str = ""  # who we are logged in as (username, portal id, ...)
    endpoint: str = ""
    budgets: list[ApiBudget] = field(default_factory=list)
    objects: list[ObjectAccess] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when logged in and nothing needs fixing."""
        return self.authenticated and not self.problems
