"""Write-back fixtures: both sandbox CRMs over real HTTP, storage on SQLite and PostgreSQL.

The sandboxes are shared by the whole folder (every test writes activities with its own
UUID markers, so counts never mix); faults are cleared after each test. ``crm`` is
parametrized over both CRMs and hands a test one object with everything it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector, ReadMode
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConnectionConfig
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.retry import RetryPolicy as HubSpotRetry
from connectors.salesforce.config import SalesforceConnectionConfig
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.retry import RetryPolicy as SalesforceRetry
from sandbox.hubspot import HubSpotOptions, HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from stagelink.demo.sandboxes import hubspot_block as sandbox_hubspot_block
from stagelink.demo.sandboxes import salesforce_block as sandbox_salesforce_block
from stagelink.settings import AppConfig, parse_config
from stagelink.storage import make_engine
from stagelink.sync import Storage, SyncEngine, SyncOptions
from tests.writeback.helpers import CrmView, HubSpotView, SalesforceView

# Retries as in production, minus the waiting.
SF_FAST_RETRY = SalesforceRetry(attempts=4, max_total_seconds=10, initial_wait=0.01, max_wait=0.05)
HS_FAST_RETRY = HubSpotRetry(attempts=4, max_total_seconds=10, initial_wait=0.01, max_wait=0.05)


@pytest.fixture(scope="session")
def sf_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceSandbox]:
    """The emulated Salesforce org shared by the folder."""
    org = SalesforceSandbox(seed=1, size="small", data_dir=tmp_path_factory.mktemp("wb-sf"))
    org.start()
    yield org
    org.stop()


@pytest.fixture(scope="session")
def hs_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSpotSandbox]:
    """The emulated HubSpot portal shared by the folder (no pacing waits)."""
    options = HubSpotOptions(ten_second_limit=10_000)
    with HubSpotSandbox(
        seed=1, size="small", data_dir=tmp_path_factory.mktemp("wb-hs"), options=options
    ) as portal:
        yield portal


def salesforce_block(org: SalesforceSandbox, **overrides: Any) -> dict[str, Any]:
    """A Salesforce connection block for the sandbox (YAML/dict form)."""
    return sandbox_salesforce_block(org, "wb-salesforce", **overrides)


def hubspot_block(
    portal: HubSpotSandbox, *, oauth: bool = False, **overrides: Any
) -> dict[str, Any]:
    """A HubSpot connection block for the sandbox (YAML/dict form)."""
    return sandbox_hubspot_block(portal, "wb-hubspot", oauth=oauth, **overrides)


@dataclass
class Crm:
    """One sandbox CRM as a test sees it."""

    kind: str
    block: Callable[..., dict[str, Any]]
    view: CrmView

    def config(self, **overrides: Any) -> ConnectionConfig:
        """A validated connection config (``writeback={...}`` etc. override)."""
        data = self.block(**overrides)
        model = SalesforceConnectionConfig if self.kind == "salesforce" else HubSpotConnectionConfig
        return model.model_validate(data, context={})

    def connector(self, config: ConnectionConfig) -> Connector:
        """A connector with retries as in production, minus the waiting."""
        if isinstance(config, SalesforceConnectionConfig):
            return SalesforceConnector(config, retry=SF_FAST_RETRY)
        assert isinstance(config, HubSpotConnectionConfig)
        connector = HubSpotConnector(config, client=HubSpotClient(config, retry=HS_FAST_RETRY))
        connector.activity_writer.lookup_settle = self.view.lookup_settle
        return connector


@pytest.fixture(params=["salesforce", "hubspot"])
def crm(request: pytest.FixtureRequest) -> Iterator[Crm]:
    """Each sandbox CRM in turn, with faults cleared before and after."""
    if request.param == "salesforce":
        org: SalesforceSandbox = request.getfixturevalue("sf_org")
        found = Crm("salesforce", lambda **o: salesforce_block(org, **o), SalesforceView(org))
    else:
        portal: HubSpotSandbox = request.getfixturevalue("hs_portal")
        found = Crm("hubspot", lambda **o: hubspot_block(portal, **o), HubSpotView(portal))
    found.view.faults.clear()
    yield found
    found.view.faults.clear()


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    """A migrated, empty database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    yield Storage(engine)
    engine.dispose()


def sync_crm(storage: Storage, connector: Connector, name: str) -> None:
    """Store the CRM's owners and opportunities, as a sync would."""
    engine = SyncEngine(storage.sessions, connector, connection_name=name)
    outcome = engine.run(SyncOptions(mode=ReadMode.FULL, streams=["owners", "opportunities"]))
    assert outcome.ok, outcome.error


def app_config(database_url: str, *blocks: dict[str, Any]) -> AppConfig:
    """An application configuration with ``blocks`` as its connections."""
    return parse_config(yaml.safe_dump({"database_url": database_url, "connections": list(blocks)}))


def write_config(path: Path, database_url: str, *blocks: dict[str, Any]) -> Path:
    """The same configuration as a YAML file (for CLI subprocesses)."""
    path.write_text(
        yaml.safe_dump({"database_url": database_url, "connections": list(blocks)}),
        encoding="utf-8",
    )
    return path
