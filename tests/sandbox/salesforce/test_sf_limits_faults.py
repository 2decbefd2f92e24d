"""API limits, injected faults and the admin endpoints (facts A3, A12; Emulator checklist)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from sandbox.common import FaultKind
from sandbox.salesforce import SalesforceSandbox

COUNT = "SELECT COUNT() FROM Account"


def test_limit_info_header_reaches_api_usage(sf_org: SalesforceSandbox, sf: Salesforce) -> None:
    sf.query(COUNT)
    used, allowed = sf_org.api_usage
    usage = sf.api_usage["api-usage"]
    assert (usage.used, usage.total) == (used, allowed)
    assert allowed == 100_000
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == allowed
    assert limits["DailyApiRequests"]["Remaining"] == allowed - (used + 1)


def test_requests_beyond_the_daily_limit_are_refused(make_org: Any, client_for: Any) -> None:
    sandbox = make_org(api_daily_limit=3)
    sf = client_for(sandbox)
    for _ in range(3):
        assert sf.query(COUNT)["totalSize"] > 0
    assert sf.api_usage["api-usage"].used == 3
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query(COUNT)
    assert refused.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sandbox.set_api_limit(10)
    assert sf.query(COUNT)["totalSize"] > 0


def test_injected_server_errors_reach_the_client(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    fresh_org.faults.inject(FaultKind.SERVER_ERROR, status=503, path_prefix="/services/data")
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.query(COUNT)
    assert unavailable.value.status == 503
    assert unavailable.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    fresh_org.faults.inject(FaultKind.SERVER_ERROR, status=500, path_prefix="/services/data")
    with pytest.raises(SalesforceGeneralError) as internal:
        sf.query(COUNT)
    assert internal.value.content[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    fresh_org.faults.inject(FaultKind.RATE_LIMIT, path_prefix="/services/data")
    with pytest.raises(SalesforceRefusedRequest):
        sf.query(COUNT)
    assert sf.query(COUNT)["totalSize"] > 0  # one-shot faults
    assert fresh_org.faults.injected["server_error"] == 2


def test_dropped_connections_and_malformed_bodies(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    fresh_org.faults.inject(FaultKind.DROP, path_prefix="/services/data")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sf.query(COUNT)
    fresh_org.faults.inject(FaultKind.MALFORMED, path_prefix="/services/data/v59.0/query")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        sf.query(COUNT)
    assert sf.query(COUNT)["totalSize"] > 0


def test_slow_answers_arrive_late_but_correct(
    fresh_org: SalesforceSandbox, client_for: Any
) -> None:
    sf = client_for(fresh_org)
    fresh_org.faults.inject(FaultKind.SLOW, delay_seconds=0.3, path_prefix="/services/data")
    started = time.monotonic()
    assert sf.query(COUNT)["totalSize"] == fresh_org.count("Account")
    assert time.monotonic() - started >= 0.3
    fresh_org.faults.inject(FaultKind.SLOW, delay_seconds=2, path_prefix="/services/data")
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query(COUNT, timeout=0.5)


def test_session_expiry_fault_forces_a_relogin(
    fresh_org: SalesforceSandbox, session_for: Any
) -> None:
    creds = fresh_org.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=session_for(fresh_org, rewrite_logins=True),
    )
    fresh_org.faults.inject(FaultKind.SESSION_EXPIRY, path_prefix="/services/data")
    assert sf.query(COUNT)["totalSize"] > 0
    assert fresh_org.calls.snapshot()["soap_login"] == 2


def test_random_faults_spare_logins_unless_targeted(
    fresh_org: SalesforceSandbox, session_for: Any
) -> None:
    creds = fresh_org.credentials
    session = session_for(fresh_org, rewrite_logins=True)
    fresh_org.faults.configure(rate=1.0, kinds=[FaultKind.SERVER_ERROR], seed=3)
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=session,
    )
    with pytest.raises(SalesforceGeneralError):
        sf.query(COUNT)
    fresh_org.faults.clear()
    fresh_org.faults.inject(
        FaultKind.SERVER_ERROR, status=503, path_prefix="/services/oauth2/token"
    )
    token = session.post(
        "https://login.salesforce.com/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds.consumer_key, creds.consumer_secret),
    )
    assert token.status_code == 503
    retried = session.post(
        "https://login.salesforce.com/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds.consumer_key, creds.consumer_secret),
    )
    assert retried.status_code == 200


def test_admin_endpoints_drive_a_running_sandbox(
    fresh_org: SalesforceSandbox, session_for: Any, client_for: Any
) -> None:
    admin = session_for(fresh_org)
    base = f"{fresh_org.url}/__admin"
    sf = client_for(fresh_org)
    sf.query(COUNT)
    assert admin.get(f"{base}/calls").json()["query"] == 1
    assert admin.post(f"{base}/calls/reset").status_code == 200
    assert admin.get(f"{base}/calls").json() == {"total": 0}

    configured = admin.post(
        f"{base}/faults",
        json={
            "inject": [
                {"kind": "server_error", "count": 1, "path_prefix": "/services/data", "status": 502}
            ]
        },
    )
    assert configured.status_code == 200
    with pytest.raises(SalesforceGeneralError) as bad_gateway:
        sf.query(COUNT)
    assert bad_gateway.value.status == 502
    admin.post(f"{base}/faults", json={"rate": 1.0, "kinds": ["rate_limit"]})
    with pytest.raises(SalesforceRefusedRequest):
        sf.query(COUNT)
    admin.post(f"{base}/faults/clear")
    assert sf.query(COUNT)["totalSize"] > 0

    mutated = admin.post(f"{base}/mutate", json={"edits": 2, "deletes": 1, "creates": 1}).json()
    assert sum(len(v) for v in mutated["edited"].values()) == 2
    assert len(mutated["timestamps"]) == 1
    accounts = admin.get(f"{base}/records/Account").json()
    assert accounts["totalSize"] == fresh_org.count("Account")

    assert admin.post(f"{base}/expire-sessions").json()["expired"] >= 1
    with pytest.raises(SalesforceExpiredSession):
        sf.query(COUNT)
