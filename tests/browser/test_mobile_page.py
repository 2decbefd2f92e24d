"""The rep's mobile page in real headless Chromium at phone (390×844) and tablet size.

The app runs under uvicorn over a seeded org (``tests/web/test_pages.py``: ``open_site``);
taps go through the page's own JS, service worker and queue to ``/api/v1/usage``, and the
tests assert the rows stored. The example catalog's content lives on the fictional
``content.example.com``; here a local HTTP server (``ContentHost``) stands in for it, so
opening, presenting and tracked-link redirects really load it. Nothing is mocked.
Screenshots of every state are saved under ``var/test-artifacts/<test>/``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from stagelink.storage import UsageAction, UsageEvent, UsageStatus
from tests.browser.conftest import ACTION_TIMEOUT_MS, PHONE, Shot
from tests.web.conftest import wait_for
from tests.web.test_pages import ANA, DEAL, SF, Site, open_site

# Assertions wait as long as actions may (the machine may be busy with other tests).
expect.set_options(timeout=ACTION_TIMEOUT_MS)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a tab closed mid-answer (BrokenPipe) is not the test's concern


class ContentHost:
    """A local HTTP server standing in for the catalog's (fictional) content host: every
    path answers a small page, and the paths asked for are recorded."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.paths.append(self.path)
                body = b"<!doctype html><title>Content</title><h1>The content itself</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def pages(self) -> list[str]:
        """The paths asked for, without the browser's own favicon probes."""
        return [path for path in self.paths if path != "/favicon.ico"]

    def __enter__(self) -> ContentHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def content() -> Iterator[ContentHost]:
    with ContentHost() as host:
        yield host


@pytest.fixture
def site(sqlite_database_url: str, tmp_path: Path, content: ContentHost) -> Iterator[Site]:
    with open_site(sqlite_database_url, tmp_path, content_host=content.url) as opened:
        yield opened


def page_events(site: Site, *channels: str) -> list[UsageEvent]:
    """Events the surfaces stored (the seeded history has no channel)."""
    wanted = channels or ("mobile_page", "tracked_link")
    return [event for event in site.usage() if event.channel in wanted]


def open_deal(page: Page, site: Site) -> None:
    response = page.goto(site.url + site.page_path())
    assert response is not None
    assert response.status == 200
    page.wait_for_function("() => window.stagelink !== undefined")


def tap_open(page: Page, index: int) -> str:
    """Tap Open on card ``index``; the content opens in a new tab, which is closed once
    loaded; returns the URL it loaded."""
    with page.context.expect_page() as opened:
        page.locator("li.card").nth(index).get_by_role("link", name="Open").tap()
    tab = opened.value
    tab.wait_for_load_state()
    url = tab.url
    tab.close()
    return url


def test_the_phone_page_shows_the_recommendations_and_a_tap_is_recorded(
    phone: Page, site: Site, content: ContentHost, shot: Shot
) -> None:
    """At 390×844: the recommender's content in order, large touch targets, and tapping
    Open stores a ``viewed`` event for this rep, deal and content."""
    open_deal(phone, site)
    expected = [r.content for r in site.recommender().recommend(SF, DEAL, mobile=True)]
    assert phone.locator("li.card h3").all_inner_texts() == [item.title for item in expected]
    assert phone.locator("header .account").inner_text() == "Nordbank AG"
    assert "€120,000" in phone.locator("header dl").inner_text()
    # No horizontal scrolling on a phone, and every button is a comfortable target.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    for box in (b.bounding_box() for b in phone.locator(".card .btn").all()):
        assert box is not None
        assert box["height"] >= 44
        assert box["width"] >= 44
    expect(phone.locator("#sync")).to_have_text("All synced")
    shot(phone, "1-page")

    assert tap_open(phone, 1) == expected[1].url
    wait_for(lambda: len(page_events(site)) == 1)
    # Recorded by the page, once: the tab went straight to the content, not through
    # the tracked link (which would have counted a second view).
    assert content.pages() == [expected[1].url.removeprefix(content.url)]
    (event,) = page_events(site)
    assert (event.action, event.channel, event.rep_email) == (
        UsageAction.VIEWED,
        "mobile_page",
        ANA,
    )
    assert (event.opportunity_crm_id, event.content_id) == (DEAL, expected[1].id)
    assert event.status is UsageStatus.ACCEPTED  # the deal is synced: on to writeback
    phone.wait_for_function("() => window.stagelink.pending() === 0")
    assert phone.locator("#sync").inner_text() == "All synced"
    shot(phone, "2-after-open")

    # The installed app's start page lists the deals opened on this device.
    phone.goto(f"{site.url}/m/")
    recent = phone.get_by_role("link", name="Deal 006NORD · Nordbank AG")
    recent.tap()
    expect(phone.locator("h1")).to_have_text("Deal 006NORD")


OFFLINE_2_PENDING = "2 pending · offline, sent when you're back online"


def test_offline_taps_are_queued_shown_as_pending_and_delivered_exactly_once(
    phone: Page, site: Site, shot: Shot
) -> None:
    """The page opens offline from the service worker's copy; two taps made offline show
    "2 pending" (in every tab), and reach the database once each after reconnect, even
    with two tabs flushing and when a lost answer makes the page send them again."""
    open_deal(phone, site)
    assert phone.evaluate("window.stagelink.ready") is True  # the worker kept this page
    context = phone.context
    context.set_offline(True)
    response = phone.reload()
    assert response is not None
    assert response.from_service_worker
    assert phone.locator("h1").inner_text() == "Deal 006NORD"
    assert phone.locator("#sync").inner_text() == "Offline · nothing pending"

    tap_open(phone, 0)
    tap_open(phone, 2)
    expect(phone.locator("#sync")).to_have_text(OFFLINE_2_PENDING)
    shot(phone, "1-offline-2-pending")
    # The queue is durable and shared: another tab, opened offline, shows the same two.
    # (Not a reload: Chromium sends the page's pagehide keepalive flush past Playwright's
    # offline emulation, which a phone without network would not.)
    other = context.new_page()
    other.goto(site.url + site.page_path())
    expect(other.locator("#sync")).to_have_text(OFFLINE_2_PENDING)
    queued = phone.evaluate("localStorage.getItem('stagelink.usage.v1')")
    ids = sorted(item["id"] for item in json.loads(queued))
    assert page_events(site) == []

    context.set_offline(False)  # "online": both tabs flush, one at a time (Web Locks)
    for tab in (phone, other):
        expect(tab.locator("#sync")).to_have_text("All synced")
    shot(phone, "2-back-online-synced")
    stored = page_events(site)
    assert sorted(str(e.client_event_id) for e in stored) == ids
    assert {e.content_id for e in stored} == {
        phone.locator("li.card").nth(i).get_attribute("data-content") for i in (0, 2)
    }

    # The answer to that flush is lost (say the phone dropped off the network as it
    # arrived): the page still has the events and sends them again.
    phone.evaluate("q => localStorage.setItem('stagelink.usage.v1', q)", queued)
    assert phone.evaluate("window.stagelink.pending()") == 2
    phone.evaluate("window.stagelink.flush()")
    phone.wait_for_function("() => window.stagelink.pending() === 0")  # answered: duplicates
    assert sorted(str(e.client_event_id) for e in page_events(site)) == ids


def test_present_mode_on_a_tablet_records_presented_with_its_duration(
    tablet: Page, site: Site, shot: Shot
) -> None:
    """Present opens the content full-screen with a running timer; Exit records
    ``presented`` with the seconds it was shown and gives focus back."""
    open_deal(tablet, site)
    card = tablet.locator("li.card").nth(0)
    content_id = card.get_attribute("data-content")
    card.get_by_role("button", name="Present").tap()
    overlay = tablet.locator("#present")
    assert overlay.is_visible()
    frame = tablet.frame_locator("#present-frame")
    assert frame.locator("h1").inner_text() == "The content itself"
    expect(tablet.locator("#present-timer")).to_have_text(re.compile(r"0:0[2-9]"))
    shot(tablet, "1-presenting")
    assert page_events(site) == []  # recorded when the presentation ends
    tablet.get_by_role("button", name="Exit").tap()
    assert not overlay.is_visible()
    tablet.wait_for_function("() => document.activeElement.dataset.action === 'present'")
    wait_for(lambda: len(page_events(site)) == 1)
    (event,) = page_events(site)
    assert (event.action, event.content_id, event.opportunity_crm_id) == (
        UsageAction.PRESENTED,
        content_id,
        DEAL,
    )
    assert event.duration_seconds is not None
    assert 2 <= event.duration_seconds <= 30
    shot(tablet, "2-after-present")


def test_share_copies_the_tracked_link_which_records_a_view_and_redirects(
    browser: Browser, site: Site, content: ContentHost, shot: Shot
) -> None:
    """Without a native share sheet (headless Chromium on Linux has none) Share copies
    the absolute tracked link and says so; opening that link records ``viewed`` (channel
    tracked_link) and lands on the content."""
    context = browser.new_context(**PHONE)
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
        page = context.new_page()
        open_deal(page, site)
        assert page.evaluate("'share' in navigator") is False
        card = page.locator("li.card").nth(0)
        card.get_by_role("button", name="Share").tap()
        toast = page.locator("#toast")
        expect(toast).to_have_text("Link copied. Paste it into a message or an e-mail.")
        expect(toast).to_have_class("toast show")
        shot(page, "1-link-copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == card.get_attribute("data-share")
        assert copied.startswith(f"{site.url}/c/")
        wait_for(lambda: len(page_events(site)) == 1)
        assert page_events(site)[0].action is UsageAction.SHARED

        reader = context.new_page()  # the buyer opening the shared link
        response = reader.goto(copied)
        assert response is not None
        assert reader.url == f"{content.url}/case-studies/nordbank"
        assert reader.locator("h1").inner_text() == "The content itself"
        views = page_events(site, "tracked_link")
        assert [(e.action, e.content_id, e.rep_email) for e in views] == [
            (UsageAction.VIEWED, card.get_attribute("data-content"), ANA)
        ]
    finally:
        context.close()


_CONTRAST = """
() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const worst = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || el.closest(".vh,[hidden]")) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    worst.push([Math.round(ratio * 100) / 100, el.tagName + "." + el.className]);
  }
  return worst.sort((x, y) => x[0] - y[0]).slice(0, 3);
}
"""


def test_the_page_is_accessible_and_reads_and_opens_without_javascript(
    phone: Page, browser: Browser, site: Site, content: ContentHost, shot: Shot
) -> None:
    """Landmarks, names that say which content a button acts on, text contrast of at
    least 4.5:1, a visible keyboard focus; and with JS off the cards still read and
    Open still works (through the tracked link, which records the view)."""
    open_deal(phone, site)
    for landmark in ("banner", "main", "contentinfo"):
        assert phone.get_by_role(landmark).count() == 1
    titles = phone.locator("li.card h3").all_inner_texts()
    for title in titles:
        assert phone.get_by_role("link", name=f"Open {title}").count() == 1
        for name in ("Share", "Present"):
            assert phone.get_by_role("button", name=f"{name} {title}").count() == 1
    lowest = phone.evaluate(_CONTRAST)
    assert lowest[0][0] >= 4.5, lowest
    phone.keyboard.press("Tab")  # the skip link first
    assert phone.evaluate("document.activeElement.className") == "skip"
    phone.keyboard.press("Enter")
    phone.keyboard.press("Tab")
    focused = phone.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.dataset.action, s.outlineStyle, s.outlineWidth]; })()"
    )
    assert focused == ["open", "solid", "3px"]
    shot(phone, "1-keyboard-focus")

    context = browser.new_context(**PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(site.url + site.page_path())
        assert page.locator("li.card h3").all_inner_texts() == titles
        assert page.get_by_role("button", name="Share").count() == 0  # hidden: needs JS
        shot(page, "2-without-javascript")
        with context.expect_page() as opened:
            page.locator("li.card").nth(0).get_by_role("link", name="Open").tap()
        opened_content = opened.value
        opened_content.wait_for_load_state()
        assert opened_content.url.startswith(f"{content.url}/")
        deadline = time.monotonic() + 10
        while not page_events(site, "tracked_link") and time.monotonic() < deadline:
            time.sleep(0.05)
        (view,) = page_events(site, "tracked_link")
        assert (view.action, view.opportunity_crm_id) == (UsageAction.VIEWED, DEAL)
    finally:
        context.close()
