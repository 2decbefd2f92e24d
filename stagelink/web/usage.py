"""The usage API: ``POST /api/v1/usage`` and ``POST /api/v1/usage/{client_event_id}/assign``.

Pages and mobile apps queue what reps do with content and send it in batches::

    POST /api/v1/usage
    Authorization: Bearer slk_...
    {"events": [{"client_event_id": "6f1c...", "connection": "acme-hubspot",
                 "opportunity_id": "301", "content_id": "roi-calculator",
                 "action": "presented", "occurred_at": "2024-05-01T09:30:00+02:00"}]}

    200 {"results": [{"index": 0, "client_event_id": "6f1c...", "status": "accepted",
                      "duplicate": false, "reason": null}], "counts": {"accepted": 1, ...}}

A structurally valid batch always gets 200 with one result per event (accepted, held,
unassigned or rejected with a reason; ``duplicate: true`` for ids received before), so a
client drops what it got an answer for and retries the rest. Everything else is an
error body ``{"code", "message", "errors": [{"loc", "type", "message", "index",
"client_event_id"}], "limit"}`` and stores nothing:

=== ================================================================================
401 ``missing_token`` / ``invalid_token`` (unknown, revoked, expired)
403 ``insufficient_scope``; for assign: ``forbidden`` (not this token's event)
400 ``malformed_json``
413 ``batch_too_large`` (more than 500 events) / ``body_too_large`` (over 1 MB)
422 ``invalid_request``: wrong types, missing fields, bad ids, dates without offset...
404 ``not_found`` / 409 ``conflict`` (assign)
503 ``unavailable``: the database could not be reached; retry later
=== ================================================================================
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from stagelink.storage import StorageError, UsageStatus
from stagelink.usage import (
    AssignConflict,
    AssignForbidden,
    AuthError,
    EventNotFound,
    IntakeLimits,
    TokenInfo,
    UsageService,
)
from stagelink.usage.models import (
    AssignIn,
    AssignResult,
    BatchResult,
    ErrorBody,
    ErrorDetail,
    UsageBatchIn,
)
from stagelink.web.bodies import BodyTooLarge, read_limited
from stagelink.web.deps import WebState

__all__ = ["router", "usage_service"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_ASSIGN_BODY_LIMIT = 10_000
_service_lock = threading.Lock()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the app's :class:`UsageService` at startup (unless one was put in
    ``app.state.usage``) and close it at shutdown, finishing queued resolutions."""
    owned: UsageService | None = None
    if getattr(app.state, "usage", None) is None:
        owned = await to_thread.run_sync(_build_service, app)
    try:
        yield
    finally:
        if owned is not None:
            await to_thread.run_sync(owned.close)
            app.state.usage = None


router = APIRouter(prefix="/api/v1", tags=["usage"], lifespan=_lifespan)


def _build_service(app: FastAPI) -> UsageService:
    with _service_lock:
        existing: UsageService | None = getattr(app.state, "usage", None)
        if existing is not None:
            return existing
        state: WebState = app.state.stagelink
        service = UsageService(
            state.config,
            state.storage,
            limits=IntakeLimits(max_body_bytes=state.max_body_bytes),
            signer=state.signer,
        )
        app.state.usage = service
        return service


def usage_service(app: FastAPI) -> UsageService:
    """The app's usage service (built on first use when the lifespan did not run)."""
    existing: UsageService | None = getattr(app.state, "usage", None)
    return existing if existing is not None else _build_service(app)


# -- responses -------------------------------------------------------------------------------


def _error(
    status: int,
    code: str,
    message: str,
    *,
    errors: list[ErrorDetail] | None = None,
    limit: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody.model_validate(
        {"code": code, "message": message, "errors": errors or [], "limit": limit}
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _auth_error(exc: AuthError) -> JSONResponse:
    # RFC 6750 §3: say which scheme and what went wrong.
    error = "insufficient_scope" if exc.status == 403 else "invalid_token"
    challenge = f'Bearer realm="stagelink", error="{error}"'
    if exc.code == "missing_token":
        challenge = 'Bearer realm="stagelink"'
    return _error(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": challenge})


def _unavailable(exc: Exception) -> JSONResponse:
    log.warning("usage_api_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
    return _error(
        503, "unavailable", "the database is unavailable; retry later", headers={"Retry-After": "5"}
    )


def _internal_error(what: str) -> JSONResponse:
    # Logged with the traceback; the client gets a stable code and may retry (idempotent).
    log.exception("usage_api_failed", request=what)
    return _error(500, "internal_error", "stagelink failed to process the request; retry later")


def _parse_json(body: bytes) -> tuple[Any, JSONResponse | None]:
    try:
        return json.loads(body), None
    except UnicodeDecodeError:
        return None, _error(400, "malformed_json", "the body is not UTF-8 text")
    except json.JSONDecodeError as exc:
        return None, _error(
            400,
            "malformed_json",
            f"the body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        )


def _field_errors(exc: ValidationError, data: Any) -> list[ErrorDetail]:
    raw_events = data.get("events") if isinstance(data, dict) else None
    details: list[ErrorDetail] = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = list(error["loc"])
        index = loc[1] if len(loc) > 1 and loc[0] == "events" and isinstance(loc[1], int) else None
        client_event_id = None
        if index is not None and isinstance(raw_events, list) and index < len(raw_events):
            raw = raw_events[index]
            candidate = raw.get("client_event_id") if isinstance(raw, dict) else None
            client_event_id = candidate[:100] if isinstance(candidate, str) else None
        details.append(
            ErrorDetail(
                loc=loc,
                type=error["type"],
                message=error["msg"],
                index=index,
                client_event_id=client_event_id,
            )
        )
    return details


async def _authenticate(request: Request, service: UsageService) -> TokenInfo | JSONResponse:
    header = request.headers.get("authorization")
    try:
        return await to_thread.run_sync(service.authenticate, header)
    except AuthError as exc:
        log.info("usage_api_refused", code=exc.code, reason=exc.message)
        return _auth_error(exc)
    except (DBAPIError, StorageError) as exc:
        return _unavailable(exc)


async def _in_thread(function: Callable[[], _T]) -> _T:
    return await to_thread.run_sync(function)


# -- routes ----------------------------------------------------------------------------------


@router.post(
    "/usage",
    response_model=BatchResult,
    responses={
        400: {"model": ErrorBody},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        413: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def post_usage(request: Request) -> JSONResponse:
    """Record a batch of usage events (see the module docstring for the contract)."""
    service = usage_service(request.app)
    token = await _authenticate(request, service)
    if isinstance(token, JSONResponse):
        return token
    limits = service.limits
    try:
        body = await read_limited(request, limits.max_body_bytes)
    except BodyTooLarge:
        return _error(
            413,
            "body_too_large",
            f"the body is over {limits.max_body_bytes:,} bytes; send fewer events per batch",
            limit=limits.max_body_bytes,
        )
    data, problem = _parse_json(body)
    if problem is not None:
        return problem
    events = data.get("events") if isinstance(data, dict) else None
    if isinstance(events, list) and len(events) > limits.max_events:
        return _error(
            413,
            "batch_too_large",
            f"{len(events)} events in one batch; at most {limits.max_events} are taken",
            limit=limits.max_events,
        )
    try:
        batch = UsageBatchIn.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc, data)
        return _error(
            422, "invalid_request", f"{len(errors)} problem(s); nothing was stored", errors=errors
        )
    try:
        results = await _in_thread(lambda: service.ingest(token, batch.events))
    except (DBAPIError, StorageError) as exc:
        return _unavailable(exc)
    except Exception:
        return _internal_error("usage batch")
    counts = dict.fromkeys((s.value for s in UsageStatus), 0)
    counts.update(Counter(r.status.value for r in results))
    counts["duplicate"] = sum(r.duplicate for r in results)
    return JSONResponse(BatchResult(results=results, counts=counts).model_dump(mode="json"))


@router.post(
    "/usage/{client_event_id}/assign",
    response_model=AssignResult,
    responses={
        400: {"model": ErrorBody},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
async def assign_usage(client_event_id: str, request: Request) -> JSONResponse:
    """Give an unassigned event its opportunity: ``{"opportunity_id": "..."}``."""
    service = usage_service(request.app)
    token = await _authenticate(request, service)
    if isinstance(token, JSONResponse):
        return token
    try:
        event_id = uuid.UUID(client_event_id)
    except ValueError:
        return _error(
            422,
            "invalid_request",
            "the path's client event id is not a UUID",
            errors=[
                ErrorDetail(
                    loc=["path", "client_event_id"], type="uuid_parsing", message="not a UUID"
                )
            ],
        )
    try:
        body = await read_limited(request, _ASSIGN_BODY_LIMIT)
    except BodyTooLarge:
        return _error(413, "body_too_large", "the body is too large", limit=_ASSIGN_BODY_LIMIT)
    data, problem = _parse_json(body)
    if problem is not None:
        return problem
    try:
        wanted = AssignIn.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc, data)
        return _error(422, "invalid_request", f"{len(errors)} problem(s)", errors=errors)
    try:
        result = await _in_thread(lambda: service.assign(token, event_id, wanted.opportunity_id))
    except EventNotFound as exc:
        return _error(404, "not_found", str(exc))
    except AssignForbidden as exc:
        return _error(403, "forbidden", str(exc))
    except AssignConflict as exc:
        return _error(409, "conflict", str(exc))
    except (DBAPIError, StorageError) as exc:
        return _unavailable(exc)
    except Exception:
        return _internal_error("usage assign")
    return JSONResponse(result.model_dump(mode="json"))
