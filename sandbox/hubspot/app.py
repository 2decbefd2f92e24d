"""The ASGI application: routing, auth, rate limits, call counting, fault injection, admin API.

Request path, outermost first:

1. :class:`FaultLayer` asks ``faults.next_fault(path)`` (admin paths are exempt) and, when a
   fault fires, answers in HubSpot's wire format instead of (or around) the real handler:
   ``RATE_LIMIT`` → 429 ``TEN_SECONDLY_ROLLING`` with rate-limit headers; ``SERVER_ERROR`` →
   500/502/503 JSON body (``status=207`` on a batch path: some inputs fail, see
   :mod:`sandbox.hubspot.api_objects`); ``SLOW`` → sleep, then answer; ``DROP`` → headers and
   half a body, then the connection is cut; ``SESSION_EXPIRY`` → the caller's OAuth token is
   expired and 401 ``EXPIRED_AUTHENTICATION`` (a private-app token gets one 401
   ``INVALID_AUTHENTICATION``); ``MALFORMED`` → the real answer, as 200, truncated mid-JSON.
2. Starlette routing to the endpoint table of the ``api_*`` modules.
3. The endpoint wrapper: correlation id, authentication, rate limits, ``calls.record(kind)``,
   the handler, and :class:`HubSpotError` → error body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.common import FaultKind
from sandbox.hubspot import api_associations, api_meta, api_oauth, api_objects, api_timeline
from sandbox.hubspot.account import Account
from sandbox.hubspot.auth import Caller
from sandbox.hubspot.errors import HubSpotError, correlation_id, invalid_authentication
from sandbox.hubspot.http import (
    JSON_TYPE,
    PARTIAL_FAULT_KEY,
    Ctx,
    Endpoint,
    Reply,
    encode_json,
)
from sandbox.hubspot.ratelimit import RateLimitExceeded, rate_limit_body

ENDPOINTS: list[Endpoint] = [
    *api_objects.ENDPOINTS,
    *api_associations.ENDPOINTS,
    *api_meta.ENDPOINTS,
    *api_timeline.ENDPOINTS,
    *api_oauth.ENDPOINTS,
]

_SERVER_ERROR_MESSAGES = {
    500: "internal error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ConnectionDropped(Exception):
    """Raised after a partial response so the server cuts the connection (DROP fault)."""


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return Response(encode_json(body), status_code=status, headers=headers, media_type=JSON_TYPE)


def _error_response(
    error: HubSpotError, correlation: str, headers: dict[str, str] | None = None
) -> Response:
    merged = {"X-HubSpot-Correlation-Id": correlation, **(headers or {}), **error.headers}
    return _response(error.status_code, error.body(correlation), merged)


def _rate_limited(exc: RateLimitExceeded) -> Response:
    correlation = str(exc.body["correlationId"])
    return _response(429, exc.body, {"X-HubSpot-Correlation-Id": correlation, **exc.headers})


def _authenticate(account: Account, endpoint: Endpoint, request: Request) -> Caller | None:
    if endpoint.auth == "none":
        return None
    if endpoint.auth == "hapikey":
        if request.query_params.get("hapikey") != account.credentials.developer_api_key:
            raise invalid_authentication()
        return Caller("hapikey", "private_app", "developer")
    return account.tokens.authenticate(
        request.headers.get("authorization"), oauth_only=endpoint.auth == "oauth"
    )


def _wrap(account: Account, endpoint: Endpoint) -> Any:
    async def serve(request: Request) -> Response:
        body = await request.body()
        correlation = correlation_id()
        try:
            caller = _authenticate(account, endpoint, request)
        except HubSpotError as exc:
            account.calls.record("auth_error")
            return _error_response(exc, correlation)
        rate_headers: dict[str, str] = {}
        try:
            if caller is not None and endpoint.limits == "standard":
                rate_headers = account.limiter.check_standard(
                    caller.rate_key, private=caller.kind == "private_app"
                )
            elif caller is not None and endpoint.limits == "search":
                account.limiter.check_search(caller.rate_key)
        except RateLimitExceeded as exc:
            account.calls.record("rate_limited")
            return _rate_limited(exc)
        account.calls.record(endpoint.kind)
        ctx = Ctx(request, body, caller, correlation)
        try:
            reply = endpoint.handler(account, ctx)
        except HubSpotError as exc:
            return _error_response(exc, correlation, rate_headers)
        headers = {"X-HubSpot-Correlation-Id": correlation, **rate_headers, **reply.headers}
        return _response(reply.status, reply.body, headers)

    return serve


# --------------------------------------------------------------------------- admin


def _admin_routes(account: Account, sandbox: Any) -> list[Route]:
    """``/__admin/*``: no auth, never faulted (FaultPlan exempts the prefix)."""

    async def calls(request: Request) -> Response:
        return _response(200, account.calls.snapshot())

    async def calls_reset(request: Request) -> Response:
        account.calls.reset()
        return _response(204, None)

    async def faults(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        kinds = body.get("kinds")
        try:
            account.faults.configure(
                rate=body.get("rate"),
                kinds=[FaultKind(kind) for kind in kinds] if kinds is not None else None,
                seed=body.get("seed"),
                slow_delay_seconds=body.get("slow_delay_seconds"),
            )
            for item in body.get("inject", []):
                account.faults.inject(
                    FaultKind(item["kind"]),
                    count=int(item.get("count", 1)),
                    path_prefix=str(item.get("path_prefix", "/")),
                    status=item.get("status"),
                    delay_seconds=item.get("delay_seconds"),
                )
        except (ValueError, KeyError) as exc:
            return _response(400, {"status": "error", "message": str(exc)})
        return _response(200, {"injected": dict(account.faults.injected)})

    async def faults_clear(request: Request) -> Response:
        account.faults.clear()
        return _response(204, None)

    async def expire_tokens(request: Request) -> Response:
        return _response(200, {"expired": account.tokens.expire_all()})

    async def mutate(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        summary = sandbox.mutate(
            edits=int(body.get("edits", 0)),
            deletes=int(body.get("deletes", 0)),
            creates=int(body.get("creates", 0)),
            shared_timestamp=bool(body.get("shared_timestamp", True)),
        )
        return _response(200, summary.to_json())

    async def rate_limits(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        sandbox.set_rate_limits(
            ten_second=body.get("ten_second"),
            daily=body.get("daily"),
            search_per_second=body.get("search_per_second"),
            retry_after=body.get("retry_after"),
        )
        if "search_lag_seconds" in body:
            sandbox.set_search_lag(float(body["search_lag_seconds"]))
        return _response(204, None)

    async def objects(request: Request) -> Response:
        archived = request.query_params.get("archived", "false").lower() == "true"
        try:
            found = sandbox.objects(request.path_params["object_type"], archived=archived)
        except ValueError as exc:
            return _response(400, {"status": "error", "message": str(exc)})
        return _response(200, {"results": found, "total": len(found)})

    return [
        Route("/__admin/calls", calls, methods=["GET"]),
        Route("/__admin/calls/reset", calls_reset, methods=["POST"]),
        Route("/__admin/faults", faults, methods=["POST"]),
        Route("/__admin/faults/clear", faults_clear, methods=["POST"]),
        Route("/__admin/expire-tokens", expire_tokens, methods=["POST"]),
        Route("/__admin/mutate", mutate, methods=["POST"]),
        Route("/__admin/rate-limits", rate_limits, methods=["POST"]),
        Route("/__admin/objects/{object_type}", objects, methods=["GET"]),
    ]


# --------------------------------------------------------------------------- faults


class FaultLayer:
    """ASGI middleware that applies :class:`sandbox.common.FaultPlan` decisions."""

    def __init__(self, app: ASGIApp, account: Account) -> None:
        self.app = app
        self.account = account

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = self.account.faults.next_fault(scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        token = self.account.tokens.token_from_header(request.headers.get("authorization"))
        private = token == self.account.credentials.private_app_token
        calls = self.account.calls
        if fault.kind is FaultKind.SLOW:
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        elif fault.kind is FaultKind.RATE_LIMIT:
            calls.record("rate_limited")
            key = "private-app" if private else self.account.tokens.oauth_rate_key
            headers = self.account.limiter.fault_headers(key, private=private)
            body = rate_limit_body("TEN_SECONDLY_ROLLING")
            await _rate_limited(RateLimitExceeded("TEN_SECONDLY_ROLLING", body, headers))(
                scope, receive, send
            )
        elif fault.kind is FaultKind.SERVER_ERROR and fault.status == 207:
            scope[PARTIAL_FAULT_KEY] = True
            await self.app(scope, receive, send)
        elif fault.kind is FaultKind.SERVER_ERROR:
            calls.record("faulted")
            status = fault.status or 500
            correlation = correlation_id()
            error = HubSpotError(
                status, "INTERNAL_ERROR", _SERVER_ERROR_MESSAGES.get(status, "internal error")
            )
            await _error_response(error, correlation)(scope, receive, send)
        elif fault.kind is FaultKind.SESSION_EXPIRY:
            calls.record("faulted")
            await self._session_expiry(token)(scope, receive, send)
        elif fault.kind is FaultKind.DROP:
            calls.record("faulted")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", JSON_TYPE.encode()),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send(
                {"type": "http.response.body", "body": b'{"results":[{"id":"', "more_body": True}
            )
            raise ConnectionDropped("sandbox fault: connection dropped mid-response")
        else:  # MALFORMED
            await self._malformed(scope, receive, send)

    def _session_expiry(self, token: str | None) -> Response:
        correlation = correlation_id()
        tokens = self.account.tokens
        if token is not None and tokens.expire(token):
            try:
                tokens.authenticate(f"Bearer {token}")
            except HubSpotError as exc:
                return _error_response(exc, correlation)
        return _error_response(invalid_authentication(), correlation)

    async def _malformed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the real handler, then send its body cut in half as a 200."""
        captured: dict[str, Any] = {"headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, receive, capture)
        body: bytes = captured["body"]
        cut = body[: len(body) // 2] if len(body) > 8 else b'{"status":"COMPL'
        headers = [
            (name, value)
            for name, value in captured["headers"]
            if name.lower() not in (b"content-length", b"content-type")
        ]
        headers += [
            (b"content-type", JSON_TYPE.encode()),
            (b"content-length", str(len(cut)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": cut})


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    correlation = correlation_id()
    error = HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to route {scope.get('path')}.")
    await _error_response(error, correlation)(scope, receive, send)


def build_app(account: Account, sandbox: Any) -> ASGIApp:
    """The complete ASGI app for one account. ``sandbox`` backs the admin endpoints."""
    routes = [Route(e.path, _wrap(account, e), methods=[e.method]) for e in ENDPOINTS]
    routes += _admin_routes(account, sandbox)
    router = Router(routes=routes, redirect_slashes=False, default=_not_found)
    return FaultLayer(router, account)


__all__ = ["ENDPOINTS", "ConnectionDropped", "Reply", "build_app"]
