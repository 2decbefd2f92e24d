"""Real parts for nudge tests: an SMTP server (aiosmtpd), a Web Push service that receives
encrypted messages over HTTP and decrypts them like a browser (http_ece with the
subscription's private key), and the HubSpot sandbox CRM synced into SQLite/PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from connectors.core.secrets import SecretValue
from sandbox.hubspot import HubSpotSandbox
from stagelink.demo.sandboxes import RunningSandboxes, sandbox_config_yaml
from stagelink.demo.stored import owned_deals
from stagelink.nudges.config import NudgeSettings, SmtpSettings, VapidSettings
from stagelink.nudges.subscriptions import PushSubscriptionIn, save_subscription
from stagelink.settings import AppConfig, load_config
from stagelink.settings.models import ServerSettings
from stagelink.storage import utcnow
from stagelink.surfaces.config import SurfaceSettings
from stagelink.sync import JobOutcome, Storage, SyncOptions, open_storage, run_job

HS = "sandbox-hubspot"
#: The sandbox's open stages and the next one, each in another canonical stage.
NEXT_STAGE = {
    ("default", "appointmentscheduled"): "qualifiedtobuy",
    ("default", "qualifiedtobuy"): "presentationscheduled",
    ("default", "presentationscheduled"): "decisionmakerboughtin",
    ("default", "decisionmakerboughtin"): "contractsent",
    ("2871935", "2871936"): "2871937",
    ("2871935", "2871937"): "2871938",
    ("2871935", "2871938"): "2871939",
}
PUBLIC_URL = "https://stagelink.test"
# One key for every test: generating is cheap, but a fixed one keeps failures comparable.
VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PEM = VAPID_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- SMTP -------------------------------------------------------------------------------------


@dataclass
class Mail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())


class SmtpSink:
    """aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self._lock = threading.Lock()
        #: Reply to RCPT TO with this instead of accepting (e.g. "450 mailbox busy").
        self.refuse_rcpt: str | None = None

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    sink: SmtpSink

    @property
    def mails(self) -> list[Mail]:
        return list(self.sink.mails)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    # aiosmtpd logs a client's disconnect from its own thread, sometimes after pytest has
    # closed the captured stream ("--- Logging error ---" noise): its log is not asserted.
    logging.getLogger("mail.log").disabled = True
    sink = SmtpSink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, sink)
    finally:
        controller.stop()


# -- Web Push ---------------------------------------------------------------------------------


@dataclass
class PushRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """A push service on 127.0.0.1: records each POST; ``answers`` sets a status per path."""

    url: str
    received: list[PushRequest] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)


@dataclass
class BrowserSubscription:
    """What a browser holds: its ECDH key, auth secret and the endpoint it subscribed to."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def to_json(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": _b64(public), "auth": _b64(self.auth)},
        }

    def decrypt(self, request: PushRequest) -> dict[str, Any]:
        """The payload, decrypted as the browser would (RFC 8291, aes128gcm)."""
        assert request.headers.get("content-encoding") == "aes128gcm"
        plain = http_ece.decrypt(
            request.body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        data: dict[str, Any] = json.loads(plain)
        return data


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            service.received.append(PushRequest(self.path, headers, body))
            status = service.answers.get(self.path, 201)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    service.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def browser(service: PushService, name: str) -> BrowserSubscription:
    return BrowserSubscription(
        endpoint=f"{service.url}/push/{name}",
        private_key=ec.generate_private_key(ec.SECP256R1()),
        auth=os.urandom(16),
    )


def vapid_verified(request: PushRequest) -> bool:
    """The request carries a VAPID JWT signed by the configured key (RFC 8292)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("vapid "):
        return False
    verified: bool = Vapid02.verify(header)
    key = header.split("k=", 1)[1].split(",")[0].strip()
    expected = VapidSettings(
        private_key=SecretValue(VAPID_PEM, "test"), subject="mailto:ops@example.com"
    ).public_key
    return verified and key == expected


# -- configuration and the sandbox ------------------------------------------------------------


def nudge_settings(smtp_port: int, **overrides: Any) -> NudgeSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "channels": ["email", "push"],
        "smtp": SmtpSettings(
            host="127.0.0.1",
            port=smtp_port,
            security="none",
            from_address="stagelink <nudges@stagelink.test>",
            timeout=timedelta(seconds=10),
        ),
        "vapid": VapidSettings(
            private_key=SecretValue(VAPID_PEM, "test"),
            subject="mailto:ops@example.com",
            endpoint_hosts=["127.0.0.1"],
            allow_http=True,
        ),
        "collect_for": timedelta(0),
        "collect_max": timedelta(0),
    }
    values.update(overrides)
    return NudgeSettings(**values)


def with_nudges(config: AppConfig, settings: NudgeSettings) -> AppConfig:
    return config.model_copy(update={"nudges": settings})


@dataclass
class World:
    hs: HubSpotSandbox
    config: AppConfig
    storage: Storage
    smtp: SmtpServer
    push: PushService

    def sync(self) -> JobOutcome:
        outcome = run_job(self.config, self.storage, HS, SyncOptions())
        assert outcome.ok, outcome.error
        return outcome

    def set_stages(self, stages: dict[str, str]) -> None:
        """Move deals to new stages through the CRM's API (batch update, 100 per call)."""
        items = [{"id": deal, "properties": {"dealstage": stage}} for deal, stage in stages.items()]
        headers = {"Authorization": f"Bearer {self.hs.credentials.private_app_token}"}
        with httpx.Client(base_url=self.hs.url, headers=headers, timeout=30) as client:
            for start in range(0, len(items), 100):
                response = client.post(
                    "/crm/v3/objects/deals/batch/update",
                    json={"inputs": items[start : start + 100]},
                )
                assert response.status_code == 200, response.text

    def archive(self, deal: str) -> None:
        """Delete (archive) a deal in the CRM."""
        headers = {"Authorization": f"Bearer {self.hs.credentials.private_app_token}"}
        with httpx.Client(base_url=self.hs.url, headers=headers, timeout=30) as client:
            response = client.delete(f"/crm/v3/objects/deals/{deal}")
            assert response.status_code == 204, response.text

    def open_deals(self, stage: str | None = "appointmentscheduled") -> list[tuple[str, str]]:
        """(deal id, owner e-mail) of stored open deals with an owner that can move to a
        next open stage of another canonical stage (in ``default/stage`` if given)."""
        return [(deal, owner) for deal, owner, _next in self.movable(stage)]

    def movable(self, stage: str | None = None) -> list[tuple[str, str, str]]:
        """(deal id, owner e-mail, next stage id) for stored open deals with an owner."""
        with self.storage.sessions() as session:
            rows = owned_deals(session, HS, open_only=True)
        found = []
        for row in rows:
            where = (row.pipeline_crm_id or "", row.stage_crm_id or "")
            following = NEXT_STAGE.get(where)
            if following and (stage is None or where == ("default", stage)):
                found.append((row.crm_id, row.owner_email, following))
        return found

    def subscribe(self, rep: str, name: str) -> BrowserSubscription:
        """Store a push subscription for ``rep`` as the API would."""
        subscription = browser(self.push, name)
        with self.storage.sessions.begin() as session:
            save_subscription(
                session,
                PushSubscriptionIn.model_validate(subscription.to_json()),
                rep=rep,
                connection=HS,
                user_agent="test",
                now=utcnow(),
            )
        return subscription


@pytest.fixture(scope="session")
def sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The seeded CRM is built once per size; each test works on its own copy of it.
    return tmp_path_factory.mktemp("nudge-sandbox")


def start_world(
    tmp_path: Path,
    cache: Path,
    database_url: str,
    smtp: SmtpServer,
    push: PushService,
    *,
    size: str | int = "small",
    **nudge_overrides: Any,
) -> Iterator[World]:
    hs = HubSpotSandbox(seed=5, size=size, data_dir=cache).start()
    # Syncs here are means, not the subject: no pauses for HubSpot's search-per-second cap.
    hs.set_rate_limits(search_per_second=100)
    try:
        data = yaml.safe_load(
            sandbox_config_yaml(
                RunningSandboxes(salesforce=None, hubspot=hs), database_url=database_url
            )
        )
        # Only HubSpot runs here: drop the tag facts that read Salesforce's custom field.
        facts = data.get("mapping", {}).get("tag_facts", {})
        for name, fields in facts.items():
            facts[name] = [f for f in fields if not f.endswith("__c")]
        path = tmp_path / "stagelink.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        config = load_config(path).model_copy(
            update={
                "server": ServerSettings(public_url=PUBLIC_URL),
                # PostgreSQL has no key file beside the database: name a key.
                "surfaces": SurfaceSettings(signing_key=SecretValue("k" * 40, "test")),
            }
        )
        config = with_nudges(config, nudge_settings(smtp.port, **nudge_overrides))
        with open_storage(config) as storage:
            yield World(hs, config, storage, smtp, push)
    finally:
        hs.stop()


@pytest.fixture
def world(
    tmp_path: Path,
    sandbox_cache: Path,
    database_url: str,
    smtp_server: SmtpServer,
    push_service: PushService,
) -> Iterator[World]:
    yield from start_world(tmp_path, sandbox_cache, database_url, smtp_server, push_service)


@pytest.fixture
def sqlite_world(
    tmp_path: Path,
    sandbox_cache: Path,
    sqlite_database_url: str,
    smtp_server: SmtpServer,
    push_service: PushService,
) -> Iterator[World]:
    """The world on SQLite only (behaviour that does not depend on the database)."""
    yield from start_world(tmp_path, sandbox_cache, sqlite_database_url, smtp_server, push_service)
