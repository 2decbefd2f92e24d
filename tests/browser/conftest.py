"""Real headless Chromium for the rep-surface tests, at phone and tablet size.

Debian's ``chromium`` (installed by ``scripts/ensure-chromium.sh``, which ``make test`` runs)
is driven by Playwright's sync API through ``executable_path``: Playwright's own browser
builds are never downloaded. A missing browser or driver fails the test with the command to
run; browser tests are never skipped silently.

Fixtures:

- ``chromium_executable`` (session): path of the browser (``STAGELINK_CHROMIUM`` overrides).
- ``browser`` (session): one headless Chromium for the whole run.
- ``phone`` / ``tablet``: a ``Page`` in a fresh context (own cookies, storage, service
  workers) at 390×844 (touch, mobile) / 768×1024. A failing test leaves ``failure.png``.
- ``artifact_dir``: ``var/test-artifacts/<test name>/``, emptied at the start of the test.
- ``shot``: ``shot(page, "name")`` saves ``<artifact_dir>/name.png`` and returns its path.
- ``storage``: a ``Storage`` on a fresh migrated SQLite database (as in ``tests/web``).

Playwright's sync API runs its own event loop in the calling thread, so these fixtures are
used from plain (non-async) tests; the app under test runs in uvicorn's thread
(``tests.web.conftest.LiveServer``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stagelink.storage import make_engine
from stagelink.sync.runner import Storage

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "run `make browser` (or `bash scripts/ensure-chromium.sh` as root)"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"

# A current Android Chrome: the engine really is Chromium, so the page sees a coherent
# browser (an iPhone UA would promise Safari behaviour Chromium does not have).
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
TABLET_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": PHONE_USER_AGENT,
}
TABLET: dict[str, Any] = {
    "viewport": {"width": 768, "height": 1024},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": TABLET_USER_AGENT,
}
# Short enough that a broken page fails in seconds, well inside pytest's 300 s timeout.
ACTION_TIMEOUT_MS = 10_000

Shot = Callable[["Page", str], Path]
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember a failed test body so the page fixtures can screenshot the failing state."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium; fails (never skips) with the install command when it is missing."""
    path = os.environ.get("STAGELINK_CHROMIUM") or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"Chromium not found at {path}: {INSTALL_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """One headless Chromium for the session (contexts keep tests apart)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package `playwright` is missing: run `make install` "
            "(PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/pip install -e '.[dev]')",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=chromium_executable, headless=True)
    except Exception as error:
        playwright.stop()
        pytest.fail(f"Chromium at {chromium_executable} did not start: {error}", pytrace=False)
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


@pytest.fixture
def storage(sqlite_database_url: str) -> Iterator[Storage]:
    """A ``Storage`` on this test's fresh, migrated SQLite database."""
    engine = make_engine(sqlite_database_url)
    yield Storage(engine)
    engine.dispose()


def _safe_name(name: str) -> str:
    """A test node name as one path segment (parametrize ids may hold '/', ':', spaces)."""
    return re.sub(r"[^A-Za-z0-9_.\-\[\]=]+", "_", name).strip("._") or "test"


@pytest.fixture
def artifact_dir(request: pytest.FixtureRequest) -> Path:
    """``var/test-artifacts/<test name>/``, fresh for this run of the test."""
    path = ARTIFACTS / _safe_name(request.node.name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def shot(artifact_dir: Path) -> Shot:
    """``shot(page, name)``: a full-page PNG of the current state, saved as an artifact."""

    def take(page: Page, name: str) -> Path:
        target = artifact_dir / f"{_safe_name(name)}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    return take


def _open_page(
    browser: Browser, request: pytest.FixtureRequest, artifact_dir: Path, options: dict[str, Any]
) -> Iterator[Page]:
    context = browser.new_context(**options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(_FAILED, False) and not page.is_closed():
            try:
                page.screenshot(path=str(artifact_dir / "failure.png"), full_page=True)
            except Exception:  # the test's own failure is the one to report
                pass
        context.close()


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest, artifact_dir: Path) -> Iterator[Page]:
    """A page in a fresh phone context: 390×844 CSS px, DPR 3, touch, Android Chrome UA."""
    yield from _open_page(browser, request, artifact_dir, PHONE)


@pytest.fixture
def tablet(browser: Browser, request: pytest.FixtureRequest, artifact_dir: Path) -> Iterator[Page]:
    """A page in a fresh tablet context: 768×1024 CSS px, DPR 2, touch."""
    yield from _open_page(browser, request, artifact_dir, TABLET)
