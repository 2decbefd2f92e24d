"""The ASGI application: login endpoints, the REST API pipeline and ``/__admin``.

Every API request (``/services/data/…``) goes through the same steps, in this order:

1. route it and count it in the call log under its kind;
2. consult the fault plan (``SLOW`` sleeps then continues; other faults answer here);
3. authenticate ``Authorization: Bearer`` → 401 ``[{"errorCode": "INVALID_SESSION_ID"}]``;
4. count it against the daily allocation → 403 ``REQUEST_LIMIT_EXCEEDED`` once spent;
5. run the handler on a worker thread (SQLite work never blocks the event loop);
6. add ``Sforce-Limit-Info: api-usage=N/M``.

Login endpoints (``/services/oauth2/token``, ``/services/Soap/u/{v}``) skip steps 3-4 and
only see faults injected for them explicitly. ``/__admin`` is exempt from everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from sandbox.common import Fault, FaultKind
from sandbox.salesforce import rest, routes
from sandbox.salesforce.errors import ApiError, RecordError
from sandbox.salesforce.mutator import Mutator
from sandbox.salesforce.org import Org
from sandbox.salesforce.wire import JSON_TYPE, ApiRequest, ApiResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"^v(\d{2}\.\d)$")
_SOAP = re.compile(r"^/services/Soap/u/(\d{2}\.\d)/?$")
_INVALID_SESSION = ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
_LIMIT_EXCEEDED = ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
_SERVER_ERRORS = {
    500: ApiError(
        500,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1720406577-152391 (-1203526283)",
    ),
    502: ApiError(502, "SERVER_UNAVAILABLE", "Bad gateway: the server is temporarily unavailable"),
    503: ApiError(
        503, "SERVER_UNAVAILABLE", "Server temporarily unavailable; please try again later"
    ),
}
# What a MALFORMED fault sends: a JSON document cut short.
_TRUNCATED_JSON = b'{"totalSize": 12, "done": false, "records": [{"attributes": {"type": "Acc'


class _DropConnection(Exception):
    """Raised after a partial response so the server closes the connection."""


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False).encode()
    return Response(content, status_code=status, headers=headers, media_type=JSON_TYPE)


def _error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    return _json_response(error.status, error.body(), headers)


class SalesforceApp:
    """ASGI callable serving one :class:`Org`."""

    def __init__(self, org: Org, mutator: Mutator) -> None:
        self.org = org
        self.mutator = mutator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        # raw_path keeps percent-encoding: an external id may contain an encoded "/".
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        try:
            response = await self._handle(request, path)
        except _DropConnection:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"totalSize": ', "more_body": True})
            raise
        await response(scope, receive, send)

    async def _handle(self, request: Request, path: str) -> Response:
        if path.startswith("/__admin/"):
            return await self._admin(request, path)
        if path.rstrip("/") == "/services/oauth2/token":
            return await self._token(request, path)
        soap = _SOAP.match(path)
        if soap:
            return await self._soap(request, path, soap.group(1))
        if path.rstrip("/") == "/services/data":
            self.org.calls.record("versions")
            fault = self.org.faults.next_fault(path)
            if fault is not None and fault.kind is FaultKind.SLOW:
                await asyncio.sleep(fault.delay_seconds)
            elif fault is not None:
                return await self._fault(fault, request)
            return _json_response(200, rest.versions())
        if path.startswith("/services/data/"):
            return await self._api(request, path)
        return _error_response(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))

    # -- the API pipeline -------------------------------------------------------------------

    async def _api(self, request: Request, path: str) -> Response:
        parts = path[len("/services/data/") :].split("/")
        version = _VERSION.match(parts[0])
        if version is None:
            self.org.calls.record("unknown")
            return _error_response(
                ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            )
        segments = tuple(unquote(s) for s in parts[1:] if s)
        method = request.method.upper()
        route = routes.route(method, segments)
        self.org.calls.record(route.kind)
        fault = self.org.faults.next_fault(path)
        if fault is not None:
            if fault.kind is FaultKind.SLOW:
                await asyncio.sleep(fault.delay_seconds)
            else:
                return await self._fault(fault, request)
        session = self.org.sessions.resolve(_bearer(request))
        if session is None:
            return _error_response(_INVALID_SESSION)
        if not self.org.usage.consume():
            return _error_response(_LIMIT_EXCEEDED, {"Sforce-Limit-Info": self.org.usage.header()})
        api_request = ApiRequest(
            method=method,
            version=version.group(1),
            segments=segments,
            query=dict(parse_qsl(request.url.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
            session=session,
        )
        answer = await run_in_threadpool(self._serve, route, api_request)
        headers = {**answer.headers, "Sforce-Limit-Info": self.org.usage.header()}
        if answer.stream is not None:
            return StreamingResponse(
                answer.stream,
                status_code=answer.status,
                headers=headers,
                media_type=answer.media_type,
            )
        if answer.empty:
            return Response(status_code=answer.status, headers=headers)
        return _json_response(answer.status, answer.body, headers)

    def _serve(self, route: routes.Route, request: ApiRequest) -> ApiResponse:
        try:
            return route.handler(request.method)(self.org, request)
        except ApiError as error:
            return ApiResponse.error(error)
        except RecordError as error:
            return ApiResponse.error(error.to_api_error())
        except Exception:  # an emulator bug must still answer like Salesforce would
            logger.exception("unhandled error serving %s %s", request.method, request.path)
            return ApiResponse.error(_SERVER_ERRORS[500])

    async def _fault(self, fault: Fault, request: Request) -> Response:
        kind = fault.kind
        if kind is FaultKind.RATE_LIMIT:
            return _error_response(_LIMIT_EXCEEDED, {"Sforce-Limit-Info": self.org.usage.header()})
        if kind is FaultKind.SERVER_ERROR:
            return _error_response(_SERVER_ERRORS.get(fault.status or 503, _SERVER_ERRORS[503]))
        if kind is FaultKind.SESSION_EXPIRY:
            self.org.sessions.revoke(_bearer(request))
            return _error_response(_INVALID_SESSION)
        if kind is FaultKind.MALFORMED:
            return Response(_TRUNCATED_JSON, status_code=200, media_type=JSON_TYPE)
        raise _DropConnection  # FaultKind.DROP

    # -- logins -------------------------------------------------------------------------------

    async def _login_fault(self, request: Request, path: str) -> Response | None:
        fault = self.org.faults.next_auth_fault(path)
        if fault is None:
            return None
        if fault.kind is FaultKind.SLOW:
            await asyncio.sleep(fault.delay_seconds)
            return None
        if fault.kind is FaultKind.SESSION_EXPIRY:
            return _json_response(
                400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
            )
        return await self._fault(fault, request)

    async def _token(self, request: Request, path: str) -> Response:
        self.org.calls.record("token")
        faulted = await self._login_fault(request, path)
        if faulted is not None:
            return faulted
        if request.method != "POST":
            return _json_response(
                400, {"error": "invalid_request", "error_description": "must use HTTP POST"}
            )
        body = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        answer = self.org.auth.token(form, request.headers.get("authorization"))
        return _json_response(
            answer.status,
            answer.body,
            {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"},
        )

    async def _soap(self, request: Request, path: str, version: str) -> Response:
        self.org.calls.record("soap_login")
        faulted = await self._login_fault(request, path)
        if faulted is not None:
            return faulted
        status, xml = self.org.auth.soap_login(await request.body(), version)
        return Response(xml, status_code=status, media_type="text/xml;charset=UTF-8")

    # -- admin ---------------------------------------------------------------------------------

    async def _admin(self, request: Request, path: str) -> Response:
        org = self.org
        method = request.method.upper()
        action = path[len("/__admin/") :].rstrip("/")
        try:
            if action == "calls" and method == "GET":
                return _json_response(200, org.calls.snapshot())
            if action == "calls/reset" and method == "POST":
                org.calls.reset()
                return _json_response(200, {"ok": True})
            if action == "faults" and method == "POST":
                return _json_response(200, _configure_faults(org, await _json_body(request)))
            if action == "faults/clear" and method == "POST":
                org.faults.clear()
                return _json_response(200, {"ok": True})
            if action == "expire-sessions" and method == "POST":
                return _json_response(200, {"expired": org.sessions.expire_all()})
            if action == "api-limit" and method == "POST":
                body = await _json_body(request)
                org.usage.set_limit(int(body["max_requests"]))
                if body.get("reset_usage"):
                    org.usage.reset()
                return _json_response(200, {"limit": org.usage.limit, "used": org.usage.used})
            if action == "mutate" and method == "POST":
                body = await _json_body(request)
                summary = await run_in_threadpool(
                    self.mutator.mutate,
                    edits=int(body.get("edits", 0)),
                    deletes=int(body.get("deletes", 0)),
                    creates=int(body.get("creates", 0)),
                    shared_timestamp=bool(body.get("shared_timestamp", True)),
                )
                data = asdict(summary)
                data["timestamps"] = [t.isoformat() for t in summary.timestamps]
                return _json_response(200, data)
            if action.startswith("records/") and method == "GET":
                sobject = unquote(action[len("records/") :])
                include_deleted = request.query_params.get("include_deleted", "") == "true"
                rows = await run_in_threadpool(
                    self.mutator.records, sobject, include_deleted=include_deleted
                )
                return _json_response(200, {"totalSize": len(rows), "records": rows})
        except (KeyError, ValueError, TypeError) as error:
            return _json_response(400, {"error": str(error)})
        return _json_response(404, {"error": f"no admin action {method} {action}"})


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    data = json.loads(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise TypeError("the admin request body must be a JSON object")
    return data


def _configure_faults(org: Org, body: dict[str, Any]) -> dict[str, Any]:
    kinds = [FaultKind(k) for k in body["kinds"]] if "kinds" in body else None
    org.faults.configure(
        rate=float(body["rate"]) if "rate" in body else None,
        kinds=kinds,
        seed=int(body["seed"]) if "seed" in body else None,
        slow_delay_seconds=(
            float(body["slow_delay_seconds"]) if "slow_delay_seconds" in body else None
        ),
    )
    for item in body.get("inject", []):
        org.faults.inject(
            FaultKind(item["kind"]),
            count=int(item.get("count", 1)),
            path_prefix=str(item.get("path_prefix", "/")),
            status=int(item["status"]) if item.get("status") is not None else None,
            delay_seconds=(
                float(item["delay_seconds"]) if item.get("delay_seconds") is not None else None
            ),
        )
    return {"rate": org.faults.rate, "kinds": [k.value for k in org.faults.kinds]}


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "oauth") else ""
