"""Objects API through the real hubspot-api-client: paging, properties, statuses, batches."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _hubspot_support import body, client_for
from hubspot import HubSpot
from hubspot.crm import deals as deals_api
from hubspot.crm.deals import exceptions as deals_exceptions
from hubspot.crm.objects import notes as notes_api
from hubspot.crm.objects import tasks as tasks_api

from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DEAL_DEFAULTS = {
    "amount", "closedate", "createdate", "dealname", "dealstage",
    "hs_lastmodifieddate", "hs_object_id", "pipeline",
}  # fmt: skip


@pytest.fixture(scope="module")
def writable(seed_cache: Path) -> Iterator[HubSpotSandbox]:
    """A private small account for tests that write (the shared one stays pristine)."""
    options = HubSpotOptions(ten_second_limit=100_000, search_per_second=10_000)
    with HubSpotSandbox(seed=1, size="small", data_dir=seed_cache, options=options) as hs:
        yield hs


@pytest.fixture(scope="module")
def writer(writable: HubSpotSandbox) -> HubSpot:
    return client_for(writable)


# --------------------------------------------------------------------------- listing


def test_get_all_pages_through_every_deal_in_three_requests(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    sandbox.calls.reset()
    deals = client.crm.deals.get_all()
    assert len(deals) == sandbox.count("deals") == 300
    assert len({deal.id for deal in deals}) == 300
    assert sandbox.calls.snapshot()["list"] == 3  # 100 per page, the library's page size


def test_last_page_has_no_paging_and_cursor_is_opaque(client: HubSpot) -> None:
    first = client.crm.deals.basic_api.get_page(limit=100)
    cursor = first.paging.next.after
    assert not cursor.isdigit()  # connectors must pass it back, not compute it
    second = client.crm.deals.basic_api.get_page(limit=100, after=cursor)
    third = client.crm.deals.basic_api.get_page(limit=100, after=second.paging.next.after)
    assert len(third.results) == 100
    assert third.paging is None


def test_limit_over_100_is_a_400(client: HubSpot) -> None:
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page(limit=101)
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"


def test_properties_as_repeated_keys_and_comma_lists_agree(sandbox: HubSpotSandbox) -> None:
    headers = {"Authorization": f"Bearer {sandbox.credentials.private_app_token}"}
    url = f"{sandbox.url}/crm/v3/objects/deals"
    repeated = httpx.get(
        url, params=[("properties", "dealname"), ("properties", "amount")], headers=headers
    )
    comma = httpx.get(url, params={"properties": "dealname,amount"}, headers=headers)
    assert repeated.status_code == comma.status_code == 200
    assert repeated.json()["results"] == comma.json()["results"]
    props = repeated.json()["results"][0]["properties"]
    assert set(props) == {"dealname", "amount", "createdate", "hs_lastmodifieddate", "hs_object_id"}


@pytest.mark.parametrize("value", ["True", "true", "FALSE", "false"])
def test_archived_flag_is_case_insensitive(sandbox: HubSpotSandbox, value: str) -> None:
    response = httpx.get(
        f"{sandbox.url}/crm/v3/objects/deals",
        params={"archived": value},
        headers={"Authorization": f"Bearer {sandbox.credentials.private_app_token}"},
    )
    assert response.status_code == 200


def test_default_properties_and_unknown_ones_ignored_on_read(client: HubSpot) -> None:
    page = client.crm.deals.basic_api.get_page(limit=1)
    assert set(page.results[0].properties) == DEAL_DEFAULTS
    asked = client.crm.deals.basic_api.get_page(limit=1, properties=["dealname", "no_such_prop"])
    assert "no_such_prop" not in asked.results[0].properties
    assert "dealname" in asked.results[0].properties


def test_companies_and_contacts_list_with_their_own_defaults(client: HubSpot) -> None:
    companies = client.crm.companies.get_all()
    assert len(companies) == 60
    assert set(companies[0].properties) == {
        "createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name",
    }  # fmt: skip
    contact = client.crm.contacts.basic_api.get_page(limit=1).results[0]
    assert set(contact.properties) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }  # fmt: skip


def test_values_are_strings_exactly_as_hubspot_emits_them(sandbox: HubSpotSandbox) -> None:
    deals = sandbox.objects("deals")
    won = next(d for d in deals if d["properties"]["dealstage"] == "closedwon")
    assert won["properties"]["hs_is_closed_won"] == "true"
    assert won["properties"]["hs_deal_stage_probability"] == "1.0"
    assert ISO_MS.match(won["properties"]["hs_date_entered_closedwon"])
    assert ISO_MS.match(won["createdAt"])
    assert ISO_MS.match(won["updatedAt"])
    for deal in deals:
        assert deal["id"].isdigit()
        assert all(v is None or isinstance(v, str) for v in deal["properties"].values())


def test_properties_with_history_caps_pages_at_50(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page(limit=51, properties_with_history=["dealstage"])
    assert caught.value.status == 400
    sandbox.calls.reset()
    deals = client.crm.deals.get_all(properties_with_history=["dealstage"])
    assert len(deals) == 300
    assert sandbox.calls.snapshot()["list"] == 6  # the library drops to 50 per page
    won = next(
        deal for deal in deals if deal.properties_with_history["dealstage"][0].value == "closedwon"
    )
    history = won.properties_with_history["dealstage"]
    assert len(history) >= 2  # the path through earlier stages, newest first
    assert history[0].timestamp >= history[-1].timestamp


def test_read_one_404_has_hubspot_body(client: HubSpot) -> None:
    with pytest.raises(deals_exceptions.NotFoundException) as caught:
        client.crm.deals.basic_api.get_by_id("abc")
    error = body(caught.value)
    assert error["category"] == "OBJECT_NOT_FOUND"
    assert error["message"] == "Object not found.  objectId are usually numeric."
    assert error["context"] == {"id": ["abc"]}
    assert caught.value.headers["X-HubSpot-Correlation-Id"] == error["correlationId"]


def test_inline_associations_on_read(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    deal = client.crm.deals.basic_api.get_by_id(
        sandbox.objects("deals")[1]["id"], associations=["companies"]
    )
    types = {item.type for item in deal.associations["companies"].results}
    assert types == {"deal_to_company", "deal_to_company_unlabeled"}


# --------------------------------------------------------------------------- writes


def test_create_answers_201_with_a_model_and_hubspot_strings(writer: HubSpot) -> None:
    created, status, _ = writer.crm.deals.basic_api.create_with_http_info(
        deals_api.SimplePublicObjectInputForCreate(
            properties={"dealname": "Zürich rollout", "amount": 1000.5, "dealstage": "closedwon"}
        )
    )
    assert status == 201  # with 200 the library would silently return None
    assert created is not None
    assert created.id.isdigit()
    props = created.properties
    assert props["amount"] == "1000.5"
    assert props["pipeline"] == "default"
    assert props["hs_is_closed_won"] == "true"
    assert props["hs_object_id"] == created.id
    assert props["hs_date_entered_closedwon"] == props["createdate"]


def test_update_then_archive_keeps_last_modified(writable: HubSpotSandbox, writer: HubSpot) -> None:
    deal_id = writable.objects("deals")[5]["id"]
    before = writer.crm.deals.basic_api.get_by_id(deal_id)
    updated = writer.crm.deals.basic_api.update(
        deal_id, deals_api.SimplePublicObjectInput(properties={"amount": "42"})
    )
    assert updated.properties["amount"] == "42"
    assert updated.updated_at > before.updated_at
    _, status, _ = writer.crm.deals.basic_api.archive_with_http_info(deal_id)
    assert status == 204
    with pytest.raises(deals_exceptions.NotFoundException):
        writer.crm.deals.basic_api.get_by_id(deal_id)
    archived = {d["id"]: d for d in writable.objects("deals", archived=True)}
    assert archived[deal_id]["archived"] is True
    assert archived[deal_id]["archivedAt"] >= archived[deal_id]["updatedAt"]
    assert archived[deal_id]["updatedAt"] == updated.properties["hs_lastmodifieddate"]
    listed = writer.crm.deals.basic_api.get_page(archived=True, limit=100)
    assert deal_id in {deal.id for deal in listed.results}
    assert all(deal.archived_at is not None for deal in listed.results)


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"dealname": "x", "no_such_prop": "1"}, "PROPERTY_DOESNT_EXIST"),
        ({"dealname": "x", "hs_is_closed": "true"}, "READ_ONLY_VALUE"),
        ({"dealname": "x", "dealstage": "2871936"}, "INVALID_OPTION"),  # stage of another pipeline
        ({"dealname": "x", "deal_currency_code": "XYZ"}, "INVALID_OPTION"),
        ({"dealname": "x", "amount": "lots"}, "INVALID_FLOAT"),
        ({"dealname": "x", "hubspot_owner_id": "1"}, "INVALID_OWNER_ID"),
    ],
)
def test_invalid_deal_writes_are_400(
    writer: HubSpot, properties: dict[str, str], code: str
) -> None:
    with pytest.raises(deals_api.ApiException) as caught:
        writer.crm.deals.basic_api.create(
            deals_api.SimplePublicObjectInputForCreate(properties=properties)
        )
    assert caught.value.status == 400
    error = body(caught.value)
    assert error["category"] == "VALIDATION_ERROR"
    assert f'"error":"{code}"' in error["message"]


def test_moving_a_deal_to_another_pipeline_needs_a_stage_of_it(
    writable: HubSpotSandbox, writer: HubSpot
) -> None:
    deal = next(d for d in writable.objects("deals") if d["properties"]["pipeline"] == "default")
    with pytest.raises(deals_api.ApiException) as caught:
        writer.crm.deals.basic_api.update(
            deal["id"], deals_api.SimplePublicObjectInput(properties={"pipeline": "2871935"})
        )
    assert caught.value.status == 400
    moved = writer.crm.deals.basic_api.update(
        deal["id"],
        deals_api.SimplePublicObjectInput(
            properties={"pipeline": "2871935", "dealstage": "2871938"}
        ),
    )
    assert moved.properties["hs_deal_stage_probability"] == "0.5"


def test_task_enumerations_are_validated(writer: HubSpot) -> None:
    with pytest.raises(tasks_api.ApiException) as caught:
        writer.crm.objects.tasks.basic_api.create(
            tasks_api.SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "1793491200000", "hs_task_status": "DONE"}
            )
        )
    assert caught.value.status == 400
    assert "INVALID_OPTION" in body(caught.value)["message"]


# --------------------------------------------------------------------------- batches


def test_batch_read_200_then_207_for_missing_ids(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    ids = [deal["id"] for deal in sandbox.objects("deals")[:3]]
    request = deals_api.BatchReadInputSimplePublicObjectId(
        inputs=[deals_api.SimplePublicObjectId(id=i) for i in ids], properties=["dealname"]
    )
    result, status, _ = client.crm.deals.batch_api.read_with_http_info(request)
    assert status == 200
    assert sorted(r.id for r in result.results) == sorted(ids)
    request.inputs.append(deals_api.SimplePublicObjectId(id="1"))
    partial, status, _ = client.crm.deals.batch_api.read_with_http_info(request)
    assert status == 207
    assert partial.num_errors == 1
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["1"]}
    assert len(partial.results) == 3


def test_batch_create_is_201_and_more_than_100_inputs_is_400(writer: HubSpot) -> None:
    inputs = [
        deals_api.SimplePublicObjectBatchInputForCreate(properties={"dealname": f"Batch {n}"})
        for n in range(3)
    ]
    created, status, _ = writer.crm.deals.batch_api.create_with_http_info(
        deals_api.BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert status == 201
    assert created.status == "COMPLETE"
    assert sorted(r.properties["dealname"] for r in created.results) == [
        "Batch 0", "Batch 1", "Batch 2",
    ]  # fmt: skip
    with pytest.raises(deals_api.ApiException) as caught:
        writer.crm.deals.batch_api.create(
            deals_api.BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs * 34)
        )
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"


def test_batch_update_reports_missing_ids_as_207(writable: HubSpotSandbox, writer: HubSpot) -> None:
    deal_id = writable.objects("deals")[7]["id"]
    result, status, _ = writer.crm.deals.batch_api.update_with_http_info(
        deals_api.BatchInputSimplePublicObjectBatchInput(
            inputs=[
                deals_api.SimplePublicObjectBatchInput(id=deal_id, properties={"amount": "7"}),
                deals_api.SimplePublicObjectBatchInput(id="999", properties={"amount": "7"}),
            ]
        )
    )
    assert status == 207
    assert [r.id for r in result.results] == [deal_id]
    assert result.errors[0].context == {"ids": ["999"]}


def _note_upsert(event_ids: list[str]) -> notes_api.BatchInputSimplePublicObjectBatchInputUpsert:
    return notes_api.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            notes_api.SimplePublicObjectBatchInputUpsert(
                id=event_id,
                id_property="stagelink_event_id",
                properties={"hs_timestamp": "2026-11-20T10:00:00Z", "hs_note_body": event_id},
            )
            for event_id in event_ids
        ]
    )


def test_batch_upsert_by_unique_property_is_idempotent(
    writable: HubSpotSandbox, writer: HubSpot
) -> None:
    before = writable.count("notes")
    first = writer.crm.objects.notes.batch_api.upsert(_note_upsert(["evt-1", "evt-2"]))
    assert [r.new for r in first.results] == [True, True]
    again = writer.crm.objects.notes.batch_api.upsert(_note_upsert(["evt-1", "evt-2"]))
    assert [r.new for r in again.results] == [False, False]
    assert {r.id for r in again.results} == {r.id for r in first.results}
    assert writable.count("notes") == before + 2
    assert first.results[0].properties["stagelink_event_id"] == "evt-1"


def test_read_by_unique_id_property(writable: HubSpotSandbox, writer: HubSpot) -> None:
    created = writer.crm.objects.notes.batch_api.upsert(_note_upsert(["evt-read"])).results[0]
    found = writer.crm.objects.notes.basic_api.get_by_id(
        "evt-read", id_property="stagelink_event_id", properties=["stagelink_event_id"]
    )
    assert found.id == created.id
    with pytest.raises(notes_api.ApiException) as caught:
        writer.crm.objects.notes.basic_api.get_by_id("x", id_property="hs_note_body")
    assert caught.value.status == 400


def test_upsert_needs_a_unique_id_property(writer: HubSpot) -> None:
    request = _note_upsert(["evt-x"])
    request.inputs[0].id_property = "hs_note_body"
    with pytest.raises(notes_api.ApiException) as caught:
        writer.crm.objects.notes.batch_api.upsert(request)
    assert caught.value.status == 400


def test_unique_value_conflict_on_create_is_409(writer: HubSpot) -> None:
    writer.crm.objects.notes.batch_api.upsert(_note_upsert(["evt-dup"]))
    with pytest.raises(notes_api.ApiException) as caught:
        writer.crm.objects.notes.basic_api.create(
            notes_api.SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "1793491200000", "stagelink_event_id": "evt-dup"}
            )
        )
    assert caught.value.status == 409
    assert body(caught.value)["category"] == "CONFLICT"


def test_injected_per_record_failures_give_207_and_skip_those_inputs(
    writable: HubSpotSandbox, writer: HubSpot
) -> None:
    writable.faults.inject(
        FaultKind.SERVER_ERROR, status=207, path_prefix="/crm/v3/objects/notes/batch/upsert"
    )
    ids = ["pr-0", "pr-1", "pr-2", "pr-3"]
    result, status, _ = writer.crm.objects.notes.batch_api.upsert_with_http_info(_note_upsert(ids))
    assert status == 207
    assert result.num_errors == 2
    assert sorted(r.properties["stagelink_event_id"] for r in result.results) == ["pr-0", "pr-2"]
    assert sorted(e.context["ids"][0] for e in result.errors) == ["pr-1", "pr-3"]
    # Retrying the whole batch is safe with upsert: the failed ones are created now.
    retried = writer.crm.objects.notes.batch_api.upsert(_note_upsert(ids))
    assert [r.new for r in retried.results] == [False, True, False, True]
