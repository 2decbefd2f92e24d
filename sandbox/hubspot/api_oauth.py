"""OAuth v1 endpoints the library calls (facts B1): token grant and token introspection."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sandbox.hubspot.auth import OAuthError
from sandbox.hubspot.errors import correlation_id
from sandbox.hubspot.http import Ctx, Endpoint, Reply

if TYPE_CHECKING:
    from sandbox.hubspot.account import Account


def _oauth_error(status: str, message: str, http_status: int = 400) -> Reply:
    return Reply(
        http_status,
        {"status": status, "message": message, "correlationId": correlation_id()},
    )


def token(account: Account, ctx: Ctx) -> Reply:
    """``POST /oauth/v1/token`` (form-encoded) → token_type, refresh/access token, expires_in."""
    content_type = ctx.request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" not in content_type:
        return _oauth_error(
            "BAD_REQUEST", "The request body must be application/x-www-form-urlencoded."
        )
    form = dict(parse_qsl(ctx.raw_body.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return Reply(200, account.tokens.grant(form))
    except OAuthError as exc:
        return _oauth_error(exc.status, exc.message)


def access_token_info(account: Account, ctx: Ctx) -> Reply:
    """``GET /oauth/v1/access-tokens/{token}``."""
    info = account.tokens.access_token_info(ctx.path("token"))
    if info is None:
        return _oauth_error("error", "The access token is invalid or expired.", 404)
    return Reply(200, info)


def refresh_token_info(account: Account, ctx: Ctx) -> Reply:
    """``GET /oauth/v1/refresh-tokens/{token}``."""
    credentials = account.credentials
    if ctx.path("token") != credentials.refresh_token:
        return _oauth_error("error", "The refresh token is invalid.", 404)
    return Reply(
        200,
        {
            "token": credentials.refresh_token,
            "user": "admin@stagelink-demo.example",
            "hub_domain": credentials.hub_domain,
            "hub_id": credentials.portal_id,
            "client_id": credentials.client_id,
            "user_id": 9_000_001,
            "token_type": "refresh",
        },
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/oauth/v1/token", token, "token", auth="none", limits="none"),
    Endpoint(
        "GET",
        "/oauth/v1/access-tokens/{token}",
        access_token_info,
        "token",
        auth="none",
        limits="none",
    ),
    Endpoint(
        "GET",
        "/oauth/v1/refresh-tokens/{token}",
        refresh_token_info,
        "token",
        auth="none",
        limits="none",
    ),
]
