"""The push subscription API over real HTTP (uvicorn): the page's session bearer decides
whose subscription it is; only real push-service endpoints and usable keys are stored."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connectors.core.secrets import SecretValue
from stagelink.nudges.config import NudgeSettings, VapidSettings
from stagelink.settings import AppConfig
from stagelink.settings.models import ServerSettings
from stagelink.storage import make_engine
from stagelink.storage.models.nudges import PushSubscription
from stagelink.surfaces.config import SurfaceSettings
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.runner import Storage
from stagelink.web import create_app
from tests.nudges.conftest import VAPID_PEM, BrowserSubscription, PushService, browser
from tests.web.conftest import LiveServer

KEY = "s" * 40
ANA = "ana@example.com"
BO = "bo@example.com"


def config(*, push: bool = True) -> AppConfig:
    vapid = VapidSettings(
        private_key=SecretValue(VAPID_PEM, "test"),
        subject="mailto:ops@example.com",
        endpoint_hosts=["127.0.0.1", ".push.services.mozilla.com"],
        allow_http=True,
    )
    nudges = NudgeSettings(enabled=push, channels=["push"], vapid=vapid if push else None)
    base = AppConfig(
        server=ServerSettings(public_url="https://stagelink.test"),
        surfaces=SurfaceSettings(signing_key=SecretValue(KEY, "test")),
    )
    return base.model_copy(update={"nudges": nudges})


@pytest.fixture
def storage(sqlite_database_url: str) -> Iterator[Storage]:
    # The store itself runs on PostgreSQL too in test_sandbox_nudges; HTTP is the subject here.
    engine = make_engine(sqlite_database_url)
    yield Storage(engine)
    engine.dispose()


@pytest.fixture
def client(storage: Storage) -> Iterator[httpx.Client]:
    with (
        LiveServer(create_app(config(), storage)) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        yield http


def bearer(rep: str, *, ttl: timedelta | None = None) -> dict[str, str]:
    signer = LinkSigner.from_config(config())
    return {"Authorization": f"Bearer {signer.session_token(rep=rep, connection='hs', ttl=ttl)}"}


def stored(storage: Storage) -> list[tuple[str, str]]:
    with storage.sessions() as session:
        return [
            (row.rep_email, row.endpoint)
            for row in session.scalars(select(PushSubscription).order_by(PushSubscription.id))
        ]


def phone(name: str = "ana-phone") -> BrowserSubscription:
    return browser(PushService(url="http://127.0.0.1:9"), name)


def test_vapid_public_key_is_the_configured_keys_public_half(client: httpx.Client) -> None:
    response = client.get("/api/v1/push/vapid-public-key")

    assert response.status_code == 200
    key = response.json()["public_key"]
    assert key == config().nudges.vapid.public_key  # type: ignore[attr-defined]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65
    assert raw[0] == 4


def test_a_rep_subscribes_once_per_browser(client: httpx.Client, storage: Storage) -> None:
    subscription = phone().to_json()

    first = client.post("/api/v1/push/subscriptions", json=subscription, headers=bearer(ANA))
    again = client.post("/api/v1/push/subscriptions", json=subscription, headers=bearer(ANA))

    assert first.status_code == 201
    assert first.json()["created"] is True
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert stored(storage) == [(ANA, subscription["endpoint"])]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer sls_forged.token"}, "invalid_token"),
        ({"Authorization": "Bearer slk_an_api_token"}, "invalid_token"),
    ],
)
def test_without_a_valid_page_session_nothing_is_stored(
    client: httpx.Client, storage: Storage, headers: dict[str, str], code: str
) -> None:
    response = client.post("/api/v1/push/subscriptions", json=phone().to_json(), headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert stored(storage) == []


def test_an_expired_page_session_is_refused(client: httpx.Client, storage: Storage) -> None:
    expired = bearer(ANA, ttl=timedelta(seconds=-1))

    response = client.post("/api/v1/push/subscriptions", json=phone().to_json(), headers=expired)

    assert response.status_code == 401
    assert stored(storage) == []


def _with(subscription: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = {**subscription, "keys": dict(subscription["keys"])}
    for key, value in changes.items():
        if key in ("p256dh", "auth"):
            changed["keys"][key] = value
        elif value is None:
            changed.pop(key)
        else:
            changed[key] = value
    return changed


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"endpoint": "https://attacker.example/collect"}, ["endpoint"]),
        ({"endpoint": "http://169.254.169.254/latest/meta-data"}, ["endpoint"]),
        ({"p256dh": "not-a-key"}, ["keys", "p256dh"]),
        ({"p256dh": base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode()}, ["keys", "p256dh"]),
        ({"auth": base64.urlsafe_b64encode(b"short").decode()}, ["keys", "auth"]),
        ({"keys": None}, ["keys"]),
    ],
)
def test_unusable_subscriptions_are_refused_naming_the_field(
    client: httpx.Client, storage: Storage, changes: dict[str, Any], loc: list[str]
) -> None:
    body = _with(phone().to_json(), **changes)

    response = client.post("/api/v1/push/subscriptions", json=body, headers=bearer(ANA))

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_subscription"
    assert [error["loc"] for error in response.json()["errors"]] == [loc]
    assert stored(storage) == []


def test_a_known_push_service_subdomain_is_accepted(client: httpx.Client, storage: Storage) -> None:
    body = _with(phone().to_json(), endpoint="https://updates.push.services.mozilla.com/wpush/v2/x")

    response = client.post("/api/v1/push/subscriptions", json=body, headers=bearer(ANA))

    assert response.status_code == 201, response.text


def test_a_rep_removes_only_their_own_subscription(client: httpx.Client, storage: Storage) -> None:
    subscription = phone().to_json()
    endpoint = subscription["endpoint"]
    client.post("/api/v1/push/subscriptions", json=subscription, headers=bearer(ANA))

    other = client.request(
        "DELETE", "/api/v1/push/subscriptions", json={"endpoint": endpoint}, headers=bearer(BO)
    )
    assert other.status_code == 404
    assert stored(storage) == [(ANA, endpoint)]

    own = client.request(
        "DELETE", "/api/v1/push/subscriptions", json={"endpoint": endpoint}, headers=bearer(ANA)
    )
    assert own.status_code == 204
    assert stored(storage) == []


def test_without_push_configured_the_api_says_so(storage: Storage) -> None:
    app = create_app(config(push=False), storage)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        key = http.get("/api/v1/push/vapid-public-key")
        post = http.post("/api/v1/push/subscriptions", json=phone().to_json(), headers=bearer(ANA))

    assert (key.status_code, key.json()["code"]) == (404, "push_not_configured")
    assert post.status_code == 404
    assert stored(storage) == []
