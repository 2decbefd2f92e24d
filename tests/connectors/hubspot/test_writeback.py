"""Usage activities written to a sandbox portal as notes or tasks, and found again."""

from __future__ import annotations

import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.core.activities import Activity, WriteStatus, marker_token
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotSandbox

from .conftest import FAST_RETRY, FreshSandbox, hubspot_config

BATCH_CREATE = "/crm/v3/objects/notes/batch/create"


def connector(hs: HubSpotSandbox, **writeback: Any) -> HubSpotConnector:
    config = hubspot_config(hs, writeback=writeback) if writeback else hubspot_config(hs)
    made = HubSpotConnector(config, client=HubSpotClient(config, retry=FAST_RETRY))
    made.activity_writer.lookup_settle = timedelta(0)  # the sandbox's search has no lag
    return made


def deals(hs: HubSpotSandbox, count: int) -> list[dict[str, Any]]:
    """Open deals that have a company."""
    found = []
    for deal in hs.objects("deals"):
        companies = hs.associations("deals", deal["id"], "companies")
        if companies:
            found.append({**deal, "company": next(iter(companies))})
        if len(found) == count:
            return found
    raise AssertionError("the sandbox has too few deals with a company")


def activity(deal: dict[str, Any], **changes: Any) -> Activity:
    values: dict[str, Any] = {
        "marker": f"sl-{uuid.uuid4()}",
        "opportunity_crm_id": deal["id"],
        "account_crm_id": deal.get("company"),
        "action": "shared",
        "occurred_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "content_id": "case-study",
        "content_title": "Bank & Co <case study>",
        "content_url": "https://content.example/case?a=1&b=2",
        "rep_email": "rep@example.com",
        "owner_crm_id": deal["properties"].get("hubspot_owner_id"),
    }
    values.update(changes)
    return Activity(**values)


def stored(hs: HubSpotSandbox, marker: str, object_type: str = "notes") -> list[dict[str, Any]]:
    body = "hs_note_body" if object_type == "notes" else "hs_task_body"
    token = marker_token(marker)
    return [o for o in hs.objects(object_type) if token in (o["properties"].get(body) or "")]


def test_a_note_lands_on_the_deal_and_its_company_with_the_owner(
    shared_hubspot: HubSpotSandbox,
) -> None:
    (deal,) = deals(shared_hubspot, 1)
    written = activity(deal, duration_seconds=40)
    with connector(shared_hubspot) as hubspot:
        (result,) = hubspot.write_activities([written])
        (found,) = hubspot.find_activities([written])

    assert result.status is WriteStatus.WRITTEN
    assert result.crm_object_type == "notes"
    (note,) = stored(shared_hubspot, written.marker)
    assert note["id"] == result.crm_id == found.crm_id
    props = note["properties"]
    assert props["stagelink_event_id"] == written.marker
    assert props["hubspot_owner_id"] == deal["properties"]["hubspot_owner_id"]
    assert props["hs_timestamp"] == "2026-03-02T09:30:00.000Z"
    body = props["hs_note_body"]
    assert "<strong>Shared: Bank &amp; Co &lt;case study&gt;</strong>" in body
    assert '<a href="https://content.example/case?a=1&amp;b=2">' in body
    assert "<p>Duration: 40 s</p>" in body
    assert shared_hubspot.associations("notes", note["id"], "deals") == {deal["id"]: [214]}
    assert shared_hubspot.associations("notes", note["id"], "companies") == {deal["company"]: [190]}


def test_a_completed_task_when_configured(shared_hubspot: HubSpotSandbox) -> None:
    (deal,) = deals(shared_hubspot, 1)
    written = activity(deal, action="presented")
    with connector(shared_hubspot, activity="task") as hubspot:
        (result,) = hubspot.write_activities([written])

    assert result.crm_object_type == "tasks"
    (task,) = stored(shared_hubspot, written.marker, "tasks")
    assert task["properties"]["hs_task_subject"] == "Presented: Bank & Co <case study>"
    assert task["properties"]["hs_task_status"] == "COMPLETED"
    assert shared_hubspot.associations("tasks", task["id"], "deals") == {deal["id"]: [216]}
    assert shared_hubspot.associations("tasks", task["id"], "companies") == {deal["company"]: [192]}


def test_a_resent_note_is_recognised_by_the_unique_property_not_duplicated(
    shared_hubspot: HubSpotSandbox,
) -> None:
    first, second = deals(shared_hubspot, 2)
    old, new = activity(first), activity(second)
    with connector(shared_hubspot) as hubspot:
        (written,) = hubspot.write_activities([old])
        before = hubspot.requests_made()
        results = hubspot.write_activities([old, new])
        spent = hubspot.requests_made() - before

    assert [r.status for r in results] == [WriteStatus.WRITTEN, WriteStatus.WRITTEN]
    assert results[0].crm_id == written.crm_id
    assert len(stored(shared_hubspot, old.marker)) == 1
    assert len(stored(shared_hubspot, new.marker)) == 1
    assert spent == 1


def test_a_deleted_deal_fails_alone_and_the_rest_of_the_batch_is_written(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    picked = deals(hs, 6)
    batch = [activity(deal) for deal in picked]
    _archive(hs, picked[3]["id"])
    with connector(hs) as hubspot:
        results = hubspot.write_activities(batch)

    statuses = [r.status for r in results]
    assert statuses == [WriteStatus.WRITTEN] * 3 + [WriteStatus.FAILED] + [WriteStatus.WRITTEN] * 2
    assert results[3].error is not None
    assert f"deal {picked[3]['id']} does not exist" in results[3].error
    assert all(len(stored(hs, a.marker)) == (0 if i == 3 else 1) for i, a in enumerate(batch))


def test_an_owner_hubspot_refuses_leaves_the_note_without_one(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    (deal,) = deals(hs, 1)
    with connector(hs) as hubspot:
        archived = hubspot.client.owners(archived=True)[0]
        written = activity(deal, owner_crm_id=archived.id)
        (result,) = hubspot.write_activities([written])

    assert result.status is WriteStatus.WRITTEN
    (note,) = stored(hs, written.marker)
    assert "hubspot_owner_id" not in note["properties"]
    assert f"HubSpot refused the owner {archived.id}" in note["properties"]["hs_note_body"]
    assert hs.associations("notes", note["id"], "companies") == {deal["company"]: [190]}


def test_inputs_that_fail_inside_a_207_are_retried_the_others_written(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    batch = [activity(deal) for deal in deals(hs, 4)]
    hs.account.faults.inject(FaultKind.SERVER_ERROR, status=207, path_prefix=BATCH_CREATE)
    with connector(hs) as hubspot:
        results = hubspot.write_activities(batch)

    assert [r.status for r in results] == [
        WriteStatus.WRITTEN,
        WriteStatus.RETRY,
        WriteStatus.WRITTEN,
        WriteStatus.RETRY,
    ]
    assert results[1].error is not None
    assert "INTERNAL_ERROR" in results[1].error
    assert [len(stored(hs, a.marker)) for a in batch] == [1, 0, 1, 0]


def test_a_429_is_waited_out_and_the_batch_sent_again(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    hs.set_rate_limits(retry_after=True)
    batch = [activity(deal) for deal in deals(hs, 2)]
    hs.account.faults.inject(FaultKind.RATE_LIMIT, path_prefix=BATCH_CREATE)
    with connector(hs) as hubspot:
        results = hubspot.write_activities(batch)

    assert {r.status for r in results} == {WriteStatus.WRITTEN}
    assert hs.account.faults.injected["rate_limit"] == 1


@pytest.mark.parametrize("prop", ["stagelink_not_there", "hs_note_body"])
def test_without_a_unique_property_the_marker_in_the_body_finds_notes(
    shared_hubspot: HubSpotSandbox, prop: str
) -> None:
    first, second = deals(shared_hubspot, 2)
    written, never = activity(first), activity(second)
    with connector(shared_hubspot, event_id_property=prop) as hubspot:
        (result,) = hubspot.write_activities([written])
        found = hubspot.find_activities([written, never])
        delay = hubspot.activity_lookup_delay()

    (note,) = stored(shared_hubspot, written.marker)
    assert note["id"] == result.crm_id
    assert "stagelink_event_id" not in note["properties"]
    assert (
        f"<p>stagelink event: {marker_token(written.marker)}</p>"
        in note["properties"]["hs_note_body"]
    )
    assert [(f.marker, f.crm_id) for f in found] == [(written.marker, result.crm_id)]
    assert delay == timedelta(0)  # set for the sandbox; HubSpot's own search lags


def _archive(hs: HubSpotSandbox, deal_id: str) -> None:
    request = urllib.request.Request(
        f"{hs.url}/crm/v3/objects/deals/{deal_id}",
        method="DELETE",
        headers={"Authorization": f"Bearer {hs.credentials.private_app_token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204
