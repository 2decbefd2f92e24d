"""Get Updated / Get Deleted through ``sf.<Type>.updated()`` / ``deleted()`` (facts A7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce import SalesforceSandbox


def _window() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=5)


def test_updated_and_deleted_see_mutations(fresh_org: SalesforceSandbox, client_for: Any) -> None:
    sf = client_for(fresh_org)
    start, end = _window()
    summary = fresh_org.mutate(edits=6, deletes=3, creates=3)

    updated = sf.Account.updated(start, end)
    touched = set(summary.edited.get("Account", [])) | set(summary.created.get("Account", []))
    assert touched
    # Deleting an account also clears its children's Parent lookup, which counts as an update.
    assert touched <= set(updated["ids"])
    covered = updated["latestDateCovered"]
    assert covered.endswith(":00.000+0000")  # seconds truncated to the minute
    assert covered <= end.strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    opportunities = sf.Opportunity.updated(start, end)["ids"]
    expected = set(summary.edited["Opportunity"]) | set(summary.created["Opportunity"])
    assert set(opportunities) == expected

    deleted = sf.Opportunity.deleted(start, end)
    assert {d["id"] for d in deleted["deletedRecords"]} == set(summary.deleted["Opportunity"])
    assert all(d["deletedDate"].endswith("+0000") for d in deleted["deletedRecords"])
    assert deleted["earliestDateAvailable"] <= deleted["deletedRecords"][0]["deletedDate"]
    account_deletes = {d["id"] for d in sf.Account.deleted(start, end)["deletedRecords"]}
    assert account_deletes == set(summary.deleted.get("Account", []))


def test_replication_window_rules(sf_org: SalesforceSandbox, sf: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(SalesforceMalformedRequest) as too_old:
        sf.Account.updated(now - dt.timedelta(days=31), now)
    assert too_old.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest) as backwards:
        sf.Account.deleted(now, now - dt.timedelta(hours=1))
    assert backwards.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    minute = now.replace(second=5, microsecond=0)
    with pytest.raises(SalesforceMalformedRequest) as same_minute:
        sf.Account.updated(
            minute - dt.timedelta(minutes=2), minute - dt.timedelta(minutes=2, seconds=-50)
        )
    assert same_minute.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_too_many_ids_is_exceeded_id_limit(make_org: Any, client_for: Any) -> None:
    sandbox = make_org(updated_deleted_id_limit=2)
    sf = client_for(sandbox)
    start, end = _window()
    sandbox.mutate(edits=0, deletes=0, creates=9)  # three accounts, six opportunities
    with pytest.raises(SalesforceMalformedRequest) as exceeded:
        sf.Opportunity.updated(start, end)
    assert exceeded.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
