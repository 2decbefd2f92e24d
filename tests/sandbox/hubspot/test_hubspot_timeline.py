"""Timeline events and templates through the real hubspot-api-client (OAuth + developer key)."""

from __future__ import annotations

import pytest
from _hubspot_support import FreshSandbox, body, client_for
from hubspot import HubSpot
from hubspot.crm.timeline import ApiException as TimelineApiException
from hubspot.crm.timeline import BatchInputTimelineEvent, TimelineEvent

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox

TEMPLATE = "1001298"


def oauth_client(hs: HubSpotSandbox) -> HubSpot:
    creds = hs.credentials
    tokens = HubSpot(host=hs.url).oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        refresh_token=creds.refresh_token,
    )
    return client_for(hs, tokens.access_token)


def event(deal_id: str, event_id: str, **tokens: object) -> TimelineEvent:
    return TimelineEvent(
        event_template_id=TEMPLATE,
        object_id=deal_id,
        id=event_id,
        tokens=tokens or {"asset": "Pricing deck", "views": 3, "channel": "mobile"},
    )


def test_event_is_201_with_string_tokens_and_duplicate_id_conflicts(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = oauth_client(hs)
    deal_id = hs.objects("deals")[0]["id"]
    created, status, _ = client.crm.timeline.events_api.create_with_http_info(event(deal_id, "u-1"))
    assert status == 201
    assert created.tokens == {"asset": "Pricing deck", "views": "3", "channel": "mobile"}
    assert created.object_type == "deals"
    with pytest.raises(TimelineApiException) as caught:
        client.crm.timeline.events_api.create(event(deal_id, "u-1"))
    assert caught.value.status == 409
    assert body(caught.value)["category"] == "CONFLICT"
    fetched = client.crm.timeline.events_api.get_by_id(TEMPLATE, "u-1")
    assert fetched.object_id == deal_id


@pytest.mark.parametrize(("policy", "expected_views"), [("ignore", "3"), ("overwrite", "9")])
def test_duplicate_id_policy_is_switchable(
    fresh: FreshSandbox, policy: str, expected_views: str
) -> None:
    hs = fresh(options=HubSpotOptions(duplicate_timeline_event_id=policy))  # type: ignore[arg-type]
    client = oauth_client(hs)
    deal_id = hs.objects("deals")[0]["id"]
    client.crm.timeline.events_api.create(event(deal_id, "u-2"))
    again = client.crm.timeline.events_api.create(event(deal_id, "u-2", views=9))
    assert again.tokens["views"] == expected_views
    assert len(hs.timeline_events()) == 1


@pytest.mark.parametrize(
    ("tokens", "deal_index", "status"),
    [
        ({"asset": "Deck", "unknown_token": "x"}, 0, 400),
        ({"asset": "Deck", "channel": "fax"}, 0, 400),  # not an enumeration option
        ({"asset": "Deck", "views": "many"}, 0, 400),  # not a number
        ({"asset": "Deck"}, None, 404),  # no such deal
    ],
)
def test_event_tokens_and_object_are_validated(
    fresh: FreshSandbox, tokens: dict[str, object], deal_index: int | None, status: int
) -> None:
    hs = fresh()
    deal_id = hs.objects("deals")[0]["id"] if deal_index is not None else "39999999999"
    with pytest.raises(TimelineApiException) as caught:
        oauth_client(hs).crm.timeline.events_api.create(event(deal_id, "u-3", **tokens))
    assert caught.value.status == status


def test_private_app_tokens_cannot_write_timeline_events(sandbox: HubSpotSandbox) -> None:
    deal_id = sandbox.objects("deals")[0]["id"]
    with pytest.raises(TimelineApiException) as caught:
        client_for(sandbox).crm.timeline.events_api.create(event(deal_id, "u-4"))
    assert caught.value.status == 403


def test_batch_create_and_templates_with_the_developer_key(fresh: FreshSandbox) -> None:
    hs = fresh()
    deal_ids = [deal["id"] for deal in hs.objects("deals")[:3]]
    oauth_client(hs).crm.timeline.events_api.create_batch(
        BatchInputTimelineEvent(inputs=[event(d, f"b-{d}") for d in deal_ids])
    )
    assert sorted(e["objectId"] for e in hs.timeline_events()) == sorted(deal_ids)
    developer = HubSpot(api_key=hs.credentials.developer_api_key, host=hs.url)
    templates = developer.crm.timeline.templates_api.get_all(hs.credentials.app_id).results
    assert [t.id for t in templates] == [TEMPLATE]
    assert {token.name for token in templates[0].tokens} >= {"asset", "views", "channel"}
    with pytest.raises(TimelineApiException) as caught:
        HubSpot(api_key="wrong", host=hs.url).crm.timeline.templates_api.get_all(
            hs.credentials.app_id
        )
    assert caught.value.status == 401
