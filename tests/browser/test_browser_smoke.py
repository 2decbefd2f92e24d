"""The browser harness itself works: Chromium at phone size opens a page of the live app."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page

from stagelink.sync.runner import Storage
from stagelink.web import create_app
from tests.browser.conftest import Shot
from tests.web.conftest import LiveServer, app_config


def test_phone_opens_the_live_app(phone: Page, shot: Shot, storage: Storage) -> None:
    """A real uvicorn server answers real Chromium at 390×844, and screenshots are saved."""
    with LiveServer(create_app(app_config(), storage)) as server:
        response = phone.goto(f"{server.url}/healthz")
        assert response is not None
        assert response.status == 200
        assert json.loads(phone.inner_text("body")) == {"status": "ok"}
        screen = phone.evaluate("[screen.width, screen.height, window.devicePixelRatio]")
        assert screen == [390, 844, 3]
        assert phone.evaluate("navigator.maxTouchPoints") > 0
        # Mobile emulation is real: a page without a viewport meta tag is laid out at the
        # 980 px desktop width, as on a phone; with one it gets the 390 px device width.
        assert phone.evaluate("window.innerWidth") == 980
        picture: Path = shot(phone, "healthz")
    phone.set_content('<meta name="viewport" content="width=device-width, initial-scale=1">')
    assert phone.evaluate("window.innerWidth") == 390
    assert picture.stat().st_size > 0
    assert picture.parent.name == "test_phone_opens_the_live_app"
