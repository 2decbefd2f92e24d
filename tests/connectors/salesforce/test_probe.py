"""``probe``: what ``stagelink check`` reports for a Salesforce connection."""

from __future__ import annotations

import socket
import time

import pytest

from connectors.core.probe import ApiBudget, ObjectAccess
from connectors.salesforce.probe import probe
from sandbox.salesforce import SalesforceSandbox

from .conftest import FAST_RETRY, MakeConfig, auth_block


def test_probe_of_a_healthy_org(make_config: MakeConfig, sandbox: SalesforceSandbox) -> None:
    config = make_config(
        "refresh_token",
        extra_fields={"opportunity": ["Product_Line__c"], "account": ["region__c"]},
        writeback={"external_id_field": "Stagelink_Event_Id__c"},
    )

    report = probe(config, retry=FAST_RETRY)

    assert report.problems == []
    assert report.ok
    assert report.identity == sandbox.credentials.username
    assert report.endpoint == sandbox.url
    [budget] = report.budgets
    used, limit = sandbox.api_usage
    assert budget.window == "24h rolling"
    assert budget.limit == limit
    assert budget.used is not None
    assert 0 < budget.used <= used
    assert [(o.name, o.readable, o.writable) for o in report.objects] == [
        ("Account", True, None),
        ("Opportunity", True, None),
        ("User", True, None),
        ("OpportunityStage", True, None),
        ("Task", True, True),
    ]


def test_probe_reports_every_missing_field_with_a_suggestion(make_config: MakeConfig) -> None:
    config = make_config(
        extra_fields={
            "opportunity": ["Product_Lin__c", "Zzz_Nothing_Like_It__c"],
            "account": ["Regoin__c"],
        },
        writeback={"external_id_field": "Stagelink_Event_Idd__c"},
    )

    report = probe(config, retry=FAST_RETRY)

    assert report.authenticated
    assert not report.ok
    assert report.problems == [
        "Account has no field Regoin__c (did you mean Region__c?) (extra_fields.account)",
        "Opportunity has no field Product_Lin__c (did you mean Product_Line__c?) "
        "(extra_fields.opportunity)",
        "Opportunity has no field Zzz_Nothing_Like_It__c (extra_fields.opportunity)",
        "Task has no field Stagelink_Event_Idd__c (did you mean Stagelink_Event_Id__c?) "
        "(writeback.external_id_field); create it as a Text field marked External ID",
    ]


def test_probe_with_wrong_credentials_is_unauthenticated_not_an_exception(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    config = make_config("soap", auth=auth_block(sandbox, "soap", password="Wrong-Passw0rd!"))

    report = probe(config, retry=FAST_RETRY)

    assert not report.authenticated
    assert not report.ok
    [problem] = report.problems
    assert "INVALID_LOGIN" in problem
    assert "Wrong-Passw0rd!" not in problem
    assert report.objects == []
    assert report.budgets == []


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_probe_of_a_closed_port_reports_unreachable(make_config: MakeConfig) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    config = make_config(login_url=url, instance_url=url)

    started = time.monotonic()
    report = probe(config, retry=FAST_RETRY)

    assert time.monotonic() - started < 5
    assert not report.authenticated
    [problem] = report.problems
    assert problem.startswith(f"cannot reach {url}: ")
    assert "connection refused" in problem


def test_probe_without_the_ca_says_to_set_ca_bundle(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    report = probe(make_config("jwt", ca_bundle=None), retry=FAST_RETRY)

    assert not report.authenticated
    [problem] = report.problems
    assert "certificate verify failed" in problem
    assert "set ca_bundle" in problem


def test_probe_reports_a_spent_allocation(
    make_config: MakeConfig, sandbox: SalesforceSandbox
) -> None:
    config = make_config()
    used, _ = sandbox.api_usage
    # Room for exactly the identity-free login path: /limits is the last request that fits.
    sandbox.set_api_limit(used + 1)

    report = probe(config, retry=FAST_RETRY)

    assert report.authenticated
    assert report.budgets == [ApiBudget(used=used + 1, limit=used + 1, window="24h rolling")]
    assert report.problems[0].startswith("the org's daily API allocation is spent")
    # Each describe was refused, and each refusal is its own line; nothing raised.
    assert any("REQUEST_LIMIT_EXCEEDED" in problem for problem in report.problems[1:])
    assert report.objects[0] == ObjectAccess(
        "Account", readable=False, writable=None, detail=report.objects[0].detail
    )
