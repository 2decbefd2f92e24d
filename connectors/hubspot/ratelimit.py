"""Pacing requests so a sync uses HubSpot's allowance without drawing 429s (facts B8).

HubSpot limits each app install to ``X-HubSpot-RateLimit-Max`` requests per rolling
``X-HubSpot-RateLimit-Interval-Milliseconds`` (100-250 per 10 s by tier) and, separately, the
search endpoints to 5 requests per second per account — and search answers carry no rate
headers. (https://developers.hubspot.com/docs/api/usage-details)

:class:`SlidingWindowLimiter` keeps at most ``limit`` requests in any rolling ``interval``. It
counts:

* our own requests, by the time their answer arrived (never earlier than HubSpot counted
  them, so a slot is only reused once HubSpot has surely forgotten it), plus those in flight;
* everyone else's, when the server tells us: after each answer, ``Max - Remaining`` minus our
  own requests in the window is what other clients of the same app spent; as we cannot know
  when they sent them, they are assumed to stay in the window for a whole interval.

A request waits only when the window is full, and then just until the earliest slot frees.
Clock and sleep are injected so the arithmetic is testable with a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connectors.core.probe import ApiBudget

__all__ = [
    "Clock",
    "RateHeaders",
    "Sleep",
    "SlidingWindowLimiter",
    "budgets_from",
]

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``)."""
Sleep = Callable[[float], None]
"""Blocks for the given seconds (``time.sleep``)."""


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class RateHeaders:
    """The ``X-HubSpot-RateLimit-*`` headers of one answer (any may be missing)."""

    max: int | None = None
    remaining: int | None = None
    interval_seconds: float | None = None
    daily: int | None = None
    daily_remaining: int | None = None  # absent for OAuth apps

    @classmethod
    def parse(cls, headers: Mapping[str, str] | None) -> RateHeaders | None:
        """The rate headers in ``headers`` (case-insensitive), or ``None`` if there are none."""
        if not headers:
            return None
        lower = {k.lower(): v for k, v in headers.items()}
        interval_ms = _int_header(lower, "x-hubspot-ratelimit-interval-milliseconds")
        parsed = cls(
            max=_int_header(lower, "x-hubspot-ratelimit-max"),
            remaining=_int_header(lower, "x-hubspot-ratelimit-remaining"),
            interval_seconds=interval_ms / 1000 if interval_ms and interval_ms > 0 else None,
            daily=_int_header(lower, "x-hubspot-ratelimit-daily"),
            daily_remaining=_int_header(lower, "x-hubspot-ratelimit-daily-remaining"),
        )
        if parsed == cls():
            return None
        return parsed


def budgets_from(headers: RateHeaders | None) -> list[ApiBudget]:
    """Daily and ten-second budgets as HubSpot last reported them."""
    if headers is None:
        return []
    budgets: list[ApiBudget] = []
    if headers.daily is not None:
        used = (
            headers.daily - headers.daily_remaining if headers.daily_remaining is not None else None
        )
        budgets.append(ApiBudget(used=used, limit=headers.daily, window="daily"))
    if headers.max is not None:
        used = headers.max - headers.remaining if headers.remaining is not None else None
        seconds = headers.interval_seconds or 10.0
        budgets.append(ApiBudget(used=used, limit=headers.max, window=f"{seconds:g}s"))
    return budgets


class SlidingWindowLimiter:
    """At most ``limit`` requests in any rolling ``interval`` seconds. Thread-safe.

    Use: ``acquire()`` before sending (it sleeps if needed), then exactly one ``release()``
    when the request is over, saying whether it reached the server and passing the rate
    headers of the answer if there were any. ``limit=None`` means "not known yet": nothing
    waits until an answer's headers tell the limit.
    """

    def __init__(
        self,
        *,
        limit: int | None,
        interval: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        margin: float | None = None,
        reserve: int = 0,
        poll: float | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        if interval <= 0:
            raise ValueError("interval must be positive")
        if reserve < 0:
            raise ValueError("reserve must not be negative")
        self._limit = limit
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        # Extra time each of our requests is kept in the window: covers clock granularity and
        # a server that rounds its window (2% of the interval: 0.2 s for 10 s, 20 ms for 1 s).
        self._margin = interval * 0.02 if margin is None else margin
        self._reserve = reserve
        self._poll = poll if poll is not None else min(0.05, interval / 20)
        self._log: deque[float] = deque()  # answer times of our requests, ascending
        self._in_flight = 0
        self._others = 0  # other clients' requests HubSpot counted at the last observation
        self._others_until = 0.0
        self._blocked_until = 0.0
        self._last_headers: RateHeaders | None = None
        self._lock = threading.Lock()

    # -- what the server said ------------------------------------------------------------

    @property
    def limit(self) -> int | None:
        """Requests allowed per interval, as configured or last reported by HubSpot."""
        return self._limit

    @property
    def interval(self) -> float:
        """Length of the rolling window in seconds."""
        return self._interval

    @property
    def last_headers(self) -> RateHeaders | None:
        """The most recent rate headers seen (for budget reports)."""
        with self._lock:
            return self._last_headers

    # -- the protocol ----------------------------------------------------------------------

    def acquire(self) -> float:
        """Wait until a request may be sent, and count it as in flight. Returns seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._delay_locked(self._clock())
                if delay <= 0:
                    self._in_flight += 1
                    return waited
            self._sleep(delay)
            waited += delay

    def release(self, *, sent: bool = True, headers: RateHeaders | None = None) -> None:
        """End one acquired request. ``sent=False``: it never reached HubSpot (not counted)."""
        with self._lock:
            now = self._clock()
            self._in_flight = max(0, self._in_flight - 1)
            if sent:
                self._log.append(now)
            if headers is not None:
                self._observe_locked(now, headers)

    def block_for(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (after a 429 with ``Retry-After``)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def delay(self) -> float:
        """Seconds the next ``acquire()`` would wait now (0 when a slot is free)."""
        with self._lock:
            return max(0.0, self._delay_locked(self._clock()))

    # -- the arithmetic ---------------------------------------------------------------------

    def _observe_locked(self, now: float, headers: RateHeaders) -> None:
        self._last_headers = headers
        if headers.interval_seconds is not None:
            self._interval = headers.interval_seconds
        if headers.max is None or headers.max < 1:
            return
        self._limit = headers.max
        if headers.remaining is None:
            return
        self._prune_locked(now)
        used_by_server = headers.max - headers.remaining
        others = used_by_server - len(self._log)
        # The server's count is authoritative at this moment: what is not ours is theirs.
        self._others = max(0, others)
        if others > 0:
            self._others_until = now + self._interval

    def _prune_locked(self, now: float) -> None:
        keep = self._interval + self._margin
        while self._log and self._log[0] + keep <= now:
            self._log.popleft()

    def _delay_locked(self, now: float) -> float:
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._limit is None:
            return 0.0
        self._prune_locked(now)
        capacity = max(1, self._limit - self._reserve)
        others = self._others if now < self._others_until else 0
        used = len(self._log) + self._in_flight + others
        if used < capacity:
            return 0.0
        to_free = used - capacity + 1
        keep = self._interval + self._margin
        expiries = sorted([t + keep for t in self._log] + [self._others_until] * others)
        if to_free > len(expiries):
            # Only requests still in flight hold the slots: look again shortly.
            return self._poll
        return max(expiries[to_free - 1] - now, 1e-3)
