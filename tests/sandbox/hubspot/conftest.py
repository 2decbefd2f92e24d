"""Fixtures for the HubSpot sandbox tests: a shared small account and fresh ones on demand.

Every test talks to the emulator through the real ``hubspot-api-client`` (or plain httpx
where the library cannot express a request) over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _hubspot_support import FreshSandbox
from hubspot import HubSpot

from sandbox.hubspot import HubSpotOptions, HubSpotSandbox


@pytest.fixture(scope="session")
def seed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seed cache for the whole session, so every small instance after the first is a copy."""
    return tmp_path_factory.mktemp("hubspot-seed-cache")


@pytest.fixture(scope="session")
def sandbox(seed_cache: Path) -> Iterator[HubSpotSandbox]:
    """The shared, read-only small account (limits raised so tests never trip them by chance)."""
    options = HubSpotOptions(ten_second_limit=100_000, search_per_second=10_000)
    with HubSpotSandbox(seed=1, size="small", data_dir=seed_cache, options=options) as hs:
        yield hs


@pytest.fixture(scope="session")
def client(sandbox: HubSpotSandbox) -> HubSpot:
    """The library, pointed at the shared account with the private-app token."""
    return HubSpot(access_token=sandbox.credentials.private_app_token, host=sandbox.url)


@pytest.fixture
def fresh(seed_cache: Path) -> Iterator[FreshSandbox]:
    """Factory for a private, started account (stopped after the test)."""
    started: list[HubSpotSandbox] = []

    def make(
        *, size: str | int = "small", seed: int = 1, options: HubSpotOptions | None = None
    ) -> HubSpotSandbox:
        hs = HubSpotSandbox(seed=seed, size=size, data_dir=seed_cache, options=options).start()
        started.append(hs)
        return hs

    yield make
    for hs in started:
        hs.stop()
