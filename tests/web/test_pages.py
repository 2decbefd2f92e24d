"""The rep's mobile page ``/m/...`` over real HTTP (uvicorn): access, content, weight, caching.

The deals are a small Salesforce org's worth of synced rows (``tests/mapping/crm_data``);
recommendations come from the real engine over the example content catalog. The browser
side (service worker, offline queue, present mode) is in ``tests/browser/test_mobile_page.py``.

``Site`` and ``open_site`` are shared with the tracked-link and browser tests.
"""

from __future__ import annotations

import gzip
import json
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stagelink.nudges.config import NudgeSettings
from stagelink.recommendations import Recommender
from stagelink.settings import AppConfig, parse_config
from stagelink.storage import UsageEvent, make_engine, utcnow
from stagelink.surfaces.links import LinkSigner, page_path, tracked_path
from stagelink.sync.runner import Storage
from stagelink.web import create_app
from tests.mapping.crm_data import seed
from tests.web.conftest import FakeHubSpot, LiveServer

REPO = Path(__file__).resolve().parents[2]
KEY = b"stagelink-test-link-signing-key-0123456789"
ANA = "ana@example.com"
SF = "salesforce-prod"
#: Nordbank AG, a bank at Proposal/Price Quote, €120,000.
DEAL = "006NORD"
#: In the extra catalog: expired long ago (tracked links to it must stop working).
RETIRED = "retired-deck"


EXAMPLE_CONTENT_HOST = "https://content.example.com"


def site_config(
    database_url: str, tmp_path: Path, *, content_host: str | None = None, **surfaces: str
) -> AppConfig:
    """The example catalog plus one retired item, a rule with a description (the "why"
    a rep reads), and the Salesforce stage map of the seeded org.

    ``content_host`` moves the example content to another host (a test's local server
    standing in for the fictional content.example.com)."""
    catalog = REPO / "examples" / "content"
    if content_host is not None:
        catalog = tmp_path / "content"
        catalog.mkdir()
        for source in (REPO / "examples" / "content").iterdir():
            text = source.read_text().replace(EXAMPLE_CONTENT_HOST, content_host)
            (catalog / source.name).write_text(text)
    extra = tmp_path / "extra-catalog.yaml"
    extra.write_text(
        textwrap.dedent(
            f"""\
            items:
              - id: {RETIRED}
                title: Last year's deck
                url: {content_host or EXAMPLE_CONTENT_HOST}/decks/retired
                type: deck
                stages: [proposal]
                expires_at: 2020-01-01
            """
        )
    )
    settings = {"view_dedup_window": "10m", **surfaces}
    surface_lines = "".join(f"\n          {key}: {value}" for key, value in settings.items())
    text = textwrap.dedent(
        f"""\
        database_url: {database_url}
        connections:
          - name: {SF}
            kind: salesforce
            allow_plaintext_secrets: true
            auth: {{method: password, username: api@example.com, password: demo}}
            extra_fields: {{opportunity: [Product_Line__c]}}
            stage_map:
              Prospecting: discover
              Qualification: qualify
              Proposal/Price Quote: proposal
              Closed Won: closed_won
              Closed Lost: closed_lost
        content:
          catalogs: [{catalog}, {extra}]
        rules:
          - id: banking-proof
            description: Banks want proof from other banks.
            when: {{industries: [Banking]}}
            select: {{content_ids: [banking-case-study]}}
            boost: 2
        surfaces:{surface_lines}
        """
    )
    return parse_config(text, source=tmp_path / "stagelink.yaml", environ={})


@dataclass
class Site:
    """A running app over the seeded org, and what tests need to drive and check it."""

    url: str
    config: AppConfig
    storage: Storage
    signer: LinkSigner

    def page_path(self, opportunity_id: str = DEAL, *, rep: str = ANA, **kwargs: Any) -> str:
        token = self.signer.page_token(
            rep=rep, connection=kwargs.pop("connection", SF), opportunity_id=opportunity_id
        )
        return page_path(kwargs.get("path_connection", SF), opportunity_id, token)

    def tracked_path(self, content_id: str, opportunity_id: str | None = DEAL) -> str:
        token = self.signer.tracked_token(
            rep=ANA, connection=SF, opportunity_id=opportunity_id, content_id=content_id
        )
        return tracked_path(token)

    def recommender(self) -> Recommender:
        return Recommender.open(self.config, self.storage.engine)

    def usage(self) -> list[UsageEvent]:
        """Every stored usage event, oldest first."""
        with self.storage.sessions() as session:
            return list(session.scalars(select(UsageEvent).order_by(UsageEvent.id)))


@contextmanager
def open_site(
    database_url: str,
    tmp_path: Path,
    *,
    content_host: str | None = None,
    nudges: NudgeSettings | None = None,
    **surfaces: str,
) -> Iterator[Site]:
    """Seed the org into ``database_url`` and serve the app over it (uvicorn); with
    ``nudges``, stage-change nudges are configured (the page offers push alerts)."""
    seed(database_url)
    config = site_config(database_url, tmp_path, content_host=content_host, **surfaces)
    if nudges is not None:
        config = config.model_copy(update={"nudges": nudges})
    engine = make_engine(database_url)
    signer = LinkSigner(KEY, config.surfaces)
    # No CRM is called: deals are synced already and no webhook arrives.
    app = create_app(
        config, Storage(engine), signer=signer, connector_factory=lambda _s: FakeHubSpot()
    )
    try:
        with LiveServer(app) as server:
            yield Site(server.url, config, Storage(engine), signer)
    finally:
        engine.dispose()


@pytest.fixture
def site(sqlite_database_url: str, tmp_path: Path) -> Iterator[Site]:
    with open_site(sqlite_database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
def http(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        yield client


def card_titles(html: str) -> list[str]:
    return re.findall(r'<h3 id="c\d+">([^<]*)</h3>', html)


def unescape(text: str) -> str:
    return text.replace("&amp;", "&").replace("&#39;", "'").replace("&#34;", '"')


# -- the page --------------------------------------------------------------------------------


def test_the_page_shows_the_deal_and_the_engines_recommendations_in_order(
    site: Site, http: httpx.Client
) -> None:
    """A rep with a valid link sees account, stage, amount and the recommender's content,
    best first, each with why it fits and a tracked Open link that works without JS."""
    response = http.get(site.page_path())
    assert response.status_code == 200
    html = response.text
    assert "<h1>Deal 006NORD</h1>" in html
    assert '<p class="account">Nordbank AG</p>' in html
    assert "<dd>Proposal/Price Quote</dd>" in html
    assert "<dd>€120,000</dd>" in html
    expected = site.recommender().recommend(SF, DEAL, mobile=True)
    assert [unescape(t) for t in card_titles(html)] == [r.content.title for r in expected]
    assert len(expected) == site.config.content.top_n
    # The rule's description is the rep's "why" for the case study it boosted.
    first = html.split('<li class="card"')[1]
    assert 'data-content="banking-case-study"' in first
    assert '<p class="why">Banks want proof from other banks.</p>' in first
    # Open is a real link (no JS needed) through a tracked link of this rep and deal.
    opens = re.findall(r'<a class="btn primary" href="(/c/[^"]+)"', html)
    assert len(opens) == len(expected)
    grant = site.signer.read_tracked_token(opens[0].removeprefix("/c/"))
    assert (grant.rep, grant.connection, grant.opportunity_id, grant.content_id) == (
        ANA,
        SF,
        DEAL,
        "banking-case-study",
    )
    # Share shares the absolute tracked link; Share/Present need JS, so they start hidden.
    assert f'data-share="{site.url}/c/' in first
    assert re.search(r'<button type="button" class="btn" data-action="share" hidden>', first)
    # The page's usage bearer reports for this rep and connection only.
    session = re.search(r'"session_token": "(sls_[^"]+)"', html)
    assert session is not None
    assert site.signer.read_session_token(session.group(1)).rep == ANA
    # The nudges' hook is there, empty, for the Web Push opt-in.
    assert (
        '<section id="notify" class="notify" aria-label="Notifications" hidden></section>' in html
    )


def test_page_headers_allow_the_offline_copy_but_no_shared_cache_or_referer(
    site: Site, http: httpx.Client
) -> None:
    """The service worker keeps the page; proxies must not (it holds the rep's session),
    and content hosts must not see the tokened URL as a Referer."""
    response = http.get(site.page_path())
    headers = response.headers
    assert headers["cache-control"] == "private, no-cache"
    assert headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors" not in headers["content-security-policy"]  # CRM iframes embed it
    assert headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "problem",
    ["missing", "forged", "other key", "expired", "other deal", "other connection"],
)
def test_a_bad_link_gets_a_403_page_that_shows_nothing_of_the_deal(
    site: Site, http: httpx.Client, problem: str
) -> None:
    """No valid token for exactly this deal, no data: not the account, not a session."""
    good = site.signer.page_token(rep=ANA, connection=SF, opportunity_id=DEAL)
    tokens = {
        "missing": "",
        "forged": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "other key": LinkSigner(b"x" * 40).page_token(rep=ANA, connection=SF, opportunity_id=DEAL),
        "expired": LinkSigner(KEY, clock=lambda: utcnow() - timedelta(days=30)).page_token(
            rep=ANA, connection=SF, opportunity_id=DEAL
        ),
        "other deal": site.signer.page_token(rep=ANA, connection=SF, opportunity_id="006SHOP"),
        "other connection": site.signer.page_token(
            rep=ANA, connection="elsewhere", opportunity_id=DEAL
        ),
    }
    response = http.get(page_path(SF, DEAL, tokens[problem]))
    assert response.status_code == 403
    html = response.text
    heading = "This link has expired" if problem == "expired" else "This link is not valid"
    assert f"<h1>{heading}</h1>" in html
    for secret in ("Nordbank", "006NORD", "sls_", "/c/", "120,000"):
        assert secret not in html
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("connection", "deal"),
    [(SF, "006NOPE"), (SF, "006GONE"), ("elsewhere", DEAL)],
    ids=["not synced", "deleted", "connection not configured"],
)
def test_a_deal_stagelink_does_not_have_gets_a_404_page(
    site: Site, http: httpx.Client, connection: str, deal: str
) -> None:
    token = site.signer.page_token(rep=ANA, connection=connection, opportunity_id=deal)
    response = http.get(page_path(connection, deal, token))
    assert response.status_code == 404
    assert "<h1>This deal is not available</h1>" in response.text
    assert "sls_" not in response.text


def test_without_a_signing_key_pages_say_so_with_503(
    sqlite_database_url: str, tmp_path: Path
) -> None:
    """A PostgreSQL deployment without surfaces.signing_key: pages explain, the rest runs."""
    config = site_config(sqlite_database_url, tmp_path).model_copy(
        update={"database_url": "postgresql://db.invalid/stagelink"}
    )
    engine = make_engine(sqlite_database_url)
    app = create_app(config, Storage(engine), connector_factory=lambda _s: FakeHubSpot())
    try:
        with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
            page = client.get("/m/salesforce-prod/006NORD?t=whatever")
            link = client.get("/c/whatever")
            health = client.get("/healthz")
    finally:
        engine.dispose()
    assert (page.status_code, link.status_code, health.status_code) == (503, 503, 200)
    assert "<h1>Rep pages are not set up</h1>" in page.text


# -- weight, assets, service worker ------------------------------------------------------------


def test_page_and_assets_weigh_well_under_50_kb(site: Site, http: httpx.Client) -> None:
    """What a phone downloads on first open (page, CSS, JS, service worker, manifest),
    measured on the wire with and without gzip. Target: < 50 KB without thumbnails."""
    path = site.page_path()
    html = http.get(path, headers={"Accept-Encoding": "identity"}).text
    urls = [path, *re.findall(r'(?:href|src)="(/m/static\.[^"]+)"', html)]
    urls += ["/m/sw.js", "/m/manifest.webmanifest", "/m/icon.svg"]
    assert len(urls) == 6
    raw = wire = 0
    for url in urls:
        plain = http.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, url
        raw += len(plain.content)
        with http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as packed:
            on_wire = b"".join(packed.iter_raw())  # httpx would decode: take the raw bytes
            encoded = packed.headers.get("content-encoding") == "gzip"
        assert (gzip.decompress(on_wire) if encoded else on_wire) == plain.content
        wire += len(on_wire)
    print(f"\nfirst open: {raw:,} bytes uncompressed, {wire:,} bytes with gzip ({len(urls)} files)")
    assert raw < 50_000
    assert wire < 20_000


def test_static_assets_are_versioned_and_immutable(site: Site, http: httpx.Client) -> None:
    html = http.get(site.page_path()).text
    css, js = re.findall(r'(?:href|src)="(/m/static\.[0-9a-f]+/mobile\.(?:css|js))"', html)
    response = http.get(js)
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "function flush" in response.text
    # A page from before a deploy asks for the old version: today's file, revalidated.
    old = http.get(re.sub(r"static\.[0-9a-f]+", "static.000000000000", css))
    assert (old.status_code, old.headers["cache-control"]) == (200, "no-cache")
    assert http.get(re.sub(r"mobile\.css$", "secret.py", css)).status_code == 404
    # The service worker itself is not a static asset under that path.
    assert http.get(re.sub(r"mobile\.css$", "mobile-sw.js", css)).status_code == 404


def test_the_service_worker_precaches_exactly_the_pages_assets(
    site: Site, http: httpx.Client
) -> None:
    """The worker is served at /m/sw.js (so its scope is /m/), never cached stale, and
    precaches the asset URLs the page links (a new release is a new worker)."""
    html = http.get(site.page_path()).text
    response = http.get("/m/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    match = re.search(r"const ASSETS = (\[.*\]);", response.text)
    assert match is not None
    linked = re.findall(r'(?:href|src)="(/m/static\.[^"]+)"', html)
    assert sorted(json.loads(match.group(1))) == sorted(
        [*linked, "/m/manifest.webmanifest", "/m/icon.svg"]
    )
    manifest = http.get("/m/manifest.webmanifest")
    assert manifest.headers["content-type"] == "application/manifest+json"
    assert (manifest.json()["scope"], manifest.json()["start_url"]) == ("/m/", "/m/")


def test_the_start_page_needs_no_token_and_holds_no_data(site: Site, http: httpx.Client) -> None:
    """``/m/`` (the installed app's start page) lists deals from the device only."""
    response = http.get("/m/")
    assert response.status_code == 200
    assert "<h1>Recent deals</h1>" in response.text
    assert "Nordbank" not in response.text
