"""Usage capture: API tokens, usage events, held/unassigned resolution and outbox rows.

::

    service = UsageService(config, storage)          # what the web layer's router uses
    results = service.ingest(token, batch.events)    # one EventResult per event
    resolve_held(config, storage, "acme-hubspot")    # the scheduler's periodic safety net
    on_accepted(lambda connection: ...)              # told after commits that accepted events
"""

from stagelink.usage.ingest import (
    AssignConflict,
    AssignForbidden,
    EventNotFound,
    IntakeLimits,
    UsageService,
)
from stagelink.usage.notify import notify_accepted, on_accepted
from stagelink.usage.resolve import HeldResolver, resolve_held
from stagelink.usage.stats import usage_counts, usage_counts_by_connection
from stagelink.usage.tokens import AuthError, TokenError, TokenInfo, authenticate

__all__ = [
    "AssignConflict",
    "AssignForbidden",
    "AuthError",
    "EventNotFound",
    "HeldResolver",
    "IntakeLimits",
    "TokenError",
    "TokenInfo",
    "UsageService",
    "authenticate",
    "notify_accepted",
    "on_accepted",
    "resolve_held",
    "usage_counts",
    "usage_counts_by_connection",
]
