"""Bulk API 2.0 query jobs through ``sf.bulk2`` (facts A9)."""

from __future__ import annotations

import csv
import io
import math
import time
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce import SalesforceSandbox

QUERY = (
    "SELECT Id, Name, Amount, IsWon, CloseDate, LastModifiedDate, Owner.Name "
    "FROM Opportunity ORDER BY Id"
)


def test_bulk_query_returns_quoted_csv_pages(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    before = sf_org.calls.snapshot()
    pages = list(sf.bulk2.Opportunity.query(QUERY, max_records=100, wait=0))

    live = sf_org.records("Opportunity")
    assert len(pages) == math.ceil(len(live) / 100) >= 3
    rows: list[dict[str, str]] = []
    for page in pages:
        lines = page.splitlines()
        assert (
            lines[0] == '"Id","Name","Amount","IsWon","CloseDate","LastModifiedDate","Owner.Name"'
        )
        assert all(line.startswith('"006') and line.endswith('"') for line in lines[1:])
        rows.extend(csv.DictReader(io.StringIO(page)))
    assert [r["Id"] for r in rows] == [r["Id"] for r in live]
    assert {r["IsWon"] for r in rows} == {"true", "false"}
    assert all(
        r["LastModifiedDate"].endswith(".000Z") or r["LastModifiedDate"][-1] == "Z" for r in rows
    )
    assert any(r["Amount"] == "" for r in rows)  # nulls are empty
    calls = sf_org.calls.snapshot()
    assert calls["bulk_create"] - before.get("bulk_create", 0) == 1
    assert calls["bulk_results"] - before.get("bulk_results", 0) == len(pages)
    assert calls["bulk_poll"] - before.get("bulk_poll", 0) >= 2  # UploadComplete/InProgress first


def test_query_all_operation_includes_deleted_rows(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    pages = list(
        sf.bulk2.Opportunity.query_all("SELECT Id FROM Opportunity WHERE IsDeleted = true", wait=0)
    )
    ids = [row["Id"] for page in pages for row in csv.DictReader(io.StringIO(page))]
    deleted = sf_org.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)
    assert sorted(ids) == sorted(r["Id"] for r in deleted)
    assert ids


def test_results_before_completion_and_job_lifecycle(make_org: Any, client_for: Any) -> None:
    sandbox = make_org(bulk_job_seconds=30)
    sf = client_for(sandbox)
    job = sf.restful(
        "jobs/query",
        method="POST",
        json={
            "operation": "query",
            "query": "SELECT Id FROM Account",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        },
    )
    assert job["state"] == "UploadComplete"
    assert job["object"] == "Account"
    assert job["apiVersion"] == 59.0
    with pytest.raises(SalesforceGeneralError) as early:
        sf.restful(f"jobs/query/{job['id']}/results")
    assert early.value.status == 412
    aborted = sf.restful(f"jobs/query/{job['id']}", method="PATCH", json={"state": "Aborted"})
    assert aborted["state"] == "Aborted"
    assert sf.restful(f"jobs/query/{job['id']}", method="DELETE") is None
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful(f"jobs/query/{job['id']}")


def test_results_need_the_jobs_api_version(sf_org: SalesforceSandbox, client_for: Any) -> None:
    sf59 = client_for(sf_org)
    job = sf59.restful(
        "jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM User"}
    )
    while sf59.restful(f"jobs/query/{job['id']}")["state"] != "JobComplete":
        time.sleep(0.05)
    sf62 = client_for(sf_org, version="62.0")
    with pytest.raises(SalesforceGeneralError) as mismatch:
        sf62.restful(f"jobs/query/{job['id']}/results")
    assert mismatch.value.status == 409
    csv_text = sf59.session.get(
        f"{sf59.base_url}jobs/query/{job['id']}/results", headers=sf59.headers
    )
    assert csv_text.headers["Sforce-Locator"] == "null"
    assert int(csv_text.headers["Sforce-NumberOfRecords"]) == sf_org.count("User")
    assert csv_text.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_bulk_refuses_offset_and_bad_operations(sf: Salesforce) -> None:
    for body in (
        {"operation": "query", "query": "SELECT Id FROM Account ORDER BY Id LIMIT 5 OFFSET 5"},
        {"operation": "insert", "query": "SELECT Id FROM Account"},
        {"operation": "query", "query": "SELECT Nope__c FROM Account"},
    ):
        with pytest.raises(SalesforceMalformedRequest):
            sf.restful("jobs/query", method="POST", json=body)
