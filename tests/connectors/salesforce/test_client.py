"""The client edge: re-login, pagination, retries, error translation and the API budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceError, SalesforceRefusedRequest

from connectors.core.errors import FatalError, StagelinkError, TransientError
from connectors.core.probe import ApiBudget
from connectors.salesforce.client import SalesforceClient, soql
from connectors.salesforce.errors import (
    BudgetExhaustedError,
    QueryCursorLostError,
    SalesforceTransientError,
    SchemaMismatchError,
    SessionKeepsExpiringError,
    classify,
)
from sandbox.common import FaultKind
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig

QUERY_MORE = "/services/data/v59.0/query/01g"  # the nextRecordsUrl path, not the first page
OPPORTUNITIES = "SELECT Id, Name FROM Opportunity ORDER BY Id"


def _calls(org: SalesforceSandbox, kind: str) -> int:
    return org.calls.snapshot().get(kind, 0)


@pytest.fixture
def client(make_config: MakeConfig) -> Iterator[SalesforceClient]:
    with SalesforceClient(make_config("oauth-password"), retry=FAST_RETRY) as opened:
        opened.login()
        yield opened


def test_pages_are_followed_to_the_end(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    pages = list(client.query_pages(OPPORTUNITIES, 200))

    ids = [record["Id"] for page in pages for record in page.records]
    assert len(pages) == -(-sandbox.count("Opportunity") // 200)
    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity") == pages[0].total_size
    assert pages[-1].done
    assert not pages[0].done


def test_session_expired_between_pages_resumes_from_the_same_page(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    ids = []
    logins_before = client.login_count
    for number, record in enumerate(client.query_all_iter(OPPORTUNITIES, batch_size=200)):
        ids.append(record["Id"])
        if number == 0:
            assert sandbox.expire_sessions() >= 1  # every token is dead before page 2

    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity")
    assert client.login_count == logins_before + 1


def test_session_expiry_injected_on_the_next_page_path(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.inject(FaultKind.SESSION_EXPIRY, count=1, path_prefix=QUERY_MORE)
    more_before = _calls(sandbox, "query_more")

    ids = [record["Id"] for record in client.query_all_iter(OPPORTUNITIES, batch_size=200)]

    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity")
    pages_after_first = -(-len(ids) // 200) - 1
    # The refused page was asked for once more, with the new session, from the same locator.
    assert _calls(sandbox, "query_more") - more_before == pages_after_first + 1


def test_a_session_that_never_works_stops_at_the_relogin_ceiling(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.inject(FaultKind.SESSION_EXPIRY, count=50, path_prefix="/services/data/")
    logins_before = client.login_count
    queries_before = _calls(sandbox, "query")

    with pytest.raises(SessionKeepsExpiringError, match="session keeps expiring"):
        client.count("SELECT COUNT() FROM Account")

    assert client.login_count - logins_before == SalesforceClient.MAX_RELOGINS_PER_CALL
    assert _calls(sandbox, "query") - queries_before == SalesforceClient.MAX_RELOGINS_PER_CALL + 1


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (FaultKind.SERVER_ERROR, 503),
        (FaultKind.SERVER_ERROR, 502),
        (FaultKind.DROP, None),
        (FaultKind.MALFORMED, None),
    ],
)
def test_transient_failures_are_retried_until_the_read_succeeds(
    client: SalesforceClient, sandbox: SalesforceSandbox, kind: FaultKind, status: int | None
) -> None:
    sandbox.faults.inject(kind, count=2, status=status, path_prefix="/services/data/v59.0/query")
    before = _calls(sandbox, "query")

    total = client.count("SELECT COUNT() FROM Opportunity")

    assert total == sandbox.count("Opportunity")
    assert _calls(sandbox, "query") - before == 3


def test_transient_failure_mid_pagination_continues_from_the_same_page(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.inject(FaultKind.DROP, count=1, path_prefix=QUERY_MORE)

    ids = [record["Id"] for record in client.query_all_iter(OPPORTUNITIES, batch_size=200)]

    assert len(ids) == len(set(ids)) == sandbox.count("Opportunity")


def test_persistent_503_gives_up_after_the_bounded_attempts(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.inject(FaultKind.SERVER_ERROR, count=50, status=503, path_prefix="/services/")
    before = _calls(sandbox, "query")

    with pytest.raises(SalesforceTransientError) as caught:
        client.count("SELECT COUNT() FROM Opportunity")

    assert isinstance(caught.value, TransientError)
    assert caught.value.status == 503
    assert "SERVER_UNAVAILABLE" in str(caught.value)
    assert _calls(sandbox, "query") - before == FAST_RETRY.attempts


def test_writes_are_not_retried(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    sandbox.faults.inject(FaultKind.SERVER_ERROR, count=1, status=503, path_prefix="/services/")
    before = _calls(sandbox, "sobject_create")

    with pytest.raises(SalesforceTransientError):
        client.call(
            lambda sf: sf.restful("sobjects/Task", method="POST", json={"Subject": "Call"}),
            action="create Task",
            idempotent=False,
        )

    assert _calls(sandbox, "sobject_create") - before == 1


def test_spent_daily_allocation_is_budget_exhausted_and_not_retried(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    used, _ = sandbox.api_usage
    sandbox.set_api_limit(used)
    before = _calls(sandbox, "query")

    with pytest.raises(BudgetExhaustedError) as caught:
        client.count("SELECT COUNT() FROM Account")

    assert caught.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert caught.value.retry_after is not None
    assert caught.value.retry_after >= timedelta(hours=1)
    assert _calls(sandbox, "query") - before == 1
    assert client.api_budget() == ApiBudget(used=used, limit=used, window="24h rolling")
    assert client.api_budget().remaining == 0


def test_concurrent_request_limit_is_an_ordinary_transient_error() -> None:
    # Same 403 code, different cause (facts A12): the table keys on the message. Built the
    # way simple-salesforce's exception_handler builds them (content = the parsed body).
    url = "https://example.my.salesforce.com/services/data/v59.0/query/"
    concurrent_body: Any = [
        {
            "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
        }
    ]
    daily_body: Any = [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    concurrent = SalesforceRefusedRequest(url, 403, "query", concurrent_body)
    daily = SalesforceRefusedRequest(url, 403, "query", daily_body)

    assert type(classify(concurrent, connection="c", action="query")) is SalesforceTransientError
    assert type(classify(daily, connection="c", action="query")) is BudgetExhaustedError


def test_api_budget_follows_sforce_limit_info(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    client.count("SELECT COUNT() FROM Account")
    used, limit = sandbox.api_usage
    assert client.api_budget() == ApiBudget(used=used, limit=limit, window="24h rolling")

    sandbox.set_api_limit(5_000)
    client.describe("Account")  # a call simple-salesforce does not track itself
    assert client.api_budget() == ApiBudget(used=used + 1, limit=5_000, window="24h rolling")


def test_values_are_escaped_in_soql(client: SalesforceClient, sandbox: SalesforceSandbox) -> None:
    name = sandbox.records("Account")[0]["Name"]
    hostile = "x' OR Name != 'y"

    found = client.query(soql("SELECT Id, Name FROM Account WHERE Name = {}", name))
    nothing = client.query(soql("SELECT Id FROM Account WHERE Name = {}", hostile))

    assert [record["Name"] for record in found.records] == [name] * found.total_size
    assert found.total_size >= 1
    assert nothing.total_size == 0


def test_soql_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        soql("SELECT Id FROM Account WHERE SystemModstamp > {}", datetime(2024, 1, 2))  # noqa: DTZ001
    assert soql(
        "SELECT Id FROM Account WHERE SystemModstamp > {}", datetime(2024, 1, 2, tzinfo=UTC)
    ) == ("SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T00:00:00+00:00")


def test_unknown_field_is_a_configuration_error(client: SalesforceClient) -> None:
    with pytest.raises(SchemaMismatchError, match="INVALID_FIELD") as caught:
        client.query("SELECT Id, Product_Lin__c FROM Opportunity")
    assert "Product_Lin__c" in str(caught.value)


def test_malformed_query_is_fatal_and_no_vendor_exception_leaks(client: SalesforceClient) -> None:
    with pytest.raises(StagelinkError) as caught:
        client.query("SELECT FROM WHERE")
    assert isinstance(caught.value, FatalError)
    assert "MALFORMED_QUERY" in str(caught.value)
    assert not isinstance(caught.value, SalesforceError)


def test_lost_query_cursor_is_reported_not_retried(
    client: SalesforceClient, sandbox: SalesforceSandbox
) -> None:
    pages = client.query_pages(OPPORTUNITIES, 200)
    next(pages)
    sandbox.expire_query_locators()
    before = _calls(sandbox, "query_more")

    with pytest.raises(QueryCursorLostError, match="INVALID_QUERY_LOCATOR"):
        next(pages)

    assert _calls(sandbox, "query_more") - before == 1
