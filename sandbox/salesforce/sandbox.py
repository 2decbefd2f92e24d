"""SalesforceSandbox: a seeded, HTTPS-serving emulated Salesforce org.

Typical use::

    with SalesforceSandbox(seed=1, size="small") as sf_org:
        session = requests.Session()
        session.verify, session.trust_env = str(sf_org.ca_bundle), False
        sf = Salesforce(instance_url=sf_org.url, session_id=sf_org.issue_token(), session=session)

The seeded database is built once per (seed, size, schema) under ``data_dir`` and copied for
each instance, so instances never see each other's writes and a second start is instant.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.common import BackgroundServer, CallLog, FaultPlan, ensure_certificate_authority
from sandbox.common.copies import private_copy
from sandbox.salesforce.app import SalesforceApp
from sandbox.salesforce.auth import OrgUser
from sandbox.salesforce.mutator import Mutator
from sandbox.salesforce.options import MutationSummary, SalesforceCredentials, SalesforceOptions
from sandbox.salesforce.org import Org
from sandbox.salesforce.seed import INTEGRATION_USERNAME, cached_seed
from sandbox.salesforce.store import Store


def default_data_dir() -> Path:
    """Where seeds, keys and certificates are cached when no ``data_dir`` is given."""
    return Path(tempfile.gettempdir()) / "stagelink-sandbox" / "salesforce"


def _jwt_key(directory: Path) -> tuple[Path, bytes]:
    """The sandbox's JWT signing key (created once): private key path, public key PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "sandbox-jwt-private-key.pem"
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        partial = directory / f".jwt-{uuid.uuid4().hex}.pem"
        partial.write_bytes(pem)
        partial.chmod(0o600)
        os.replace(partial, private_path)
    private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_path, public


def _secrets(seed: int) -> dict[str, str]:
    # Stable per seed, so `make demo` prints the same credentials every time.
    digest = hashlib.sha256(f"stagelink-sandbox-salesforce-{seed}".encode()).hexdigest()
    return {
        "password": "Sandbox-Passw0rd!",
        "security_token": digest[:24].upper(),
        "consumer_key": "3MVG9sandbox." + digest[24:56],
        "consumer_secret": digest[56:64].upper() + digest[:32].upper(),
        "refresh_token": "5Aep861sandbox" + digest[8:48],
    }


class SalesforceSandbox:
    """An emulated Salesforce org over HTTPS, with a Python API to inspect and change it."""

    def __init__(
        self,
        *,
        seed: int = 1,
        size: str | int = "small",
        data_dir: Path | None = None,
        options: SalesforceOptions | None = None,
    ) -> None:
        self.seed = seed
        self.size = size
        self.options = options or SalesforceOptions()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        template = cached_seed(self.data_dir, seed, size)
        self._db_path = private_copy(template, self.data_dir / "instances", "sf")
        key_path, public_pem = _jwt_key(self.data_dir / "keys")
        self._authority = ensure_certificate_authority(self.data_dir / "tls")
        self._server: BackgroundServer | None = None
        store = Store(self._db_path)
        organization_id = store.meta("organization_id") or ""
        user_id = store.scalar(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (INTEGRATION_USERNAME,)
        )
        self._credentials = SalesforceCredentials(
            username=INTEGRATION_USERNAME,
            jwt_private_key_path=key_path,
            organization_id=organization_id,
            user_id=str(user_id),
            **_secrets(seed),
        )
        self.org = Org(
            store=store,
            options=self.options,
            credentials=self._credentials,
            public_key_pem=public_pem,
            base_url=lambda: self.url,
            seed=seed,
        )
        self._mutator = Mutator(self.org, seed)
        self._app = SalesforceApp(self.org, self._mutator)
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve HTTPS on ``host:port`` (0 picks a free port); returns once it accepts."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already started")
        server = BackgroundServer(
            self._app,
            host=host,
            port=port,
            ssl_certfile=self._authority.server_cert_path,
            ssl_keyfile=self._authority.server_key_path,
        )
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving and delete this instance's database copy."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if not self._closed:
            self._closed = True
            self.org.close()
            self._db_path.unlink(missing_ok=True)

    def serve_forever(self) -> None:
        """Block until Ctrl-C, then stop."""
        if self._server is None:
            raise RuntimeError("call start() first")
        try:
            self._server.serve_forever()  # stops the server on Ctrl-C
        finally:
            self._server = None
            self.stop()

    def __enter__(self) -> SalesforceSandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connection details -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``, no trailing slash (what ``instance_url`` should be)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        host = self._server.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"  # the certificate names 127.0.0.1 and localhost
        return f"https://{host}:{self._server.port}"

    @property
    def port(self) -> int:
        """The TCP port served."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return self._server.port

    @property
    def ca_bundle(self) -> Path:
        """The CA certificate clients must trust (``session.verify``)."""
        return self._authority.ca_cert_path

    @property
    def credentials(self) -> SalesforceCredentials:
        """Login details for every supported flow."""
        return self._credentials

    @property
    def faults(self) -> FaultPlan:
        """The fault plan consulted on every API request."""
        return self.org.faults

    @property
    def calls(self) -> CallLog:
        """Requests received, by kind."""
        return self.org.calls

    def issue_token(self) -> str:
        """A fresh access token for the integration user (for direct-session clients)."""
        user = self.org.find_user(self._credentials.username)
        assert user is not None
        return self.org.sessions.issue(user).token

    # -- inspection and mutation ---------------------------------------------------------------

    def records(
        self, sobject: str, where_sql: str | None = None, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Stored rows of ``sobject`` (see :meth:`Mutator.records`)."""
        return self._mutator.records(sobject, where_sql, include_deleted=include_deleted)

    def count(self, sobject: str, include_deleted: bool = False) -> int:
        """How many records of ``sobject`` exist (live only unless ``include_deleted``)."""
        return self._mutator.count(sobject, include_deleted)

    def mutate(
        self, *, edits: int, deletes: int, creates: int, shared_timestamp: bool = True
    ) -> MutationSummary:
        """Edit, delete and create Accounts/Opportunities (see :meth:`Mutator.mutate`)."""
        return self._mutator.mutate(
            edits=edits, deletes=deletes, creates=creates, shared_timestamp=shared_timestamp
        )

    def expire_sessions(self) -> int:
        """Invalidate every access token; clients get 401 INVALID_SESSION_ID next."""
        return self.org.sessions.expire_all()

    def expire_query_locators(self) -> int:
        """Invalidate every open query locator; the next page answers INVALID_QUERY_LOCATOR."""
        return self.org.queries.expire_cursors()

    def set_api_limit(self, max_requests: int, *, reset_usage: bool = False) -> None:
        """Change the daily API allocation (and optionally start a new day)."""
        self.org.usage.set_limit(max_requests)
        if reset_usage:
            self.org.usage.reset()

    @property
    def api_usage(self) -> tuple[int, int]:
        """(used, allowed) API requests."""
        return self.org.usage.used, self.org.usage.limit

    def find_user(self, username: str) -> OrgUser | None:
        """A user of the org by username."""
        return self.org.find_user(username)
