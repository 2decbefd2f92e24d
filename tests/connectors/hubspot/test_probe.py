"""``probe`` against the sandbox: what ``stagelink check`` reports for a HubSpot connection."""

from __future__ import annotations

import time

import pytest

from connectors.hubspot.probe import probe
from sandbox.common import FaultKind
from sandbox.hubspot import HubSpotSandbox

from .conftest import FreshSandbox, hubspot_config


def test_a_healthy_private_app_connection_reports_no_problems(
    shared_hubspot: HubSpotSandbox,
) -> None:
    portal = shared_hubspot.credentials.portal_id
    report = probe(hubspot_config(shared_hubspot, portal_id=portal))
    assert report.ok, report.problems
    assert report.identity == f"portal {portal}"
    assert report.endpoint == shared_hubspot.url
    assert {o.name: o.readable for o in report.objects} == {
        "deals": True,
        "companies": True,
        "owners": True,
        "pipelines": True,
    }
    windows = {b.window for b in report.budgets}
    assert windows == {"daily", "10s"}


def test_oauth_identity_is_the_portal_of_the_token(shared_hubspot: HubSpotSandbox) -> None:
    report = probe(hubspot_config(shared_hubspot, oauth=True, portal_id=123))
    assert report.authenticated
    assert report.identity == f"portal {shared_hubspot.credentials.portal_id}"
    assert report.problems == [
        f"portal_id is 123 but the OAuth token belongs to portal "
        f"{shared_hubspot.credentials.portal_id}: fix portal_id (card and webhook checks use it)"
    ]


def test_a_misspelled_extra_property_is_reported_with_a_suggestion(
    shared_hubspot: HubSpotSandbox,
) -> None:
    config = hubspot_config(
        shared_hubspot,
        extra_properties={"deals": ["amout", "dealtype"], "companies": ["industyr"]},
    )
    report = probe(config)
    assert report.authenticated
    assert sorted(report.problems) == [
        "extra_properties.companies: property 'industyr' does not exist on companies; "
        "did you mean 'industry'?",
        "extra_properties.deals: property 'amout' does not exist on deals; did you mean 'amount'?",
    ]


@pytest.mark.parametrize(
    ("activity", "prop", "expected"),
    [
        ("note", "stagelink_event_id", None),
        ("task", "stagelink_evnt_id", "does not exist on tasks"),
        ("note", "hs_note_body", "is not a unique-value property"),
    ],
)
def test_writeback_event_id_property_must_exist_and_be_unique(
    shared_hubspot: HubSpotSandbox, activity: str, prop: str, expected: str | None
) -> None:
    config = hubspot_config(
        shared_hubspot, writeback={"activity": activity, "event_id_property": prop}
    )
    problems = probe(config).problems
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert expected in problems[0]
        assert "fall back to searching for its marker" in problems[0]


def test_a_closed_port_is_reported_as_unreachable_without_raising(
    shared_hubspot: HubSpotSandbox, closed_port_url: str
) -> None:
    started = time.monotonic()
    report = probe(hubspot_config(shared_hubspot, base_url=closed_port_url))
    assert time.monotonic() - started < 10.0  # the probe's own retry bound
    assert not report.ok
    assert not report.authenticated
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"cannot reach HubSpot at {closed_port_url}")
    assert "connection refused" in report.problems[0]


def test_a_wrong_token_is_one_problem_and_stops_the_other_checks(
    shared_hubspot: HubSpotSandbox,
) -> None:
    token = "pat-na1-11111111-2222-4333-8444-555555555555"
    report = probe(
        hubspot_config(
            shared_hubspot,
            auth={"method": "private_app", "token": token},
            extra_properties={"deals": ["amout"]},
        )
    )
    assert not report.authenticated
    assert len(report.problems) == 1
    assert "refused the credentials" in report.problems[0]
    assert token not in report.problems[0]


def test_a_revoked_refresh_token_is_reported_without_the_secret(
    shared_hubspot: HubSpotSandbox,
) -> None:
    refresh = "na1-9999-revoked-refresh-token"
    credentials = shared_hubspot.credentials
    report = probe(
        hubspot_config(
            shared_hubspot,
            auth={
                "method": "oauth",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret,
                "refresh_token": refresh,
            },
        )
    )
    assert not report.authenticated
    assert len(report.problems) == 1
    assert "BAD_REFRESH_TOKEN" in report.problems[0]
    assert refresh not in report.problems[0]
    assert credentials.client_secret not in report.problems[0]


def test_one_failing_object_does_not_hide_the_others(fresh_hubspot: FreshSandbox) -> None:
    hs = fresh_hubspot()
    hs.faults.inject(FaultKind.SERVER_ERROR, count=10, status=503, path_prefix="/crm/v3/owners")
    report = probe(hubspot_config(hs))
    readable = {o.name: o.readable for o in report.objects}
    assert readable == {"deals": True, "companies": True, "owners": False, "pipelines": True}
    assert len(report.problems) == 1
    assert report.problems[0].startswith("cannot read owners")
    assert report.authenticated
