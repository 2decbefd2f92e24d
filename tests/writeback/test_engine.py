"""The pass itself: budget pauses, one writer per connection, stopping between batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.core.config import ConnectionConfig
from sandbox.salesforce import SalesforceSandbox
from stagelink.storage import JobStatus, OutboxState, make_engine
from stagelink.storage.leases import acquire_lease
from stagelink.sync import JobAlreadyRunning, Storage
from stagelink.writeback import WritebackEngine, WritebackOptions, run_writeback
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, app_config, salesforce_block, sync_crm
from tests.writeback.helpers import SalesforceView, deals_and_reps, outbox_states, spread_events


@pytest.fixture
def sf(sf_org: SalesforceSandbox) -> Iterator[Crm]:
    """The Salesforce sandbox, its API allowance put back after the test."""
    yield Crm("salesforce", lambda **o: salesforce_block(sf_org, **o), SalesforceView(sf_org))
    sf_org.set_api_limit(100_000)


@pytest.fixture
def sqlite_storage(sqlite_database_url: str) -> Iterator[Storage]:
    engine = make_engine(sqlite_database_url)
    yield Storage(engine)
    engine.dispose()


def _events(
    crm: Crm, storage: Storage, count: int, **settings: object
) -> tuple[ConnectionConfig, list[str]]:
    config = crm.config(**settings)
    sync_crm(storage, crm.connector(config), config.name)
    deals, owners = deals_and_reps(storage, config.name, 5)
    events = spread_events(deals, [owners[0][0]], count)
    return config, insert_accepted_events(storage.sessions, config.name, crm.kind, events)


def test_the_pass_pauses_at_the_connections_budget_share_and_the_next_one_goes_on(
    sf: Crm, sf_org: SalesforceSandbox, sqlite_storage: Storage
) -> None:
    config, markers = _events(sf, sqlite_storage, 30, budget={"max_daily_fraction": 0.5})
    used, _ = sf_org.api_usage
    sf_org.set_api_limit(used + 6)  # half of it is spent by a login and one batch
    options = WritebackOptions(batch_size=10, backoff_base=timedelta(0))

    paused = WritebackEngine(
        sqlite_storage.sessions, sf.connector(config), config, options=options
    ).run()

    assert paused.status is JobStatus.PAUSED_BUDGET
    assert paused.error is not None
    assert "may use up to 50%" in paused.error
    written = paused.counts["written"]
    assert 0 < written < 30
    # Stopped at a batch boundary: nothing in flight, the rest waits for the next pass.
    assert list(outbox_states(sqlite_storage).values()).count(OutboxState.PENDING) == 30 - written

    sf_org.set_api_limit(100_000)
    resumed = WritebackEngine(
        sqlite_storage.sessions, sf.connector(config), config, options=options
    ).run()

    assert resumed.ok
    assert resumed.counts["written"] == 30 - written
    assert {m: len(v) for m, v in sf.view.activities(markers).items()} == dict.fromkeys(markers, 1)


def test_a_second_writer_of_the_same_connection_is_turned_away(
    sf: Crm, sqlite_storage: Storage, sqlite_database_url: str
) -> None:
    _events(sf, sqlite_storage, 2)
    acquire_lease(
        sqlite_storage.sessions, "writeback:wb-salesforce", "other-node:1", timedelta(minutes=5)
    )
    settings = app_config(sqlite_database_url, sf.block())

    with pytest.raises(JobAlreadyRunning, match="other-node:1"):
        run_writeback(settings, sqlite_storage, "wb-salesforce")
    assert set(outbox_states(sqlite_storage).values()) == {OutboxState.PENDING}


def test_a_stop_request_ends_the_pass_between_batches(
    sf: Crm, sqlite_storage: Storage, sqlite_database_url: str
) -> None:
    _events(sf, sqlite_storage, 3)
    stop = threading.Event()
    stop.set()
    settings = app_config(sqlite_database_url, sf.block())

    outcome = run_writeback(settings, sqlite_storage, "wb-salesforce", stop=stop)

    assert outcome.status is JobStatus.INTERRUPTED
    assert set(outbox_states(sqlite_storage).values()) == {OutboxState.PENDING}
