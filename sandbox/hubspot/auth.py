"""Credentials of the emulated account, Bearer-token checks and OAuth v1 token grants (facts B1).

* Private-app tokens (``pat-na1-…``) never expire.
* OAuth access tokens come from ``POST /oauth/v1/token`` (``refresh_token`` or
  ``authorization_code`` grant), live ``oauth_token_ttl_seconds`` and can be expired on demand.
  The refresh token does not rotate (HubSpot returns the same one).
* Successive access tokens of one OAuth install share one rate-limit key, so refreshing never
  buys a fresh budget.
"""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Literal

from sandbox.hubspot.errors import HubSpotError, expired_authentication, invalid_authentication
from sandbox.hubspot.timeutil import Clock, iso_from_ms

OAUTH_SCOPES = [
    "oauth",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
    "crm.objects.owners.read",
    "crm.schemas.deals.read",
    "timeline",
]


@dataclass(frozen=True)
class HubSpotCredentials:
    """Everything a client needs to talk to the emulated account (deterministic per seed)."""

    private_app_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    redirect_uri: str
    authorization_code: str
    app_id: int
    developer_api_key: str
    portal_id: int
    hub_domain: str


def make_credentials(seed: int) -> HubSpotCredentials:
    """Credentials derived from the seed, so a demo config keeps working across restarts."""
    rng = random.Random(f"stagelink-hubspot:{seed}:credentials")

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    return HubSpotCredentials(
        private_app_token=f"pat-na1-{uid()}",
        client_id=uid(),
        client_secret=uid(),
        refresh_token=f"na1-{uid()[:4]}-{uid()}",
        redirect_uri="http://localhost:8000/oauth/hubspot/callback",
        authorization_code=f"na1-code-{uid()}",
        app_id=1_000_000 + seed,
        developer_api_key=f"dev-{uid()}",
        portal_id=48_000_000 + seed,
        hub_domain=f"stagelink-sandbox-{seed}.hubspot.example",
    )


@dataclass(frozen=True)
class Caller:
    """Who made a request."""

    token: str
    kind: Literal["private_app", "oauth"]
    rate_key: str  # rate limits are counted per app install, not per access token


class OAuthError(Exception):
    """An OAuth v1 error: 400 ``{"status": <code>, "message": ...}``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TokenRegistry:
    """Known tokens and their expiry; thread-safe."""

    def __init__(self, credentials: HubSpotCredentials, clock: Clock, ttl_seconds: int) -> None:
        self.credentials = credentials
        self.clock = clock
        self.ttl_seconds = ttl_seconds
        self._access: dict[str, int] = {}  # access token -> expires at (epoch ms)
        self._used_codes: set[str] = set()
        self._lock = threading.Lock()

    @property
    def oauth_rate_key(self) -> str:
        """Rate-limit key shared by every access token of the OAuth install."""
        return f"oauth:{self.credentials.client_id}"

    def token_from_header(self, authorization: str | None) -> str | None:
        """The Bearer token in an Authorization header, if any."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def authenticate(self, authorization: str | None, *, oauth_only: bool = False) -> Caller:
        """Check a Bearer token; raise a 401 :class:`HubSpotError` like HubSpot does."""
        token = self.token_from_header(authorization)
        if token is None:
            raise invalid_authentication()
        if token == self.credentials.private_app_token:
            if oauth_only:
                raise HubSpotError(
                    403,
                    "MISSING_SCOPES",
                    "This endpoint needs an OAuth access token of the app that owns the event "
                    "template; private-app tokens cannot create timeline events.",
                )
            return Caller(token, "private_app", "private-app")
        with self._lock:
            expires_at = self._access.get(token)
        if expires_at is None:
            raise invalid_authentication()
        now = self.clock.now_ms()
        if now >= expires_at:
            raise expired_authentication((now - expires_at) // 1000, iso_from_ms(expires_at))
        return Caller(token, "oauth", self.oauth_rate_key)

    def expire(self, token: str) -> bool:
        """Expire one OAuth access token now; False if it is not an OAuth token."""
        with self._lock:
            if token not in self._access:
                return False
            self._access[token] = min(self._access[token], self.clock.now_ms())
            return True

    def expire_all(self) -> int:
        """Expire every OAuth access token now; returns how many."""
        now = self.clock.now_ms()
        with self._lock:
            for token, expires_at in self._access.items():
                self._access[token] = min(expires_at, now)
            return len(self._access)

    def grant(self, form: dict[str, str]) -> dict[str, object]:
        """Handle ``POST /oauth/v1/token``; raise :class:`OAuthError` on bad input."""
        grant_type = form.get("grant_type", "")
        if grant_type not in ("refresh_token", "authorization_code"):
            raise OAuthError(
                "BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token"
            )
        if form.get("client_id") != self.credentials.client_id:
            raise OAuthError("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != self.credentials.client_secret:
            raise OAuthError("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if grant_type == "refresh_token":
            if form.get("refresh_token") != self.credentials.refresh_token:
                raise OAuthError("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        else:
            code = form.get("code", "")
            with self._lock:
                if code != self.credentials.authorization_code or code in self._used_codes:
                    raise OAuthError("BAD_AUTH_CODE", "missing or unknown auth code")
                if form.get("redirect_uri") != self.credentials.redirect_uri:
                    raise OAuthError("BAD_REDIRECT_URI", "redirect_uri does not match")
                self._used_codes.add(code)
        access = "C" + secrets.token_urlsafe(60)
        with self._lock:
            self._access[access] = self.clock.now_ms() + self.ttl_seconds * 1000
        return {
            "token_type": "bearer",
            "refresh_token": self.credentials.refresh_token,
            "access_token": access,
            "expires_in": self.ttl_seconds,
        }

    def access_token_info(self, token: str) -> dict[str, object] | None:
        """``GET /oauth/v1/access-tokens/{token}`` body, or None if unknown or expired."""
        with self._lock:
            expires_at = self._access.get(token)
        now = self.clock.now_ms()
        if expires_at is None or now >= expires_at:
            return None
        return {
            "token": token,
            "user": "admin@stagelink-demo.example",
            "hub_domain": self.credentials.hub_domain,
            "scopes": OAUTH_SCOPES,
            "hub_id": self.credentials.portal_id,
            "app_id": self.credentials.app_id,
            "expires_in": (expires_at - now) // 1000,
            "user_id": 9_000_001,
            "token_type": "access",
        }
