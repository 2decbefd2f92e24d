"""sObject Collections, Composite and Composite Batch through ``sf.restful`` (facts A8)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import SalesforceSandbox


def _task(what: str, subject: str, **extra: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Task"}, "Subject": subject, "WhatId": what, **extra}


def _opportunity(sandbox: SalesforceSandbox) -> str:
    return str(sandbox.records("Opportunity", '"IsClosed" = 0')[0]["Id"])


def test_collection_create_reports_each_record_in_order(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    what = _opportunity(fresh_org)
    before = fresh_org.count("Task")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                _task(what, "first"),
                _task(what, "x" * 256),
                _task(what, "third", Status="Finished"),
                {"attributes": {"type": "Task"}, "Id": "00T5e0000000001AAA", "Subject": "id?"},
                _task(what, "fifth"),
            ],
        },
    )
    assert [r["success"] for r in results] == [True, False, False, False, True]
    assert results[1]["errors"] == [
        {
            "statusCode": "STRING_TOO_LONG",
            "message": results[1]["errors"][0]["message"],
            "fields": ["Subject"],
        }
    ]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[3]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert "id" not in results[1]
    assert results[0]["id"].startswith("00T")
    assert fresh_org.count("Task") == before + 2


def test_all_or_none_rolls_every_record_back(fresh_org: SalesforceSandbox, client_for: Any) -> None:
    sf = client_for(fresh_org)
    what = _opportunity(fresh_org)
    before = fresh_org.count("Task")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": True,
            "records": [
                _task(what, "ok 1"),
                _task(what, "bad", Priority="Urgent"),
                _task(what, "ok 2"),
            ],
        },
    )
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert not any(r["success"] for r in results)
    assert fresh_org.count("Task") == before


def test_more_than_200_records_is_refused(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    what = _opportunity(sf_org)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful(
            "composite/sobjects",
            method="POST",
            json={"records": [_task(what, f"t{i}") for i in range(201)]},
        )
    assert refused.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_collection_update_upsert_get_and_delete(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    what = _opportunity(fresh_org)
    upserted = sf.restful(
        "composite/sobjects/Task/Stagelink_Event_Id__c",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Task"},
                    "Stagelink_Event_Id__c": "u-1",
                    "Subject": "a",
                    "WhatId": what,
                },
                {
                    "attributes": {"type": "Task"},
                    "Stagelink_Event_Id__c": "u-2",
                    "Subject": "b",
                    "WhatId": what,
                },
            ],
        },
    )
    assert [r["created"] for r in upserted] == [True, True]
    again = sf.restful(
        "composite/sobjects/Task/Stagelink_Event_Id__c",
        method="PATCH",
        json={
            "records": [
                {"attributes": {"type": "Task"}, "Stagelink_Event_Id__c": "U-1", "Subject": "a2"}
            ]
        },
    )
    assert again == [{"id": upserted[0]["id"], "success": True, "errors": [], "created": False}]

    ids = [r["id"] for r in upserted]
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [
                {"attributes": {"type": "Task"}, "id": ids[1], "Status": "Completed"},
                {"attributes": {"type": "Task"}, "Subject": "no id"},
            ]
        },
    )
    assert updated[0] == {"id": ids[1], "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"

    missing = "00T5e000000zzzzAAA"
    fetched = sf.restful(
        "composite/sobjects/Task",
        params={"ids": ",".join([*ids, missing]), "fields": "Id,Subject,IsClosed"},
    )
    assert [f and f["Subject"] for f in fetched] == ["a2", "b", None]
    assert fetched[1]["IsClosed"] is True

    deleted = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{ids[0]},{missing}"}
    )
    assert deleted[0] == {"id": ids[0], "success": True, "errors": []}
    assert deleted[1]["success"] is False
    assert (
        fresh_org.records("Task", f"\"Id\" = '{ids[0]}'", include_deleted=True)[0]["IsDeleted"] == 1
    )


def test_composite_references_and_all_or_none(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    account = fresh_org.records("Account")[0]["Id"]
    ok = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Opportunity",
                    "referenceId": "deal",
                    "body": {
                        "Name": "Composite deal",
                        "AccountId": account,
                        "StageName": "Prospecting",
                        "CloseDate": "2027-03-01",
                    },
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Task",
                    "referenceId": "usage",
                    "body": {"Subject": "Viewed pricing", "WhatId": "@{deal.id}"},
                },
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/sobjects/Opportunity/@{deal.id}"
                    "?fields=Name,Probability",
                    "referenceId": "check",
                },
            ],
        },
    )["compositeResponse"]
    assert [r["httpStatusCode"] for r in ok] == [201, 201, 200]
    assert ok[0]["httpHeaders"]["Location"].endswith(ok[0]["body"]["id"])
    assert ok[2]["body"]["Probability"] == 10.0
    task = fresh_org.records("Task", f"\"Id\" = '{ok[1]['body']['id']}'")[0]
    assert task["WhatId"] == ok[0]["body"]["id"]

    opportunities = fresh_org.count("Opportunity")
    failed = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Opportunity",
                    "referenceId": "deal",
                    "body": {
                        "Name": "Rolled back",
                        "StageName": "Prospecting",
                        "CloseDate": "2027-03-01",
                    },
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Task",
                    "referenceId": "usage",
                    "body": {"Subject": "y" * 300, "WhatId": "@{deal.id}"},
                },
            ],
        },
    )["compositeResponse"]
    assert [r["httpStatusCode"] for r in failed] == [400, 400]
    assert failed[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert failed[1]["body"][0]["errorCode"] == "STRING_TOO_LONG"
    assert fresh_org.count("Opportunity") == opportunities


def test_composite_limits(sf: Salesforce) -> None:
    get = {"method": "GET", "url": "/services/data/v59.0/limits"}
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite",
            method="POST",
            json={"compositeRequest": [{**get, "referenceId": f"r{i}"} for i in range(26)]},
        )
    query = {"method": "GET", "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+User"}
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite",
            method="POST",
            json={"compositeRequest": [{**query, "referenceId": f"q{i}"} for i in range(6)]},
        )


def test_composite_batch_halts_on_error(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    answer = sf.restful(
        "composite/batch",
        method="POST",
        json={
            "haltOnError": True,
            "batchRequests": [
                {"method": "GET", "url": "v59.0/limits"},
                {"method": "GET", "url": "v59.0/sobjects/Opportunity/0065e000000zzzzAAA"},
                {"method": "GET", "url": "v59.0/sobjects/Account/describe"},
            ],
        },
    )
    assert answer["hasErrors"] is True
    assert [r["statusCode"] for r in answer["results"]] == [200, 404, 412]
    assert answer["results"][0]["result"]["DailyApiRequests"]["Max"] == 100000
