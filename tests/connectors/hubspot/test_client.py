"""HubSpotClient against the sandbox over real HTTP: typed reads, retries, limits, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from connectors.core.errors import ConfigurationError, TransientError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    HubSpotConnectionError,
    HubSpotTransientError,
    TlsVerificationError,
    UnknownPropertyError,
)
from connectors.hubspot.retry import RetryPolicy
from sandbox.common import BackgroundServer, FaultKind, ensure_certificate_authority
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.hubspot.app import build_app

from .conftest import FAST_RETRY, FreshSandbox, hubspot_config

DEALS = "/crm/v3/objects/deals"


def assert_translated(exc: BaseException) -> None:
    """No vendor exception travels with ours: none is chained as a cause or shown context."""
    chained: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None:
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
        if current is not None:
            chained.append(current)
    assert not [e for e in chained if not type(e).__module__.startswith("connectors.")]


# -- typed reads -----------------------------------------------------------------------------


def test_pages_through_every_deal_with_the_requested_properties(
    shared_hubspot: HubSpotSandbox, shared_client: HubSpotClient
) -> None:
    seen: list[str] = []
    after: str | None = None
    while True:
        page = shared_client.get_page("deals", properties=["dealname", "dealstage"], after=after)
        seen.extend(deal.id for deal in page.results)
        after = page.next_after
        if after is None:
            break
    assert len(seen) == len(set(seen)) == shared_hubspot.count("deals")
    first = shared_client.get_page("deals", properties=["dealname"], limit=1).results[0]
    assert first.properties["dealname"]
    assert first.updated_at is not None
    assert first.updated_at.tzinfo is UTC


def test_search_unpacks_as_results_total_and_cursor(
    shared_hubspot: HubSpotSandbox, shared_client: HubSpotClient
) -> None:
    results, total, next_after = shared_client.search(
        "deals",
        {
            "filterGroups": [],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["dealname", "hs_lastmodifieddate"],
            "limit": 10,
        },
    )
    assert total == shared_hubspot.count("deals")
    assert len(results) == 10
    assert next_after is not None
    stamps = [deal.properties["hs_lastmodifieddate"] or "" for deal in results]
    assert stamps == sorted(stamps)


def test_search_filter_on_a_missing_property_is_a_configuration_error(
    shared_client: HubSpotClient,
) -> None:
    body = {"filterGroups": [{"filters": [{"propertyName": "amout", "operator": "HAS_PROPERTY"}]}]}
    with pytest.raises(UnknownPropertyError) as caught:
        shared_client.search("deals", body)
    assert caught.value.property_names == ["amout"]


def test_pipelines_come_with_ordered_stages_and_typed_metadata(
    shared_client: HubSpotClient,
) -> None:
    pipelines = {p.id: p for p in shared_client.pipelines("deals")}
    default = pipelines["default"]
    assert [s.id for s in default.stages][:2] == ["appointmentscheduled", "qualifiedtobuy"]
    won = next(s for s in default.stages if s.id == "closedwon")
    assert won.is_closed
    assert won.probability == 1.0
    assert not next(s for s in default.stages if s.id == "contractsent").is_closed


def test_owners_are_read_across_pages(
    shared_hubspot: HubSpotSandbox, shared_client: HubSpotClient
) -> None:
    owners = shared_client.owners()
    expected = shared_hubspot.account.store.owners(
        archived=False, after_id=None, limit=10_000, email=None
    )
    assert sorted(o.id for o in owners) == sorted(str(o.id) for o in expected)


def test_batch_read_reports_missing_ids_as_record_errors(shared_client: HubSpotClient) -> None:
    existing = shared_client.get_page("deals", limit=2).results
    batch = shared_client.batch_read("deals", [existing[0].id, "99999999999", existing[1].id])
    assert sorted(d.id for d in batch.results) == sorted(d.id for d in existing)
    assert [e.ids for e in batch.errors] == [["99999999999"]]
    assert batch.errors[0].category == "OBJECT_NOT_FOUND"


def test_api_budget_reflects_the_last_headers(shared_hubspot: HubSpotSandbox) -> None:
    with HubSpotClient(hubspot_config(shared_hubspot)) as client:
        assert client.api_budget() == []
        client.get_page("companies", limit=1)
        budgets = {b.window: b for b in client.api_budget()}
    assert budgets["10s"].limit == 10_000
    assert budgets["10s"].used is not None
    assert budgets["10s"].used >= 1
    assert budgets["daily"].limit == shared_hubspot.options.daily_limit
    assert budgets["daily"].remaining is not None


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.SERVER_ERROR, 500),
        (FaultKind.SERVER_ERROR, 503),
        (FaultKind.DROP, None),
        (FaultKind.MALFORMED, None),
    ],
)
def test_transient_failures_are_retried_until_the_read_succeeds(
    fresh_hubspot: FreshSandbox, kind: FaultKind, status: int | None
) -> None:
    hs = fresh_hubspot()
    hs.faults.inject(kind, count=2, status=status, path_prefix=DEALS)
    with HubSpotClient(hubspot_config(hs), retry=FAST_RETRY) as client:
        page = client.get_page("deals", limit=5)
    assert len(page.results) == 5
    assert hs.faults.injected[kind.value] == 2


def test_persistent_server_errors_give_up_after_the_bounded_attempts(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    hs.faults.inject(FaultKind.SERVER_ERROR, count=50, status=503, path_prefix=DEALS)
    policy = RetryPolicy(attempts=3, max_total_seconds=10.0, initial_wait=0.01, max_wait=0.05)
    with (
        HubSpotClient(hubspot_config(hs), retry=policy) as client,
        pytest.raises(HubSpotTransientError) as caught,
    ):
        client.get_page("deals")
    assert isinstance(caught.value, TransientError)
    assert caught.value.status == 503
    assert hs.faults.injected["server_error"] == 3
    assert_translated(caught.value)


def test_a_closed_port_is_a_transient_connection_error(closed_port_url: str) -> None:
    hs_config = {"base_url": closed_port_url}
    with HubSpotSandbox(seed=1, size=5) as hs:  # only for its demo credentials
        config = hubspot_config(hs, **hs_config)
    with (
        HubSpotClient(config, retry=FAST_RETRY) as client,
        pytest.raises(HubSpotConnectionError) as caught,
    ):
        client.get_page("deals")
    assert "connection refused" in str(caught.value)
    assert_translated(caught.value)


# -- authentication --------------------------------------------------------------------------


def test_oauth_refreshes_on_start_and_again_after_the_tokens_expire(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    with HubSpotClient(hubspot_config(hs, oauth=True), retry=FAST_RETRY) as client:
        assert client.get_page("deals", limit=1).results
        assert hs.calls.snapshot().get("token") == 1
        hs.expire_tokens()
        assert client.get_page("deals", limit=1).results
    calls = hs.calls.snapshot()
    assert calls["token"] == 2
    assert calls["auth_error"] == 1  # exactly one 401 EXPIRED_AUTHENTICATION drew the refresh
    assert calls["list"] == 2


def test_oauth_refreshes_before_expires_in_runs_out(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot(options=HubSpotOptions(oauth_token_ttl_seconds=2))
    with HubSpotClient(hubspot_config(hs, oauth=True), retry=FAST_RETRY) as client:
        client.get_page("deals", limit=1)
        time.sleep(1.8)  # past 5/6 of the 2 s lifetime, before HubSpot would refuse it
        client.get_page("deals", limit=1)
    calls = hs.calls.snapshot()
    assert calls["token"] == 2
    assert "auth_error" not in calls  # refreshed ahead: HubSpot never saw an expired token


def test_threads_sharing_a_client_refresh_an_expired_token_once(
    fresh_hubspot: FreshSandbox,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    hs = fresh_hubspot()
    with HubSpotClient(hubspot_config(hs, oauth=True), retry=FAST_RETRY) as client:
        client.get_page("deals", limit=1)
        hs.expire_tokens()
        with ThreadPoolExecutor(max_workers=4) as pool:
            pages = list(pool.map(lambda _: client.get_page("deals", limit=1), range(8)))
    assert all(page.results for page in pages)
    assert hs.calls.snapshot()["token"] == 2


def test_session_expiry_mid_pagination_resumes_after_one_refresh(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    with HubSpotClient(hubspot_config(hs, oauth=True), retry=FAST_RETRY) as client:
        first = client.get_page("deals", limit=50)
        hs.faults.inject(FaultKind.SESSION_EXPIRY, path_prefix=DEALS)
        second = client.get_page("deals", limit=50, after=first.next_after)
    assert not {d.id for d in first.results} & {d.id for d in second.results}
    assert hs.calls.snapshot()["token"] == 2


def test_bad_refresh_token_is_a_configuration_error_without_the_secret(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    config = hubspot_config(
        hs,
        oauth=True,
        auth={
            "method": "oauth",
            "client_id": hs.credentials.client_id,
            "client_secret": hs.credentials.client_secret,
            "refresh_token": "na1-0000-this-refresh-token-was-revoked",
        },
    )
    with (
        HubSpotClient(config, retry=FAST_RETRY) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.get_page("deals")
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert "BAD_REFRESH_TOKEN" in str(error)
    for secret in ("na1-0000-this-refresh-token-was-revoked", hs.credentials.client_secret):
        assert secret not in str(error)
        assert secret not in repr(error)
    assert hs.calls.snapshot()["token"] == 1  # a refused refresh token is not retried
    assert_translated(error)


def test_wrong_private_app_token_is_refused_without_quoting_it(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    token = "pat-na1-00000000-0000-4000-8000-000000000000"
    config = hubspot_config(hs, auth={"method": "private_app", "token": token})
    with (
        HubSpotClient(config, retry=FAST_RETRY) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.get_page("deals")
    assert "INVALID_AUTHENTICATION" in str(caught.value)
    assert token not in str(caught.value)
    assert hs.calls.snapshot()["auth_error"] == 1


# -- rate limits -----------------------------------------------------------------------------


def test_pacing_uses_a_twenty_per_ten_seconds_quota_without_drawing_a_429(
    fresh_hubspot: FreshSandbox,
) -> None:
    hs = fresh_hubspot()
    hs.set_rate_limits(ten_second=20, reset=True)
    started = time.monotonic()
    with HubSpotClient(hubspot_config(hs)) as client:
        for _ in range(60):
            assert client.get_page("companies", limit=1).results
    elapsed = time.monotonic() - started
    calls = hs.calls.snapshot()
    assert calls["list"] == 60
    assert "rate_limited" not in calls
    # 60 requests at 20 per rolling 10 s: requests 21 and 41 must each wait for a window.
    assert elapsed >= 20.0


def test_search_is_paced_to_five_per_second(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()  # the sandbox enforces HubSpot's 5/s with 429 SECONDLY
    started = time.monotonic()
    with HubSpotClient(hubspot_config(hs)) as client:
        for _ in range(12):
            client.search("companies", {"limit": 1})
    elapsed = time.monotonic() - started
    calls = hs.calls.snapshot()
    assert calls["search"] == 12
    assert "rate_limited" not in calls
    assert elapsed >= 2.0  # 12 searches need three one-second windows


def test_retry_after_on_a_429_is_honoured(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    hs.set_rate_limits(retry_after=True)
    hs.faults.inject(FaultKind.RATE_LIMIT, path_prefix=DEALS)  # answers Retry-After: 1
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=5.0)
    started = time.monotonic()
    with HubSpotClient(hubspot_config(hs), retry=policy) as client:
        assert client.get_page("deals", limit=1).results
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0  # the server's second, not a whole ten-second window
    assert hs.calls.snapshot()["rate_limited"] == 1


@pytest.mark.parametrize("retry_after", [False, True])
def test_daily_limit_raises_budget_exhausted_and_is_not_retried(
    fresh_hubspot: FreshSandbox, retry_after: bool
) -> None:
    hs = fresh_hubspot()
    hs.set_rate_limits(daily=3, retry_after=retry_after, reset=True)
    with HubSpotClient(hubspot_config(hs), retry=FAST_RETRY) as client:
        for _ in range(3):
            client.get_page("deals", limit=1)
        with pytest.raises(BudgetExhaustedError) as caught:
            client.get_page("deals", limit=1)
        budgets = {b.window: b for b in client.api_budget()}
    assert caught.value.retry_after.total_seconds() > 0
    assert caught.value.retry_after.total_seconds() <= 24 * 3600
    assert hs.calls.snapshot()["rate_limited"] == 1
    assert budgets["daily"].remaining == 0


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def https_url(shared_hubspot: HubSpotSandbox, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The shared account served over HTTPS with a private CA; yields (url, CA file)."""
    authority = ensure_certificate_authority(tmp_path / "ca")
    server = BackgroundServer(
        build_app(shared_hubspot.account, shared_hubspot),
        ssl_certfile=authority.server_cert_path,
        ssl_keyfile=authority.server_key_path,
    )
    server.start()
    yield server.url, authority.ca_cert_path
    server.stop()


def test_https_with_a_private_ca_needs_ca_bundle(
    shared_hubspot: HubSpotSandbox, https_url: tuple[str, Path]
) -> None:
    url, ca_file = https_url
    trusted = hubspot_config(shared_hubspot, base_url=url, ca_bundle=str(ca_file))
    with HubSpotClient(trusted, retry=FAST_RETRY) as client:
        assert client.get_page("deals", limit=1).results
    untrusted = hubspot_config(shared_hubspot, base_url=url)
    with (
        HubSpotClient(untrusted, retry=FAST_RETRY) as client,
        pytest.raises(TlsVerificationError) as caught,
    ):
        client.get_page("deals", limit=1)
    assert isinstance(caught.value, ConfigurationError)
    assert "ca_bundle" in str(caught.value)
