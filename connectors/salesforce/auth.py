"""Logging in to Salesforce with each configured method, against the configured ``login_url``.

simple-salesforce sends OAuth logins only to ``https://{domain}.salesforce.com`` and knows no
refresh-token grant (facts A2, gotchas 3 and 8), so the token requests are made here through
the connection's own session:

* ``password`` with ``consumer_key``: OAuth username-password grant;
* ``password`` without it: SOAP partner ``login`` through simple-salesforce's
  ``SalesforceLogin``, whose ``scratch_url`` argument sends it to ``login_url``;
* ``refresh_token``: OAuth refresh-token grant;
* ``jwt``: OAuth JWT bearer grant with an RS256 assertion built here.

The client then works in simple-salesforce's direct mode (``session_id`` + ``instance_url``)
and calls :func:`login` again when the session expires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin

from connectors.core.errors import StagelinkError
from connectors.salesforce.config import (
    JwtLogin,
    PasswordLogin,
    RefreshTokenLogin,
    SalesforceConnectionConfig,
)
from connectors.salesforce.errors import (
    VENDOR_ERRORS,
    LoginFailedError,
    SalesforceConfigurationError,
    SalesforceTransientError,
    classify,
)
from connectors.salesforce.http import DEFAULT_TIMEOUT, Timeout, parse_retry_after

__all__ = [
    "JWT_GRANT",
    "LoginResult",
    "build_jwt_assertion",
    "jwt_audience",
    "login",
    "token_url",
]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce rejects assertions valid for longer than a few minutes; the library uses 3.
JWT_LIFETIME = timedelta(minutes=3)

# What a person should check for each OAuth error code (facts A2).
_TOKEN_HINTS = {
    "invalid_grant": "check the username, password + security token, refresh token, or that "
    "the user is pre-authorized for the connected app",
    "invalid_client_id": "check consumer_key",
    "invalid_client": "check consumer_secret",
    "unsupported_grant_type": "the connected app does not allow this login method",
    "invalid_request": "the login request was incomplete",
    "inactive_user": "the user is inactive",
    "inactive_org": "the org is locked or inactive",
}


@dataclass(frozen=True)
class LoginResult:
    """A fresh session: the token never appears in ``repr``."""

    access_token: str = field(repr=False)
    instance_url: str
    method: str  # "oauth-password", "soap", "refresh_token" or "jwt"
    identity_url: str | None = None  # the token answer's ``id``: .../id/<org id>/<user id>
    username: str | None = None  # known from the configuration (not for refresh tokens)
    refresh_token: str | None = field(default=None, repr=False)  # when the org rotates them

    @property
    def user_id(self) -> str | None:
        """The user id at the end of ``identity_url``."""
        if not self.identity_url:
            return None
        last = urlsplit(self.identity_url).path.rstrip("/").rsplit("/", 1)[-1]
        return last or None


def token_url(config: SalesforceConnectionConfig) -> str:
    """The OAuth token endpoint under ``login_url``."""
    return f"{config.login_url}/services/oauth2/token"


def jwt_audience(login_url: str) -> str:
    """The ``aud`` claim Salesforce accepts for a login URL.

    Salesforce wants ``https://login.salesforce.com`` or ``https://test.salesforce.com``
    even when the token request goes to a My Domain host (``*.my.salesforce.com`` →
    login, ``*.sandbox.my.salesforce.com`` → test), and an Experience Cloud site's own URL
    for sites (JWT Bearer Flow help article; simple-salesforce issue #672). Other hosts
    (a local emulator) get their own origin.
    """
    parts = urlsplit(login_url)
    host = (parts.hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host.endswith(".salesforce.com"):
        return "https://login.salesforce.com"
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def build_jwt_assertion(
    auth: JwtLogin, login_url: str, *, connection: str, now: datetime | None = None
) -> str:
    """The RS256-signed assertion of the JWT bearer flow (iss, sub, aud, exp)."""
    moment = now or datetime.now(UTC)
    claims = {
        "iss": auth.consumer_key,
        "sub": auth.username,
        "aud": jwt_audience(login_url),
        "exp": int((moment + JWT_LIFETIME).timestamp()),
    }
    try:
        key = auth.private_key_file.read_bytes()
        return jwt.encode(claims, key, algorithm="RS256")
    except (OSError, ValueError, TypeError, jwt.PyJWTError) as exc:
        raise SalesforceConfigurationError(
            f"Salesforce login for connection {connection!r} failed: cannot sign the JWT "
            f"assertion with {str(auth.private_key_file)!r} ({type(exc).__name__}); "
            "private_key_file must be the connected app's RSA private key in PEM form",
            connection=connection,
        ) from None


def login(
    config: SalesforceConnectionConfig,
    session: requests.Session,
    *,
    timeout: Timeout = DEFAULT_TIMEOUT,
    refresh_token: str | None = None,
) -> LoginResult:
    """Log in with the configured method and return the new session.

    ``refresh_token`` replaces the configured one (after the org rotated it). Raises
    :class:`LoginFailedError` for refused credentials, other ``ConfigurationError``
    subclasses for bad settings, and ``TransientError`` subclasses when Salesforce or the
    network failed — never a vendor exception, never a message containing a secret.
    """
    auth = config.auth
    if isinstance(auth, PasswordLogin):
        if auth.consumer_key is None:
            return _soap_login(config, auth, session)
        password = auth.password.reveal() + (
            auth.security_token.reveal() if auth.security_token else ""
        )
        form = {
            "grant_type": "password",
            "client_id": auth.consumer_key,
            "username": auth.username,
            "password": password,
        }
        if auth.consumer_secret is not None:
            form["client_secret"] = auth.consumer_secret.reveal()
        body = _token_request(config, session, form, timeout)
        return _result(config, body, "oauth-password", username=auth.username)
    if isinstance(auth, RefreshTokenLogin):
        form = {
            "grant_type": "refresh_token",
            "client_id": auth.consumer_key,
            "client_secret": auth.consumer_secret.reveal(),
            "refresh_token": refresh_token or auth.refresh_token.reveal(),
        }
        body = _token_request(config, session, form, timeout)
        return _result(config, body, "refresh_token", username=None)
    assertion = build_jwt_assertion(auth, config.login_url, connection=config.name)
    body = _token_request(
        config, session, {"grant_type": JWT_GRANT, "assertion": assertion}, timeout
    )
    return _result(config, body, "jwt", username=auth.username)


def _secrets(config: SalesforceConnectionConfig) -> list[str]:
    auth = config.auth
    values = []
    if isinstance(auth, PasswordLogin):
        values = [auth.password, auth.security_token, auth.consumer_secret]
    elif isinstance(auth, RefreshTokenLogin):
        values = [auth.consumer_secret, auth.refresh_token]
    return [value.reveal() for value in values if value is not None and value.reveal()]


def _redact(text: str, config: SalesforceConnectionConfig) -> str:
    # Servers echo request fragments now and then; never let a credential into a message.
    for secret in sorted(_secrets(config), key=len, reverse=True):
        text = text.replace(secret, "**********")
    return text


def _login_error(
    config: SalesforceConnectionConfig, code: str | None, description: str
) -> LoginFailedError:
    detail = f"{code} — {description}" if code else description
    hint = _TOKEN_HINTS.get(code or "")
    message = f"Salesforce login for connection {config.name!r} failed: {detail}"
    if hint:
        message += f" ({hint})"
    return LoginFailedError(_redact(message, config), connection=config.name, error_code=code)


def _token_request(
    config: SalesforceConnectionConfig,
    session: requests.Session,
    form: dict[str, str],
    timeout: Timeout,
) -> dict[str, Any]:
    url = token_url(config)
    try:
        response = session.post(
            url, data=form, headers={"Accept": "application/json"}, timeout=timeout
        )
    except VENDOR_ERRORS as exc:
        raise classify(exc, connection=config.name, action="login") from None
    try:
        body: Any = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    status = response.status_code
    if status == 200 and isinstance(body, dict) and body.get("access_token"):
        return body
    if status in (408, 429) or status >= 500:
        raise SalesforceTransientError(
            f"Salesforce login for connection {config.name!r} failed: HTTP {status} from {url}",
            connection=config.name,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if isinstance(body, dict) and body.get("error"):
        raise _login_error(config, str(body["error"]), str(body.get("error_description") or ""))
    raise LoginFailedError(
        f"Salesforce login for connection {config.name!r} failed: unexpected answer HTTP "
        f"{status} from {url} (is login_url right?)",
        connection=config.name,
        status=status,
    )


def _result(
    config: SalesforceConnectionConfig, body: dict[str, Any], method: str, *, username: str | None
) -> LoginResult:
    instance_url = config.instance_url or str(body.get("instance_url") or "").rstrip("/")
    if not instance_url:
        raise LoginFailedError(
            f"Salesforce login for connection {config.name!r} failed: the token answer has no "
            "instance_url; set instance_url in the configuration",
            connection=config.name,
        )
    _require_https(config, instance_url)
    rotated = body.get("refresh_token")
    return LoginResult(
        access_token=str(body["access_token"]),
        instance_url=instance_url,
        method=method,
        identity_url=str(body["id"]) if body.get("id") else None,
        username=username,
        refresh_token=str(rotated) if rotated else None,
    )


def _require_https(config: SalesforceConnectionConfig, instance_url: str) -> None:
    # simple-salesforce builds every URL as https://{host} (facts gotcha 1): an http
    # instance would be contacted over TLS anyway and fail in a confusing way.
    if urlsplit(instance_url).scheme != "https":
        raise SalesforceConfigurationError(
            f"Salesforce connection {config.name!r}: instance_url {instance_url!r} must use "
            "https (simple-salesforce always speaks TLS)",
            connection=config.name,
        )


def _soap_login(
    config: SalesforceConnectionConfig, auth: PasswordLogin, session: requests.Session
) -> LoginResult:
    try:
        session_id, sf_instance = SalesforceLogin(
            username=auth.username,
            password=auth.password.reveal(),
            security_token=auth.security_token.reveal() if auth.security_token else None,
            sf_version=config.api_version,
            session=session,
            # Sends the SOAP call to {scratch_url}/services/Soap/u/{version} instead of
            # https://login.salesforce.com/... — the only login simple-salesforce can aim.
            scratch_url=config.login_url,
        )
    except SalesforceAuthenticationFailed as exc:
        error: StagelinkError = classify(exc, connection=config.name, action="login")
        if isinstance(error, LoginFailedError):
            error = LoginFailedError(
                _redact(error.message, config),
                connection=config.name,
                error_code=error.error_code,
            )
        raise error from None
    except VENDOR_ERRORS as exc:
        raise classify(exc, connection=config.name, action="login") from None
    instance_url = config.instance_url or f"https://{sf_instance}"
    _require_https(config, instance_url)
    return LoginResult(
        access_token=session_id, instance_url=instance_url, method="soap", username=auth.username
    )
