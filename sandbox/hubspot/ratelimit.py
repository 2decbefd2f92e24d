"""HubSpot's request budgets (facts B8): a rolling 10-second window and a daily count per app
install, plus the search endpoints' 5 requests/second per account.

* Non-search responses carry ``X-HubSpot-RateLimit-*`` headers (``-Daily-Remaining`` only for
  private apps); search responses carry none.
* Over budget: 429 with ``policyName`` ``TEN_SECONDLY_ROLLING``, ``DAILY`` or ``SECONDLY``;
  ``Retry-After`` only when ``retry_after_on_429`` is on (its presence is unconfirmed).
* Search requests count toward the daily budget but not the ten-second window (they have
  their own per-second limit).
* The daily count resets at midnight UTC (HubSpot uses the account's time zone [unconfirmed]).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from sandbox.hubspot.errors import correlation_id

INTERVAL_MS = 10_000


@dataclass
class RateLimitExceeded(Exception):
    """A 429 to send back: body, and the headers that go with it."""

    policy: str
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


def rate_limit_body(policy: str) -> dict[str, object]:
    """The 429 body HubSpot sends for ``policy``."""
    return {
        "status": "error",
        "message": _MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


class RateLimiter:
    """Counts requests and decides when to answer 429. Thread-safe."""

    def __init__(
        self,
        *,
        ten_second: int,
        daily: int,
        search_per_second: int,
        retry_after: bool,
    ) -> None:
        self.ten_second = ten_second
        self.daily = daily
        self.search_per_second = search_per_second
        self.retry_after = retry_after
        self._windows: dict[str, deque[float]] = {}
        self._daily: dict[str, tuple[str, int]] = {}
        self._search: deque[float] = deque()
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        ten_second: int | None = None,
        daily: int | None = None,
        search_per_second: int | None = None,
        retry_after: bool | None = None,
    ) -> None:
        """Change limits at run time (counts already made are kept)."""
        with self._lock:
            if ten_second is not None:
                self.ten_second = ten_second
            if daily is not None:
                self.daily = daily
            if search_per_second is not None:
                self.search_per_second = search_per_second
            if retry_after is not None:
                self.retry_after = retry_after

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._windows.clear()
            self._daily.clear()
            self._search.clear()

    @staticmethod
    def _today() -> str:
        return dt.datetime.now(dt.UTC).date().isoformat()

    @staticmethod
    def _seconds_to_midnight() -> int:
        now = dt.datetime.now(dt.UTC)
        midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1, math.ceil((midnight - now).total_seconds()))

    def _daily_used(self, key: str) -> int:
        day, used = self._daily.get(key, ("", 0))
        return used if day == self._today() else 0

    def _headers(self, key: str, private: bool, window: deque[float]) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(INTERVAL_MS),
            "X-HubSpot-RateLimit-Max": str(self.ten_second),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.ten_second - len(window))),
        }
        if private:
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily - self._daily_used(key))
            )
        return headers

    def check_standard(self, key: str, *, private: bool) -> dict[str, str]:
        """Count one non-search request; return its headers or raise :class:`RateLimitExceeded`."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= INTERVAL_MS / 1000:
                window.popleft()
            if self._daily_used(key) >= self.daily:
                headers = self._headers(key, private, window)
                if self.retry_after:
                    headers["Retry-After"] = str(self._seconds_to_midnight())
                raise RateLimitExceeded("DAILY", rate_limit_body("DAILY"), headers)
            if len(window) >= self.ten_second:
                headers = self._headers(key, private, window)
                if self.retry_after:
                    wait = window[0] + INTERVAL_MS / 1000 - now
                    headers["Retry-After"] = str(max(1, math.ceil(wait)))
                raise RateLimitExceeded(
                    "TEN_SECONDLY_ROLLING", rate_limit_body("TEN_SECONDLY_ROLLING"), headers
                )
            window.append(now)
            self._daily[key] = (self._today(), self._daily_used(key) + 1)
            return self._headers(key, private, window)

    def check_search(self, key: str) -> None:
        """Count one search request (per account); raise :class:`RateLimitExceeded` over 5/s."""
        now = time.monotonic()
        with self._lock:
            while self._search and now - self._search[0] >= 1.0:
                self._search.popleft()
            if self._daily_used(key) >= self.daily:
                headers = (
                    {"Retry-After": str(self._seconds_to_midnight())} if self.retry_after else {}
                )
                raise RateLimitExceeded("DAILY", rate_limit_body("DAILY"), headers)
            if len(self._search) >= self.search_per_second:
                headers = {"Retry-After": "1"} if self.retry_after else {}
                raise RateLimitExceeded("SECONDLY", rate_limit_body("SECONDLY"), headers)
            self._search.append(now)
            self._daily[key] = (self._today(), self._daily_used(key) + 1)

    def fault_headers(self, key: str, *, private: bool) -> dict[str, str]:
        """Headers for an injected 429: the window reported as spent."""
        with self._lock:
            headers = self._headers(key, private, self._windows.get(key, deque()))
        headers["X-HubSpot-RateLimit-Remaining"] = "0"
        if self.retry_after:
            headers["Retry-After"] = "1"
        return headers
