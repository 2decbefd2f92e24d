"""Seeded fault injection shared by both emulators.

A fault plan answers one question per incoming API request: "should this request fail, and
how?". Faults come from two sources:

* a **rate**: each request fails with probability ``rate``; the kind is drawn from
  ``kinds`` with a seeded RNG, so a failing test replays the same sequence;
* a **queue** of forced faults (``inject``): the next ``count`` requests whose path starts
  with ``path_prefix`` fail with that kind — for tests that need a fault at a precise spot.

Each emulator turns a :class:`Fault` into its own wire format (Salesforce error arrays,
HubSpot ``{status, message, category}`` bodies, rate-limit headers, ...).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """What an injected fault does to one request."""

    RATE_LIMIT = "rate_limit"  # 429 (HubSpot) / 403 REQUEST_LIMIT_EXCEEDED (Salesforce)
    SERVER_ERROR = "server_error"  # 500 / 502 / 503 with the vendor's error body
    SLOW = "slow"  # answer correctly, after ``delay_seconds``
    DROP = "drop"  # close the connection without a complete response
    SESSION_EXPIRY = "session_expiry"  # invalidate the caller's token, answer 401
    MALFORMED = "malformed"  # 200 with a truncated JSON body


@dataclass(frozen=True)
class Fault:
    """One fault to apply to one request."""

    kind: FaultKind
    status: int | None = None  # for SERVER_ERROR: which 5xx
    delay_seconds: float = 0.0  # for SLOW


@dataclass
class _Forced:
    kind: FaultKind
    remaining: int
    path_prefix: str
    status: int | None
    delay_seconds: float


@dataclass
class FaultPlan:
    """Decides, per request, whether to inject a fault. Thread-safe and seeded."""

    seed: int = 0
    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = (
        FaultKind.RATE_LIMIT,
        FaultKind.SERVER_ERROR,
        FaultKind.DROP,
        FaultKind.SESSION_EXPIRY,
    )
    slow_delay_seconds: float = 2.0
    # Paths never faulted by the random rate (admin endpoints, token endpoints if wanted).
    exempt_prefixes: tuple[str, ...] = ("/__admin",)
    injected: Counter[str] = field(default_factory=Counter)
    _forced: list[_Forced] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def configure(
        self,
        *,
        rate: float | None = None,
        kinds: list[FaultKind] | None = None,
        seed: int | None = None,
        slow_delay_seconds: float | None = None,
    ) -> None:
        """Change the random part of the plan (used by the admin endpoint and tests)."""
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        with self._lock:
            if rate is not None:
                self.rate = rate
            if kinds is not None:
                if not kinds:
                    raise ValueError("fault kinds must not be empty")
                self.kinds = tuple(kinds)
            if seed is not None:
                self.seed = seed
                self._rng = random.Random(seed)
            if slow_delay_seconds is not None:
                self.slow_delay_seconds = slow_delay_seconds

    def inject(
        self,
        kind: FaultKind,
        *,
        count: int = 1,
        path_prefix: str = "/",
        status: int | None = None,
        delay_seconds: float | None = None,
    ) -> None:
        """Force the next ``count`` requests under ``path_prefix`` to fail with ``kind``."""
        with self._lock:
            self._forced.append(
                _Forced(
                    kind=kind,
                    remaining=count,
                    path_prefix=path_prefix,
                    status=status,
                    delay_seconds=(
                        self.slow_delay_seconds if delay_seconds is None else delay_seconds
                    ),
                )
            )

    def clear(self) -> None:
        """Remove every forced fault and set the rate to zero."""
        with self._lock:
            self._forced.clear()
            self.rate = 0.0

    def next_fault(self, path: str) -> Fault | None:
        """Return the fault for a request to ``path``, or ``None`` to answer normally."""
        if any(path.startswith(prefix) for prefix in self.exempt_prefixes):
            return None
        with self._lock:
            for forced in self._forced:
                if forced.remaining > 0 and path.startswith(forced.path_prefix):
                    forced.remaining -= 1
                    self._forced = [f for f in self._forced if f.remaining > 0]
                    self.injected[forced.kind.value] += 1
                    return Fault(forced.kind, forced.status, forced.delay_seconds)
            if self.rate <= 0.0 or self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            status = self._rng.choice((500, 502, 503)) if kind is FaultKind.SERVER_ERROR else None
            self.injected[kind.value] += 1
            return Fault(kind, status, self.slow_delay_seconds)
