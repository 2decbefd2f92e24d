"""Fixtures for the HubSpot connector tests: sandbox accounts over real HTTP and configs.

Tests drive the real ``hubspot-api-client`` against :class:`sandbox.hubspot.HubSpotSandbox`;
nothing of the library is mocked. Tests that change an account's state (faults, limits,
token expiry) get a fresh account of their own; the seeded database is cached per session,
so a fresh account costs a file copy.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.hubspot.retry import RetryPolicy
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from stagelink.demo.sandboxes import hubspot_block

# Retries as the policy does them, with waits short enough for tests.
FAST_RETRY = RetryPolicy(attempts=4, max_total_seconds=10.0, initial_wait=0.01, max_wait=0.05)

FreshSandbox = Callable[..., HubSpotSandbox]
ConfigFactory = Callable[..., HubSpotConnectionConfig]


def hubspot_config(
    hs: HubSpotSandbox, *, oauth: bool = False, **overrides: Any
) -> HubSpotConnectionConfig:
    """A connection to ``hs`` with its demo credentials (plaintext allowed for the sandbox)."""
    data = hubspot_block(hs, "hubspot-test", oauth=oauth, **overrides)
    return HubSpotConnectionConfig.model_validate(data, context={})


@pytest.fixture(scope="session")
def hubspot_seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seed cache for the session: every account after the first is a file copy."""
    return tmp_path_factory.mktemp("hubspot-connector-seed")


@pytest.fixture(scope="session")
def shared_hubspot(hubspot_seed_dir: Path) -> Iterator[HubSpotSandbox]:
    """A small account shared by read-only tests (ten-second limit raised: no pacing waits)."""
    options = HubSpotOptions(ten_second_limit=10_000)
    with HubSpotSandbox(seed=1, size="small", data_dir=hubspot_seed_dir, options=options) as hs:
        yield hs


@pytest.fixture
def fresh_hubspot(hubspot_seed_dir: Path) -> Iterator[FreshSandbox]:
    """Factory for a private, started account with HubSpot's default limits (stopped after)."""
    started: list[HubSpotSandbox] = []

    def make(*, options: HubSpotOptions | None = None) -> HubSpotSandbox:
        hs = HubSpotSandbox(seed=1, size="small", data_dir=hubspot_seed_dir, options=options)
        started.append(hs.start())
        return hs

    yield make
    for hs in started:
        hs.stop()


@pytest.fixture
def shared_client(shared_hubspot: HubSpotSandbox) -> Iterator[HubSpotClient]:
    """A private-app client of the shared account."""
    with HubSpotClient(hubspot_config(shared_hubspot), retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
