"""Describe, sObject CRUD, upsert by external id and the org's validation rules (facts A5-A10)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_external_id

from sandbox.salesforce import SalesforceSandbox


def _error(raised: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    content = raised.value.content
    assert isinstance(content, list), content
    first: dict[str, Any] = content[0]
    return first


def _an_open_opportunity(sandbox: SalesforceSandbox) -> str:
    rows = sandbox.records("Opportunity", '"IsClosed" = 0 AND "StageName" = \'Prospecting\'')
    return str(rows[0]["Id"])


def test_describe_reads_stage_picklist_from_opportunity_stage(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    stage = fields["StageName"]
    values = {p["value"]: p["active"] for p in stage["picklistValues"]}
    assert values["Prospecting"] is True
    assert values["Technical Validation"] is True  # the org's custom stage
    assert values["Discovery Call"] is False  # retired, still on old deals
    assert stage["restrictedPicklist"] is True
    assert stage["nillable"] is False
    assert fields["IsWon"]["createable"] is False
    stages = sf.query_all(
        "SELECT ApiName, DefaultProbability, IsClosed, IsWon, ForecastCategoryName, SortOrder, "
        "IsActive FROM OpportunityStage ORDER BY SortOrder"
    )["records"]
    assert [s["ApiName"] for s in stages] == [p["value"] for p in stage["picklistValues"]]
    closed_won = next(s for s in stages if s["ApiName"] == "Closed Won")
    assert (closed_won["IsClosed"], closed_won["IsWon"], closed_won["DefaultProbability"]) == (
        True,
        True,
        100.0,
    )


def test_global_describe_and_unknown_objects(sf: Salesforce) -> None:
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Opportunity", "Task", "OpportunityStage", "User"} <= names
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.describe()


def test_task_crud_lifecycle(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    opportunity = _an_open_opportunity(sf_org)
    created = sf.Task.create({"Subject": "Shared deck", "WhatId": opportunity})
    assert created["success"] is True
    assert created["errors"] == []
    task_id = created["id"]
    assert task_id.startswith("00T")
    assert len(task_id) == 18

    task = sf.Task.get(task_id)
    assert task["Status"] == "Not Started"  # picklist default
    assert task["Priority"] == "Normal"
    assert task["IsClosed"] is False
    assert task["OwnerId"] == sf_org.credentials.user_id  # the API user by default
    first_stamp = task["SystemModstamp"]

    assert sf.Task.update(task_id, {"Status": "Completed"}) == 204
    updated = sf.Task.get(task_id)
    assert updated["IsClosed"] is True
    assert updated["SystemModstamp"] >= first_stamp
    assert sf.Task.get(task_id[:15], params={"fields": "Id,Subject"})["Subject"] == "Shared deck"

    assert sf.Task.delete(task_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Task.get(task_id)
    assert _error(gone)["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as unknown:
        sf.Task.get("00T5e0000000zzzAAA")
    assert _error(unknown)["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as not_an_id:
        sf.Task.get("abc")
    assert "Provided external ID field does not exist" in _error(not_an_id)["message"]


def test_opportunity_stage_drives_derived_fields_and_history(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    account = sf_org.records("Account")[0]["Id"]
    opportunity = sf.Opportunity.create(
        {
            "Name": "Derived fields",
            "AccountId": account,
            "StageName": "Technical Validation",
            "CloseDate": "2027-01-31",
            "Amount": 1000,
        }
    )["id"]
    fresh = sf.Opportunity.get(opportunity)
    assert (fresh["Probability"], fresh["IsClosed"], fresh["ForecastCategoryName"]) == (
        55.0,
        False,
        "Best Case",
    )

    sf.Opportunity.update(opportunity, {"StageName": "Closed Won", "Amount": 1500})
    won = sf.Opportunity.get(opportunity)
    assert (won["IsClosed"], won["IsWon"], won["Probability"], won["ForecastCategoryName"]) == (
        True,
        True,
        100.0,
        "Closed",
    )
    changes = sf.query_all(
        "SELECT Field, OldValue, NewValue FROM OpportunityFieldHistory "
        f"WHERE OpportunityId = '{opportunity}' ORDER BY Field"
    )["records"]
    assert [(c["Field"], c["OldValue"], c["NewValue"]) for c in changes] == [
        ("Amount", "1000.00", "1500.00"),
        ("StageName", "Technical Validation", "Closed Won"),
    ]
    snapshots = sf.query_all(
        "SELECT StageName, ForecastCategory FROM OpportunityHistory "
        f"WHERE OpportunityId = '{opportunity}' ORDER BY CreatedDate, Id"
    )["records"]
    assert [(s["StageName"], s["ForecastCategory"]) for s in snapshots] == [
        ("Technical Validation", "BestCase"),
        ("Closed Won", "Closed"),
    ]


def test_required_fields(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Opportunity.create({"Name": "No stage, no date"})
    error = _error(missing)
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert set(error["fields"]) == {"StageName", "CloseDate"}
    with pytest.raises(SalesforceMalformedRequest) as nameless:
        sf.Account.create({"Industry": "Banking"})
    assert _error(nameless)["fields"] == ["Name"]


def test_task_text_lengths(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    what = _an_open_opportunity(sf_org)
    assert sf.Task.create({"Subject": "s" * 255, "Description": "d" * 32000, "WhatId": what})[
        "success"
    ]
    for field, size in (("Subject", 256), ("Description", 32001)):
        with pytest.raises(SalesforceMalformedRequest) as too_long:
            sf.Task.create({field: "x" * size, "WhatId": what})
        error = _error(too_long)
        assert error["errorCode"] == "STRING_TOO_LONG"
        assert error["fields"] == [field]


def test_restricted_picklists(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    what = _an_open_opportunity(sf_org)
    for field, value in (("Status", "Done"), ("Priority", "Urgent")):
        with pytest.raises(SalesforceMalformedRequest) as bad:
            sf.Task.create({"Subject": "x", field: value, "WhatId": what})
        error = _error(bad)
        assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        assert error["fields"] == [field]
    with pytest.raises(SalesforceMalformedRequest) as retired:
        sf.Opportunity.update(what, {"StageName": "Discovery Call"})
    assert _error(retired)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.Opportunity.update(what, {"StageName": "Technical Validation"}) == 204


def test_references_must_point_at_live_records_of_the_right_type(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    deleted = sf_org.records("Opportunity", '"IsDeleted" = 1', include_deleted=True)[0]["Id"]
    inactive = sf_org.records("User", '"IsActive" = 0')[0]["Id"]
    cases = [
        ({"WhatId": "not-an-id"}, "MALFORMED_ID"),
        ({"WhatId": sf_org.credentials.user_id}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"WhatId": "0065e000000zzzzAAA"}, "INVALID_CROSS_REFERENCE_KEY"),
        ({"WhatId": deleted}, "ENTITY_IS_DELETED"),
        ({"OwnerId": inactive}, "INACTIVE_OWNER_OR_USER"),
    ]
    for fields, code in cases:
        with pytest.raises(SalesforceMalformedRequest) as bad:
            sf.Task.create({"Subject": "ref check", **fields})
        error = _error(bad)
        assert error["errorCode"] == code, fields
        assert error["fields"] == list(fields)


def test_read_only_and_unknown_fields(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    what = _an_open_opportunity(sf_org)
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Task.create({"Subject": "x", "WhatId": what, "IsClosed": True})
    assert _error(read_only)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as stamp:
        sf.Opportunity.update(what, {"SystemModstamp": "2020-01-01T00:00:00Z"})
    assert _error(stamp)["fields"] == ["SystemModstamp"]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Task.create({"Subject": "x", "Colour__c": "red"})
    assert _error(unknown)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as wrong_type:
        sf.Opportunity.update(what, {"CloseDate": "next tuesday"})
    assert _error(wrong_type)["errorCode"] == "JSON_PARSER_ERROR"


def test_upsert_by_external_id_statuses(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    what = _an_open_opportunity(sf_org)
    path = format_external_id("Stagelink_Event_Id__c", "evt a/b+c")
    created = sf.Task.upsert(path, {"Subject": "Opened deck", "WhatId": what}, raw_response=True)
    assert created.status_code == 201
    assert created.json()["created"] is True

    again = sf.Task.upsert(path, {"Subject": "Opened deck twice"}, raw_response=True)
    assert again.status_code == 200
    assert again.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    sf_org.options.upsert_existing_status = 204
    try:
        assert sf.Task.upsert(path, {"Subject": "Third time"}) == 204
    finally:
        sf_org.options.upsert_existing_status = 200
    # Values are matched ignoring case, and the path is plain percent-decoded.
    upper = format_external_id("Stagelink_Event_Id__c", "EVT A/B+C")
    assert sf.Task.get(upper)["Subject"] == "Third time"
    # get_by_custom_id encodes with quote_plus ("+" for space): a different value (gotcha 11).
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get_by_custom_id("Stagelink_Event_Id__c", "evt a/b+c")


def test_upsert_on_fields_that_are_not_external_ids(sf: Salesforce) -> None:
    for field in ("No_Such_Field__c", "Subject"):
        with pytest.raises(SalesforceResourceNotFound) as missing:
            sf.Task.upsert(f"{field}/v1", {"Subject": "x"})
        assert _error(missing)["errorCode"] == "NOT_FOUND"
        assert field in _error(missing)["message"]


def test_unique_external_ids_reject_duplicates_ignoring_case(
    sf_org: SalesforceSandbox, sf: Salesforce
) -> None:
    what = _an_open_opportunity(sf_org)
    sf.Task.create({"Subject": "one", "WhatId": what, "Stagelink_Event_Id__c": "dup-1"})
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Task.create({"Subject": "two", "WhatId": what, "Stagelink_Event_Id__c": "DUP-1"})
    assert _error(duplicate)["errorCode"] == "DUPLICATE_VALUE"


def test_several_matches_answer_300_with_record_urls(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    # An org whose admin left "Unique" unticked on the external id field.
    with fresh_org.org.store.locked() as conn:
        conn.execute('DROP INDEX "ix_Task_Stagelink_Event_Id__c_uniq"')
        conn.execute(
            'UPDATE "Task" SET "Stagelink_Event_Id__c" = \'shared\' WHERE "Id" IN '
            '(SELECT "Id" FROM "Task" WHERE "IsDeleted" = 0 ORDER BY "Id" LIMIT 2)'
        )
    sf = client_for(fresh_org)
    with pytest.raises(SalesforceMoreThanOneRecord) as several:
        sf.Task.upsert("Stagelink_Event_Id__c/shared", {"Subject": "which one?"})
    urls = several.value.content
    assert len(urls) == 2
    assert all(u.startswith("/services/data/v59.0/sobjects/Task/00T") for u in urls)
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Task.get_by_custom_id("Stagelink_Event_Id__c", "shared")
