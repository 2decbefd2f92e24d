"""Fixtures for the web layer: a scripted CRM at the ``Connector`` seam, storage, signed posts.

The connector here is a fake at a seam stagelink owns (the ``Connector`` ABC): tests pin
what the receiver promises (verification, routing, debouncing, storing) independent of a
CRM; one test in ``test_hubspot_webhooks.py`` runs the real HubSpot connector instead.
Webhook requests are signed by the sandbox's own helpers (``sandbox/hubspot/webhooks.py``),
which share no code with ``stagelink.web.signatures``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Batch, Connector, ReadRequest, StreamInfo
from connectors.core.records import Account, Deletion, Item, ObjectType, Opportunity
from connectors.hubspot.config import HubSpotConnectionConfig
from sandbox.hubspot.webhooks import signed_headers
from stagelink.settings import AppConfig
from stagelink.settings.models import ServerSettings
from stagelink.storage import CrmAccount, CrmOpportunity, make_engine
from stagelink.sync.runner import Storage
from stagelink.web import create_app

SECRET = "7f1c2a34-5b6d-4e8f-9a0b-1c2d3e4f5a6b"
PORTAL = 48000001
CONNECTION = "hs"
SUBSCRIPTION = 6547123


class FakeHubSpot(Connector):
    """A CRM whose records the test sets; ``read_ids`` answers from them and is recorded."""

    kind = "hubspot"

    def __init__(self) -> None:
        self.deals: dict[str, Opportunity] = {}
        self.companies: dict[str, Account] = {}
        self.reads: list[tuple[ObjectType, list[str]]] = []
        self.closed = 0
        self._lock = threading.Lock()

    def set_deal(self, crm_id: str, stage: str, **changes: Any) -> None:
        values: dict[str, Any] = {
            "crm_id": crm_id,
            "name": f"Deal {crm_id} — Zürich",
            "pipeline_crm_id": "default",
            "stage_crm_id": stage,
        }
        values.update(changes)
        with self._lock:
            self.deals[crm_id] = Opportunity(**values)

    def set_company(self, crm_id: str, name: str) -> None:
        with self._lock:
            self.companies[crm_id] = Account(crm_id=crm_id, name=name)

    def streams(self) -> Sequence[StreamInfo]:
        return []

    def read(self, request: ReadRequest) -> Iterator[Batch]:
        return iter(())

    def read_ids(self, object_type: ObjectType, crm_ids: Sequence[str]) -> Batch:
        with self._lock:
            self.reads.append((object_type, list(crm_ids)))
            known: dict[str, Item] = dict(
                self.deals if object_type is ObjectType.OPPORTUNITY else self.companies
            )
        return Batch(items=[known.get(i) or Deletion(object_type, i) for i in crm_ids])

    def read_count(self) -> int:
        with self._lock:
            return len(self.reads)

    def close(self) -> None:
        self.closed += 1


def hubspot_connection(name: str = CONNECTION, **overrides: Any) -> HubSpotConnectionConfig:
    data: dict[str, Any] = {
        "name": name,
        "kind": "hubspot",
        "allow_plaintext_secrets": True,
        "auth": {"method": "private_app", "token": "pat-na1-00000000-0000-0000-0000-000000000000"},
        "app_client_secret": SECRET,
        "portal_id": PORTAL,
    }
    data.update(overrides)
    return HubSpotConnectionConfig.model_validate(data, context={})


def app_config(*connections: ConnectionConfig, public_url: str | None = None) -> AppConfig:
    return AppConfig(
        connections=list(connections or [hubspot_connection()]),
        server=ServerSettings(public_url=public_url),
    )


@pytest.fixture
def storage(sqlite_database_url: str) -> Iterator[Storage]:
    engine = make_engine(sqlite_database_url)
    yield Storage(engine)
    engine.dispose()


@pytest.fixture
def crm() -> FakeHubSpot:
    return FakeHubSpot()


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(storage: Storage, crm: FakeHubSpot) -> AppFactory:
    """``make_app(config=None, **create_app_kwargs)``: an app whose connectors are ``crm``."""

    def build(config: AppConfig | None = None, **kwargs: Any) -> FastAPI:
        kwargs.setdefault("connector_factory", lambda _settings: crm)
        kwargs.setdefault("debounce_window", 0.05)
        kwargs.setdefault("debounce_max_wait", 1.0)
        return create_app(config or app_config(), storage, **kwargs)

    return build


@contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    """Serve ``app`` over real HTTP; leaving stops the server and runs the app's shutdown."""
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[httpx.Client]:
    """A client of the default app, served by uvicorn."""
    with serve(make_app()) as opened:
        yield opened


def deal_event(deal_id: int | str, *, event_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A ``deal.propertyChange`` of ``dealstage``, shaped like HubSpot's (facts B10)."""
    event: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": SUBSCRIPTION,
        "portalId": PORTAL,
        "appId": 1000001,
        "occurredAt": 1782371972438 + event_id,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal_id),
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM_UI",
        "sourceId": "userId:9000001",
    }
    event.update(fields)
    return event


def post_events(
    client: httpx.Client,
    events: Any,
    *,
    connection: str = CONNECTION,
    secret: str = SECRET,
    version: str = "v3",
    timestamp_ms: int | None = None,
    signed_url: str | None = None,
    query: str = "",
    body: bytes | None = None,
) -> httpx.Response:
    """POST ``events`` signed as HubSpot signs them; ``signed_url`` when it differs from the
    URL requested (a public URL in front of a proxy), ``body`` to send other bytes than
    the signed ones (tampering)."""
    path = f"/webhooks/hubspot/{connection}" + (f"?{query}" if query else "")
    url = f"{client.base_url}".rstrip("/") + path
    text = events if isinstance(events, str) else json.dumps(events, separators=(",", ":"))
    headers = {
        "Content-Type": "application/json",
        **signed_headers(
            client_secret=secret,
            method="POST",
            url=signed_url or url,
            body=text,
            version=version,
            timestamp_ms=timestamp_ms,
        ),
    }
    return client.post(path, content=body if body is not None else text.encode(), headers=headers)


def stored_deals(storage: Storage) -> dict[str, tuple[str | None, bool]]:
    """crm_id → (stage, deleted) of every stored deal."""
    with storage.sessions() as session:
        rows = session.execute(
            select(CrmOpportunity.crm_id, CrmOpportunity.stage_crm_id, CrmOpportunity.deleted_at)
        ).all()
    return {crm_id: (stage, deleted is not None) for crm_id, stage, deleted in rows}


def stored_companies(storage: Storage) -> dict[str, str | None]:
    with storage.sessions() as session:
        rows = session.execute(select(CrmAccount.crm_id, CrmAccount.name)).all()
    return {row.crm_id: row.name for row in rows}


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> float:
    """Poll until ``predicate()`` is true; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started


class LiveServer:
    """The app under uvicorn on a free port, lifespan on (shutdown flushes the debouncer)."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="critical", lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started)
        return self

    @property
    def url(self) -> str:
        socket = self.server.servers[0].sockets[0]
        host, port = socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
