"""Access tokens for HubSpot: a private app's static token, or OAuth tokens kept fresh.

HubSpot OAuth access tokens live ``expires_in`` seconds (30 minutes) and HubSpot asks apps to
refresh them on expiry rather than on a 401
(https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/guide),
so :class:`OAuthTokens` refreshes *before* the token runs out; a 401
``EXPIRED_AUTHENTICATION`` (clock skew, a token revoked early) still triggers one refresh
through :meth:`TokenSource.after_expired`. Both are thread-safe: one refresh at a time, and a
thread that saw an already-replaced token gets the new one without refreshing again.

The HTTP exchange itself (``POST /oauth/v1/token``) is done by ``client.py`` and passed in,
so vendor errors stay there; a refused refresh token arrives here already translated into
:class:`~connectors.hubspot.errors.AuthenticationError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from connectors.hubspot.ratelimit import Clock
from connectors.hubspot.wire import TokenGrant

__all__ = ["Exchange", "OAuthTokens", "StaticToken", "TokenSource"]

Exchange = Callable[[str], TokenGrant]
"""Trade a refresh token for a :class:`TokenGrant` (raises translated stagelink errors)."""


class TokenSource(Protocol):
    """Where the client gets the Bearer token for each request."""

    def current(self) -> str:
        """A token valid now (may refresh first)."""
        ...

    def after_expired(self, stale: str) -> str | None:
        """A replacement for ``stale`` after HubSpot called it expired, or ``None`` if this
        kind of token cannot be refreshed."""
        ...

    def secrets(self) -> list[str]:
        """Every secret value in play, so messages can be scrubbed of them."""
        ...


class StaticToken:
    """A private app's access token: it never expires and cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        """The token."""
        return self._token

    def after_expired(self, stale: str) -> str | None:
        """Private-app tokens do not expire, so there is nothing to refresh."""
        return None

    def secrets(self) -> list[str]:
        """The token itself."""
        return [self._token]


class OAuthTokens:
    """OAuth access tokens obtained from a refresh token, refreshed ahead of expiry.

    ``refresh_ahead`` is how long before ``expires_in`` runs out a new token is fetched; it
    is capped at a sixth of the lifetime so short-lived tokens are not refreshed constantly.
    """

    def __init__(
        self,
        refresh_token: str,
        exchange: Exchange,
        *,
        client_secret: str = "",
        clock: Clock = time.monotonic,
        refresh_ahead: float = 300.0,
    ) -> None:
        self._refresh_token = refresh_token
        self._exchange = exchange
        self._client_secret = client_secret
        self._clock = clock
        self._refresh_ahead = refresh_ahead
        self._access: str | None = None
        self._refresh_at = 0.0
        # Re-entrant: a failed refresh builds its error message with ``secrets()``.
        self._lock = threading.RLock()
        self.refreshes = 0  # how many times a token was fetched (for tests and logs)

    def current(self) -> str:
        """The access token, fetched or refreshed first if it is missing or about to expire."""
        with self._lock:
            if self._access is None or self._clock() >= self._refresh_at:
                return self._refresh_locked()
            return self._access

    def after_expired(self, stale: str) -> str | None:
        """Refresh once after a 401 EXPIRED_AUTHENTICATION, unless another thread already did."""
        with self._lock:
            if self._access is not None and self._access != stale:
                return self._access
            return self._refresh_locked()

    def secrets(self) -> list[str]:
        """Refresh token, client secret and the current access token."""
        with self._lock:
            found = [self._refresh_token, self._client_secret]
            if self._access:
                found.append(self._access)
        return [value for value in found if value]

    def _refresh_locked(self) -> str:
        started = self._clock()
        grant = self._exchange(self._refresh_token)
        ahead = min(self._refresh_ahead, grant.expires_in / 6)
        self._access = grant.access_token
        # Count the lifetime from before the request: never later than HubSpot does.
        self._refresh_at = started + max(0.0, grant.expires_in - ahead)
        if grant.refresh_token:
            # HubSpot returns the same refresh token today; keep a rotated one if it ever does.
            self._refresh_token = grant.refresh_token
        self.refreshes += 1
        return grant.access_token
