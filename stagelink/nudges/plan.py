"""What to send one rep now: pure decisions over the changes waiting for them.

In order: quiet hours hold everything; a rep whose changes are still arriving (a bulk
edit synced in several batches) is given ``collect_for`` more, but never more than
``collect_max`` after the first; the rate limit counts nudges of the last ``per``
(a digest is one); many changes at once — ``digest_threshold`` or more, or more than the
rate limit still allows — go out as one digest, else one nudge per deal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from stagelink.nudges.config import QuietHours, RateLimit

__all__ = ["Decision", "Policy", "WaitReason", "Waiting", "decide"]

WaitReason = Literal["quiet_hours", "collecting", "rate_limited"]


@dataclass(frozen=True)
class Waiting:
    """One detected change waiting for its nudge."""

    id: int
    detected_at: datetime


@dataclass(frozen=True)
class Policy:
    """The batching rules that apply to one rep."""

    rate_limit: RateLimit
    digest_threshold: int
    collect_for: timedelta
    collect_max: timedelta
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True)
class Decision:
    """Send ``singles`` (one nudge each) and/or one ``digest``, or wait (``wait`` says why
    and ``until`` when to look again, if known)."""

    singles: tuple[int, ...] = ()
    digest: tuple[int, ...] = ()
    wait: WaitReason | None = None
    until: datetime | None = None


def decide(
    waiting: Sequence[Waiting], *, now: datetime, policy: Policy, recent: Sequence[datetime]
) -> Decision:
    """The decision for one rep; ``recent`` are the creation times of the rep's nudges."""
    if not waiting:
        return Decision()
    if policy.quiet_hours is not None:
        ends = policy.quiet_hours.ends_after(now)
        if ends is not None:
            return Decision(wait="quiet_hours", until=ends)
    first = min(w.detected_at for w in waiting)
    last = max(w.detected_at for w in waiting)
    settle = min(last + policy.collect_for, first + policy.collect_max)
    if now < settle:
        return Decision(wait="collecting", until=settle)
    window_start = now - policy.rate_limit.per
    in_window = sorted(moment for moment in recent if moment > window_start)
    allowance = policy.rate_limit.max - len(in_window)
    if allowance <= 0:
        # Free again when enough of the window's nudges have aged out for one more.
        oldest_needed = in_window[len(in_window) - policy.rate_limit.max]
        return Decision(wait="rate_limited", until=oldest_needed + policy.rate_limit.per)
    ids = tuple(w.id for w in sorted(waiting, key=lambda w: (w.detected_at, w.id)))
    if len(ids) >= policy.digest_threshold or len(ids) > allowance:
        return Decision(digest=ids)
    return Decision(singles=ids)
