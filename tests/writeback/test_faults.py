"""20% injected faults (rate limits, 5xx, dropped connections, expired sessions, cut
answers) → still exactly one activity per event after repeated passes.

Salesforce runs without an external id (every ambiguous failure must be settled by looking
for the markers); HubSpot with its unique property and OAuth (expired tokens are refreshed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotSandbox
from stagelink.storage import JobStatus, OutboxState
from stagelink.sync import Storage
from stagelink.writeback import WritebackEngine, WritebackOptions
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, sync_crm
from tests.writeback.helpers import deals_and_reps, outbox_states, spread_events

EVENTS = 100
MAX_PASSES = 60
KINDS = [
    FaultKind.RATE_LIMIT,
    FaultKind.SERVER_ERROR,
    FaultKind.DROP,
    FaultKind.SESSION_EXPIRY,
    FaultKind.MALFORMED,
]


@pytest.fixture
def quick_429s(hs_portal: HubSpotSandbox) -> Iterator[None]:
    """HubSpot's 429s say ``Retry-After: 1`` (else the pacer waits out the 10 s window)."""
    hs_portal.set_rate_limits(retry_after=True)
    yield
    hs_portal.set_rate_limits(retry_after=False)


@pytest.mark.usefixtures("quick_429s")
def test_twenty_percent_faults_still_write_each_event_exactly_once(
    crm: Crm, storage: Storage
) -> None:
    oauth = {"auth": crm.block(oauth=True)["auth"]} if crm.kind == "hubspot" else {}
    config = crm.config(**oauth)
    connector = crm.connector(config)
    sync_crm(storage, connector, config.name)
    deals, owners = deals_and_reps(storage, config.name, 10)
    events = spread_events(deals, [owners[0][0], "no.user@example.com"], EVENTS)
    markers = insert_accepted_events(storage.sessions, config.name, crm.kind, events)
    # Small batches: more requests, so more of them fail.
    options = WritebackOptions(batch_size=4, backoff_base=timedelta(0))
    crm.view.faults.configure(rate=0.2, kinds=KINDS, seed=20)

    statuses: list[JobStatus] = []
    for _ in range(MAX_PASSES):
        outcome = WritebackEngine(storage.sessions, connector, config, options=options).run()
        statuses.append(outcome.status)
        if set(outbox_states(storage).values()) == {OutboxState.WRITTEN}:
            break
    injected = sum(crm.view.faults.injected.values())
    crm.view.faults.clear()

    assert set(outbox_states(storage).values()) == {OutboxState.WRITTEN}, statuses
    assert injected >= 3  # about one request in five failed
    found = crm.view.activities(markers)
    assert {m: len(v) for m, v in found.items()} == dict.fromkeys(markers, 1)
    by_marker = {e.marker: e for e in events}
    assert all(v[0].opportunity == by_marker[m].opportunity_crm_id for m, v in found.items())
