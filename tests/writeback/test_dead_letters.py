"""Records the CRM refuses are dead-lettered with the CRM's error, shown by ``stagelink
jobs``, and tried again with ``stagelink writeback --retry-dead``."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import update
from typer.testing import CliRunner

from stagelink.cli.main import app
from stagelink.storage import OutboxState, WritebackOutbox
from stagelink.sync import Storage
from stagelink.writeback.testing import insert_accepted_events
from tests.writeback.conftest import Crm, sync_crm, write_config
from tests.writeback.helpers import deals_and_reps, outbox_rows, spread_events

#: What each CRM says about an activity on a deleted deal.
REFUSALS = {"salesforce": "ENTITY_IS_DELETED", "hubspot": "does not exist"}


def test_an_activity_on_a_deleted_deal_is_dead_lettered_then_retried_on_request(
    crm: Crm, storage: Storage, database_url: str, tmp_path: Path
) -> None:
    config = crm.config()
    sync_crm(storage, crm.connector(config), config.name)
    deals, owners = deals_and_reps(storage, config.name, 4, seed=11)
    events = spread_events(deals, [owners[0][0]], 8)
    markers = insert_accepted_events(storage.sessions, config.name, crm.kind, events)
    gone = deals[0].crm_id
    crm.view.delete_opportunity(gone)
    refused = [e.marker for e in events if e.opportunity_crm_id == gone]
    config_path = write_config(tmp_path / "stagelink.yaml", database_url, crm.block())
    cli = CliRunner()

    first = cli.invoke(app, ["writeback", config.name, "--json", "-c", str(config_path)])

    assert first.exit_code == 0, first.output
    outcome = json.loads(first.stdout)[config.name]
    assert outcome["counts"]["written"] == len(markers) - len(refused)
    assert outcome["counts"]["dead"] == len(refused) == 2
    rows = outbox_rows(storage, markers)
    for marker in refused:
        assert rows[marker].state is OutboxState.DEAD
        assert REFUSALS[crm.kind] in (rows[marker].last_error or "")
    assert set(crm.view.activities(markers)) == set(markers) - set(refused)

    shown = cli.invoke(app, ["jobs", "show", str(outcome["job_id"]), "-c", str(config_path)])
    assert shown.exit_code == 0, shown.output
    assert "'dead': 2" in shown.output
    assert "dead-lettered events (2)" in shown.output
    assert REFUSALS[crm.kind] in shown.output
    assert refused[0] in shown.output

    # An event that went dead during an outage is written once it is retried.
    outage = markers[-1]
    assert outage not in refused
    with storage.sessions.begin() as session:
        session.execute(
            update(WritebackOutbox)
            .where(WritebackOutbox.external_marker == outage)
            .values(state=OutboxState.DEAD, last_error="503 for hours")
        )

    again = cli.invoke(
        app, ["writeback", config.name, "--retry-dead", "--json", "-c", str(config_path)]
    )

    assert again.exit_code == 0, again.output
    counts = json.loads(again.stdout)[config.name]["counts"]
    assert counts["revived"] == 3
    assert counts["dead"] == 2  # the deal is still gone: refused again, with the same error
    rows = outbox_rows(storage, markers)
    assert all(rows[m].attempts == 1 for m in refused)
    assert rows[outage].state is OutboxState.WRITTEN
    # Already in the CRM: found by its marker, not written a second time.
    assert counts["written"] + counts["reconciled"] == 1
    assert len(crm.view.activities([outage])[outage]) == 1
