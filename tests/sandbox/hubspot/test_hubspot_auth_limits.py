"""Authentication, OAuth v1 tokens and rate limits through the real hubspot-api-client."""

from __future__ import annotations

import time

import pytest
from _hubspot_support import FreshSandbox, body, client_for
from hubspot import HubSpot
from hubspot.crm import deals as deals_api
from hubspot.crm.deals import exceptions as deals_exceptions
from hubspot.oauth import ApiException as OAuthApiException
from urllib3.util.retry import Retry

from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox

INVALID_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def refresh(hs: HubSpotSandbox, refresh_token: str | None = None) -> str:
    creds = hs.credentials
    tokens = HubSpot(host=hs.url).oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        refresh_token=refresh_token or creds.refresh_token,
    )
    assert tokens.token_type == "bearer"
    assert tokens.expires_in == 1800
    assert tokens.refresh_token == creds.refresh_token  # HubSpot does not rotate it
    return str(tokens.access_token)


@pytest.mark.parametrize("token", [None, "pat-na1-00000000-0000-0000-0000-000000000000"])
def test_missing_or_unknown_token_is_401_invalid_authentication(
    sandbox: HubSpotSandbox, token: str | None
) -> None:
    client = HubSpot(access_token=token, host=sandbox.url) if token else HubSpot(host=sandbox.url)
    with pytest.raises(deals_exceptions.UnauthorizedException) as caught:
        client.crm.deals.basic_api.get_page()
    error = body(caught.value)
    assert error["category"] == "INVALID_AUTHENTICATION"
    assert error["message"] == INVALID_MESSAGE
    assert caught.value.headers["X-HubSpot-Correlation-Id"] == error["correlationId"]


def test_oauth_refresh_gives_a_working_token_without_daily_remaining(
    sandbox: HubSpotSandbox,
) -> None:
    client = client_for(sandbox, refresh(sandbox))
    page, status, headers = client.crm.deals.basic_api.get_page_with_http_info(limit=1)
    assert status == 200
    assert len(page.results) == 1
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "X-HubSpot-RateLimit-Daily" in headers
    assert "X-HubSpot-RateLimit-Daily-Remaining" not in headers  # absent for OAuth apps


def test_private_app_responses_carry_every_rate_limit_header(client: HubSpot) -> None:
    _, _, headers = client.crm.deals.basic_api.get_page_with_http_info(limit=1)
    for name in ("Daily", "Daily-Remaining", "Interval-Milliseconds", "Max", "Remaining"):
        assert headers[f"X-HubSpot-RateLimit-{name}"].isdigit()


def test_bad_refresh_token_is_400_bad_refresh_token(sandbox: HubSpotSandbox) -> None:
    with pytest.raises(OAuthApiException) as caught:
        refresh(sandbox, refresh_token="na1-not-a-token")
    assert caught.value.status == 400
    error = body(caught.value)
    assert error["status"] == "BAD_REFRESH_TOKEN"
    assert error["message"] == "missing or invalid refresh token"


def test_authorization_code_works_once(fresh: FreshSandbox) -> None:
    hs = fresh()
    creds = hs.credentials
    oauth = HubSpot(host=hs.url).oauth.tokens_api
    form = {
        "grant_type": "authorization_code",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "redirect_uri": creds.redirect_uri,
        "code": creds.authorization_code,
    }
    assert oauth.create(**form).access_token
    with pytest.raises(OAuthApiException) as caught:
        oauth.create(**form)
    assert body(caught.value)["status"] == "BAD_AUTH_CODE"


def test_expired_token_is_401_with_context_and_refresh_recovers(fresh: FreshSandbox) -> None:
    hs = fresh()
    client = client_for(hs, refresh(hs))
    assert client.crm.deals.basic_api.get_page(limit=1).results
    assert hs.expire_tokens() == 1
    with pytest.raises(deals_exceptions.UnauthorizedException) as caught:
        client.crm.deals.basic_api.get_page(limit=1)
    error = body(caught.value)
    assert error["category"] == "EXPIRED_AUTHENTICATION"
    assert error["message"].startswith("The OAuth token used to make this call expired ")
    assert list(error["context"]) == ["expire time"]
    assert client_for(hs, refresh(hs)).crm.deals.basic_api.get_page(limit=1).results


def test_ten_second_budget_then_429_with_headers_and_no_retry_after(fresh: FreshSandbox) -> None:
    hs = fresh(options=HubSpotOptions(ten_second_limit=5))
    client = client_for(hs)
    remaining = []
    for _ in range(5):
        _, _, headers = client.crm.deals.basic_api.get_page_with_http_info(limit=1)
        remaining.append(headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["4", "3", "2", "1", "0"]
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    error = body(caught.value)
    assert error["policyName"] == "TEN_SECONDLY_ROLLING"
    assert error["errorType"] == "RATE_LIMIT"
    assert error["message"] == "You have reached your ten_secondly_rolling limit."
    headers = caught.value.headers
    assert headers["X-HubSpot-RateLimit-Max"] == "5"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in headers
    assert hs.calls.snapshot()["rate_limited"] == 1


def test_retry_after_is_sent_when_switched_on(fresh: FreshSandbox) -> None:
    hs = fresh(options=HubSpotOptions(ten_second_limit=2, retry_after_on_429=True))
    # Without retry=0 urllib3's default policy would sleep on Retry-After and retry the GET.
    client = HubSpot(
        access_token=hs.credentials.private_app_token,
        host=hs.url,
        retry=Retry(total=0, raise_on_status=False),
    )
    client.crm.deals.basic_api.get_page(limit=1)
    client.crm.deals.basic_api.get_page(limit=1)
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 10


def test_library_silently_retries_a_get_when_retry_after_is_present(fresh: FreshSandbox) -> None:
    hs = fresh(options=HubSpotOptions(retry_after_on_429=True))
    hs.faults.inject(FaultKind.RATE_LIMIT, path_prefix="/crm/v3/objects/deals")
    started = time.monotonic()
    page = client_for(hs).crm.deals.basic_api.get_page(limit=1)  # no retry= configured
    assert page.results
    assert time.monotonic() - started >= 1.0  # slept for Retry-After: 1
    assert hs.calls.snapshot()["rate_limited"] == 1


def test_daily_budget_counts_down_then_429_daily(fresh: FreshSandbox) -> None:
    hs = fresh()
    hs.set_rate_limits(daily=3)
    client = client_for(hs)
    seen = [
        client.crm.deals.basic_api.get_page_with_http_info(limit=1)[2][
            "X-HubSpot-RateLimit-Daily-Remaining"
        ]
        for _ in range(3)
    ]
    assert seen == ["2", "1", "0"]
    with pytest.raises(deals_api.ApiException) as caught:
        client.crm.deals.basic_api.get_page(limit=1)
    assert body(caught.value)["policyName"] == "DAILY"
