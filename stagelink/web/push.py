"""Web Push subscriptions for stage-change nudges.

The rep's page asks the browser for a subscription with the server's VAPID key and
stores it here, authenticated by the page's session bearer (``sls_...``, see
:meth:`~stagelink.surfaces.links.LinkSigner.session_token`)::

    GET    /api/v1/push/vapid-public-key   → {"public_key": "<base64url>"}
    POST   /api/v1/push/subscriptions      Authorization: Bearer sls_...
           {"endpoint": "https://fcm.googleapis.com/...", "expirationTime": null,
            "keys": {"p256dh": "...", "auth": "..."}}          → 201 (new) / 200 (updated)
    DELETE /api/v1/push/subscriptions      Authorization: Bearer sls_...
           {"endpoint": "..."}  (or ?endpoint=...)               → 204 / 404

Errors are ``{"code", "message", "errors": [{"loc", "message"}]}``: 401 ``missing_token``
/ ``invalid_token``, 400 ``malformed_json``, 413 ``body_too_large``, 422
``invalid_subscription`` (each bad field named), 404 ``push_not_configured`` when
``nudges.vapid`` is not set, 404 ``not_found`` for deleting an unknown subscription.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from stagelink.nudges.config import VapidSettings
from stagelink.nudges.service import nudge_settings
from stagelink.nudges.subscriptions import (
    PushSubscriptionIn,
    SubscriptionError,
    delete_subscription,
    save_subscription,
    validate,
)
from stagelink.storage import utcnow
from stagelink.surfaces.links import LinkError, SessionGrant
from stagelink.web.deps import SignerDep, WebStateDep

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/push", tags=["push"])

#: A subscription is well under 1 KB; anything much larger is not one.
_MAX_BODY = 8_192


@router.get("/vapid-public-key")
async def vapid_public_key(state: WebStateDep) -> JSONResponse:
    """The key the page passes to ``pushManager.subscribe({applicationServerKey})``."""
    vapid = _vapid(state.config)
    if vapid is None:
        return _not_configured()
    return JSONResponse(
        {"public_key": vapid.public_key}, headers={"Cache-Control": "public, max-age=3600"}
    )


@router.post("/subscriptions")
async def subscribe(request: Request, state: WebStateDep, signer: SignerDep) -> Response:
    """Store the browser's subscription for the session's rep."""
    vapid = _vapid(state.config)
    if vapid is None:
        return _not_configured()
    checked = _grant(request, signer)
    if isinstance(checked, Response):
        return checked
    grant: SessionGrant = checked
    parsed = await _body(request)
    if isinstance(parsed, Response):
        return parsed
    try:
        data = PushSubscriptionIn.model_validate(parsed)
        validate(data, vapid)
    except ValidationError as exc:
        errors = [
            {"loc": [str(part) for part in error["loc"]], "message": error["msg"]}
            for error in exc.errors()
        ]
        return _error(422, "invalid_subscription", "the subscription is not valid", errors)
    except SubscriptionError as exc:
        errors = [{"loc": exc.field.split("."), "message": exc.message}]
        return _error(422, "invalid_subscription", str(exc), errors)

    def store() -> bool:
        with state.storage.sessions.begin() as session:
            saved = save_subscription(
                session,
                data,
                rep=grant.rep,
                connection=grant.connection,
                user_agent=request.headers.get("user-agent"),
                now=utcnow(),
            )
            return saved.created

    created = await to_thread.run_sync(store)
    log.info("push_subscribed", rep=grant.rep, created=created)
    return JSONResponse(
        {"rep": grant.rep, "endpoint": data.endpoint, "created": created},
        status_code=201 if created else 200,
    )


@router.delete("/subscriptions")
async def unsubscribe(request: Request, state: WebStateDep, signer: SignerDep) -> Response:
    """Forget one of the session rep's subscriptions (the browser unsubscribed)."""
    checked = _grant(request, signer)
    if isinstance(checked, Response):
        return checked
    grant: SessionGrant = checked
    given = request.query_params.get("endpoint")
    if given is None:
        parsed = await _body(request)
        if isinstance(parsed, Response):
            return parsed
        value = parsed.get("endpoint") if isinstance(parsed, dict) else None
        if not isinstance(value, str) or not value:
            errors = [{"loc": ["endpoint"], "message": "Field required"}]
            return _error(422, "invalid_subscription", "name the endpoint to remove", errors)
        given = value
    endpoint: str = given

    def remove() -> bool:
        with state.storage.sessions.begin() as session:
            return delete_subscription(session, rep=grant.rep, endpoint=endpoint)

    if not await to_thread.run_sync(remove):
        return _error(404, "not_found", "no such subscription for this rep")
    log.info("push_unsubscribed", rep=grant.rep)
    return Response(status_code=204)


# -- helpers --------------------------------------------------------------------------------


def _vapid(config: Any) -> VapidSettings | None:
    settings = nudge_settings(config)
    return settings.vapid if settings.enabled else None


def _grant(request: Request, signer: SignerDep) -> SessionGrant | Response:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(
            401,
            "missing_token",
            "send the page's session token: Authorization: Bearer sls_...",
            headers={"WWW-Authenticate": 'Bearer realm="stagelink"'},
        )
    try:
        return signer.read_session_token(token.strip())
    except LinkError as exc:
        log.info("push_token_refused", reason=exc.reason)
        return _error(
            401,
            "invalid_token",
            "the session token is not valid (expired or not a page session); reload the page",
            headers={"WWW-Authenticate": 'Bearer realm="stagelink", error="invalid_token"'},
        )


async def _body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > _MAX_BODY:
        return _error(413, "body_too_large", f"the body is over {_MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            return _error(413, "body_too_large", f"the body is over {_MAX_BODY} bytes")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "malformed_json", "the body is not JSON")


def _not_configured() -> JSONResponse:
    return _error(
        404, "push_not_configured", "push notifications are not configured (nudges.vapid)"
    )


def _error(
    status: int,
    code: str,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, "errors": errors or []}
    return JSONResponse(body, status_code=status, headers=headers)
