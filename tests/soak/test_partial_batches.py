"""Write-back batches that take a CRM more than one request, refused half-way: found by the
soak, reproduced here deterministically.

Salesforce resends records whose owner it refused (deactivated since the last sync) in a
second request; HubSpot splits a batch with a deleted deal in halves. When that later
request is refused as a whole (daily limit, token refused), the first request's records
are already written: they must not be sent again. Before the fix the refusal escaped for
the whole batch, the engine took every record for unsent, and the next pass wrote the first
request's records a second time.

Real sandboxes, connectors and engine; the only steering is the sandboxes' own forced-fault
queue (a zero-delay "slow" fault lets a request through, the next one is refused).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.salesforce.connector import SalesforceConnector
from sandbox.common.faults import FaultKind
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.storage import JobStatus, OutboxState, make_engine
from stagelink.sync import Storage
from stagelink.writeback import WritebackEngine, WritebackOptions
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, hubspot_block, salesforce_block, sync_crm
from tests.writeback.helpers import (
    HubSpotView,
    SalesforceView,
    deals_and_reps,
    outbox_states,
    spread_events,
)

NO_WAIT = WritebackOptions(backoff_base=timedelta(0))


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    engine = make_engine(database_url)
    yield Storage(engine)
    engine.dispose()


def test_salesforce_owner_resend_refused_leaves_the_first_request_written_once(
    storage: Storage,
) -> None:
    with SalesforceSandbox(seed=1, size="small") as org:
        crm = Crm("salesforce", lambda **o: salesforce_block(org, **o), SalesforceView(org))
        config = crm.config()  # no external id: the marker is in the description
        connector = crm.connector(config)
        assert isinstance(connector, SalesforceConnector)
        sync_crm(storage, connector, config.name)
        deals, reps = deals_and_reps(storage, config.name, 6)
        api_user = org.credentials.user_id
        gone, active = [r for r in reps if r[1] != api_user][:2]
        # Deactivated after the sync: the Tasks of this rep are refused for their owner
        # and sent again without one, in a second request.
        connector.client.call(
            lambda sf: sf.restful(
                f"sobjects/User/{gone[1]}", method="PATCH", json={"IsActive": False}
            ),
            action="deactivate a user",
            idempotent=False,
        )
        events = spread_events(deals, [active[0], gone[0]], 6)
        markers = insert_accepted_events(storage.sessions, config.name, "salesforce", events)
        create = "/services/data/v59.0/composite/sobjects"
        org.faults.inject(FaultKind.SLOW, count=1, path_prefix=create, delay_seconds=0)
        org.faults.inject(FaultKind.RATE_LIMIT, count=1, path_prefix=create)
        engine = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT)

        first = engine.run()
        second = engine.run()
        found = crm.view.activities(markers)

    assert {m: len(found.get(m, [])) for m in markers} == dict.fromkeys(markers, 1)
    assert set(outbox_states(storage).values()) == {OutboxState.WRITTEN}
    # The refused resend put only its own three records back (due at once: no backoff).
    assert first.status is JobStatus.SUCCEEDED
    assert (first.counts["written"], first.counts["retried"]) == (6, 3)
    assert second.counts["claimed"] == 0


def test_hubspot_half_refused_leaves_the_other_half_written_once(storage: Storage) -> None:
    options = HubSpotOptions(ten_second_limit=10_000)
    with HubSpotSandbox(seed=1, size="small", options=options) as portal:
        # Without the unique property: notes are found by a marker in their body.
        crm = Crm(
            "hubspot",
            lambda **o: hubspot_block(portal, writeback={"event_id_property": None}, **o),
            HubSpotView(portal),
        )
        config = crm.config()
        connector = crm.connector(config)
        sync_crm(storage, connector, config.name)
        deals, reps = deals_and_reps(storage, config.name, 4)
        markers = insert_accepted_events(
            storage.sessions, config.name, "hubspot", spread_events(deals, [reps[0][0]], 4)
        )
        # The last event's deal is deleted: the batch is refused, then split in halves.
        crm.view.delete_opportunity(deals[3].crm_id)
        create = "/crm/v3/objects/notes/batch/create"
        # The whole batch (refused for the deal) and the first half (written) go through;
        # the second half meets an expired token, which a private-app token cannot renew.
        portal.faults.inject(FaultKind.SLOW, count=2, path_prefix=create, delay_seconds=0)
        portal.faults.inject(FaultKind.SESSION_EXPIRY, count=1, path_prefix=create)
        engine = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT)

        first = engine.run()
        second = engine.run()
        found = crm.view.activities(markers)

    assert {m: len(found.get(m, [])) for m in markers[:3]} == dict.fromkeys(markers[:3], 1)
    assert markers[3] not in found
    states = outbox_states(storage)
    assert [states[m] for m in markers] == [OutboxState.WRITTEN] * 3 + [OutboxState.DEAD]
    # The refused half put only its own two inputs back (due at once: no backoff).
    assert first.status is JobStatus.SUCCEEDED
    assert (first.counts["written"], first.counts["retried"], first.counts["dead"]) == (3, 2, 1)
    assert second.counts["claimed"] == 0
