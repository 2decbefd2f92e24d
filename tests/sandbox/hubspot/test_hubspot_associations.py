"""Associations v4 and engagements (notes, tasks) through the real hubspot-api-client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _hubspot_support import body, client_for
from hubspot import HubSpot
from hubspot.crm.associations import v4
from hubspot.crm.objects import notes as notes_api
from hubspot.crm.objects import tasks as tasks_api

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox


@pytest.fixture(scope="module")
def writable(seed_cache: Path) -> Iterator[HubSpotSandbox]:
    """A private account whose association reads page every two targets."""
    options = HubSpotOptions(ten_second_limit=100_000, association_page_size=2)
    with HubSpotSandbox(seed=1, size="small", data_dir=seed_cache, options=options) as hs:
        yield hs


@pytest.fixture(scope="module")
def writer(writable: HubSpotSandbox) -> HubSpot:
    return client_for(writable)


def read_companies(
    client: HubSpot, inputs: list[v4.PublicFetchAssociationsBatchRequest]
) -> tuple[Any, int, Any]:
    """``(result, status, headers)`` of a deals→companies v4 batch read."""
    result, status, headers = client.crm.associations.v4.batch_api.get_page_with_http_info(
        "deals", "companies", v4.BatchInputPublicFetchAssociationsBatchRequest(inputs=inputs)
    )
    return result, int(status), headers


def with_company(hs: HubSpotSandbox) -> list[str]:
    return sorted(
        deal["id"]
        for deal in hs.objects("deals")
        if hs.associations("deals", deal["id"], "companies")
    )


def test_batch_read_200_with_primary_and_unlabelled_types(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    deal_ids = with_company(sandbox)[:3]
    result, status, _ = read_companies(
        client, [v4.PublicFetchAssociationsBatchRequest(id=i, after=None) for i in deal_ids]
    )
    assert status == 200
    assert [r._from.id for r in result.results] == deal_ids
    types = {(t.type_id, t.label, t.category) for t in result.results[0].to[0].association_types}
    assert types == {(5, "Primary", "HUBSPOT_DEFINED"), (341, None, "HUBSPOT_DEFINED")}


def test_batch_read_207_for_deals_without_companies(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    lonely = next(
        d["id"]
        for d in sandbox.objects("deals")
        if not sandbox.associations("deals", d["id"], "companies")
    )
    linked = with_company(sandbox)[0]
    inputs = [v4.PublicFetchAssociationsBatchRequest(id=i, after=None) for i in (linked, lonely)]
    result, status, _ = read_companies(client, inputs)
    assert status == 207
    assert [r._from.id for r in result.results] == [linked]
    assert result.num_errors == 1
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"fromObjectId": [lonely]}


def test_each_input_pages_on_its_own(writable: HubSpotSandbox, writer: HubSpot) -> None:
    busy = next(
        c["id"]
        for c in writable.objects("companies")
        if len(writable.associations("companies", c["id"], "deals")) >= 3
    )
    request = v4.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[v4.PublicFetchAssociationsBatchRequest(id=busy, after=None)]
    )
    seen: list[int] = []
    while True:
        page = writer.crm.associations.v4.batch_api.get_page("companies", "deals", request)
        seen += [target.to_object_id for target in page.results[0].to]
        if page.results[0].paging is None:
            break
        request.inputs[0].after = page.results[0].paging.next.after
    single = writer.crm.associations.v4.basic_api.get_page("companies", busy, "deals", limit=500)
    assert seen == [target.to_object_id for target in single.results]
    assert len(seen) >= 3


def note(
    properties: dict[str, str], type_id: int, to_id: str
) -> notes_api.SimplePublicObjectInputForCreate:
    return notes_api.SimplePublicObjectInputForCreate(
        properties=properties,
        associations=[
            notes_api.PublicAssociationsForObject(
                to=notes_api.PublicObjectId(id=to_id),
                types=[
                    notes_api.AssociationSpec(
                        association_category="HUBSPOT_DEFINED", association_type_id=type_id
                    )
                ],
            )
        ],
    )


def test_note_with_214_lands_on_the_deal_timeline(
    writable: HubSpotSandbox, writer: HubSpot
) -> None:
    deal_id = writable.objects("deals")[10]["id"]
    created = writer.crm.objects.notes.basic_api.create(
        note({"hs_timestamp": "1793491200000", "hs_note_body": "<p>Deck sent 📎</p>"}, 214, deal_id)
    )
    assert created.properties["hs_timestamp"] == "2026-11-01T00:00:00.000Z"
    from_deal = writer.crm.associations.v4.basic_api.get_page("deals", deal_id, "notes")
    assert created.id in {str(r.to_object_id) for r in from_deal.results}
    back = next(r for r in from_deal.results if str(r.to_object_id) == created.id)
    assert [t.type_id for t in back.association_types] == [213]


def test_task_with_216_and_its_required_fields(writable: HubSpotSandbox, writer: HubSpot) -> None:
    deal_id = writable.objects("deals")[11]["id"]
    task = tasks_api.SimplePublicObjectInputForCreate(
        properties={
            "hs_timestamp": "2026-12-01T09:00:00Z",
            "hs_task_subject": "Send the case study",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH",
            "hs_task_type": "EMAIL",
        },
        associations=[
            tasks_api.PublicAssociationsForObject(
                to=tasks_api.PublicObjectId(id=deal_id),
                types=[
                    tasks_api.AssociationSpec(
                        association_category="HUBSPOT_DEFINED", association_type_id=216
                    )
                ],
            )
        ],
    )
    _created, status, _ = writer.crm.objects.tasks.basic_api.create_with_http_info(task)
    assert status == 201
    task.properties.pop("hs_timestamp")
    with pytest.raises(tasks_api.ApiException) as caught:
        writer.crm.objects.tasks.basic_api.create(task)
    assert caught.value.status == 400
    assert "hs_timestamp" in body(caught.value)["message"]


@pytest.mark.parametrize(
    ("properties", "type_id", "to_id"),
    [
        ({"hs_note_body": "no timestamp"}, 214, "30000000010"),  # hs_timestamp is required
        ({"hs_timestamp": "1793491200000"}, 216, "30000000010"),  # 216 is task→deal
        ({"hs_timestamp": "1793491200000"}, 214, "39999999999"),  # no such deal
        ({"hs_timestamp": "1793491200000"}, 99999, "30000000010"),  # no such type
    ],
)
def test_invalid_notes_are_400(
    writer: HubSpot, properties: dict[str, str], type_id: int, to_id: str
) -> None:
    with pytest.raises(notes_api.ApiException) as caught:
        writer.crm.objects.notes.basic_api.create(note(properties, type_id, to_id))
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"


def test_default_association_and_batch_archive(writable: HubSpotSandbox, writer: HubSpot) -> None:
    note_id = writable.objects("notes")[0]["id"]
    company_id = writable.objects("companies")[3]["id"]
    created = writer.crm.associations.v4.basic_api.create_default(
        "notes", note_id, "companies", company_id
    )
    specs = {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in created.results}
    assert specs == {(note_id, company_id, 190), (company_id, note_id, 189)}
    writer.crm.associations.v4.batch_api.archive(
        "notes",
        "companies",
        v4.BatchInputPublicAssociationMultiArchive(
            inputs=[
                v4.PublicAssociationMultiArchive(
                    _from=v4.PublicObjectId(id=note_id), to=[v4.PublicObjectId(id=company_id)]
                )
            ]
        ),
    )
    after = writer.crm.associations.v4.basic_api.get_page("notes", note_id, "companies")
    assert after.results == []
