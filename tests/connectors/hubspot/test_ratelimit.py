"""The pacing arithmetic, with a fake clock: when a request must wait, and for how long."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.core.probe import ApiBudget
from connectors.hubspot.ratelimit import RateHeaders, SlidingWindowLimiter, budgets_from


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def headers(*, max_: int, remaining: int, interval_ms: int = 10_000) -> RateHeaders:
    return RateHeaders(max=max_, remaining=remaining, interval_seconds=interval_ms / 1000)


class FakeServer:
    """HubSpot's rolling window as the sandbox keeps it: arrivals within ``interval``."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self.arrivals: deque[float] = deque()
        self.rejected = 0

    def receive(self, at: float) -> RateHeaders:
        while self.arrivals and at - self.arrivals[0] >= self.interval:
            self.arrivals.popleft()
        if len(self.arrivals) >= self.limit:
            self.rejected += 1
        else:
            self.arrivals.append(at)
        return headers(
            max_=self.limit,
            remaining=self.limit - len(self.arrivals),
            interval_ms=int(self.interval * 1000),
        )


def test_headers_are_read_case_insensitively_and_missing_ones_stay_unknown() -> None:
    parsed = RateHeaders.parse(
        {
            "x-hubspot-ratelimit-max": "190",
            "X-HubSpot-RateLimit-Remaining": "185",
            "X-HUBSPOT-RATELIMIT-INTERVAL-MILLISECONDS": "10000",
            "X-HubSpot-RateLimit-Daily": "650000",
        }
    )
    assert parsed == RateHeaders(
        max=190, remaining=185, interval_seconds=10.0, daily=650000, daily_remaining=None
    )
    assert RateHeaders.parse({"Content-Type": "application/json"}) is None
    assert RateHeaders.parse({"X-HubSpot-RateLimit-Max": "lots"}) is None


def test_budgets_say_what_is_used_of_each_window() -> None:
    private = RateHeaders(
        max=190, remaining=150, interval_seconds=10.0, daily=650_000, daily_remaining=649_000
    )
    assert budgets_from(private) == [
        ApiBudget(used=1_000, limit=650_000, window="daily"),
        ApiBudget(used=40, limit=190, window="10s"),
    ]
    # OAuth apps get no Daily-Remaining header: the daily use is unknown, not zero.
    oauth = RateHeaders(max=110, remaining=110, interval_seconds=10.0, daily=500_000)
    assert budgets_from(oauth)[0] == ApiBudget(used=None, limit=500_000, window="daily")
    assert budgets_from(None) == []


def test_nothing_waits_before_the_server_has_told_the_limit() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=None, interval=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        limiter.acquire()
        limiter.release(headers=None)
    assert clock.slept == []


def test_a_full_window_waits_exactly_until_its_oldest_request_has_left() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=None, interval=10.0, clock=clock, sleep=clock.sleep)
    for remaining in (2, 1, 0):  # the first answer teaches the limit: 3 per 10 s
        limiter.acquire()
        clock.advance(0.1)  # round trip
        limiter.release(headers=headers(max_=3, remaining=remaining))
    first_answer = 0.1
    waited = limiter.acquire()
    # Kept for the interval plus the 2 % margin after its answer arrived.
    assert clock.now == pytest.approx(first_answer + 10.0 + 0.2)
    assert waited == pytest.approx(10.2 + 0.1 - 0.3)


def test_requests_of_other_clients_reported_by_the_headers_are_left_room() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=10, interval=10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.advance(0.5)
    # Server: 8 of 10 used, only one of them ours -> 7 belong to someone else.
    limiter.release(headers=headers(max_=10, remaining=2))
    limiter.acquire()
    limiter.acquire()  # ours: 1 answered + 2 in flight, theirs: 7 -> full
    # Their requests are assumed to stay a whole interval after we learnt of them.
    assert limiter.delay() == pytest.approx(10.0)
    clock.advance(1.0)
    # The next answer shows only our three requests in the window: the estimate is dropped.
    limiter.release(headers=headers(max_=10, remaining=7))
    limiter.release()
    assert limiter.delay() == 0.0


def test_sixty_requests_at_twenty_per_ten_seconds_take_two_windows_and_draw_no_429() -> None:
    clock = FakeClock()
    server = FakeServer(limit=20, interval=10.0)
    limiter = SlidingWindowLimiter(limit=None, interval=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        limiter.acquire()
        limiter.release(headers=server.receive(clock.now))
    assert server.rejected == 0
    # Requests 21 and 41 each wait for a window (plus the 0.2 s margin): the quota is used fully.
    assert clock.now == pytest.approx(2 * 10.2)


def test_reserve_keeps_slots_free_for_other_work() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        limit=10, interval=10.0, clock=clock, sleep=clock.sleep, reserve=2
    )
    for _ in range(8):
        limiter.acquire()
        limiter.release()
    assert clock.slept == []
    limiter.acquire()
    assert clock.slept == [pytest.approx(10.2)]


def test_search_limiter_sends_five_per_second() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=5, interval=1.0, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    for _ in range(12):
        limiter.acquire()
        sent.append(clock.now)
        limiter.release()
    assert all(sum(1 for t in sent if start <= t < start + 1.0) <= 5 for start in sent)
    assert clock.now == pytest.approx(2 * 1.02)


def test_requests_in_flight_hold_their_slots() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=2, interval=10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    # Neither has answered: nothing can expire, so look again shortly rather than guess.
    assert 0 < limiter.delay() <= 0.05
    limiter.release(sent=False)  # refused connection: it never counted
    assert limiter.delay() == 0.0


def test_block_for_holds_every_request() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(limit=100, interval=10.0, clock=clock, sleep=clock.sleep)
    limiter.block_for(1.5)
    limiter.acquire()
    assert clock.now == pytest.approx(1.5)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=8),
    latencies=st.lists(
        st.tuples(st.floats(0.0, 0.4), st.floats(0.0, 0.4)), min_size=1, max_size=40
    ),
)
def test_paced_requests_never_find_the_server_window_full(
    limit: int, latencies: list[tuple[float, float]]
) -> None:
    """Whatever the network delays, a paced client never sends into a full window."""
    clock = FakeClock()
    server = FakeServer(limit=limit, interval=1.0)
    limiter = SlidingWindowLimiter(limit=None, interval=1.0, clock=clock, sleep=clock.sleep)
    for up, down in latencies:
        limiter.acquire()
        clock.advance(up)
        answer = server.receive(clock.now)
        clock.advance(down)
        limiter.release(headers=answer)
    assert server.rejected == 0
