"""N accepted events → exactly N activities, on the right deals, with the right owners.

Against both sandbox CRMs over real HTTP, on SQLite and PostgreSQL: with the CRM's
idempotency key (Salesforce external id, HubSpot unique property) and without it (markers
in the text), through a lost answer, and a second pass that writes nothing.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest

from connectors.core.activities import marker_token
from sandbox.common import FaultKind
from stagelink.storage import OutboxState, make_engine
from stagelink.sync import Storage
from stagelink.writeback import WritebackEngine, WritebackOptions
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, sync_crm
from tests.writeback.helpers import deals_and_reps, outbox_rows, spread_events

NO_WAIT = WritebackOptions(backoff_base=timedelta(0))
#: Where each CRM's activity writes go (for faults aimed at them).
WRITE_PATHS = {
    "salesforce": "/services/data/v59.0/composite/sobjects",
    "hubspot": "/crm/v3/objects/notes/batch/create",
}


def keyed(crm: Crm) -> dict[str, Any]:
    """Write-back settings that use the CRM's idempotency key."""
    if crm.kind == "salesforce":
        return {"writeback": {"external_id_field": "Stagelink_Event_Id__c"}}
    return {}  # HubSpot's default names the portal's unique property


def unkeyed(crm: Crm) -> dict[str, Any]:
    """Write-back settings without one (markers in the text, lookups by marker)."""
    if crm.kind == "salesforce":
        return {}
    # The portal has no such property: the writer must notice and fall back.
    return {"writeback": {"event_id_property": "stagelink_not_there"}}


def _setup(crm: Crm, storage: Storage, settings: dict[str, Any], count: int) -> Any:
    config = crm.config(**settings)
    connector = crm.connector(config)
    sync_crm(storage, connector, config.name)
    deals, owners = deals_and_reps(storage, config.name, 6)
    rep_email, rep_user = owners[-1]
    stranger = f"new.rep.{uuid.uuid4().hex[:6]}@example.com"
    events = spread_events(deals, [rep_email, stranger], count)
    markers = insert_accepted_events(storage.sessions, config.name, crm.kind, events)
    return config, connector, deals, events, markers, (rep_email, rep_user, stranger)


@pytest.mark.parametrize("mode", ["keyed", "unkeyed"])
def test_each_event_becomes_one_activity_on_its_deal_with_the_right_owner(
    crm: Crm, storage: Storage, mode: str
) -> None:
    settings = keyed(crm) if mode == "keyed" else unkeyed(crm)
    count = 24
    config, connector, deals, events, markers, reps = _setup(crm, storage, settings, count)
    rep_email, rep_user, stranger = reps
    owners = {d.crm_id: d.owner for d in deals}
    accounts = {d.crm_id: d.account for d in deals}

    outcome = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT).run()

    assert outcome.ok, outcome.error
    assert outcome.counts["written"] == count
    assert outcome.counts["dead"] == 0
    # One login or property check, then one request for the whole batch.
    assert outcome.counts["requests"] <= math.ceil(count / connector.activity_batch_size()) + 2
    found = crm.view.activities(markers)
    assert sorted(found) == sorted(markers)
    rows = outbox_rows(storage, markers)
    for event in events:
        (activity,) = found[event.marker]
        assert activity.opportunity == event.opportunity_crm_id
        assert rows[event.marker].state is OutboxState.WRITTEN
        assert rows[event.marker].crm_activity_id == activity.crm_id
        if event.rep_email == rep_email:
            assert activity.owner == rep_user
            assert "who has no" not in activity.text
        else:
            assert activity.owner == owners[event.opportunity_crm_id]
            assert f"Recorded for {stranger}, who has no" in activity.text
        assert f"content-{events.index(event) % 4}" in activity.text
        if crm.kind == "hubspot":
            assert activity.company == accounts[event.opportunity_crm_id]

    again = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT).run()

    assert again.ok
    assert again.counts["claimed"] == again.counts["written"] == 0
    assert again.counts["requests"] == 0
    assert {m: len(v) for m, v in crm.view.activities(markers).items()} == dict.fromkeys(markers, 1)


@pytest.mark.parametrize("mode", ["keyed", "unkeyed"])
def test_a_lost_answer_is_looked_up_before_anything_is_resent(
    crm: Crm, sqlite_database_url: str, mode: str
) -> None:
    storage = Storage(make_engine(sqlite_database_url))
    settings = keyed(crm) if mode == "keyed" else unkeyed(crm)
    count = 12
    config, connector, _, _, markers, _ = _setup(crm, storage, settings, count)
    # The CRM applies the batch but the answer is cut in half (HubSpot), or it fails
    # before applying it (Salesforce): either way the writer cannot tell which.
    crm.view.faults.inject(FaultKind.MALFORMED, path_prefix=WRITE_PATHS[crm.kind])

    outcome = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT).run()
    if outcome.counts["written"] + outcome.counts["reconciled"] < count:
        outcome = WritebackEngine(storage.sessions, connector, config, options=NO_WAIT).run()

    assert outcome.ok, outcome.error
    found = crm.view.activities(markers)
    assert {m: len(v) for m, v in found.items()} == dict.fromkeys(markers, 1)
    assert all(row.state is OutboxState.WRITTEN for row in outbox_rows(storage, markers).values())
    if crm.kind == "hubspot":
        # HubSpot had written them: found by marker, not written again.
        assert outcome.counts["reconciled"] == count
        assert outcome.counts["written"] == 0


def test_markers_in_hubspot_bodies_are_single_words() -> None:
    assert marker_token("sl-1b4e28ba-2fa1-11d2-883f-0016d3cca427") == (
        "sl1b4e28ba2fa111d2883f0016d3cca427"
    )
