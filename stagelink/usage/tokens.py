"""API tokens for the usage API: created once, stored as a SHA-256, checked on every request.

A token looks like ``slk_<43 url-safe characters>`` (256 random bits). Only its hex SHA-256
is stored, with the first :data:`PREFIX_LENGTH` characters as a public handle for
``stagelink tokens list`` and ``revoke``; the token itself is shown once, at creation.

A *rep* token acts as one rep (events must carry that rep or none); an *integration* token
(an app or page that reports for many reps) names the rep in each event.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.core.errors import StagelinkError
from stagelink.storage import ApiToken, TokenKind, utcnow
from stagelink.surfaces.links import SESSION_PREFIX, LinkError, LinkSigner, SessionGrant

__all__ = [
    "DEFAULT_SCOPES",
    "PREFIX_LENGTH",
    "SCOPES",
    "TOKEN_PREFIX",
    "AuthError",
    "TokenError",
    "TokenInfo",
    "authenticate",
    "create_token",
    "find_tokens",
    "hash_token",
    "list_tokens",
    "revoke_tokens",
]

TOKEN_PREFIX = "slk_"
#: ``slk_`` plus 8 random characters: 48 bits, enough to tell a deployment's tokens apart.
PREFIX_LENGTH = 12
SCOPES = ("usage:write",)
DEFAULT_SCOPES = ("usage:write",)
#: ``last_used_at`` is written at most this often per token (a write per request would
#: turn every API call into a contended row update).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(StagelinkError, ValueError):
    """A token cannot be created or revoked as asked (duplicate name, unknown token...)."""


class AuthError(StagelinkError):
    """A request's token is missing, unknown, revoked, expired or lacks the scope.

    ``code`` is machine-readable (``missing_token``, ``invalid_token``,
    ``insufficient_scope``); ``status`` is the HTTP status to answer with.
    """

    def __init__(self, code: str, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TokenInfo:
    """What a request may do, from its token (a detached copy of the row)."""

    #: None for a page session (``sls_`` bearer), which has no row.
    id: int | None
    name: str
    prefix: str
    kind: TokenKind
    rep_email: str | None
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    #: A page session may only report for this connection (API tokens: any).
    connection: str | None = None

    @classmethod
    def for_session(cls, grant: SessionGrant) -> TokenInfo:
        """The identity of a rep page's ``sls_`` bearer: a rep token for one connection."""
        return cls(
            id=None,
            name="page session",
            prefix=SESSION_PREFIX,
            kind=TokenKind.REP,
            rep_email=grant.rep,
            scopes=("usage:write",),
            created_at=utcnow(),
            expires_at=grant.expires_at,
            last_used_at=None,
            revoked_at=None,
            connection=grant.connection,
        )

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        """A copy of ``row``."""
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            kind=row.kind,
            rep_email=row.rep_email,
            scopes=tuple(row.scopes or ()),
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    def state(self, now: datetime | None = None) -> str:
        """``active``, ``revoked`` or ``expired``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def hash_token(token: str) -> str:
    """The hex SHA-256 stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    name: str,
    *,
    kind: TokenKind,
    rep_email: str | None = None,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    expires_in: timedelta | None = None,
) -> tuple[TokenInfo, str]:
    """Create a token (flushed, not committed); returns it and the secret, shown only now.

    Raises :class:`TokenError` for a name already used by an active token, a rep token
    without a rep (or an integration token with one), or an unknown scope.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token name must have 1 to 100 characters")
    if kind is TokenKind.REP and not rep_email:
        raise TokenError("a rep token needs the rep's e-mail (--rep EMAIL)")
    if kind is TokenKind.INTEGRATION and rep_email:
        raise TokenError("an integration token acts for many reps; give no --rep")
    if rep_email is not None and ("@" not in rep_email or len(rep_email) > 320):
        raise TokenError(f"{rep_email!r} is not an e-mail address")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(
            f"unknown scope {', '.join(unknown) or '(none given)'} (known: {', '.join(SCOPES)})"
        )
    if expires_in is not None and expires_in <= timedelta(0):
        raise TokenError("the expiry must be in the future")
    now = utcnow()
    active = [t for t in find_tokens(session, name) if t.state(now) == "active"]
    if any(t.name == name for t in active):
        raise TokenError(f"an active token named {name!r} exists; revoke it or pick another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        token_hash=hash_token(token),
        prefix=token[:PREFIX_LENGTH],
        kind=kind,
        rep_email=rep_email,
        scopes=list(dict.fromkeys(scopes)),
        created_at=now,
        expires_at=now + expires_in if expires_in is not None else None,
    )
    session.add(row)
    session.flush()
    return TokenInfo.of(row), token


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token, oldest first (revoked and expired ones included)."""
    return [TokenInfo.of(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def find_tokens(session: Session, name_or_prefix: str) -> list[TokenInfo]:
    """Tokens whose name or prefix is ``name_or_prefix`` (or the token itself, given whole)."""
    wanted = name_or_prefix.strip()
    clauses = [ApiToken.name == wanted, ApiToken.prefix == wanted]
    if wanted.startswith(TOKEN_PREFIX) and len(wanted) > PREFIX_LENGTH:
        clauses.append(ApiToken.token_hash == hash_token(wanted))
    rows = session.scalars(select(ApiToken).where(or_(*clauses)).order_by(ApiToken.id))
    return [TokenInfo.of(row) for row in rows]


def revoke_tokens(session: Session, name_or_prefix: str) -> list[TokenInfo]:
    """Revoke the active tokens matching ``name_or_prefix``; returns them (revoked).

    Raises :class:`TokenError` when nothing matches. Revoking is immediate: the next
    request with the token gets 401.
    """
    matches = find_tokens(session, name_or_prefix)
    if not matches:
        raise TokenError(f"no token named or starting with {name_or_prefix!r}")
    now = utcnow()
    active = [t for t in matches if t.revoked_at is None]
    if active:
        session.execute(
            update(ApiToken).where(ApiToken.id.in_([t.id for t in active])).values(revoked_at=now)
        )
    return [
        TokenInfo.of(row)
        for row in session.scalars(
            select(ApiToken).where(ApiToken.id.in_([t.id for t in active])).order_by(ApiToken.id)
        )
    ]


def authenticate(
    sessions: sessionmaker[Session],
    authorization: str | None,
    *,
    scope: str = "usage:write",
    signer: LinkSigner | None = None,
) -> TokenInfo:
    """The token of an ``Authorization: Bearer <token>`` header, or :class:`AuthError`.

    With ``signer``, a rep page's ``sls_`` session bearer is accepted too (usage:write
    only). Records ``last_used_at`` (at most once per :data:`LAST_USED_RESOLUTION`).
    """
    if signer is not None and authorization:
        session_token = authorization.strip().partition(" ")[2].strip()
        if session_token.startswith(SESSION_PREFIX):
            return _session(signer, session_token, scope)
    token = _bearer(authorization)
    now = utcnow()
    with sessions.begin() as session:
        row = session.scalars(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token))
        ).one_or_none()
        if row is None:
            raise AuthError("invalid_token", "unknown API token")
        info = TokenInfo.of(row)
        state = info.state(now)
        if state == "revoked":
            raise AuthError("invalid_token", f"API token {info.prefix}… was revoked")
        if state == "expired":
            assert info.expires_at is not None
            raise AuthError(
                "invalid_token",
                f"API token {info.prefix}… expired at {info.expires_at:%Y-%m-%d %H:%M}Z",
            )
        if scope not in info.scopes:
            raise AuthError(
                "insufficient_scope",
                f"API token {info.prefix}… lacks the {scope!r} scope",
                status=403,
            )
        stale = now - LAST_USED_RESOLUTION
        if info.last_used_at is None or info.last_used_at < stale:
            # Conditional, so nodes racing on one token write it once.
            session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == info.id,
                    or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale),
                )
                .values(last_used_at=now)
            )
    return info


def _session(signer: LinkSigner, token: str, scope: str) -> TokenInfo:
    try:
        grant = signer.read_session_token(token)
    except LinkError as exc:
        raise AuthError("invalid_token", f"page session refused: {exc.reason}") from None
    if scope != "usage:write":
        raise AuthError(
            "insufficient_scope", f"a page session lacks the {scope!r} scope", status=403
        )
    return TokenInfo.for_session(grant)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing_token", "send the API token as 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("missing_token", "send the API token as 'Authorization: Bearer <token>'")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise AuthError("invalid_token", "unknown API token")
    return token
