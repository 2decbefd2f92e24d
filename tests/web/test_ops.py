"""Ops endpoints over real HTTP: /readyz against the sandbox CRMs, /metrics from storage and
from what this process did (CRM requests, 429s, jobs)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sandbox.common.faults import FaultKind
from scheduler.jobs import Runtime, bind, run_sync_job, unbind
from stagelink.settings import AppConfig
from stagelink.storage import (
    OutboxState,
    UsageAction,
    UsageEvent,
    UsageStatus,
    WritebackOutbox,
    get_or_create_connection,
    make_engine,
)
from stagelink.sync import Storage
from stagelink.web import create_app
from tests.sync.conftest import HS, SF, World, start_world
from tests.web.conftest import serve


@pytest.fixture
def world(tmp_path: Path, sqlite_database_url: str) -> Iterator[World]:
    yield from start_world(tmp_path, sqlite_database_url)


def test_readyz_probes_each_crm_at_most_once_per_ttl_and_names_the_one_down(
    world: World,
) -> None:
    app = create_app(world.config, world.storage, readiness_ttl=1.0)
    with serve(app) as client:
        first = client.get("/readyz")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["status"] == "ready"
        assert body["database"]["ok"] is True
        assert {name: c["ok"] for name, c in body["connections"].items()} == {SF: True, HS: True}

        # Polled again within the TTL: answered from cache, no CRM request.
        served = world.sf.calls.snapshot()["total"], world.hs.calls.snapshot()["total"]
        for _ in range(5):
            assert client.get("/readyz").status_code == 200
        assert (world.sf.calls.snapshot()["total"], world.hs.calls.snapshot()["total"]) == served

        world.hs.stop()
        assert client.get("/readyz").status_code == 200  # still cached
        later = _wait_for_status(client, 503, seconds=5)
    connections = later["connections"]
    assert connections[SF]["ok"] is True
    assert connections[HS]["ok"] is False
    assert "cannot reach" in connections[HS]["detail"]


def test_readyz_is_not_ready_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 9: connecting is refused at once.
    storage = Storage(make_engine("postgresql://stagelink@127.0.0.1:9/stagelink"))
    try:
        with serve(create_app(AppConfig(), storage)) as client:
            response = client.get("/readyz")
    finally:
        storage.dispose()
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    assert "cannot use database" in response.json()["database"]["detail"]


def test_metrics_show_usage_outbox_crm_requests_rate_limits_and_jobs(world: World) -> None:
    _store_usage(world.storage, SF, accepted=3, held=1, written=2, dead=1)
    # HubSpot refuses two requests with 429 (Retry-After: 1 s); the client waits, retries.
    world.hs.set_rate_limits(retry_after=True)
    world.hs.faults.inject(FaultKind.RATE_LIMIT, count=2, path_prefix="/crm/v3/objects/deals")
    app = create_app(world.config, world.storage)
    metrics = app.state.metrics
    runtime = Runtime(
        world.config,
        world.storage,
        node_id="node-a",
        lease_ttl=timedelta(minutes=1),
        observe=metrics.observe_job,
    )
    with serve(app) as client:
        bind(runtime)
        try:
            assert run_sync_job(SF) is not None
            assert run_sync_job(HS) is not None
        finally:
            unbind(runtime)
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("stagelink_database_up") == 1
    assert value("stagelink_usage_events", connection=SF, status="accepted") == 6
    assert value("stagelink_usage_events", connection=SF, status="held") == 1
    assert value("stagelink_usage_events", connection=SF, status="rejected") == 0
    assert value("stagelink_writeback_outbox", connection=SF, state="pending") == 3
    assert value("stagelink_writeback_outbox", connection=SF, state="written") == 2
    assert value("stagelink_writeback_outbox", connection=SF, state="dead") == 1
    assert value("stagelink_writeback_outbox", connection=SF, state="in_flight") == 0

    assert value("stagelink_crm_rate_limited_total", connection=HS) == 2
    assert value("stagelink_crm_rate_limited_total", connection=SF) == 0
    assert value("stagelink_crm_requests_total", connection=HS, status="4xx") == 2
    # Every request each sandbox served (logins and retries included) was counted once.
    for name, calls in ((SF, world.sf.calls), (HS, world.hs.calls)):
        counted = sum(
            value("stagelink_crm_requests_total", connection=name, status=status)
            for status in ("2xx", "3xx", "4xx", "5xx")
        )
        assert counted == calls.snapshot()["total"], name
    for name in (SF, HS):
        assert value("stagelink_job_crm_requests_total", connection=name, kind="sync") > 0
    assert value("stagelink_job_duration_seconds_count", kind="sync", status="succeeded") == 2


def _wait_for_status(client: httpx.Client, status: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.1)


def _store_usage(
    storage: Storage, connection: str, *, accepted: int, held: int, written: int, dead: int
) -> None:
    now = datetime.now(UTC)
    with storage.sessions.begin() as session:
        connection_id = get_or_create_connection(session, connection, "salesforce").id
        states = (
            [OutboxState.PENDING] * accepted
            + [OutboxState.WRITTEN] * written
            + [OutboxState.DEAD] * dead
        )
        events = [(UsageStatus.ACCEPTED, state) for state in states]
        events += [(UsageStatus.HELD, None)] * held
        for status, state in events:
            event_id = uuid.uuid4()
            event = UsageEvent(
                client_event_id=event_id,
                connection_id=connection_id,
                rep_email="rep@example.com",
                opportunity_crm_id="006000000000001AAA",
                content_id="pricing-2026",
                action=UsageAction.VIEWED,
                occurred_at=now,
                status=status,
            )
            session.add(event)
            if state is not None:
                session.flush()
                session.add(
                    WritebackOutbox(
                        usage_event_id=event.id,
                        connection_id=connection_id,
                        state=state,
                        external_marker=f"sl-{event_id}",
                    )
                )
