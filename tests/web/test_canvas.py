"""``POST /canvas/salesforce/{connection}`` over real HTTP (uvicorn).

Salesforce's side is played by ``tests/surfaces/canvas_signing.py``, which signs requests
from the documentation without stagelink's code. The signed page link in the redirect is
read back with the app's own signer, and one test follows it to the rendered page.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from structlog.testing import capture_logs

from connectors.salesforce.config import SalesforceConnectionConfig
from stagelink.recommendations import Recommender
from stagelink.settings import AppConfig
from stagelink.storage import CrmOpportunity, get_or_create_connection
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.runner import Storage
from tests.surfaces.canvas_signing import (
    OPPORTUNITY_ID,
    SESSION_TOKEN,
    envelope,
    signed_request,
)
from tests.surfaces.canvas_signing import SECRET as CONSUMER_SECRET

from .conftest import AppFactory, app_config, hubspot_connection, serve

REPO = Path(__file__).resolve().parents[2]
SIGNER = LinkSigner(b"k" * 32)
PATH = "/canvas/salesforce/sf"


def salesforce_connection(name: str = "sf", **overrides: Any) -> SalesforceConnectionConfig:
    data: dict[str, Any] = {
        "name": name,
        "kind": "salesforce",
        "allow_plaintext_secrets": True,
        "auth": {"method": "password", "username": "api@example.com", "password": "pw"},
        "canvas_consumer_secret": CONSUMER_SECRET,
    }
    data.update(overrides)
    return SalesforceConnectionConfig.model_validate(data, context={})


def post_canvas(client: httpx.Client, signed: str | None, path: str = PATH) -> httpx.Response:
    form = {} if signed is None else {"signed_request": signed}
    return client.post(path, data=form)


def refusals(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "salesforce_canvas_refused"]


def test_a_signed_canvas_request_opens_that_users_page_for_that_opportunity(
    make_app: AppFactory,
) -> None:
    config = app_config(salesforce_connection(), hubspot_connection())
    with serve(make_app(config, signer=SIGNER)) as client, capture_logs() as logs:
        response = post_canvas(client, signed_request())
    assert response.status_code == 303
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.path == f"/m/sf/{OPPORTUNITY_ID}"
    token = parse_qs(location.query)["t"][0]
    grant = SIGNER.read_page_token(token, connection="sf", opportunity_id=OPPORTUNITY_ID)
    assert grant.rep == "ana.rep@example.com"
    opened = [entry for entry in logs if entry["event"] == "salesforce_canvas_opened"]
    assert [entry["opportunity"] for entry in opened] == [OPPORTUNITY_ID]
    # The user's Salesforce session token is never logged.
    assert SESSION_TOKEN not in repr(logs)


def test_salesforce_then_shows_the_opportunity_page_with_its_recommendations(
    make_app: AppFactory, storage: Storage
) -> None:
    """The iframe follows the 303: the rep sees the synced opportunity and its content."""
    with storage.sessions.begin() as session:
        conn = get_or_create_connection(session, "sf", "salesforce").id
        session.add(
            CrmOpportunity(
                connection_id=conn, crm_id=OPPORTUNITY_ID, name="Nordbank renewal",
                pipeline_crm_id="default", stage_crm_id="Proposal/Price Quote",
                stage_label="Proposal/Price Quote", amount=Decimal("120000"), currency="EUR",
            )
        )  # fmt: skip
    settings = AppConfig.model_validate(
        {
            "connections": [salesforce_connection(stage_map={"Proposal/Price Quote": "proposal"})],
            "content": {"catalogs": [str(REPO / "examples" / "content")]},
        }
    )
    expected = Recommender.open(settings, storage.engine).recommend(
        "sf", OPPORTUNITY_ID, mobile=True
    )
    assert expected
    with serve(make_app(settings, signer=SIGNER)) as client:
        response = client.post(
            PATH, data={"signed_request": signed_request()}, follow_redirects=True
        )
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303]
    assert "Nordbank renewal" in response.text
    assert "€120,000" in response.text
    for recommendation in expected:
        assert recommendation.content.title in response.text


def test_an_unescaped_plus_in_the_form_still_verifies(make_app: AppFactory) -> None:
    """Base64 signatures often contain '+'; a form body that forgot to escape it decodes it
    as a space, which must not turn a genuine request into a refusal."""
    signed = signed_request()
    assert "+" in signed  # the fixture's Base64 has one
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serve(make_app(app_config(salesforce_connection()), signer=SIGNER)) as client:
        response = client.post(PATH, content=f"signed_request={signed}", headers=form)
    assert response.status_code == 303


def test_behind_a_proxy_the_redirect_uses_the_public_url(make_app: AppFactory) -> None:
    config = app_config(salesforce_connection(), public_url="https://sales.example.com/stagelink")
    with serve(make_app(config, signer=SIGNER)) as client:
        response = post_canvas(client, signed_request())
    assert response.status_code == 303
    assert response.headers["location"].startswith(
        f"https://sales.example.com/stagelink/m/sf/{OPPORTUNITY_ID}?t="
    )


def test_forged_tampered_or_unverifiable_requests_get_a_401_page_and_a_logged_reason(
    make_app: AppFactory,
) -> None:
    genuine = signed_request()
    signature, encoded = genuine.split(".")
    other_deal = signed_request(envelope(record_id="006000000000001AAA")).split(".")[1]
    config = app_config(
        salesforce_connection(),
        salesforce_connection("sf-unconfigured", canvas_consumer_secret=None),
    )
    cases = {
        "tampered envelope": (PATH, f"{signature}.{other_deal}", "does not match"),
        "another app's secret": (PATH, signed_request(secret="s" * 40), "does not match"),
        "not HMAC-SHA256": (
            PATH,
            signed_request(envelope(algorithm="HMACSHA1")),
            "expected 'HMACSHA256'",
        ),
        "garbage": (PATH, "garbage", "'<signature>.<envelope>'"),
        "no secret configured": (
            "/canvas/salesforce/sf-unconfigured",
            genuine,
            "no canvas_consumer_secret configured",
        ),
    }
    with serve(make_app(config, signer=SIGNER)) as client, capture_logs() as logs:
        answers = {name: post_canvas(client, sent, path) for name, (path, sent, _) in cases.items()}
    for name, response in answers.items():
        assert response.status_code == 401, name
        assert "location" not in response.headers, name
        assert response.headers["content-type"].startswith("text/html"), name
        assert "could not verify this request" in response.text, name
        assert OPPORTUNITY_ID not in response.text, name
    reasons = [entry["reason"] for entry in refusals(logs)]
    assert len(reasons) == len(cases)
    for (_, _, expected), reason in zip(cases.values(), reasons, strict=True):
        assert expected in reason
    assert encoded not in repr(logs)


def test_requests_stagelink_cannot_serve_say_why_on_a_page(make_app: AppFactory) -> None:
    config = app_config(salesforce_connection(), hubspot_connection())
    account = envelope(record_id="0015e0000000001AAA", record_type="Account")
    tab = envelope(record_id=None, display_location="Visualforce")
    cases = [
        (PATH, {}, 400, "no signed request"),
        (PATH, {"signed_request": signed_request(account)}, 400, "Opportunity page layout"),
        (PATH, {"signed_request": signed_request(tab)}, 400, "Opportunity page layout"),
        (
            PATH,
            {"signed_request": signed_request(envelope(email=None))},
            400,
            "no e-mail address",
        ),
        (
            PATH,
            {"signed_request": signed_request(envelope(record_id="006' OR 1=1"))},
            400,
            "cannot read",
        ),
        ("/canvas/salesforce/nope", {"signed_request": signed_request()}, 404, "No Salesforce"),
        # A HubSpot connection of that name is not a Salesforce one.
        ("/canvas/salesforce/hs", {"signed_request": signed_request()}, 404, "No Salesforce"),
    ]
    with serve(make_app(config, signer=SIGNER)) as client, capture_logs() as logs:
        answers = [client.post(path, data=form) for path, form, _, _ in cases]
        too_large = client.post(PATH, data={"signed_request": "a" * 1_100_000})
    for (path, _, status, text), response in zip(cases, answers, strict=True):
        assert response.status_code == status, path
        assert text in response.text, path
        assert "location" not in response.headers
    assert too_large.status_code == 413
    assert len(refusals(logs)) == len(cases) + 1


def test_without_a_link_signing_key_canvas_answers_503(make_app: AppFactory) -> None:
    """PostgreSQL without ``surfaces.signing_key`` (nor ``secret_key``): a page says so."""
    config = app_config(salesforce_connection()).model_copy(
        update={"database_url": "postgresql+psycopg://stagelink@127.0.0.1:5432/test"}
    )
    with serve(make_app(config)) as client, capture_logs() as logs:
        response = post_canvas(client, signed_request())
    assert response.status_code == 503
    assert "not configured" in response.text
    assert "surfaces.signing_key" in refusals(logs)[0]["reason"]
