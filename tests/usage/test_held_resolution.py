"""Held events resolved against the sandbox CRMs through the real connectors, on SQLite and
PostgreSQL: a deal created after the last sync is read by id and the event accepted; ids the
CRM does not know, or deals deleted in the CRM, are rejected with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import ConfigurationError
from stagelink.storage import Connection, CrmOpportunity, JobRun, UsageStatus
from stagelink.sync import SyncOptions, run_job
from stagelink.usage import HeldResolver, UsageService, resolve_held, usage_counts
from stagelink.usage.models import UsageBatchIn
from stagelink.web import create_app
from tests.sync.conftest import HS, SF, World, start_world
from tests.web.conftest import LiveServer, wait_for

from .helpers import auth, event, make_token, notifications, row_counts, stored_events

CONTENT = "discovery-questions"  # in the example catalog the sandbox config uses
#: Well-formed ids no sandbox record has.
UNKNOWN = {SF: "0065e00000ZZZZZAAA", HS: "99999999999"}


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    yield from start_world(tmp_path, database_url)


def synced(world: World, name: str) -> None:
    assert run_job(world.config, world.storage, name, SyncOptions()).ok


def create_deal(world: World, name: str) -> str:
    """A new opportunity in the CRM (stagelink has not synced it)."""
    if name == SF:
        return world.sf.mutate(edits=0, deletes=0, creates=1).created["Opportunity"][0]
    return world.hs.mutate(edits=0, deletes=0, creates=1).created["deals"][0]


def delete_deal(world: World, name: str) -> str:
    """Delete a stored opportunity in the CRM and sync, so stagelink stores it as deleted."""
    if name == SF:
        gone = world.sf.mutate(edits=0, deletes=1, creates=0).deleted["Opportunity"][0]
    else:
        gone = world.hs.mutate(edits=0, deletes=1, creates=0).archived["deals"][0]
    synced(world, name)
    return gone


def a_stored_deal(world: World, name: str, *, exclude: set[str]) -> str:
    with world.storage.sessions() as session:
        return session.scalars(
            select(CrmOpportunity.crm_id)
            .join(Connection, Connection.id == CrmOpportunity.connection_id)
            .where(
                Connection.name == name,
                CrmOpportunity.deleted_at.is_(None),
                CrmOpportunity.crm_id.not_in(exclude),
            )
            .limit(1)
        ).one()


@pytest.mark.parametrize("name", [SF, HS])
def test_usage_on_deals_not_synced_is_resolved_from_the_crm(world: World, name: str) -> None:
    synced(world, name)
    deleted = delete_deal(world, name)
    fresh = create_deal(world, name)
    live = a_stored_deal(world, name, exclude={deleted})
    _, token = make_token(world.storage, "mobile-app")
    events = [
        event(name, live, content_id=CONTENT),
        event(name, fresh, content_id=CONTENT),
        event(name, deleted, content_id=CONTENT),
        event(name, UNKNOWN[name], content_id=CONTENT),
        event(name, None, content_id=CONTENT),
    ]
    app = create_app(world.config, world.storage)
    with (
        notifications() as notified,
        LiveServer(app) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        response = client.post("/api/v1/usage", json={"events": events}, headers=auth(token))
        assert response.status_code == 200, response.text
        assert [r["status"] for r in response.json()["results"]] == [
            "accepted",
            "held",  # created after the sync
            "held",  # stored as deleted: read again, it may have been restored
            "held",
            "unassigned",
        ]
        assert notified.calls[:1] == [name]  # told before the answer was sent
        wait_for(lambda: usage_counts_of(world)["held"] == 0)
        wait_for(lambda: notified.count() == 2)
        assert notified.calls == [name, name]
        stored = {k: (v.status, v.reason) for k, v in stored_events(world.storage).items()}
        ids = [e["client_event_id"] for e in events]
        assert stored[ids[1]] == (UsageStatus.ACCEPTED, None)
        assert stored[ids[2]] == (
            UsageStatus.REJECTED,
            f"opportunity {deleted!r} was deleted in the CRM",
        )
        assert stored[ids[3]] == (
            UsageStatus.REJECTED,
            f"the CRM does not know opportunity {UNKNOWN[name]!r}",
        )
        # The unassigned event gets a deal that is not synced either: held, then accepted.
        later = create_deal(world, name)
        assigned = client.post(
            f"/api/v1/usage/{ids[4]}/assign", json={"opportunity_id": later}, headers=auth(token)
        )
        assert assigned.json()["status"] == "held"
        wait_for(lambda: usage_counts_of(world)["held"] == 0)
        # A retry of the whole batch creates nothing and answers the settled statuses.
        before = row_counts(world.storage)
        again = client.post("/api/v1/usage", json={"events": events}, headers=auth(token))
        assert [(r["status"], r["duplicate"]) for r in again.json()["results"]] == [
            ("accepted", True),
            ("accepted", True),
            ("rejected", True),
            ("rejected", True),
            ("accepted", True),
        ]
        assert row_counts(world.storage) == before == (5, 3)
    events_by_id = stored_events(world.storage)
    assert events_by_id[ids[4]].opportunity_crm_id == later
    assert {str(e.client_event_id) for e in events_by_id.values() if e.outbox} == {
        ids[0],
        ids[1],
        ids[4],
    }
    # The reads were recorded as small sync jobs triggered by usage.
    with world.storage.sessions() as session:
        triggers = [job.params.get("trigger") for job in session.scalars(select(JobRun))]
    assert triggers.count("usage") >= 2


def usage_counts_of(world: World) -> dict[str, int]:
    with world.storage.sessions() as session:
        return usage_counts(session)


def _broken(_settings: ConnectionConfig) -> Connector:
    raise ConfigurationError("the CRM is unreachable in this test")


def test_the_periodic_pass_resolves_what_the_background_worker_could_not(world: World) -> None:
    """The scheduler's safety net: held events survive a failing CRM, are resolved once it
    answers, and are rejected (not kept forever) past ``max_hold``."""
    synced(world, HS)
    resolver = HeldResolver(world.config, world.storage)
    resolver.close()  # as after a shutdown: nothing resolves in the background
    service = UsageService(world.config, world.storage, resolver=resolver)
    info, _ = make_token(world.storage, "mobile-app")
    fresh, stale = create_deal(world, HS), create_deal(world, HS)

    def ingest(*items: dict[str, Any]) -> list[str]:
        batch = UsageBatchIn.model_validate({"events": list(items)})
        return [r.status.value for r in service.ingest(info, batch.events)]

    assert ingest(event(HS, fresh, content_id=CONTENT), event(HS, stale, content_id=CONTENT)) == [
        "held",
        "held",
    ]
    down = resolve_held(world.config, world.storage, HS, connector_factory=_broken, max_hold=None)
    assert down == {"accepted": 0, "rejected": 0, "expired": 0, "held": 2, "fetched": 0}
    assert usage_counts_of(world)["held"] == 2  # a failing CRM rejects nothing

    with notifications() as notified:
        up = resolve_held(world.config, world.storage, HS)
    assert up == {"accepted": 2, "rejected": 0, "expired": 0, "held": 0, "fetched": 2}
    assert notified.calls == [HS]
    assert usage_counts_of(world) == {"accepted": 2, "held": 0, "unassigned": 0, "rejected": 0}

    lost = create_deal(world, HS)
    ingest(event(HS, lost, content_id=CONTENT))
    expired = resolve_held(
        world.config, world.storage, HS, connector_factory=_broken, max_hold=timedelta(0)
    )
    assert expired["expired"] == 1
    reasons = {e.reason for e in stored_events(world.storage).values()}
    assert f"opportunity {lost!r} could not be read from the CRM within 0 hours" in reasons
    assert row_counts(world.storage) == (3, 2)
