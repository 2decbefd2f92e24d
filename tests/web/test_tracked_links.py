"""Tracked content links ``/c/{token}`` over real HTTP: one view per window, no open redirect.

Views are stored through the real usage service; "once per token per window" rests on a
deterministic client event id, so two app nodes on one database (SQLite and PostgreSQL
here) store one view between them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from stagelink.storage import UsageStatus, make_engine, utcnow
from stagelink.surfaces.links import LinkSigner, tracked_path
from stagelink.sync.runner import Storage
from stagelink.web import create_app
from stagelink.web.pages import view_event_id
from tests.web.conftest import FakeHubSpot, LiveServer
from tests.web.test_pages import ANA, DEAL, KEY, RETIRED, SF, Site, open_site

CASE_STUDY = "banking-case-study"
CASE_STUDY_URL = "https://content.example.com/case-studies/nordbank"


@pytest.fixture
def site(sqlite_database_url: str, tmp_path: Path) -> Iterator[Site]:
    with open_site(sqlite_database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
def http(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10, follow_redirects=False) as client:
        yield client


def views(site: Site) -> list[tuple[str, str | None, str, str, str | None, UsageStatus]]:
    """(rep, deal, content, action, channel, status) of every view a link recorded."""
    return [
        (e.rep_email, e.opportunity_crm_id, e.content_id, e.action.value, e.channel, e.status)
        for e in site.usage()
        if e.channel == "tracked_link"
    ]


def test_opening_records_one_view_per_window_and_redirects_to_the_catalog_url(
    site: Site, http: httpx.Client
) -> None:
    """The first open records ``viewed`` for the link's rep, deal and content; opening it
    again at once (a double tap, a reload, a mail scanner after the buyer) records nothing
    more; both go to the content."""
    path = site.tracked_path(CASE_STUDY)
    first = http.get(path)
    assert first.status_code == 302
    assert first.headers["location"] == CASE_STUDY_URL
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    expected = (ANA, DEAL, CASE_STUDY, "viewed", "tracked_link", UsageStatus.ACCEPTED)
    assert views(site) == [expected]
    again = http.get(path)
    assert (again.status_code, again.headers["location"]) == (302, CASE_STUDY_URL)
    assert views(site) == [expected]


def test_a_link_without_a_deal_records_an_unassigned_view(site: Site, http: httpx.Client) -> None:
    """A link sent outside a deal (say a nudge digest) still counts, waiting for a deal."""
    response = http.get(site.tracked_path(CASE_STUDY, opportunity_id=None))
    assert response.status_code == 302
    assert views(site) == [
        (ANA, None, CASE_STUDY, "viewed", "tracked_link", UsageStatus.UNASSIGNED)
    ]


def test_the_next_window_counts_a_new_view(sqlite_database_url: str, tmp_path: Path) -> None:
    with (
        open_site(sqlite_database_url, tmp_path, view_dedup_window="1s") as site,
        httpx.Client(base_url=site.url) as client,
    ):
        path = site.tracked_path(CASE_STUDY)
        assert client.get(path, follow_redirects=False).status_code == 302
        started = int(time.time())
        while int(time.time()) == started:  # into the next one-second window
            time.sleep(0.02)
        assert client.get(path, follow_redirects=False).status_code == 302
        assert len(views(site)) == 2


def test_the_view_id_is_the_same_on_every_node_within_a_window() -> None:
    now = utcnow().replace(minute=0, second=1)
    window = timedelta(minutes=10)
    assert view_event_id("t", now, window) == view_event_id("t", now + timedelta(minutes=8), window)
    assert view_event_id("t", now, window) != view_event_id("t", now + window, window)
    assert view_event_id("t", now, window) != view_event_id("u", now, window)


def test_two_nodes_opening_one_link_at_once_store_one_view(
    database_url: str, tmp_path: Path
) -> None:
    """Two app processes' worth of nodes (two apps, one database) race on one token:
    the usage service's idempotency keeps one row."""
    with open_site(database_url, tmp_path) as site, ExitStack() as stack:
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        other = create_app(
            site.config,
            Storage(engine),
            signer=LinkSigner(KEY, site.config.surfaces),
            connector_factory=lambda _s: FakeHubSpot(),
        )
        second = stack.enter_context(LiveServer(other))
        path = site.tracked_path(CASE_STUDY)
        statuses: list[int] = []
        barrier = threading.Barrier(6)

        def open_link(base: str) -> None:
            with httpx.Client(base_url=base, timeout=20) as client:
                barrier.wait()
                statuses.append(client.get(path, follow_redirects=False).status_code)

        threads = [
            threading.Thread(target=open_link, args=(base,)) for base in [site.url, second.url] * 3
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert statuses == [302] * 6
        assert len(views(site)) == 1


@pytest.mark.parametrize(
    "problem",
    ["forged", "other key", "expired", "a page token", "truncated", "retired content", "unknown"],
)
def test_a_bad_link_gets_a_403_page_never_a_redirect(
    site: Site, http: httpx.Client, problem: str
) -> None:
    def token(signer: LinkSigner, content_id: str = CASE_STUDY) -> str:
        return signer.tracked_token(
            rep=ANA, connection=SF, opportunity_id=DEAL, content_id=content_id
        )

    good = token(site.signer)
    tokens = {
        "forged": good[:-2] + ("xy" if not good.endswith("xy") else "zz"),
        "other key": token(LinkSigner(b"y" * 40)),
        "expired": token(LinkSigner(KEY, clock=lambda: utcnow() - timedelta(days=31))),
        "a page token": site.signer.page_token(rep=ANA, connection=SF, opportunity_id=DEAL),
        "truncated": good[: len(good) // 2],
        "retired content": token(site.signer, RETIRED),
        "unknown": token(site.signer, "no-such-content"),
    }
    response = http.get(tracked_path(tokens[problem]))
    assert response.status_code == 403
    assert "location" not in response.headers
    heading = {
        "expired": "This link has expired",
        "retired content": "This content is no longer available",
        "unknown": "This content is no longer available",
    }.get(problem, "This link is not valid")
    assert f"<h1>{heading}</h1>" in response.text
    assert "content.example.com" not in response.text
    assert views(site) == []


def test_the_target_comes_from_the_catalog_never_from_the_request(
    site: Site, http: httpx.Client
) -> None:
    """No parameter can steer the redirect: there is no open redirect to abuse."""
    path = site.tracked_path(CASE_STUDY)
    for query in ("?url=https://evil.example/", "?next=//evil.example", "?t=x&redirect=/evil"):
        response = http.get(path + query)
        assert (response.status_code, response.headers["location"]) == (302, CASE_STUDY_URL)


def test_head_redirects_without_counting_a_view(site: Site, http: httpx.Client) -> None:
    """Link checkers and unfurlers that probe with HEAD do not inflate views."""
    response = http.head(site.tracked_path(CASE_STUDY))
    assert (response.status_code, response.headers["location"]) == (302, CASE_STUDY_URL)
    assert views(site) == []
