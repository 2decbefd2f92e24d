"""Stage-change alerts on the phone page: the opt-in shows where the server can push, and a
push message delivered to the page's service worker becomes a notification that opens the
deal's page.

The push message is handed to the service worker through Chromium's DevTools protocol
(``ServiceWorker.deliverPushMessage``): headless Chromium has no route to a real push
service (FCM) here. Encryption and delivery to a push service are tested against a real
local push endpoint in tests/nudges/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from connectors.core.secrets import SecretValue
from stagelink.nudges.config import NudgeSettings, VapidSettings
from tests.browser.conftest import Shot
from tests.nudges.conftest import VAPID_PEM
from tests.web.test_pages import Site, open_site

PUSH_ONLY = NudgeSettings(
    enabled=True,
    channels=["push"],
    vapid=VapidSettings(
        private_key=SecretValue(VAPID_PEM, "test"), subject="mailto:ops@example.com"
    ),
)


@pytest.fixture
def site(sqlite_database_url: str, tmp_path: Path) -> Iterator[Site]:
    with open_site(sqlite_database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
def push_site(sqlite_database_url: str, tmp_path: Path) -> Iterator[Site]:
    with open_site(sqlite_database_url, tmp_path, nudges=PUSH_ONLY) as opened:
        yield opened


def wait_for_value(page: Page, script: str, timeout: float = 10.0) -> Any:
    """The first non-empty value ``script`` (which may return a promise) evaluates to."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def open_page(page: Page, site: Site) -> None:
    response = page.goto(site.url + site.page_path())
    assert response is not None
    assert response.status == 200
    page.wait_for_function("() => window.stagelink !== undefined")


def test_the_page_offers_alerts_only_where_the_server_can_push(
    phone: Page, site: Site, shot: Shot
) -> None:
    """Without a VAPID key there is nothing to subscribe to: no button."""
    open_page(phone, site)
    phone.wait_for_function("() => window.stagelink.ready")
    expect(phone.locator("#notify")).to_be_hidden()
    shot(phone, "no-push")


def test_a_push_message_becomes_a_notification_that_opens_the_deal(
    phone: Page, push_site: Site, shot: Shot
) -> None:
    phone.context.grant_permissions(["notifications"], origin=push_site.url)
    open_page(phone, push_site)
    button = phone.get_by_role("button", name="Get notified of stage changes")
    expect(button).to_be_visible()
    shot(phone, "opt-in")

    # The worker registered by the page, as DevTools sees it.
    cdp = phone.context.new_cdp_session(phone)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    phone.wait_for_function("() => navigator.serviceWorker.ready.then(() => true)")
    phone.wait_for_timeout(200)  # the registration event follows enable
    scope = push_site.url + "/m/"
    (registration,) = [r for r in registrations if r["scopeURL"] == scope and not r["isDeleted"]]
    deal_page = push_site.url + push_site.page_path()
    payload = {
        "title": "Nordbank AG is now in proposal",
        "body": "3 items for the proposal stage",
        "url": deal_page,
        "tag": "deal-006NORD",
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": push_site.url + "/",
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown = wait_for_value(
        phone,
        """() => navigator.serviceWorker.ready
              .then((r) => r.getNotifications())
              .then((all) => all.map((n) => [n.title, n.body, n.data.url]))""",
    )
    assert shown == [[payload["title"], payload["body"], deal_page]]
