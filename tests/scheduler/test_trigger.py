"""The debounced writeback trigger: accepted usage → one writeback pass a moment later.

The writeback pass is replaced at the trigger's own seam (``writeback=``) by a recorder, so
these tests pin the timing rules; the end-to-end tests run the real writeback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from scheduler.jobs import Runtime
from scheduler.trigger import WritebackTrigger
from stagelink.settings import AppConfig
from stagelink.storage import make_engine
from stagelink.sync import JobAlreadyRunning, Storage
from stagelink.usage.notify import notify_accepted
from tests.scheduler.conftest import wait_for


class Recorder:
    """Stands in for the writeback pass: records when it ran, for which connection."""

    def __init__(self, busy: int = 0, seconds: float = 0.0) -> None:
        self.calls: list[tuple[str, float]] = []
        self.busy = busy  # the first ``busy`` calls find the lease held
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, runtime: Runtime, connection: str, stop: threading.Event) -> None:
        with self.lock:
            self.calls.append((connection, time.monotonic()))
            if self.busy > 0:
                self.busy -= 1
                raise JobAlreadyRunning("writeback lease held by node-a")
        time.sleep(self.seconds)

    def times(self, connection: str = "crm") -> list[float]:
        with self.lock:
            return [at for name, at in self.calls if name == connection]


@pytest.fixture
def runtime(sqlite_database_url: str) -> Iterator[Runtime]:
    storage = Storage(make_engine(sqlite_database_url))
    yield Runtime(AppConfig(), storage, node_id="node-a", lease_ttl=timedelta(minutes=1))
    storage.dispose()


def test_a_burst_of_accepted_usage_makes_one_pass_after_the_quiet_window(runtime: Runtime) -> None:
    recorder = Recorder()
    trigger = WritebackTrigger(runtime, window=0.3, max_wait=3.0, writeback=recorder)
    try:
        for _ in range(10):
            trigger.touch("crm")
            time.sleep(0.03)
        last = time.monotonic()
        wait_for(lambda: recorder.times())
        time.sleep(0.5)  # nothing else follows
    finally:
        trigger.close()
    [ran] = recorder.times()
    assert 0.25 <= ran - last < 1.0


def test_a_steady_stream_is_written_at_most_max_wait_apart(runtime: Runtime) -> None:
    recorder = Recorder(seconds=0.05)
    trigger = WritebackTrigger(runtime, window=0.3, max_wait=0.8, writeback=recorder)
    touched: list[float] = []
    try:
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # never quiet for 0.3 s
            trigger.touch("crm")
            touched.append(time.monotonic())
            time.sleep(0.05)
    finally:
        trigger.close()
    passes = recorder.times()
    # Not one pass per event (batches), not waiting for quiet (latency bounded by max_wait).
    assert 2 <= len(passes) <= 6, passes
    for at in touched[:-1]:
        after = [ran for ran in passes if ran >= at]
        assert after, "an event was never written"
        assert after[0] - at < 0.8 + 0.5, "an event waited longer than max_wait"


def test_a_pass_that_finds_the_writeback_busy_is_tried_again(runtime: Runtime) -> None:
    recorder = Recorder(busy=2)
    trigger = WritebackTrigger(runtime, window=0.1, max_wait=1.0, writeback=recorder)
    try:
        trigger.touch("crm")
        wait_for(lambda: len(recorder.times()) == 3, timeout=5)
        time.sleep(0.3)
    finally:
        trigger.close()
    # Two refusals (another node was writing), then the pass that ran: no more.
    assert len(recorder.times()) == 3


def test_accepted_usage_notifications_reach_the_trigger_until_it_closes(
    runtime: Runtime,
) -> None:
    recorder = Recorder()
    trigger = WritebackTrigger(runtime, window=5.0, max_wait=10.0, writeback=recorder).install()
    notify_accepted("crm-a")
    notify_accepted("crm-b")
    assert trigger.pending() == ["crm-a", "crm-b"]
    # Closing flushes what was pending at once (no 5 s wait), then stops listening.
    started = time.monotonic()
    assert trigger.close(timeout=5)
    assert time.monotonic() - started < 2
    assert sorted(name for name, _ in recorder.calls) == ["crm-a", "crm-b"]
    notify_accepted("crm-a")
    time.sleep(0.2)
    assert len(recorder.calls) == 2
