"""Pipelines, owners and property definitions through the real hubspot-api-client."""

from __future__ import annotations

import pytest
from _hubspot_support import body
from hubspot import HubSpot
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.pipelines import ApiException as PipelinesApiException

from sandbox.hubspot import HubSpotSandbox

DEFAULT_STAGES = [
    ("appointmentscheduled", "0.2", "false"),
    ("qualifiedtobuy", "0.4", "false"),
    ("presentationscheduled", "0.6", "false"),
    ("decisionmakerboughtin", "0.8", "false"),
    ("contractsent", "0.9", "false"),
    ("closedwon", "1.0", "true"),
    ("closedlost", "0.0", "true"),
]


def test_default_pipeline_has_hubspots_stage_ids_and_string_metadata(client: HubSpot) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    default = next(p for p in pipelines if p.id == "default")
    assert [(s.id, s.metadata["probability"], s.metadata["isClosed"]) for s in default.stages] == (
        DEFAULT_STAGES
    )
    custom = next(p for p in pipelines if p.id != "default")
    assert custom.id.isdigit()
    assert all(stage.id.isdigit() for stage in custom.stages)


def test_pipeline_and_stage_reads_and_404(client: HubSpot) -> None:
    stages = client.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    assert [s.id for s in stages] == [stage for stage, _, _ in DEFAULT_STAGES]
    with pytest.raises(PipelinesApiException) as caught:
        client.crm.pipelines.pipelines_api.get_by_id("deals", "nope")
    assert caught.value.status == 404


def test_every_seeded_deal_stage_belongs_to_its_pipeline(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    stage_ids = {p.id: {s.id for s in p.stages} for p in pipelines}
    for deal in sandbox.objects("deals"):
        assert deal["properties"]["dealstage"] in stage_ids[deal["properties"]["pipeline"]]


def test_owners_page_filter_and_read(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    first = client.crm.owners.owners_api.get_page(limit=4)
    assert len(first.results) == 4
    assert first.paging.next.after
    rest = client.crm.owners.owners_api.get_page(limit=100, after=first.paging.next.after)
    active = first.results + rest.results
    assert rest.paging is None
    assert len(active) == 9  # ten seeded, one deactivated
    archived = client.crm.owners.owners_api.get_page(archived=True).results
    assert len(archived) == 1
    assert archived[0].archived is True
    owner = active[2]
    assert owner.id.isdigit()
    assert isinstance(owner.user_id, int)
    assert owner.teams
    by_email = client.crm.owners.owners_api.get_page(email=owner.email).results
    assert [o.id for o in by_email] == [owner.id]
    assert client.crm.owners.owners_api.get_by_id(int(owner.id)).email == owner.email
    with pytest.raises(OwnersApiException) as caught:
        client.crm.owners.owners_api.get_by_id(1)
    assert caught.value.status == 404
    owner_ids = {o.id for o in active} | {archived[0].id}
    assert {
        d["properties"]["hubspot_owner_id"]
        for d in sandbox.objects("deals")
        if d["properties"].get("hubspot_owner_id")
    } <= owner_ids


def test_unique_event_id_property_exists_on_notes_and_tasks(client: HubSpot) -> None:
    for object_type in ("notes", "tasks"):
        prop = client.crm.properties.core_api.get_by_name(object_type, "stagelink_event_id")
        assert prop.has_unique_value is True
        names = {p.name for p in client.crm.properties.core_api.get_all(object_type).results}
        assert {"hs_timestamp", "stagelink_event_id", "hubspot_owner_id"} <= names
    industry = client.crm.properties.core_api.get_by_name("companies", "industry")
    assert "COMPUTER_SOFTWARE" in {option.value for option in industry.options}


def test_unknown_property_definition_is_404(client: HubSpot) -> None:
    from hubspot.crm.properties import ApiException as PropertiesApiException

    with pytest.raises(PropertiesApiException) as caught:
        client.crm.properties.core_api.get_by_name("deals", "no_such_property")
    assert caught.value.status == 404
    assert body(caught.value)["category"] == "OBJECT_NOT_FOUND"
