"""``GET /api/v1/hubspot/card/{connection}`` over real HTTP (uvicorn), as ``hubspot.fetch``
calls it: the card's query plus ``userId``, ``userEmail``, ``portalId``, ``appId``, signed v3.

Requests are signed by the sandbox's HubSpot signer (``sandbox/hubspot/webhooks.py``), which
shares no code with ``stagelink.web.signatures``; the deal is stored through the storage
models, on SQLite and PostgreSQL; recommendations come from the real engine and the
example catalog.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, MutableMapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from connectors.hubspot.config import HubSpotConnectionConfig
from sandbox.hubspot.webhooks import signed_headers
from stagelink.recommendations import Recommender
from stagelink.settings import AppConfig
from stagelink.storage import (
    CrmAccount,
    CrmOpportunity,
    CrmOwner,
    CrmStage,
    UsageAction,
    UsageEvent,
    get_or_create_connection,
    make_engine,
    session_factory,
)
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.runner import Storage
from stagelink.web import create_app

from .conftest import PORTAL, SECRET, FakeHubSpot, hubspot_connection, serve

REPO = Path(__file__).resolve().parents[2]
PUBLIC = "https://crm-cards.example.com"
SIGNER = LinkSigner(b"c" * 32)
STAGES = [
    # (id, label, probability, closed, won)
    ("appointmentscheduled", "Appointment scheduled", 0.2, False, False),
    ("qualifiedtobuy", "Qualified to buy", 0.4, False, False),
    ("contractsent", "Contract sent", 0.9, False, False),
    ("closedwon", "Closed won", 1.0, True, True),
]
STAGE_MAP = {
    "appointmentscheduled": "discover",
    "qualifiedtobuy": "qualify",
    "contractsent": "negotiate",
    "closedwon": "closed_won",
}


def seed(database_url: str) -> None:
    """One portal's synced deal 301 (Contract sent, €120,000) and a bare deal 302."""
    engine = make_engine(database_url)
    with session_factory(engine).begin() as session:
        conn = get_or_create_connection(session, "hs", "hubspot").id
        for order, (crm_id, label, probability, closed, won) in enumerate(STAGES):
            session.add(
                CrmStage(
                    connection_id=conn, crm_id=crm_id, pipeline_crm_id="default", label=label,
                    display_order=order, probability=probability, is_closed=closed, is_won=won,
                )
            )  # fmt: skip
        session.add(CrmOwner(connection_id=conn, crm_id="9000001", email="ana@example.com"))
        session.add(
            CrmAccount(connection_id=conn, crm_id="7001", name="Zürich Versicherungen AG",
                       industry="Insurance", region="EMEA", country="Switzerland")
        )  # fmt: skip
        session.add(
            CrmOpportunity(
                connection_id=conn, crm_id="301", name="Zürich renewal 2027",
                account_crm_id="7001", owner_crm_id="9000001", pipeline_crm_id="default",
                stage_crm_id="contractsent", stage_label="Contract sent", probability=0.9,
                amount=Decimal("120000"), currency="EUR", close_date=date(2027, 1, 31),
                stage_entered_at=datetime.now(UTC) - timedelta(days=3),
            )
        )  # fmt: skip
        session.add(
            CrmOpportunity(
                connection_id=conn, crm_id="302", name=None, pipeline_crm_id="default",
                stage_crm_id="qualifiedtobuy", stage_label="Qualified to buy",
            )
        )  # fmt: skip
    engine.dispose()


def config(*connections: HubSpotConnectionConfig, public_url: str | None = PUBLIC) -> AppConfig:
    return AppConfig.model_validate(
        {
            "connections": list(connections or [hubspot_connection(stage_map=STAGE_MAP)]),
            "server": {"public_url": public_url},
            "content": {"catalogs": [str(REPO / "examples" / "content")]},
        }
    )


@pytest.fixture
def seeded(database_url: str) -> Iterator[Storage]:
    seed(database_url)
    storage = Storage(make_engine(database_url))
    yield storage
    storage.dispose()


@pytest.fixture
def seeded_sqlite(sqlite_database_url: str) -> Iterator[Storage]:
    seed(sqlite_database_url)
    storage = Storage(make_engine(sqlite_database_url))
    yield storage
    storage.dispose()


def app_for(storage: Storage, settings: AppConfig | None = None, **kwargs: Any) -> Any:
    crm = FakeHubSpot()  # webhooks are not under test; the card never calls the CRM
    return create_app(
        settings or config(), storage, connector_factory=lambda _s: crm, signer=SIGNER, **kwargs
    )


def card_path(
    deal: str = "301",
    *,
    connection: str = "hs",
    email: str | None = "Ana@Example.com",
    portal: int | None = PORTAL,
    extra: tuple[tuple[str, str], ...] = (),
) -> str:
    """The card's own query, then what HubSpot appends (``@`` arrives as ``%40``)."""
    query = [("dealId", deal), *extra, ("userId", "9000001")]
    if email is not None:
        query.append(("userEmail", email))
    if portal is not None:
        query.append(("portalId", str(portal)))
    query.append(("appId", "1000001"))
    return f"/api/v1/hubspot/card/{connection}?{urlencode(query)}"


def fetch_card(
    client: httpx.Client,
    path: str,
    *,
    base: str | None = PUBLIC,
    secret: str = SECRET,
    signed_path: str | None = None,
    timestamp_ms: int | None = None,
    version: str = "v3",
) -> httpx.Response:
    """GET ``path`` signed as HubSpot signs the URL it called (``base`` + path)."""
    url = (base or str(client.base_url).rstrip("/")) + (signed_path or path)
    headers = signed_headers(
        client_secret=secret,
        method="GET",
        url=url,
        body="",
        version=version,
        timestamp_ms=timestamp_ms,
    )
    return client.get(path, headers=headers)


def refusals(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "hubspot_card_refused"]


def test_a_signed_card_fetch_shows_the_deal_and_its_top_content_for_that_user(
    seeded: Storage,
) -> None:
    settings = config()
    with serve(app_for(seeded, settings)) as client:
        fetch_card(client, card_path())  # warm-up: loads the catalog and rules once
        started = time.perf_counter()
        response = fetch_card(client, card_path())
        elapsed = time.perf_counter() - started
    print(f"\ncard answered in {elapsed * 1000:.1f} ms")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["connection"] == "hs"
    assert body["deal"] == {
        "id": "301",
        "name": "Zürich renewal 2027",
        "stage": "Contract sent",
        "canonical_stage": "negotiate",
        "account": "Zürich Versicherungen AG",
        "amount": "€120,000",
        "owner": "ana@example.com",
        "closed": False,
    }
    expected = Recommender.open(settings, seeded.engine).recommend("hs", "301", mobile=False)
    assert expected, "the example catalog has negotiate content"
    items = body["items"]
    assert [item["content_id"] for item in items] == [r.content.id for r in expected]
    for item, recommendation in zip(items, expected, strict=True):
        content = recommendation.content
        assert (item["title"], item["type"], item["mobile"]) == (
            content.title,
            content.type,
            content.mobile_ready,
        )
        assert "negotiate stage" in item["why"]
        # "Open" is a tracked link for this HubSpot user and deal, under the public URL.
        assert item["open_url"].startswith(f"{PUBLIC}/c/")
        grant = SIGNER.read_tracked_token(urlsplit(item["open_url"]).path.removeprefix("/c/"))
        assert (grant.rep, grant.connection, grant.opportunity_id, grant.content_id) == (
            "ana@example.com",
            "hs",
            "301",
            content.id,
        )
    page = urlsplit(body["page_url"])
    assert f"{page.scheme}://{page.netloc}{page.path}" == f"{PUBLIC}/m/hs/301"
    token = parse_qs(page.query)["t"][0]
    assert SIGNER.read_page_token(token, connection="hs", opportunity_id="301").rep == (
        "ana@example.com"
    )
    # The card's unit tests use a recorded answer: it must keep the shape of the real one.
    recorded = json.loads((REPO / "apps/hubspot-card/test/fixtures/card.json").read_text())
    assert body.keys() == recorded.keys()
    assert body["deal"].keys() == recorded["deal"].keys()
    assert {tuple(item) for item in body["items"]} == {tuple(recorded["items"][0])}
    generated = datetime.fromisoformat(body["generated_at"])
    assert abs(datetime.now(UTC) - generated) < timedelta(minutes=1)
    assert elapsed < 0.5


def test_the_cards_links_open_the_content_record_a_view_and_open_the_page(
    seeded_sqlite: Storage,
) -> None:
    """What a rep's clicks on the card do (the routes behind them are the mobile page's)."""
    settings = config()
    with serve(app_for(seeded_sqlite, settings)) as client:
        body = fetch_card(client, card_path()).json()
        first = body["items"][0]
        opened = client.get(urlsplit(first["open_url"]).path)
        page = urlsplit(body["page_url"])
        full_page = client.get(f"{page.path}?{page.query}")
    catalog = Recommender.open(settings, seeded_sqlite.engine).content(first["content_id"])
    assert catalog is not None
    assert opened.status_code == 302
    assert opened.headers["location"] == catalog.url
    with seeded_sqlite.sessions() as session:
        views = session.execute(
            select(UsageEvent.rep_email, UsageEvent.opportunity_crm_id, UsageEvent.content_id,
                   UsageEvent.action, UsageEvent.channel)
        ).all()  # fmt: skip
    assert [tuple(row) for row in views] == [
        ("ana@example.com", "301", first["content_id"], UsageAction.VIEWED, "tracked_link")
    ]
    assert full_page.status_code == 200
    assert "Zürich renewal 2027" in full_page.text
    assert first["title"] in full_page.text


def test_unsigned_forged_stale_or_legacy_signed_fetches_get_401_and_a_logged_reason(
    seeded_sqlite: Storage,
) -> None:
    settings = config(
        hubspot_connection(stage_map=STAGE_MAP),
        hubspot_connection("hs-no-secret", app_client_secret=None),
    )
    now_ms = int(time.time() * 1000)
    with (
        serve(app_for(seeded_sqlite, settings, accept_legacy_signatures=True)) as client,
        capture_logs() as logs,
    ):
        cases = {
            "unsigned": (client.get(card_path()), "missing X-HubSpot-Signature-v3"),
            "another secret": (fetch_card(client, card_path(), secret="x" * 36), "does not match"),
            # Signed for deal 302, asking for deal 301.
            "changed query": (
                fetch_card(client, card_path("301"), signed_path=card_path("302")),
                "does not match",
            ),
            "another user": (
                fetch_card(
                    client,
                    card_path(email="boss@example.com"),
                    signed_path=card_path(email="ana@example.com"),
                ),
                "does not match",
            ),
            "6 minutes old": (
                fetch_card(client, card_path(), timestamp_ms=now_ms - 360_000),
                "stale",
            ),
            "6 minutes ahead": (
                fetch_card(client, card_path(), timestamp_ms=now_ms + 360_000),
                "in the future",
            ),
            # v2 is replayable forever: refused here even where webhooks accept it.
            "v2 only": (fetch_card(client, card_path(), version="v2"), "v3"),
            "v1 only": (fetch_card(client, card_path(), version="v1"), "v3"),
            "no secret configured": (
                fetch_card(client, card_path(connection="hs-no-secret")),
                "no app_client_secret configured",
            ),
        }
    for name, (response, _) in cases.items():
        assert response.status_code == 401, name
        assert response.json() == {
            "code": "invalid_signature",
            "message": "invalid or missing HubSpot signature",
        }, name
    logged = refusals(logs)
    assert len(logged) == len(cases)
    for (name, (_, expected)), entry in zip(cases.items(), logged, strict=True):
        assert expected in entry["reason"], name
    # Behind the public URL the signature covers that URL, not the local one.
    with serve(app_for(seeded_sqlite, settings)) as client:
        local = fetch_card(client, card_path(), base=None)
        public = fetch_card(client, card_path())
    assert (local.status_code, public.status_code) == (401, 200)


def test_a_fetch_from_another_portal_is_forbidden(seeded_sqlite: Storage) -> None:
    """A public app's secret signs every portal's requests; only ours may read our deals."""
    with serve(app_for(seeded_sqlite)) as client, capture_logs() as logs:
        other = fetch_card(client, card_path(portal=48000002))
        missing = fetch_card(client, card_path(portal=None))
    for response in (other, missing):
        assert response.status_code == 403
        assert response.json()["code"] == "wrong_portal"
    assert "48000002" in refusals(logs)[0]["reason"]
    # Without a configured portal_id, any portal's signed fetch is served.
    settings = config(hubspot_connection(stage_map=STAGE_MAP, portal_id=None))
    with serve(app_for(seeded_sqlite, settings)) as client:
        assert fetch_card(client, card_path(portal=48000002)).status_code == 200


def test_unknown_deals_connections_and_bad_queries_get_clear_answers(
    seeded_sqlite: Storage,
) -> None:
    with serve(app_for(seeded_sqlite)) as client:
        not_synced = fetch_card(client, card_path("999"))
        unknown = fetch_card(client, card_path(connection="nope"))
        no_email = fetch_card(client, card_path(email=None))
        bad_deal = fetch_card(client, card_path("301 OR 1=1"))
        two = fetch_card(client, card_path(extra=(("limit", "2"),)))
        zero = fetch_card(client, card_path(extra=(("limit", "0"),)))
        bare = fetch_card(client, card_path("302"))
    assert not_synced.status_code == 404
    assert not_synced.json() == {
        "code": "not_synced",
        "message": "This deal is not synced to stagelink yet.",
    }
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_connection")
    assert (no_email.status_code, no_email.json()["code"]) == (400, "invalid_request")
    assert "userEmail" in no_email.json()["message"]
    assert (bad_deal.status_code, bad_deal.json()["code"]) == (400, "invalid_request")
    assert two.status_code == 200
    assert len(two.json()["items"]) == 2
    assert (zero.status_code, zero.json()["message"]) == (400, "limit must be 1 to 20")
    # A deal with nothing but a stage still renders (no name, account or amount).
    assert bare.status_code == 200
    deal = bare.json()["deal"]
    assert (deal["name"], deal["account"], deal["amount"], deal["stage"]) == (
        None,
        None,
        None,
        "Qualified to buy",
    )
    assert bare.json()["items"]


def test_without_a_link_signing_key_the_card_answers_503(seeded_sqlite: Storage) -> None:
    """PostgreSQL without ``surfaces.signing_key``: the card says stagelink is not ready."""
    settings = config().model_copy(
        update={"database_url": "postgresql+psycopg://stagelink@127.0.0.1:5432/test"}
    )
    crm = FakeHubSpot()
    app = create_app(settings, seeded_sqlite, connector_factory=lambda _s: crm)
    with serve(app) as client, capture_logs() as logs:
        response = fetch_card(client, card_path())
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert "surfaces.signing_key" in refusals(logs)[0]["reason"]
