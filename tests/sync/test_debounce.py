"""The debouncer: bursts of touches become one callback per connection and object type.

Real threads and real time, with windows of tens of milliseconds so the suite stays fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.core.records import ObjectType
from stagelink.sync.debounce import Debouncer, DebouncerClosed, RecentKeys

Factory = Callable[..., Debouncer]
OPP = ObjectType.OPPORTUNITY
ACC = ObjectType.ACCOUNT


class Recorder:
    """A callback that records its calls (with the time) and can be made slow or failing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ObjectType, list[str], float]] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.fail_for: set[str] = set()
        self.active = 0
        self.max_active_per_key: dict[tuple[str, ObjectType], int] = {}
        self._active_per_key: dict[tuple[str, ObjectType], int] = {}

    def __call__(self, connection: str, object_type: ObjectType, ids: list[str]) -> None:
        key = (connection, object_type)
        with self.lock:
            self._active_per_key[key] = self._active_per_key.get(key, 0) + 1
            self.max_active_per_key[key] = max(
                self.max_active_per_key.get(key, 0), self._active_per_key[key]
            )
        try:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.calls.append((connection, object_type, ids, time.monotonic()))
            if connection in self.fail_for:
                raise RuntimeError("CRM unreachable")
        finally:
            with self.lock:
                self._active_per_key[key] -= 1

    def ids(self) -> list[str]:
        return [i for call in self.calls for i in call[2]]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make(recorder: Recorder) -> Iterator[Factory]:
    made: list[Debouncer] = []

    def build(**kw: Any) -> Debouncer:
        debouncer = Debouncer(recorder, **kw)
        made.append(debouncer)
        return debouncer

    yield build
    for debouncer in made:
        debouncer.close(timeout=5)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_a_burst_about_three_deals_becomes_one_call_with_three_ids(
    make: Factory, recorder: Recorder
) -> None:
    debouncer = make(window=0.1, max_wait=2.0)
    started = time.monotonic()
    for n in range(100):
        debouncer.touch("hs", OPP, [f"30{n % 3}"], event_key=(1, n, 1000 + n))
    wait_for(lambda: recorder.calls)
    time.sleep(0.2)  # nothing else may follow
    assert len(recorder.calls) == 1
    connection, object_type, ids, at = recorder.calls[0]
    assert (connection, object_type, sorted(ids)) == ("hs", OPP, ["300", "301", "302"])
    assert 0.1 <= at - started < 1.0


def test_connections_and_object_types_are_flushed_separately(
    make: Factory, recorder: Recorder
) -> None:
    debouncer = make(window=0.05, max_wait=1.0)
    debouncer.touch("hs-eu", OPP, ["1", "2"])
    debouncer.touch("hs-eu", ACC, ["9"])
    debouncer.touch("hs-us", OPP, ["1"])
    wait_for(lambda: len(recorder.calls) == 3)
    assert sorted((c, t.value, ids) for c, t, ids, _ in recorder.calls) == [
        ("hs-eu", "account", ["9"]),
        ("hs-eu", "opportunity", ["1", "2"]),
        ("hs-us", "opportunity", ["1"]),
    ]


def test_a_steady_trickle_is_flushed_by_max_wait(make: Factory, recorder: Recorder) -> None:
    debouncer = make(window=0.15, max_wait=0.4)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < 1.0:  # a touch every 50 ms: the window never closes
        debouncer.touch("hs", OPP, [str(n)])
        n += 1
        time.sleep(0.05)
    first = recorder.calls[0][3] - started
    assert 0.35 <= first < 0.9, first
    assert len(recorder.calls) >= 2


def test_duplicate_events_are_dropped_but_distinct_events_about_one_record_are_not(
    make: Factory, recorder: Recorder
) -> None:
    debouncer = make(window=0.05, max_wait=1.0)
    assert debouncer.touch("hs", OPP, ["7"], event_key=(6547123, 1, 1782371972438))
    # Same event id, another subscription or time: a different event (ids are not unique).
    assert debouncer.touch("hs", OPP, ["8"], event_key=(6547124, 1, 1782371972438))
    assert debouncer.touch("hs", OPP, ["9"], event_key=(6547123, 1, 1782371972439))
    # A redelivery of the first event, and the same event for another connection.
    assert not debouncer.touch("hs", OPP, ["7"], event_key=(6547123, 1, 1782371972438))
    assert debouncer.touch("hs-2", OPP, ["7"], event_key=(6547123, 1, 1782371972438))
    wait_for(lambda: len(recorder.calls) == 2)
    debouncer.flush(timeout=2)
    # A redelivery after the flush is still remembered: no second read.
    assert not debouncer.touch("hs", OPP, ["7"], event_key=(6547123, 1, 1782371972438))
    time.sleep(0.15)
    assert sorted(recorder.ids()) == ["7", "7", "8", "9"]


def test_recent_keys_expire_after_the_ttl_and_stay_bounded() -> None:
    now = [0.0]
    keys = RecentKeys(ttl=60, max_size=3, clock=lambda: now[0])
    assert keys.add("a")
    assert not keys.add("a")
    now[0] = 61
    assert keys.add("a")  # forgotten after the ttl
    for key in "bcd":
        assert keys.add(key)
    assert len(keys) == 3  # "a" was evicted as the oldest
    assert keys.add("a")
    assert not keys.add("d")


def test_close_flushes_what_is_pending_before_returning(make: Factory, recorder: Recorder) -> None:
    debouncer = make(window=60, max_wait=120)
    debouncer.touch("hs", OPP, ["1", "2"])
    debouncer.touch("hs", ACC, ["5"])
    assert recorder.calls == []
    assert debouncer.close(timeout=5)
    assert sorted(recorder.ids()) == ["1", "2", "5"]
    with pytest.raises(DebouncerClosed):
        debouncer.touch("hs", OPP, ["3"])


def test_flush_waits_for_the_callbacks(make: Factory, recorder: Recorder) -> None:
    recorder.delay = 0.1
    debouncer = make(window=60, max_wait=120)
    debouncer.touch("hs", OPP, ["1"])
    assert debouncer.flush(timeout=5)
    assert recorder.ids() == ["1"]
    assert debouncer.pending() == {}


def test_a_failing_callback_does_not_stop_later_batches(make: Factory, recorder: Recorder) -> None:
    recorder.fail_for = {"broken"}
    debouncer = make(window=0.02, max_wait=1.0)
    debouncer.touch("broken", OPP, ["1"])
    wait_for(lambda: len(recorder.calls) == 1)
    debouncer.touch("fine", OPP, ["2"])
    wait_for(lambda: len(recorder.calls) == 2)
    assert recorder.calls[1][:3] == ("fine", OPP, ["2"])


def test_a_slow_connection_does_not_hold_up_another_and_one_key_never_runs_twice_at_once(
    make: Factory, recorder: Recorder
) -> None:
    recorder.delay = 0.3
    debouncer = make(window=0.01, max_wait=1.0, workers=2)
    debouncer.touch("slow", OPP, ["1"])
    time.sleep(0.05)  # "slow" is now running
    debouncer.touch("slow", OPP, ["2"])  # must wait for the first read of "slow" to end
    debouncer.touch("quick", OPP, ["3"])
    wait_for(lambda: len(recorder.calls) == 3)
    order = [ids for _, _, ids, _ in recorder.calls]
    assert order.index(["3"]) < order.index(["2"])
    assert recorder.max_active_per_key[("slow", OPP)] == 1


def test_more_ids_than_max_ids_are_split_into_several_calls(
    make: Factory, recorder: Recorder
) -> None:
    debouncer = make(window=30, max_wait=60, max_ids=100)
    debouncer.touch("hs", OPP, [str(n) for n in range(250)])
    # Reaching max_ids makes the batch due at once, without waiting for the window.
    wait_for(lambda: len(recorder.ids()) == 250, timeout=3)
    assert [len(ids) for _, _, ids, _ in recorder.calls] == [100, 100, 50]
    assert sorted(recorder.ids(), key=int) == [str(n) for n in range(250)]


def test_concurrent_touches_lose_nothing_and_repeat_nothing(
    make: Factory, recorder: Recorder
) -> None:
    debouncer = make(window=0.02, max_wait=0.2)

    def producer(thread: int) -> None:
        for n in range(500):
            debouncer.touch("hs", OPP if n % 2 else ACC, [f"{thread}-{n}"])

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert debouncer.close(timeout=10)
    ids = recorder.ids()
    assert len(ids) == len(set(ids)) == 8 * 500


def test_invalid_timing_is_refused(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="window"):
        Debouncer(recorder, window=5, max_wait=1)
