"""The demo's second half: rep surfaces, usage through the real API, writeback, read-back.

Everything goes over HTTP the way it would in production: the web app runs under uvicorn,
the HubSpot card's request is signed like HubSpot signs ``hubspot.fetch`` calls, usage is
posted to ``/api/v1/usage`` with an API token, tracked links are opened, writeback runs
through the connectors, and the written activities are looked up in each CRM again.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import uvicorn

from sandbox.hubspot.webhooks import signed_headers
from stagelink.demo.stored import owned_deals
from stagelink.settings import AppConfig
from stagelink.storage import TokenKind
from stagelink.surfaces.links import absolute
from stagelink.surfaces.views import OpportunityView
from stagelink.sync.runner import Storage
from stagelink.usage.tokens import create_token
from stagelink.web.app import create_app

__all__ = [
    "DemoDeal",
    "UsageProof",
    "card_json",
    "demo_deals",
    "free_port",
    "post_usage",
    "web_server",
]


@dataclass(frozen=True)
class DemoDeal:
    """An open deal the demo uses, with the rep who owns it."""

    connection: str
    crm_id: str
    name: str
    rep: str


@dataclass
class UsageProof:
    """What the demo sent to the usage API and what became of it."""

    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    duplicates_on_retry: int = 0
    tracked_opened: list[tuple[str, int, str]] = field(default_factory=list)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def web_server(config: AppConfig, storage: Storage, port: int) -> Iterator[str]:
    """The stagelink web app under uvicorn on ``port`` in a thread; yields its base URL."""
    app = create_app(config, storage)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="demo-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the demo web server did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def demo_deals(storage: Storage, per_connection: int = 3) -> list[DemoDeal]:
    """The largest open deals of each connection whose owner has an e-mail."""
    with storage.sessions() as session:
        owned = owned_deals(session, open_only=True, largest_first=True)
    deals: list[DemoDeal] = []
    for deal in owned:
        if sum(d.connection == deal.connection for d in deals) < per_connection:
            deals.append(
                DemoDeal(deal.connection, deal.crm_id, deal.name or deal.crm_id, deal.owner_email)
            )
    return deals


def card_json(
    client: httpx.Client, base_url: str, deal: DemoDeal, *, client_secret: str, portal_id: int
) -> dict[str, Any]:
    """The HubSpot card's JSON for ``deal``, requested the way ``hubspot.fetch`` does it."""
    query = urlencode(
        {
            "dealId": deal.crm_id,
            "userId": "1001",
            "userEmail": deal.rep,
            "portalId": str(portal_id),
            "appId": "2001",
        }
    )
    url = f"{base_url}/api/v1/hubspot/card/{deal.connection}?{query}"
    headers = signed_headers(
        client_secret=client_secret, method="GET", url=url, body="", version="v3"
    )
    response = client.get(url, headers=headers)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def post_usage(
    client: httpx.Client,
    base_url: str,
    storage: Storage,
    views: list[OpportunityView],
) -> UsageProof:
    """Realistic taps on the deals' content through ``POST /api/v1/usage`` (integration
    token), the same batch once more (a client retry: nothing new), then each deal's first
    tracked link opened like a buyer would."""
    with storage.sessions.begin() as session:
        _, secret = create_token(
            session, f"demo-{uuid.uuid4().hex[:8]}", kind=TokenKind.INTEGRATION
        )
    headers = {"Authorization": f"Bearer {secret}"}
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for view in views:
        for offset, (card, action, seconds) in enumerate(
            zip(view.cards, ("viewed", "shared", "presented"), (None, None, 95), strict=False)
        ):
            event: dict[str, Any] = {
                "client_event_id": str(uuid.uuid4()),
                "rep": view.rep,
                "connection": view.connection,
                "opportunity_id": view.opportunity_id,
                "content_id": card.content_id,
                "action": action,
                "occurred_at": (now - timedelta(minutes=10 - offset)).isoformat(),
                "channel": "demo",
            }
            if seconds is not None:
                event["duration_seconds"] = seconds
            events.append(event)
    proof = UsageProof(sent=len(events))
    url = f"{base_url}/api/v1/usage"
    first = client.post(url, json={"events": events}, headers=headers)
    first.raise_for_status()
    proof.statuses = dict(first.json()["counts"])
    retry = client.post(url, json={"events": events}, headers=headers)
    retry.raise_for_status()
    proof.duplicates_on_retry = sum(r["duplicate"] for r in retry.json()["results"])
    for view in views:
        if view.cards:
            link = absolute(base_url, view.cards[0].tracked_path)
            opened = client.get(link, follow_redirects=False)
            proof.tracked_opened.append(
                (view.cards[0].content_id, opened.status_code, opened.headers.get("location", ""))
            )
    return proof


def short_json(card: dict[str, Any], items: int = 2) -> str:
    """The card JSON with its signed links shortened, for printing."""
    shown = dict(card)
    shown["items"] = [
        {**item, "open_url": item["open_url"][:60] + "…"} for item in card["items"][:items]
    ]
    if len(card["items"]) > items:
        shown["items"].append(f"… {len(card['items']) - items} more")
    shown["page_url"] = card["page_url"][:60] + "…"
    return json.dumps(shown, indent=2, ensure_ascii=False)
