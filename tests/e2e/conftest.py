"""The whole loop as a user runs it: sandbox CRMs, a synced database, a content catalog, an
API token, and real ``stagelink serve`` processes receiving usage over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stagelink.storage import TokenKind
from stagelink.sync import SyncOptions, run_job
from stagelink.usage.tokens import create_token
from tests.scheduler.serving import ServeProcess, start_serve, write_serve_config
from tests.sync.conftest import HS, SF, World, start_world
from tests.writeback.helpers import CrmView, Deal, HubSpotView, SalesforceView, deals_and_reps

CONTENT = ("roi-calculator", "banking-case-study", "pricing-2026")


@dataclass
class Loop:
    """Sandboxes, a synced database and an integration token for the usage API."""

    world: World
    token: str
    tmp_path: Path
    database_url: str

    def view(self, connection: str) -> CrmView:
        return SalesforceView(self.world.sf) if connection == SF else HubSpotView(self.world.hs)

    def deals(self, connection: str, count: int) -> tuple[list[Deal], list[tuple[str, str]]]:
        """``count`` synced deals of ``connection`` and its reps as ``(email, user id)``."""
        return deals_and_reps(self.world.storage, connection, count)

    def serve(self, node_id: str = "node-a", **settings: Any) -> ServeProcess:
        """A ``stagelink serve`` on this loop (intervals long: only usage triggers writes)."""
        catalog = self.tmp_path / "catalog.yaml"
        config = write_serve_config(
            self.world,
            self.tmp_path / f"serve-{node_id}.yaml",
            database_url=self.database_url,
            content={"catalogs": [str(catalog)]},
            rules=[],
            **settings,
        )
        return start_serve(config, node_id=node_id, log_dir=self.tmp_path)


def event(
    connection: str, opportunity_id: str, rep: str, *, index: int = 0, **fields: Any
) -> dict[str, Any]:
    """One usage event as a page or app sends it."""
    data: dict[str, Any] = {
        "client_event_id": str(uuid.uuid4()),
        "rep": rep,
        "connection": connection,
        "opportunity_id": opportunity_id,
        "content_id": CONTENT[index % len(CONTENT)],
        "action": ("viewed", "shared", "presented", "downloaded")[index % 4],
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "channel": "mobile_page",
    }
    data.update(fields)
    return data


def post(client: httpx.Client, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/usage", json={"events": events}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def start_loop(tmp_path: Path, database_url: str) -> Iterator[Loop]:
    """Sandboxes, the catalog, both CRMs synced, and a token."""
    catalog = {
        "items": [
            {
                "id": content_id,
                "title": content_id.replace("-", " ").title(),
                "url": f"https://content.example.com/{content_id}",
                "type": "deck",
                "stages": ["discover"],
            }
            for content_id in CONTENT
        ]
    }
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog), encoding="utf-8")
    for world in start_world(tmp_path, database_url):
        for connection in (SF, HS):
            outcome = run_job(world.config, world.storage, connection, SyncOptions())
            assert outcome.ok, outcome.error
        with world.storage.sessions.begin() as session:
            _, token = create_token(session, "e2e", kind=TokenKind.INTEGRATION)
        yield Loop(world, token, tmp_path, database_url)


@pytest.fixture
def loop(tmp_path: Path, sqlite_database_url: str) -> Iterator[Loop]:
    yield from start_loop(tmp_path, sqlite_database_url)


@pytest.fixture
def pg_loop(tmp_path: Path, postgresql_database_url: str) -> Iterator[Loop]:
    yield from start_loop(tmp_path, postgresql_database_url)
