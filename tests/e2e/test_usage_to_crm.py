"""Usage posted to a running ``stagelink serve`` becomes CRM activity within seconds, once.

Everything is real: the serve process (uvicorn + scheduler), the usage API, the debounced
writeback trigger, the connectors and both sandbox CRMs over HTTP(S). The writeback
interval is an hour, so what reaches the CRM in seconds came through the trigger.
"""

from __future__ import annotations

import time

import pytest

from stagelink.storage import JobRun, JobStatus
from tests.e2e.conftest import Loop, event, post
from tests.scheduler.conftest import job_runs, wait_for
from tests.sync.conftest import HS, SF


def test_posted_usage_lands_once_on_the_right_deals_in_each_crm_within_seconds(
    loop: Loop,
) -> None:
    batches: dict[str, list[dict[str, object]]] = {}
    expected: dict[str, dict[str, tuple[str, str]]] = {}  # marker → (deal, owner)
    for connection in (SF, HS):
        deals, reps = loop.deals(connection, 8)
        rep_email, rep_user = reps[0]
        events = [
            event(connection, deals[i % len(deals)].crm_id, rep_email, index=i) for i in range(12)
        ]
        batches[connection] = events
        expected[connection] = {
            f"sl-{e['client_event_id']}": (str(e["opportunity_id"]), rep_user) for e in events
        }

    node = loop.serve()
    try:
        # New jobs run once at start; after that, the hourly interval is out of the picture.
        wait_for(lambda: len(_finished_passes(loop, "schedule")) == 2)
        with node.client() as client:
            posted = time.monotonic()
            for events in batches.values():
                answer = post(client, loop.token, events)
                assert answer["counts"]["accepted"] == len(events), answer
            for connection in (SF, HS):
                view, markers = loop.view(connection), list(expected[connection])
                wait_for(lambda: len(view.activities(markers)) == len(markers), timeout=15)  # noqa: B023
            landed = time.monotonic() - posted

            # The same batches again (a client that never got the answer): nothing new.
            for events in batches.values():
                answer = post(client, loop.token, events)
                assert answer["counts"]["accepted"] == len(events)
                assert all(result["duplicate"] for result in answer["results"])
            time.sleep(2.5)  # past the debounce window: a second write would have happened
        assert node.terminate() == 0, node.log()
    finally:
        node.stop()

    assert landed < 10, f"usage took {landed:.1f} s to reach both CRMs"
    for connection in (SF, HS):
        found = loop.view(connection).activities(list(expected[connection]))
        assert sorted(found) == sorted(expected[connection]), connection
        for marker, activities in found.items():
            assert len(activities) == 1, f"{connection}: {marker} written {len(activities)} times"
            [activity] = activities
            deal, owner = expected[connection][marker]
            assert activity.opportunity == deal
            assert activity.owner == owner, (connection, marker)
    # Written by passes the trigger started (recorded as such), not by the interval job.
    usage_passes = _finished_passes(loop, "usage")
    assert sum(run.counts.get("written", 0) for run in usage_passes) == 24
    assert all(run.status is JobStatus.SUCCEEDED for run in usage_passes)


def _finished_passes(loop: Loop, trigger: str) -> list[JobRun]:
    return [
        run
        for _, run in job_runs(loop.world.storage, "writeback")
        if run.params.get("trigger") == trigger and run.finished_at is not None
    ]


@pytest.mark.postgres
@pytest.mark.slow
def test_usage_posted_to_two_nodes_is_written_once(pg_loop: Loop) -> None:
    loop = pg_loop
    deals, reps = loop.deals(SF, 10)
    rep_email, _ = reps[0]
    events = [event(SF, deals[i % len(deals)].crm_id, rep_email, index=i) for i in range(40)]
    markers = [f"sl-{e['client_event_id']}" for e in events]
    nodes = [loop.serve("node-a"), loop.serve("node-b")]
    try:
        clients = [node.client() for node in nodes]
        # Small batches to either node in turn, each retried once on the other node.
        for i in range(0, len(events), 4):
            batch = events[i : i + 4]
            post(clients[(i // 4) % 2], loop.token, batch)
            post(clients[(i // 4 + 1) % 2], loop.token, batch)
            time.sleep(0.1)
        view = loop.view(SF)
        wait_for(lambda: len(view.activities(markers)) == len(markers), timeout=20)
        time.sleep(2.5)  # both nodes' debounced passes have run
        for client in clients:
            client.close()
        assert [node.terminate() for node in nodes] == [0, 0]
    finally:
        for node in nodes:
            node.stop()
    found = view.activities(markers)
    assert {marker: len(found[marker]) for marker in markers} == dict.fromkeys(markers, 1)
