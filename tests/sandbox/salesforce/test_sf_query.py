"""SOQL over REST: paging, batch sizes, cursors, deleted rows, expiry mid-pagination (facts A4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from sandbox.salesforce import SalesforceSandbox

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}
ALL_OPPS = "SELECT Id, Name, StageName FROM Opportunity ORDER BY Id"


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "total"}


def test_query_all_pages_with_the_batch_size_header(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    live = sf_org.count("Opportunity")
    assert 200 < live <= 400  # the small seed: two pages of 200
    before = sf_org.calls.snapshot()

    result = sf.query_all(ALL_OPPS, headers=BATCH_200)

    ids = [r["Id"] for r in result["records"]]
    assert len(ids) == len(set(ids)) == live
    assert ids == sorted(ids)
    calls = _delta(before, sf_org.calls.snapshot())
    assert (calls.get("query"), calls.get("query_more")) == (1, 1)


def test_first_page_has_a_relative_locator_and_total_size(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    page = sf.query(ALL_OPPS, headers=BATCH_200)
    assert page["totalSize"] == sf_org.count("Opportunity")
    assert page["done"] is False
    assert len(page["records"]) == 200
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert page["nextRecordsUrl"].endswith("-200")
    record = page["records"][0]
    assert record["attributes"] == {
        "type": "Opportunity",
        "url": f"/services/data/v59.0/sobjects/Opportunity/{record['Id']}",
    }


def test_batch_size_is_clamped_to_200_and_defaults_to_2000(sf: Salesforce) -> None:
    small = sf.query(ALL_OPPS, headers={"Sforce-Query-Options": "batchSize=50"})
    assert len(small["records"]) == 200
    default = sf.query("SELECT Id FROM OpportunityHistory")
    assert default["done"] is True
    assert len(default["records"]) == default["totalSize"] > 200


def test_other_api_versions_are_echoed_in_urls(sf_org: SalesforceSandbox, client_for: Any) -> None:
    sf = client_for(sf_org, version="62.0")
    page = sf.query(ALL_OPPS, headers=BATCH_200)
    assert page["nextRecordsUrl"].startswith("/services/data/v62.0/query/")
    assert page["records"][0]["attributes"]["url"].startswith("/services/data/v62.0/sobjects/")
    assert len(sf.query_all(ALL_OPPS, headers=BATCH_200)["records"]) == page["totalSize"]


def test_cursor_query_with_format_soql_returns_later_rows_in_cursor_order(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    rows = sf_org.records("Opportunity")
    stamps = sorted(r["SystemModstamp"] for r in rows)
    shared = [s for s in set(stamps) if stamps.count(s) > 1]
    assert shared, "the seed has records sharing a SystemModstamp (mass updates)"
    cursor_text = min(shared)
    assert cursor_text.endswith(":00.000Z")  # mass updates run on the hour: no lost millis
    cursor = dt.datetime.strptime(cursor_text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    soql = format_soql(
        "SELECT Id, SystemModstamp FROM Opportunity WHERE SystemModstamp > {} "
        "ORDER BY SystemModstamp, Id",
        cursor,
    )
    assert "SystemModstamp > 20" in soql
    assert "+00:00" in soql
    result = sf.query_all(soql)

    expected = sorted(
        (r["SystemModstamp"], r["Id"]) for r in rows if r["SystemModstamp"] > cursor_text
    )
    assert expected
    assert [r["Id"] for r in result["records"]] == [i for _, i in expected]
    assert all(r["SystemModstamp"].endswith("+0000") for r in result["records"])


def test_deleted_rows_only_through_query_all_with_include_deleted(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    deleted = {
        r["Id"] for r in sf_org.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)
    }
    assert deleted, "the seed keeps a few opportunities in the Recycle Bin"
    soql = "SELECT Id, IsDeleted FROM Opportunity WHERE IsDeleted = true"

    assert sf.query_all(soql)["records"] == []
    with_deleted = sf.query_all(soql, include_deleted=True)["records"]
    assert {r["Id"] for r in with_deleted} == deleted
    assert all(r["IsDeleted"] is True for r in with_deleted)
    everything = sf.query_all("SELECT Id FROM Opportunity", include_deleted=True)
    assert everything["totalSize"] == sf_org.count("Opportunity", include_deleted=True)


def test_session_expiring_mid_pagination_makes_the_library_log_in_again(
    fresh_org: SalesforceSandbox, session_for: Any
) -> None:
    creds = fresh_org.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=session_for(fresh_org, rewrite_logins=True),
    )
    records = sf.query_all_iter(ALL_OPPS, headers=BATCH_200)
    first_page = [next(records) for _ in range(200)]
    assert fresh_org.expire_sessions() >= 1

    rest = list(records)

    assert len(first_page) + len(rest) == fresh_org.count("Opportunity")
    assert fresh_org.calls.snapshot()["soap_login"] == 2


def test_direct_session_mode_raises_expired_session(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    records = sf.query_all_iter(ALL_OPPS, headers=BATCH_200)
    next(records)
    fresh_org.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as expired:
        list(records)
    assert expired.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_expired_or_unknown_query_locator(fresh_org: SalesforceSandbox, client_for: Any) -> None:
    sf = client_for(fresh_org)
    page = sf.query(ALL_OPPS, headers=BATCH_200)
    assert fresh_org.expire_query_locators() == 1
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert gone.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    with pytest.raises(SalesforceResourceNotFound):
        sf.query_more("01g5e0000000zzzAAA-200")


def test_opening_too_many_cursors_drops_the_oldest(make_org: Any, client_for: Any) -> None:
    sandbox = make_org(max_open_query_cursors=2)
    sf = client_for(sandbox)
    first, second, third = (sf.query(ALL_OPPS, headers=BATCH_200) for _ in range(3))
    with pytest.raises(SalesforceResourceNotFound):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    for page in (second, third):
        rest = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        assert rest["done"] is True
        assert len(rest["records"]) == page["totalSize"] - 200


def test_soql_errors_are_400_with_salesforce_codes(sf: Salesforce) -> None:
    cases = {
        "SELECT Id FROM Opportunity WHERE": "MALFORMED_QUERY",
        "SELECT Id, Colour__c FROM Opportunity": "INVALID_FIELD",
        "SELECT Id FROM Opportunities": "INVALID_TYPE",
        "SELECT Id FROM Opportunity ORDER BY Id LIMIT 10 OFFSET 2001": "NUMBER_OUTSIDE_VALID_RANGE",
    }
    for soql, code in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as error:
            sf.query(soql)
        assert error.value.content[0]["errorCode"] == code, soql


def test_relationships_nulls_counts_and_formats(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    records = sf.query_all(
        "SELECT Id, Amount, CloseDate, IsWon, CreatedDate, Account.Name, Owner.Name "
        "FROM Opportunity"
    )["records"]
    without_account = [r for r in records if r["Account"] is None]
    with_account = [r for r in records if r["Account"] is not None]
    assert without_account
    assert with_account
    assert with_account[0]["Account"]["attributes"]["type"] == "Account"
    assert any(r["Amount"] is None for r in records)
    assert all(isinstance(r["IsWon"], bool) for r in records)
    assert all(len(r["CloseDate"]) == 10 for r in records)
    assert all(
        r["CreatedDate"][19:] == ".000+0000" or r["CreatedDate"][23:] == "+0000" for r in records
    )
    count = sf.query("SELECT COUNT() FROM Opportunity")
    assert count == {"totalSize": sf_org.count("Opportunity"), "done": True, "records": []}


def test_unicode_and_quotes_round_trip(sf: Salesforce) -> None:
    for name in ("株式会社サンプル", "O'Brien & Sons", 'Back\\slash "Quoted" Ltd', "Müller GmbH"):
        found = sf.query(format_soql("SELECT Id, Name FROM Account WHERE Name = {}", name))
        assert [r["Name"] for r in found["records"]] == [name]
    like = sf.query(format_soql("SELECT Name FROM Account WHERE Name LIKE '{:like}%'", "50% Off_"))
    assert [r["Name"] for r in like["records"]] == ["50% Off_Deals LLC"]


def test_paths_with_and_without_trailing_slashes(
    sf_org: SalesforceSandbox, session_for: Any
) -> None:
    session = session_for(sf_org)
    session.headers["Authorization"] = f"Bearer {sf_org.issue_token()}"
    base = f"{sf_org.url}/services/data"
    versions = session.get(f"{base}/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert session.get(base).json() == versions
    for path in (
        "/v59.0/query?q=SELECT+COUNT()+FROM+Account",
        "/v59.0/query/?q=SELECT+COUNT()+FROM+Account",
    ):
        answer = session.get(base + path)
        assert answer.status_code == 200, path
        assert answer.json()["totalSize"] == sf_org.count("Account")
    assert session.get(f"{base}/v59.0").json()["query"] == "/services/data/v59.0/query"
    assert session.get(f"{base}/v59.0/sobjects/Account/describe").status_code == 200
    missing = session.get(f"{base}/v59.0/no/such/resource")
    assert missing.status_code == 404
    assert missing.json()[0]["errorCode"] == "NOT_FOUND"


def test_locators_bound_to_sessions_cannot_be_resumed_after_a_relogin(
    make_org: Any, session_for: Any
) -> None:
    sandbox = make_org(query_locator_bound_to_session=True)
    creds = sandbox.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=session_for(sandbox, rewrite_logins=True),
    )
    records = sf.query_all_iter(ALL_OPPS, headers=BATCH_200)
    next(records)
    sandbox.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        list(records)
    # One login to start, then the library's re-login on every 401 until it gives up.
    assert sandbox.calls.snapshot()["soap_login"] == 1 + 4
