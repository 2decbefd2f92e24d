"""Logins and access tokens: the OAuth token endpoint, SOAP ``login`` and bearer sessions.

Flows (facts A2): username-password (password + security token appended), refresh token,
JWT bearer (RS256 assertion signed with the key in ``credentials.jwt_private_key_path``),
client credentials (HTTP Basic), and the SOAP partner ``login`` call simple-salesforce sends
when given a security token. Tokens live in memory with a TTL; :meth:`SessionStore.expire_all`
makes every client see ``INVALID_SESSION_ID`` on its next call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

import jwt

from sandbox.salesforce.options import SalesforceCredentials

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."


@dataclass(frozen=True)
class Session:
    """An issued access token and whom it belongs to."""

    token: str
    user_id: str
    username: str
    expires_at: float  # time.monotonic() deadline


@dataclass(frozen=True)
class OrgUser:
    """What a login needs to know about a user of the org."""

    user_id: str
    username: str
    is_active: bool


class SessionStore:
    """Thread-safe map of access tokens to sessions, with a TTL."""

    def __init__(self, ttl_seconds: float, organization_id: str) -> None:
        self.ttl_seconds = ttl_seconds
        self._org = organization_id
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def issue(self, user: OrgUser) -> Session:
        """A new access token for ``user``."""
        # Real tokens look like "00D…!AQ…": org id, "!", opaque text.
        token = f"{self._org[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = Session(token, user.user_id, user.username, time.monotonic() + self.ttl_seconds)
        with self._lock:
            self._sessions[token] = session
        return session

    def resolve(self, token: str) -> Session | None:
        """The live session of ``token``, or ``None`` if unknown, revoked or expired."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_at <= time.monotonic():
                del self._sessions[token]
                return None
            return session

    def revoke(self, token: str) -> None:
        """End one session."""
        with self._lock:
            self._sessions.pop(token, None)

    def expire_all(self) -> int:
        """End every session; returns how many there were."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count


@dataclass(frozen=True)
class TokenAnswer:
    """Status and JSON body of a token endpoint answer."""

    status: int
    body: dict[str, Any]


def _oauth_error(code: str, description: str, status: int = 400) -> TokenAnswer:
    return TokenAnswer(status, {"error": code, "error_description": description})


class AuthService:
    """Answers the token endpoint and SOAP login for one org."""

    def __init__(
        self,
        *,
        credentials: SalesforceCredentials,
        sessions: SessionStore,
        find_user: Callable[[str], OrgUser | None],
        public_key_pem: bytes,
        require_security_token: bool,
        base_url: Callable[[], str],
    ) -> None:
        self.credentials = credentials
        self.sessions = sessions
        self._find_user = find_user
        self._public_key_pem = public_key_pem
        self.require_security_token = require_security_token
        self._base_url = base_url

    # -- OAuth token endpoint -------------------------------------------------------------------

    def token(self, form: dict[str, str], authorization: str | None) -> TokenAnswer:
        """Answer ``POST /services/oauth2/token`` for any supported grant."""
        grant = form.get("grant_type", "")
        if grant == "password":
            return self._password_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        if grant == JWT_GRANT:
            return self._jwt_grant(form)
        if grant == "client_credentials":
            return self._client_credentials_grant(form, authorization)
        if not grant:
            return _oauth_error("invalid_request", "grant type not supported")
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _check_client(self, client_id: str | None, client_secret: str | None) -> TokenAnswer | None:
        creds = self.credentials
        if client_id != creds.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if client_secret is not None and client_secret != creds.consumer_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        return None

    def _password_grant(self, form: dict[str, str]) -> TokenAnswer:
        bad_client = self._check_client(form.get("client_id"), form.get("client_secret", ""))
        if bad_client:
            return bad_client
        user = self._check_password(form.get("username", ""), form.get("password", ""))
        if user is None:
            return _oauth_error("invalid_grant", "authentication failure")
        return self._success(user, scope=None)

    def _refresh_grant(self, form: dict[str, str]) -> TokenAnswer:
        bad_client = self._check_client(form.get("client_id"), form.get("client_secret"))
        if bad_client:
            return bad_client
        if form.get("refresh_token") != self.credentials.refresh_token:
            return _oauth_error("invalid_grant", "expired access/refresh token")
        user = self._find_user(self.credentials.username)
        if user is None or not user.is_active:
            return _oauth_error("invalid_grant", "inactive user")
        return self._success(user, scope="api refresh_token")

    def _jwt_grant(self, form: dict[str, str]) -> TokenAnswer:
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(
                assertion,
                self._public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iss", "sub", "aud", "exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return _oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.credentials.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not self._audience_ok(claims.get("aud")):
            return _oauth_error("invalid_grant", "audience is invalid")
        user = self._find_user(str(claims.get("sub", "")))
        if user is None or not user.is_active:
            return _oauth_error("invalid_grant", "invalid assertion")
        return self._success(user, scope="api")

    def _audience_ok(self, audience: Any) -> bool:
        # Salesforce accepts its login hosts and the org's My Domain URL as audience.
        values = audience if isinstance(audience, list) else [audience]
        for value in values:
            if not isinstance(value, str):
                continue
            host = value.removeprefix("https://").rstrip("/")
            if host.endswith(".salesforce.com") or value.rstrip("/") == self._base_url():
                return True
        return False

    def _client_credentials_grant(
        self, form: dict[str, str], authorization: str | None
    ) -> TokenAnswer:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _oauth_error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        bad_client = self._check_client(client_id, client_secret or "")
        if bad_client:
            return bad_client
        # The connected app runs as its configured "Run As" user: the integration user.
        user = self._find_user(self.credentials.username)
        if user is None or not user.is_active:
            return _oauth_error("invalid_grant", "no client credentials user enabled")
        return self._success(user, scope="api")

    def _check_password(self, username: str, password: str) -> OrgUser | None:
        creds = self.credentials
        if username != creds.username:
            return None
        accepted = {creds.password + creds.security_token}
        if not self.require_security_token:
            accepted.add(creds.password)
        if password not in accepted:
            return None
        user = self._find_user(username)
        return user if user is not None and user.is_active else None

    def _success(self, user: OrgUser, scope: str | None) -> TokenAnswer:
        session = self.sessions.issue(user)
        base = self._base_url()
        identity = f"{base}/id/{self.credentials.organization_id}/{user.user_id}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.new(
                self.credentials.consumer_secret.encode(),
                (identity + issued_at).encode(),
                hashlib.sha256,
            ).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": session.token,
            "instance_url": base,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if scope:
            body["scope"] = scope
        return TokenAnswer(200, body)

    # -- SOAP login -----------------------------------------------------------------------------

    def soap_login(self, body: bytes, version: str) -> tuple[int, str]:
        """Answer the partner API ``login`` call: status and XML text."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return 500, _soap_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE)
        username = _first_text(root, "username")
        password = _first_text(root, "password")
        user = self._check_password(username or "", password or "")
        if user is None:
            return 500, _soap_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE)
        session = self.sessions.issue(user)
        base = self._base_url()
        org = self.credentials.organization_id
        server_url = f"{base}/services/Soap/u/{version}/{org[:15]}"
        metadata_url = f"{base}/services/Soap/m/{version}/{org[:15]}"
        return 200, (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com"'
            ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{escape(metadata_url)}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{escape(server_url)}</serverUrl>"
            f"<sessionId>{escape(session.token)}</sessionId>"
            f"<userId>{user.user_id}</userId>"
            f"<userInfo><organizationId>{org}</organizationId>"
            f"<userId>{user.user_id}</userId>"
            f"<userName>{escape(user.username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )


def _first_text(root: ET.Element, local_name: str) -> str | None:
    for element in root.iter():
        if element.tag == local_name or element.tag.endswith("}" + local_name):
            return element.text or ""
    return None


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
