"""Search API through the real hubspot-api-client: operators, sorts, limits, the 10,000 cap, 5/s."""

from __future__ import annotations

from typing import Any

import pytest
from _hubspot_support import FreshSandbox, body, client_for
from hubspot import HubSpot
from hubspot.crm import deals as deals_api

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.hubspot.timeutil import parse_datetime_ms


def search(client: HubSpot, **request: Any) -> Any:
    return client.crm.deals.search_api.do_search(deals_api.PublicObjectSearchRequest(**request))


def one_group(*filters: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"filters": list(filters)}]


def deals_where(sandbox: HubSpotSandbox, predicate: Any) -> list[dict[str, Any]]:
    return [deal for deal in sandbox.objects("deals") if predicate(deal["properties"])]


def test_eq_on_a_stage_matches_the_stored_deals(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    expected = deals_where(sandbox, lambda p: p["dealstage"] == "closedwon")
    found = search(
        client,
        filter_groups=one_group(
            {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}
        ),
        properties=["dealstage"],
        limit=200,
    )
    assert found.total == len(expected) > 0
    assert {deal.id for deal in found.results} == {deal["id"] for deal in expected}


def test_groups_are_ored_and_filters_inside_a_group_anded(
    sandbox: HubSpotSandbox, client: HubSpot
) -> None:
    found = search(
        client,
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "pipeline", "operator": "EQ", "value": "2871935"},
                    {"propertyName": "dealstage", "operator": "EQ", "value": "2871940"},
                ]
            },
            {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedlost"}]},
        ],
        limit=1,
    )
    expected = deals_where(sandbox, lambda p: p["dealstage"] in ("2871940", "closedlost"))
    assert found.total == len(expected)


def test_date_filters_take_epoch_ms_and_iso(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    low, high = "2026-01-01T00:00:00.000Z", "2026-07-01T00:00:00.000Z"
    expected = deals_where(sandbox, lambda p: low <= p["hs_lastmodifieddate"] < high)
    by_ms = search(
        client,
        filter_groups=one_group(
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE",
             "value": str(parse_datetime_ms(low))},
            {"propertyName": "hs_lastmodifieddate", "operator": "LT",
             "value": str(parse_datetime_ms(high))},
        ),
        limit=1,
    )  # fmt: skip
    by_iso = search(
        client,
        filter_groups=one_group(
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": low},
            {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": high},
        ),
        limit=1,
    )
    assert by_ms.total == by_iso.total == len(expected) > 0


@pytest.mark.parametrize(
    ("filters", "predicate"),
    [
        (
            {
                "propertyName": "amount",
                "operator": "BETWEEN",
                "value": "1000",
                "highValue": "50000",
            },
            lambda p: p.get("amount") is not None and 1000 <= float(p["amount"]) <= 50000,
        ),
        (
            {"propertyName": "dealtype", "operator": "IN", "values": ["existingbusiness"]},
            lambda p: p.get("dealtype") == "existingbusiness",
        ),
        (
            {"propertyName": "dealtype", "operator": "NOT_IN", "values": ["newbusiness"]},
            lambda p: p.get("dealtype") != "newbusiness",
        ),
        (
            {"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"},
            lambda p: p.get("amount") is None,
        ),
        (
            {"propertyName": "deal_currency_code", "operator": "HAS_PROPERTY"},
            lambda p: p.get("deal_currency_code") is not None,
        ),
        (
            {"propertyName": "deal_currency_code", "operator": "NEQ", "value": "USD"},
            lambda p: p.get("deal_currency_code") != "USD",
        ),
        (
            {"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "renewal"},
            lambda p: "Renewal" in p["dealname"].split(),
        ),
        (
            {"propertyName": "dealname", "operator": "NOT_CONTAINS_TOKEN", "value": "renewal"},
            lambda p: "Renewal" not in p["dealname"].split(),
        ),
        (
            {"propertyName": "hs_is_closed", "operator": "EQ", "value": "true"},
            lambda p: p["hs_is_closed"] == "true",
        ),
    ],
)
def test_operators_match_a_python_reading_of_the_data(
    sandbox: HubSpotSandbox, client: HubSpot, filters: dict[str, Any], predicate: Any
) -> None:
    expected = deals_where(sandbox, predicate)
    found = search(client, filter_groups=one_group(filters), limit=1)
    assert found.total == len(expected)
    assert 0 < found.total < 300  # the seed makes every operator discriminate


def test_free_text_query_looks_at_the_deal_name(sandbox: HubSpotSandbox, client: HubSpot) -> None:
    expected = deals_where(sandbox, lambda p: "zürich" in p["dealname"].lower())
    found = search(client, query="ZÜRICH", limit=1)
    assert found.total == len(expected) > 0


def test_sorts_as_objects_and_as_strings(client: HubSpot) -> None:
    has_amount = one_group({"propertyName": "amount", "operator": "HAS_PROPERTY"})
    desc = search(
        client,
        filter_groups=has_amount,
        sorts=[{"propertyName": "amount", "direction": "DESCENDING"}],
        properties=["amount"],
        limit=50,
    )
    amounts = [float(deal.properties["amount"]) for deal in desc.results]
    assert amounts == sorted(amounts, reverse=True)
    asc = search(client, sorts=["hs_lastmodifieddate"], limit=50)
    stamps = [deal.properties["hs_lastmodifieddate"] for deal in asc.results]
    assert stamps == sorted(stamps)


def test_paging_uses_offsets_without_links(client: HubSpot) -> None:
    page = search(client, limit=100)
    assert page.total == 300
    assert page.paging.next.after == "100"
    assert page.paging.next.link is None
    last = search(client, limit=100, after="200")
    assert len(last.results) == 100
    assert last.paging is None


@pytest.mark.parametrize(
    "request_body",
    [
        {"limit": 201},
        {"filter_groups": [{"filters": []}] * 6},
        {
            "filter_groups": one_group(
                *[{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 11
            )
        },
        {
            "filter_groups": [
                {"filters": [{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 9}
            ]
            * 3
        },
        {"filter_groups": one_group({"propertyName": "nope", "operator": "EQ", "value": "1"})},
        {"filter_groups": one_group({"propertyName": "amount", "operator": "GT", "value": "x"})},
        {"filter_groups": one_group({"propertyName": "dealtype", "operator": "IN"})},
    ],
)
def test_invalid_searches_are_400(client: HubSpot, request_body: dict[str, Any]) -> None:
    with pytest.raises(deals_api.ApiException) as caught:
        search(client, **request_body)
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"


def test_archived_records_never_match_and_index_lag_hides_fresh_writes(
    fresh: FreshSandbox,
) -> None:
    hs = fresh(options=HubSpotOptions(search_per_second=1_000))
    client = client_for(hs)
    deal_id = hs.objects("deals")[0]["id"]
    by_id = one_group({"propertyName": "hs_object_id", "operator": "EQ", "value": deal_id})
    assert search(client, filter_groups=by_id).total == 1
    client.crm.deals.basic_api.archive(deal_id)
    assert search(client, filter_groups=by_id).total == 0

    hs.set_search_lag(60)
    created = client.crm.deals.basic_api.create(
        deals_api.SimplePublicObjectInputForCreate(properties={"dealname": "Fresh"})
    )
    new = one_group({"propertyName": "hs_object_id", "operator": "EQ", "value": created.id})
    assert search(client, filter_groups=new).total == 0  # not indexed yet
    hs.set_search_lag(0)
    assert search(client, filter_groups=new).total == 1


def test_secondly_limit_is_429_without_rate_limit_headers(fresh: FreshSandbox) -> None:
    hs = fresh()  # default: 5 searches per second per account
    client = client_for(hs)
    _, _, headers = client.crm.deals.search_api.do_search_with_http_info(
        deals_api.PublicObjectSearchRequest(limit=1)
    )
    assert not [name for name in headers if name.lower().startswith("x-hubspot-ratelimit")]
    for _ in range(4):  # with the call above: five in well under a second
        search(client, limit=1)
    with pytest.raises(deals_api.ApiException) as caught:
        search(client, limit=1)
    assert caught.value.status == 429
    error = body(caught.value)
    assert error["policyName"] == "SECONDLY"
    assert error["message"] == "You have reached your secondly limit."
    assert not [n for n in caught.value.headers if n.lower().startswith("x-hubspot-ratelimit")]
    assert hs.calls.snapshot()["search"] == 5


def test_ten_thousand_cap_is_400_and_a_new_lower_bound_gets_the_rest(
    fresh: FreshSandbox,
) -> None:
    hs = fresh(size=10_500, options=HubSpotOptions(search_per_second=1_000))
    client = client_for(hs)
    ordered = sorted(
        hs.objects("deals"), key=lambda d: (d["properties"]["hs_lastmodifieddate"], int(d["id"]))
    )
    sort = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    near_cap = search(client, sorts=sort, limit=200, after="9800")
    assert near_cap.total == 10_500
    assert [d.id for d in near_cap.results] == [d["id"] for d in ordered[9800:10_000]]
    assert near_cap.paging.next.after == "10000"  # following it blindly...
    with pytest.raises(deals_api.ApiException) as caught:
        search(client, sorts=sort, limit=200, after=near_cap.paging.next.after)
    assert caught.value.status == 400  # ...is the documented 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"

    last = near_cap.results[-1]
    stamp = str(parse_datetime_ms(last.properties["hs_lastmodifieddate"]))
    rest_groups = [
        {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": stamp}]},
        {
            "filters": [
                {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": stamp},
                {"propertyName": "hs_object_id", "operator": "GT", "value": last.id},
            ]
        },
    ]
    rest: list[str] = []
    after: str | None = None
    while True:
        page = search(client, filter_groups=rest_groups, sorts=sort, limit=200, after=after)
        assert page.total == 500
        rest += [deal.id for deal in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert rest == [d["id"] for d in ordered[10_000:]]
