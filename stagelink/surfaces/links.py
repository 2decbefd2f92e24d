"""Signed, expiring links for reps: opportunity pages, tracked content links, page sessions.

Three token kinds, each signed with its own salt so one can never pass for another:

* **page** (``/m/{connection}/{opportunity}?t=...``): who may see which deal's page;
* **tracked** (``/c/{token}``): rep, deal and content of a content link; opening it records
  a view, then redirects to the catalog's URL for that content (looked up at click time, so
  a token cannot point anywhere else);
* **session** (``sls_...``): the bearer a rendered page uses to report usage for its rep.

Tokens are itsdangerous ``URLSafeSerializer`` payloads with HMAC-SHA256 signatures and an
explicit expiry inside the signed payload. The key comes from ``surfaces.signing_key``, else
is derived from ``secret_key``, else from a key file next to the SQLite database (see
:func:`signing_key_for`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import make_url

from connectors.core.errors import ConfigurationError, StagelinkError
from stagelink.settings import AppConfig
from stagelink.storage import load_or_create_key_file, utcnow
from stagelink.surfaces.config import SurfaceSettings

__all__ = [
    "SESSION_PREFIX",
    "LinkError",
    "LinkSigner",
    "PageGrant",
    "SessionGrant",
    "TrackedGrant",
    "absolute",
    "page_path",
    "signing_key_for",
    "tracked_path",
]

#: Session tokens start with this, so the usage API tells them from API tokens (``slk_``).
SESSION_PREFIX = "sls_"
_KEY_FILE = "stagelink-links.key"


class LinkError(StagelinkError):
    """A link that does not grant anything; ``reason`` is safe to log, not to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"link refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class PageGrant:
    """May see one deal's page as ``rep``."""

    rep: str
    connection: str
    opportunity_id: str
    expires_at: datetime


@dataclass(frozen=True)
class TrackedGrant:
    """A tracked link to one piece of content, sent or opened by ``rep`` for a deal."""

    rep: str
    connection: str
    opportunity_id: str | None
    content_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SessionGrant:
    """May report usage as ``rep`` on ``connection`` (what a rendered page carries)."""

    rep: str
    connection: str
    expires_at: datetime


class LinkSigner:
    """Makes and reads the three token kinds with one key (thread-safe, stateless)."""

    def __init__(
        self,
        key: bytes,
        settings: SurfaceSettings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if len(key) < 32:
            raise ValueError("a link signing key needs at least 32 bytes")
        self.settings = settings or SurfaceSettings()
        self.clock = clock
        signer = {"digest_method": hashlib.sha256}
        self._page = URLSafeSerializer(key, salt="stagelink.page", signer_kwargs=signer)
        self._tracked = URLSafeSerializer(key, salt="stagelink.tracked", signer_kwargs=signer)
        self._session = URLSafeSerializer(key, salt="stagelink.session", signer_kwargs=signer)

    @classmethod
    def from_config(cls, config: AppConfig) -> LinkSigner:
        """The signer for ``config`` (see :func:`signing_key_for`)."""
        return cls(signing_key_for(config), config.surfaces)

    # -- pages ------------------------------------------------------------------------------

    def page_token(
        self, *, rep: str, connection: str, opportunity_id: str, ttl: timedelta | None = None
    ) -> str:
        """A token for ``/m/{connection}/{opportunity_id}`` as ``rep``."""
        expires = self._expiry(ttl or self.settings.page_link_ttl)
        return str(
            self._page.dumps({"r": rep.lower(), "c": connection, "o": opportunity_id, "e": expires})
        )

    def read_page_token(self, token: str, *, connection: str, opportunity_id: str) -> PageGrant:
        """The grant in ``token`` for exactly this deal, or :class:`LinkError`."""
        data = self._load(self._page, token)
        if data.get("c") != connection or data.get("o") != opportunity_id:
            raise LinkError("the token is for another opportunity")
        return PageGrant(
            rep=_text(data, "r"),
            connection=connection,
            opportunity_id=opportunity_id,
            expires_at=self._check_expiry(data),
        )

    # -- tracked content links ----------------------------------------------------------------

    def tracked_token(
        self,
        *,
        rep: str,
        connection: str,
        opportunity_id: str | None,
        content_id: str,
        ttl: timedelta | None = None,
    ) -> str:
        """A token for ``/c/{token}``."""
        now = self.clock()
        expires = self._expiry(ttl or self.settings.tracked_link_ttl, now)
        payload = {
            "r": rep.lower(),
            "c": connection,
            "o": opportunity_id,
            "k": content_id,
            "i": int(now.timestamp()),
            "e": expires,
        }
        return str(self._tracked.dumps(payload))

    def read_tracked_token(self, token: str) -> TrackedGrant:
        """The grant in ``token``, or :class:`LinkError`."""
        data = self._load(self._tracked, token)
        opportunity = data.get("o")
        if opportunity is not None and not isinstance(opportunity, str):
            raise LinkError("malformed token")
        issued = data.get("i")
        if not isinstance(issued, int):
            raise LinkError("malformed token")
        return TrackedGrant(
            rep=_text(data, "r"),
            connection=_text(data, "c"),
            opportunity_id=opportunity,
            content_id=_text(data, "k"),
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=self._check_expiry(data),
        )

    # -- page sessions (usage API bearer) -------------------------------------------------------

    def session_token(self, *, rep: str, connection: str, ttl: timedelta | None = None) -> str:
        """A ``sls_`` bearer that reports usage as ``rep`` on ``connection``."""
        expires = self._expiry(ttl or self.settings.session_ttl)
        body = self._session.dumps({"r": rep.lower(), "c": connection, "e": expires})
        return f"{SESSION_PREFIX}{body}"

    def read_session_token(self, token: str) -> SessionGrant:
        """The grant in a ``sls_`` bearer, or :class:`LinkError`."""
        if not token.startswith(SESSION_PREFIX):
            raise LinkError("not a session token")
        data = self._load(self._session, token.removeprefix(SESSION_PREFIX))
        return SessionGrant(
            rep=_text(data, "r"), connection=_text(data, "c"), expires_at=self._check_expiry(data)
        )

    # -- helpers ------------------------------------------------------------------------------

    def _expiry(self, ttl: timedelta, now: datetime | None = None) -> int:
        return int(((now or self.clock()) + ttl).timestamp())

    def _check_expiry(self, data: dict[str, Any]) -> datetime:
        expires = data.get("e")
        if not isinstance(expires, int):
            raise LinkError("malformed token")
        moment = datetime.fromtimestamp(expires, UTC)
        if moment <= self.clock():
            raise LinkError(f"expired at {moment:%Y-%m-%d %H:%M}Z")
        return moment

    @staticmethod
    def _load(serializer: URLSafeSerializer, token: str) -> dict[str, Any]:
        if not token or len(token) > 2000:
            raise LinkError("malformed token")
        try:
            data = serializer.loads(token)
        except BadSignature:
            raise LinkError("bad signature") from None
        except (ValueError, UnicodeDecodeError):  # signed garbage cannot happen; be safe
            raise LinkError("malformed token") from None
        if not isinstance(data, dict):
            raise LinkError("malformed token")
        return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise LinkError("malformed token")
    return value


def page_path(connection: str, opportunity_id: str, token: str) -> str:
    """The path of a deal's page for a page token."""
    return f"/m/{quote(connection, safe='')}/{quote(opportunity_id, safe='')}?t={quote(token)}"


def tracked_path(token: str) -> str:
    """The path of a tracked content link."""
    return f"/c/{quote(token)}"


def absolute(base_url: str, path: str) -> str:
    """``path`` under ``base_url`` (``server.public_url``), one slash between them."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def signing_key_for(config: AppConfig) -> bytes:
    """The link signing key: ``surfaces.signing_key``, else derived from ``secret_key``,
    else a key file beside the SQLite database (created on first use).

    PostgreSQL deployments run several nodes that must all accept each other's links, so
    they must configure one of the two keys; ConfigurationError names the key otherwise.
    """
    if config.surfaces.signing_key is not None:
        return hashlib.sha256(config.surfaces.signing_key.reveal().encode()).digest()
    if config.secret_key is not None:
        newest = config.secret_key.reveal().split(",")[0].strip().encode()
        return _derive(newest)
    url = make_url(config.database_url)
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        key_file = Path(database).expanduser().resolve().parent / _KEY_FILE
        return _derive(base64.urlsafe_b64decode(load_or_create_key_file(key_file)))
    raise ConfigurationError(
        "surfaces.signing_key: required with this database (every node must sign rep links "
        "with the same key); set it, or secret_key, e.g. to ${file:/run/secrets/stagelink_links}"
    )


def _derive(material: bytes) -> bytes:
    # Never use the encryption key itself as an HMAC key: derive a separate one.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"stagelink links").derive(
        material
    )
