"""Injected faults as the real hubspot-api-client experiences them, and the admin endpoints."""

from __future__ import annotations

import time

import httpx
import pytest
import urllib3
from _hubspot_support import FreshSandbox, body, client_for
from hubspot import HubSpot
from hubspot.crm import deals as deals_api
from hubspot.crm.deals import exceptions as deals_exceptions

from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotSandbox

DEALS = "/crm/v3/objects/deals"


def oauth_token(hs: HubSpotSandbox) -> str:
    creds = hs.credentials
    return str(
        HubSpot(host=hs.url)
        .oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            refresh_token=creds.refresh_token,
        )
        .access_token
    )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_raise_service_exception(fresh: FreshSandbox, status: int) -> None:
    hs = fresh()
    hs.faults.inject(FaultKind.SERVER_ERROR, status=status, path_prefix=DEALS)
    client = client_for(hs)
    with pytest.raises(deals_exceptions.ServiceException) as caught:
        client.crm.deals.basic_api.get_page()
    assert caught.value.status == status
    assert body(caught.value)["status"] == "error"
    assert client.crm.deals.basic_api.get_page().results  # one-shot: the next call works


def test_dropped_connections(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs)
    hs.faults.inject(FaultKind.DROP, path_prefix=f"{DEALS}/search")
    with pytest.raises(urllib3.exceptions.ProtocolError):  # POSTs are not retried
        client.crm.deals.search_api.do_search(deals_api.PublicObjectSearchRequest(limit=1))
    # urllib3's default policy retries an idempotent GET three times after a read error...
    hs.faults.inject(FaultKind.DROP, path_prefix=DEALS, count=3)
    assert client.crm.deals.basic_api.get_page(limit=1).results
    # ...and gives up on the fourth with MaxRetryError, not an ApiException.
    hs.faults.inject(FaultKind.DROP, path_prefix=DEALS, count=4)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        client.crm.deals.basic_api.get_page(limit=1)
    assert hs.faults.injected["drop"] == 8


def test_malformed_json_is_silently_empty_for_get_page_and_crashes_get_all(
    fresh: FreshSandbox,
) -> None:
    hs = fresh()
    client = client_for(hs)
    hs.faults.inject(FaultKind.MALFORMED, path_prefix=DEALS)
    page = client.crm.deals.basic_api.get_page(limit=5)
    assert page.results is None  # the library swallows the JSON error: connectors must check
    hs.faults.inject(FaultKind.MALFORMED, path_prefix=DEALS)
    with pytest.raises(TypeError):
        client.crm.deals.get_all()


def test_session_expiry_mid_pagination_then_refresh_resumes(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs, oauth_token(hs))
    first = client.crm.deals.basic_api.get_page(limit=100)
    hs.faults.inject(FaultKind.SESSION_EXPIRY, path_prefix=DEALS)
    cursor = first.paging.next.after
    with pytest.raises(deals_exceptions.UnauthorizedException) as caught:
        client.crm.deals.basic_api.get_page(limit=100, after=cursor)
    assert body(caught.value)["category"] == "EXPIRED_AUTHENTICATION"
    with pytest.raises(deals_exceptions.UnauthorizedException):  # the token stays expired
        client.crm.deals.basic_api.get_page(limit=100, after=cursor)
    fresh_client = client_for(hs, oauth_token(hs))
    ids = [deal.id for deal in first.results]
    while cursor:
        page = fresh_client.crm.deals.basic_api.get_page(limit=100, after=cursor)
        ids += [deal.id for deal in page.results]
        cursor = page.paging.next.after if page.paging else None
    assert len(ids) == len(set(ids)) == 300


def test_session_expiry_with_a_private_app_token_is_one_401(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs)
    hs.faults.inject(FaultKind.SESSION_EXPIRY, path_prefix=DEALS)
    with pytest.raises(deals_exceptions.UnauthorizedException) as caught:
        client.crm.deals.basic_api.get_page()
    assert body(caught.value)["category"] == "INVALID_AUTHENTICATION"
    assert client.crm.deals.basic_api.get_page().results


def test_injected_rate_limit_and_slow_answers(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs)
    hs.faults.inject(FaultKind.RATE_LIMIT, path_prefix=DEALS)
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page()
    assert caught.value.status == 429
    assert body(caught.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert caught.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    hs.faults.inject(FaultKind.SLOW, path_prefix=DEALS, delay_seconds=0.3)
    started = time.monotonic()
    assert client.crm.deals.basic_api.get_page(limit=1).results
    assert time.monotonic() - started >= 0.3


def test_random_faults_replay_with_the_same_seed(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs)

    def outcomes() -> list[int]:
        hs.faults.configure(rate=0.5, kinds=[FaultKind.SERVER_ERROR], seed=7)
        seen = []
        for _ in range(12):
            try:
                client.crm.deals.basic_api.get_page(limit=1)
                seen.append(200)
            except deals_api.ApiException as exc:
                seen.append(exc.status)
        hs.faults.clear()
        return seen

    first = outcomes()
    assert first == outcomes()
    assert 200 in first
    assert {500, 502, 503} & set(first)


def test_admin_endpoints_drive_the_same_state(fresh: FreshSandbox) -> None:
    hs = fresh()
    with httpx.Client(base_url=f"{hs.url}/__admin") as admin:
        client = client_for(hs)
        inject = {"kind": "server_error", "status": 503, "path_prefix": DEALS}
        assert admin.post("/faults", json={"inject": [inject]}).status_code == 200
        with pytest.raises(deals_exceptions.ServiceException):
            client.crm.deals.basic_api.get_page()
        assert admin.get("/calls").json()["faulted"] == 1
        assert admin.post("/calls/reset").status_code == 204
        summary = admin.post("/mutate", json={"edits": 5, "deletes": 5, "creates": 5}).json()
        assert sum(len(ids) for ids in summary["archived"].values()) == 5
        archived = admin.get("/objects/deals", params={"archived": "true"}).json()
        assert archived["total"] == len(summary["archived"]["deals"])
        assert admin.post("/rate-limits", json={"ten_second": 1}).status_code == 204
        client.crm.deals.basic_api.get_page()
        with pytest.raises(deals_api.ApiException) as caught:
            client.crm.deals.basic_api.get_page()
        assert caught.value.status == 429
        assert admin.post("/expire-tokens").json() == {"expired": 0}
        assert hs.calls.snapshot()["rate_limited"] == 1
