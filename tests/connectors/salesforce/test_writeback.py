"""Usage activities written to the sandbox org as Tasks and Events, and found again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.core.activities import Activity, OwnerSource, WriteStatus
from connectors.core.errors import ConfigurationError
from connectors.salesforce.connector import SalesforceConnector
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig

EXT = {"external_id_field": "Stagelink_Event_Id__c"}


def _opportunities(org: SalesforceSandbox, count: int) -> list[dict[str, Any]]:
    return org.records("Opportunity")[-count:]


def _user(org: SalesforceSandbox) -> str:
    return str(org.records("User", '"IsActive" = 1')[-1]["Id"])


def activity(opportunity: str, **changes: Any) -> Activity:
    values: dict[str, Any] = {
        "marker": f"sl-{uuid.uuid4()}",
        "opportunity_crm_id": opportunity,
        "action": "presented",
        "occurred_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "content_id": "pricing-deck",
        "content_title": "Pricing deck 2026",
        "content_url": "https://content.example/pricing",
        "rep_email": "rep@example.com",
        "duration_seconds": 95,
        "channel": "salesforce_canvas",
    }
    values.update(changes)
    return Activity(**values)


def _connector(make_config: MakeConfig, **writeback: Any) -> SalesforceConnector:
    return SalesforceConnector(make_config(writeback=writeback), retry=FAST_RETRY)


def _tasks(org: SalesforceSandbox, marker: str, sobject: str = "Task") -> list[dict[str, Any]]:
    return org.records(sobject, f"\"Description\" LIKE '%{marker}%'")


def test_a_task_says_what_was_used_by_whom_on_which_opportunity(
    sandbox: SalesforceSandbox, make_config: MakeConfig
) -> None:
    (opportunity,) = _opportunities(sandbox, 1)
    owner = _user(sandbox)
    note = "Recorded for rep@example.com, who has no Salesforce user; assigned to the owner."
    written = activity(
        opportunity["Id"],
        owner_crm_id=owner,
        owner_source=OwnerSource.OPPORTUNITY_OWNER,
        attribution_note=note,
    )
    with _connector(make_config, **EXT) as connector:
        (result,) = connector.write_activities([written])

    assert result.status is WriteStatus.WRITTEN
    assert result.crm_object_type == "Task"
    (task,) = _tasks(sandbox, written.marker)
    assert task["Id"] == result.crm_id
    assert task["Subject"] == "Presented: Pricing deck 2026"
    assert task["Status"] == "Completed"
    assert task["ActivityDate"] == "2026-03-02"
    assert task["WhatId"] == opportunity["Id"]
    assert task["OwnerId"] == owner
    assert task["Stagelink_Event_Id__c"] == written.marker
    description = task["Description"]
    for line in (
        "Content: Pricing deck 2026",
        "Link: https://content.example/pricing",
        "Action: presented",
        "Duration: 1 min 35 s",
        "Channel: salesforce_canvas",
        "Rep: rep@example.com",
        "When: 2026-03-02 09:30:00 UTC",
        f"Note: {note}",
        f"stagelink event: {written.marker}",
    ):
        assert line in description.splitlines()


def test_an_upsert_sent_twice_leaves_one_task(
    sandbox: SalesforceSandbox, make_config: MakeConfig
) -> None:
    (opportunity,) = _opportunities(sandbox, 1)
    written = activity(opportunity["Id"])
    with _connector(make_config, **EXT) as connector:
        (first,) = connector.write_activities([written])
        (second,) = connector.write_activities([written])
        requests = connector.requests_made()

    assert first.crm_id == second.crm_id
    assert len(_tasks(sandbox, written.marker)) == 1
    assert requests == 3  # login, and one collection request per write


def test_a_presentation_is_an_event_with_its_duration_when_configured(
    sandbox: SalesforceSandbox, make_config: MakeConfig
) -> None:
    opportunity, other = _opportunities(sandbox, 2)
    shown = activity(opportunity["Id"], duration_seconds=30 * 60 + 1)
    viewed = activity(other["Id"], action="viewed")
    with _connector(make_config, **EXT, presented_as_event=True) as connector:
        results = connector.write_activities([shown, viewed])
        found = connector.find_activities([shown, viewed])

    assert [(r.status, r.crm_object_type) for r in results] == [
        (WriteStatus.WRITTEN, "Event"),
        (WriteStatus.WRITTEN, "Task"),
    ]
    (event,) = _tasks(sandbox, shown.marker, "Event")
    assert event["DurationInMinutes"] == 31
    assert event["StartDateTime"].startswith("2026-03-02T09:30:00")
    assert event["EndDateTime"].startswith("2026-03-02T10:01:00")
    assert event["WhatId"] == opportunity["Id"]
    assert _tasks(sandbox, viewed.marker)[0]["Subject"] == "Viewed: Pricing deck 2026"
    assert {(f.marker, f.crm_object_type) for f in found} == {
        (shown.marker, "Event"),
        (viewed.marker, "Task"),
    }


@pytest.mark.parametrize("writeback", [EXT, {}], ids=["external-id", "description-marker"])
def test_each_record_of_a_batch_is_judged_on_its_own(
    sandbox: SalesforceSandbox, make_config: MakeConfig, writeback: dict[str, str]
) -> None:
    good, deleted, third = _opportunities(sandbox, 3)
    with _connector(make_config, **writeback) as connector:
        connector.client.call(
            lambda sf: sf.restful(f"sobjects/Opportunity/{deleted['Id']}", method="DELETE"),
            action="delete",
            idempotent=False,
        )
        batch = [
            activity(good["Id"]),
            activity(deleted["Id"]),
            activity(third["Id"], owner_crm_id="005000000000000AAA"),
            activity(third["Id"], content_title="x" * 300),
        ]
        results = connector.write_activities(batch)
        found = connector.find_activities(batch, sent_after=datetime.now(UTC))

    assert [r.marker for r in results] == [a.marker for a in batch]
    assert [r.status for r in results] == [
        WriteStatus.WRITTEN,
        WriteStatus.FAILED,
        WriteStatus.WRITTEN,
        WriteStatus.WRITTEN,
    ]
    assert results[1].error is not None
    assert results[1].error.startswith("ENTITY_IS_DELETED")
    # An owner Salesforce refuses: the API user gets the task, and it says why.
    (unowned,) = _tasks(sandbox, batch[2].marker)
    assert unowned["OwnerId"] == sandbox.credentials.user_id
    assert (
        "Salesforce refused the owner 005000000000000AAA (INVALID_CROSS_REFERENCE_KEY"
        in (unowned["Description"])
    )
    # A title too long for Subject is cut, not refused.
    assert len(_tasks(sandbox, batch[3].marker)[0]["Subject"]) == 255
    assert {f.marker: f.crm_id for f in found} == {
        batch[0].marker: results[0].crm_id,
        batch[2].marker: results[2].crm_id,
        batch[3].marker: results[3].crm_id,
    }


def test_an_external_id_field_the_org_lacks_is_a_configuration_error(
    sandbox: SalesforceSandbox, make_config: MakeConfig
) -> None:
    (opportunity,) = _opportunities(sandbox, 1)
    with (
        _connector(make_config, external_id_field="Missing_Event_Id__c") as connector,
        pytest.raises(ConfigurationError, match="Missing_Event_Id__c"),
    ):
        connector.write_activities([activity(opportunity["Id"])])


def test_a_daily_digest_is_refused_rather_than_ignored(
    sandbox: SalesforceSandbox, make_config: MakeConfig
) -> None:
    (opportunity,) = _opportunities(sandbox, 1)
    with (
        _connector(make_config, daily_digest=True) as connector,
        pytest.raises(ConfigurationError, match="daily_digest is not supported"),
    ):
        connector.write_activities([activity(opportunity["Id"])])
