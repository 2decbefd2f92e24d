"""The classification table: what each HubSpot answer means for the caller.

Bodies are the ones the facts doc quotes from HubSpot (B1, B2, B8) and issue threads; the
live paths (401, 429, 5xx, 207 ...) are also exercised against the sandbox in test_client.
"""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3.exceptions

from connectors.core.errors import ConfigurationError, FatalError, RecordError, TransientError
from connectors.hubspot.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    HubSpotConnectionError,
    MissingScopesError,
    Outcome,
    RateLimitedError,
    Scope,
    TlsVerificationError,
    UnknownPropertyError,
    classify_http,
    classify_transport,
    parse_retry_after,
    record_errors,
)
from connectors.hubspot.retry import RetryPolicy

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def classify(status: int, body: dict[str, Any] | str, **kwargs: Any) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    kwargs.setdefault("action", "list of deals")
    return classify_http(status=status, headers=kwargs.pop("headers", {}), body=raw, **kwargs)


def rate_limit_body(policy: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": f"You have reached your {policy.lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c-429",
        "policyName": policy,
        "requestId": "r-1",
    }


def test_daily_429_is_a_spent_budget_until_utc_midnight_without_retry_after() -> None:
    result = classify(429, rate_limit_body("DAILY"), now=NOON)
    assert result.outcome is Outcome.BUDGET
    assert isinstance(result.error, BudgetExhaustedError)
    assert isinstance(result.error, TransientError)
    assert result.error.retry_after == timedelta(hours=12)
    assert result.error.correlation_id == "c-429"


def test_daily_429_honours_retry_after() -> None:
    result = classify(429, rate_limit_body("DAILY"), headers={"Retry-After": "3600"})
    assert result.error.retry_after == timedelta(hours=1)


@pytest.mark.parametrize("policy", ["TEN_SECONDLY_ROLLING", "SECONDLY"])
def test_short_window_429s_are_rate_limits_to_wait_out(policy: str) -> None:
    result = classify(429, rate_limit_body(policy))
    assert isinstance(result.error, RateLimitedError)
    assert result.error.policy == policy
    assert result.error.retry_after is None  # the client fills it from its pacer


def test_expired_oauth_token_asks_for_a_refresh() -> None:
    body = {
        "status": "error",
        "message": "The OAuth token used to make this call expired 0 second(s) ago.",
        "correlationId": "c-1",
        "category": "EXPIRED_AUTHENTICATION",
        "context": {"expire time": ["2026-03-10T23:04:41.164Z"]},
    }
    assert classify(401, body).outcome is Outcome.REFRESH


def test_refused_token_is_a_configuration_error_that_says_what_to_check() -> None:
    body = {
        "status": "error",
        "message": "Authentication credentials not found.",
        "correlationId": "c-2",
        "category": "INVALID_AUTHENTICATION",
    }
    result = classify(401, body)
    assert isinstance(result.error, AuthenticationError)
    assert isinstance(result.error, ConfigurationError)
    assert "INVALID_AUTHENTICATION" in str(result.error)
    assert "private-app token" in str(result.error)


def test_missing_scopes_names_the_scope_to_grant() -> None:
    body = {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "correlationId": "c-3",
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.deals.read"]},
            }
        ],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    }
    result = classify(403, body)
    assert isinstance(result.error, MissingScopesError)
    assert result.error.scopes == ["crm.objects.deals.read"]
    assert "crm.objects.deals.read" in str(result.error)


def test_unknown_property_in_a_write_names_the_property() -> None:
    listed = [
        {
            "isValid": False,
            "message": 'Property "stagelink_evnt" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": "stagelink_evnt",
        }
    ]
    body = {
        "status": "error",
        "message": "Property values were not valid: " + json.dumps(listed),
        "correlationId": "c-4",
        "category": "VALIDATION_ERROR",
    }
    result = classify(400, body, scope=Scope.RECORD)
    assert isinstance(result.error, UnknownPropertyError)
    assert result.error.property_names == ["stagelink_evnt"]


def test_unknown_property_in_a_search_filter_is_a_configuration_error() -> None:
    body = {
        "status": "error",
        "message": "There was a problem with the request: property 'amout' does not exist.",
        "category": "VALIDATION_ERROR",
        "context": {"propertyName": ["amout"]},
    }
    result = classify(400, body)
    assert isinstance(result.error, UnknownPropertyError)
    assert result.error.property_names == ["amout"]


def test_bad_refresh_token_never_quotes_the_secret() -> None:
    secret = "na1-1234-very-secret-refresh-token"
    body = {"status": "BAD_REFRESH_TOKEN", "message": f"missing or invalid refresh token {secret}"}
    result = classify(400, body, action="OAuth token refresh", secrets=[secret])
    assert isinstance(result.error, AuthenticationError)
    assert "BAD_REFRESH_TOKEN" in str(result.error)
    assert secret not in str(result.error)


def test_404_is_a_record_problem_for_one_record_and_a_setup_problem_for_a_collection() -> None:
    body = {
        "status": "error",
        "message": "Object not found.  objectId are usually numeric.",
        "context": {"id": ["abc"]},
        "category": "OBJECT_NOT_FOUND",
    }
    record = classify(404, body, scope=Scope.RECORD)
    assert isinstance(record.error, RecordError)
    assert record.error.ids == ["abc"]
    collection = classify(404, "<html>Not Found</html>")
    assert isinstance(collection.error, ConfigurationError)
    assert "base_url" in str(collection.error)


@pytest.mark.parametrize(("status", "wait"), [(423, 2.0), (500, None), (502, None), (503, None)])
def test_server_side_failures_are_transient(status: int, wait: float | None) -> None:
    result = classify(status, {"status": "error", "message": "internal error"})
    assert isinstance(result.error, TransientError)
    expected = timedelta(seconds=wait) if wait is not None else None
    assert result.error.retry_after == expected


def test_a_malformed_request_is_fatal() -> None:
    body = {"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"}
    assert isinstance(classify(400, body).error, FatalError)


def test_batch_207_errors_become_one_record_error_each() -> None:
    body = {
        "status": "COMPLETE",
        "results": [],
        "numErrors": 2,
        "errors": [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "gone",
                "context": {"ids": ["2", "3"]},
            },
            {
                "status": "error",
                "category": "CONFLICT",
                "message": "duplicate",
                "context": {"ids": ["7"]},
            },
        ],
    }
    errors = record_errors(body, action="batch read of deals")
    assert [e.ids for e in errors] == [["2", "3"], ["7"]]
    assert [e.category for e in errors] == ["OBJECT_NOT_FOUND", "CONFLICT"]
    assert all(isinstance(e, RecordError) for e in errors)


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after("Tue, 10 Mar 2026 12:00:30 GMT", now=NOON) == timedelta(seconds=30)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_refused_connection_is_transient_and_names_the_endpoint_only() -> None:
    refused = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")  # type: ignore[arg-type]
    refused.__context__ = ConnectionRefusedError(111, "Connection refused")
    error = classify_transport(refused, action="list of deals", endpoint="http://127.0.0.1:9")
    assert isinstance(error, HubSpotConnectionError)
    assert "connection refused" in str(error)


def test_untrusted_certificate_points_at_ca_bundle() -> None:
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    wrapped = urllib3.exceptions.SSLError(cause)
    error = classify_transport(wrapped, action="list of deals", endpoint="https://127.0.0.1:9")
    assert isinstance(error, TlsVerificationError)
    assert "ca_bundle" in str(error)


def test_timeouts_are_transient() -> None:
    error = classify_transport(TimeoutError("timed out"), action="x", endpoint="http://h")
    assert isinstance(error, HubSpotConnectionError)


# -- the retry policy ------------------------------------------------------------------------


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_waits_at_least_as_long_as_the_rate_limit_asks() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=5.0)
    limited = RateLimitedError(
        "429", policy="TEN_SECONDLY_ROLLING", retry_after=timedelta(seconds=2)
    )
    assert policy.call(Flaky(limited), sleep=slept.append) == "ok"
    assert len(slept) == 1
    assert slept[0] >= 2.0


def test_retry_gives_up_after_the_attempts_and_reraises_the_last_error() -> None:
    policy = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0)
    errors = [HubSpotConnectionError(f"drop {i}") for i in range(5)]
    flaky = Flaky(*errors)
    with pytest.raises(HubSpotConnectionError, match="drop 2"):
        policy.call(flaky, sleep=lambda _: None)
    assert flaky.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        BudgetExhaustedError("daily", retry_after=timedelta(hours=3)),
        AuthenticationError("401"),
        FatalError("bug"),
    ],
)
def test_budget_configuration_and_fatal_errors_are_not_retried(error: Exception) -> None:
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        RetryPolicy().call(flaky, sleep=lambda _: None)
    assert flaky.calls == 1
