"""The intake below the HTTP layer: racing requests, the accepted-events hook, the counts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from stagelink.storage import UsageAction, UsageEvent, UsageStatus, make_engine
from stagelink.sync.runner import Storage
from stagelink.usage import HeldResolver, UsageService, usage_counts, usage_counts_by_connection
from stagelink.usage.models import EventResult, UsageBatchIn
from stagelink.usage.notify import notify_accepted, on_accepted, remove_callback
from tests.web.conftest import CONNECTION, FakeHubSpot, app_config

from .helpers import catalog, event, make_token, row_counts


def open_service(storage: Storage) -> UsageService:
    crm = FakeHubSpot()
    resolver = HeldResolver(app_config(), storage, connector_factory=lambda _s: crm)
    resolver.close()  # no background reads in these tests
    return UsageService(app_config(), storage, catalog=catalog(), resolver=resolver)


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    engine = make_engine(database_url)
    yield Storage(engine)
    engine.dispose()


@pytest.fixture
def pg_storage(postgresql_database_url: str) -> Iterator[Storage]:
    engine = make_engine(postgresql_database_url)
    yield Storage(engine)
    engine.dispose()


def test_an_id_another_request_is_storing_answers_duplicate_not_an_error(
    pg_storage: Storage,
) -> None:
    """Two nodes take the same retried event at once: the second waits for the first's
    commit (``ON CONFLICT DO NOTHING``), then answers the stored status."""
    service = open_service(pg_storage)
    info, _ = make_token(pg_storage, "web-page")
    sent = event(CONNECTION, None)
    batch = UsageBatchIn.model_validate({"events": [sent, event(CONNECTION, None)]})
    results: list[EventResult] = []
    with pg_storage.engine.connect() as other:
        transaction = other.begin()
        other.execute(
            insert(UsageEvent).values(
                client_event_id=batch.events[0].client_event_id,
                connection_id=service._connection_ids()[CONNECTION],
                rep_email="ana@example.com",
                content_id="roi-calculator",
                action=UsageAction.VIEWED,
                occurred_at=datetime.now(UTC),
                status=UsageStatus.UNASSIGNED,
            )
        )
        worker = threading.Thread(target=lambda: results.extend(service.ingest(info, batch.events)))
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()  # blocked on the uncommitted row with the same id
        transaction.commit()
    worker.join(10)
    assert [(r.status, r.duplicate) for r in results] == [
        (UsageStatus.UNASSIGNED, True),
        (UsageStatus.UNASSIGNED, False),
    ]
    assert row_counts(pg_storage) == (2, 0)


def test_counts_per_status_and_connection(storage: Storage) -> None:
    service = open_service(storage)
    info, _ = make_token(storage, "web-page")
    with storage.sessions() as session:
        assert usage_counts(session) == {"accepted": 0, "held": 0, "unassigned": 0, "rejected": 0}
        assert usage_counts_by_connection(session) == {}
    events: list[dict[str, Any]] = [
        event(CONNECTION, None),
        event(CONNECTION, None),
        event(CONNECTION, "404"),
        event(CONNECTION, None, content_id="unknown"),  # rejected on arrival: not stored
    ]
    service.ingest(info, UsageBatchIn.model_validate({"events": events}).events)
    with storage.sessions() as session:
        assert usage_counts(session) == {"accepted": 0, "held": 1, "unassigned": 2, "rejected": 0}
        assert usage_counts_by_connection(session) == {
            CONNECTION: {"accepted": 0, "held": 1, "unassigned": 2, "rejected": 0}
        }


def test_a_failing_callback_does_not_stop_the_others() -> None:
    seen: list[str] = []

    def broken(_connection: str) -> None:
        raise RuntimeError("boom")

    on_accepted(broken)
    on_accepted(seen.append)
    try:
        notify_accepted("hs")
    finally:
        remove_callback(broken)
        remove_callback(seen.append)
    notify_accepted("after")
    assert seen == ["hs"]
