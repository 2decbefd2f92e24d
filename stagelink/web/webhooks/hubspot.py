"""``POST /webhooks/hubspot/{connection}``: HubSpot's change notifications, verified and debounced.

HubSpot POSTs a JSON array of up to 100 events, signed with the app's client secret
(https://developers.hubspot.com/docs/api/webhooks, facts B9/B10). Deliveries that are not
answered with a 2xx quickly are retried for about a day, so the handler only verifies,
parses and hands the touched ids to the debouncer, then answers 204; the records are read
from the CRM (``Connector.read_ids``) and stored a moment later, in a worker thread.

What an event touches: every ``deal.*`` event touches that deal, every ``company.*`` event
that company — creation, deletion, property changes (``dealstage`` and all others), merges
and restores alike. The event's payload is never trusted as the record's state (events
arrive out of order); the read decides whether the record exists and what it looks like.

Refusals (each logged with its reason, never with the secret): unknown connection → 404;
no ``app_client_secret`` → 401; body over the limit → 413; bad, missing, stale or future
signature → 401; not a JSON array → 400; debouncer closed (shutting down) → 503 so HubSpot
retries.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, Response, status

from connectors.core.config import ConnectionConfig
from connectors.core.records import ObjectType
from connectors.hubspot.config import HubSpotConnectionConfig
from stagelink.sync.debounce import DebouncerClosed
from stagelink.web.bodies import BodyTooLarge, read_limited
from stagelink.web.deps import WebState, WebStateDep
from stagelink.web.signatures import SignatureError, verify_hubspot_request

__all__ = ["event_key", "request_uri", "router", "touched_records"]

log = structlog.get_logger(__name__)

router = APIRouter(tags=["webhooks"])

# ``deal.creation``, ``company.propertyChange``...: the prefix names the object type.
_PREFIXES = {"deal": ObjectType.OPPORTUNITY, "company": ObjectType.ACCOUNT}
# The next two follow HubSpot's webhooks page but are not in facts B10 (unconfirmed here);
# an event without these fields is simply handled by the rules above.
# Generic ``object.*`` subscriptions name the type by id instead (0-2 companies, 0-3 deals).
_TYPE_IDS = {"0-3": ObjectType.OPPORTUNITY, "0-2": ObjectType.ACCOUNT}
# A merge names the surviving record and the ones merged into it; all of them changed.
_ID_FIELDS = ("objectId", "primaryObjectId", "newObjectId")
_ID_LIST_FIELDS = ("mergedObjectIds",)


def touched_records(event: Mapping[str, Any]) -> tuple[ObjectType, list[str]] | None:
    """The object type and ids one webhook event touches (``None``: not a type we sync)."""
    subscription = event.get("subscriptionType")
    if not isinstance(subscription, str):
        return None
    prefix = subscription.split(".", 1)[0].lower()
    object_type = _PREFIXES.get(prefix)
    if object_type is None and prefix == "object":
        object_type = _TYPE_IDS.get(str(event.get("objectTypeId", "")))
    if object_type is None:
        return None
    values: list[Any] = [event.get(name) for name in _ID_FIELDS]
    for name in _ID_LIST_FIELDS:
        listed = event.get(name)
        if isinstance(listed, list):
            values.extend(listed)
    ids = list(dict.fromkeys(i for i in map(_crm_id, values) if i is not None))
    return (object_type, ids) if ids else None


def event_key(event: Mapping[str, Any]) -> tuple[Any, Any, Any] | None:
    """What identifies a delivery of one event: ``eventId`` alone is not unique (facts B10)."""
    key = (event.get("subscriptionId"), event.get("eventId"), event.get("occurredAt"))
    return None if None in key else key


def _crm_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    return None


def request_uri(request: Request, public_url: str | None) -> str:
    """The full URL HubSpot called, which its v3 signature covers.

    Behind a proxy the app sees another host (and maybe scheme or path prefix), so the
    configured public base URL replaces everything before the path. Path and query are
    taken as sent (still percent-encoded): the signature check decodes exactly the
    characters HubSpot decodes, no more.
    """
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    query = request.scope.get("query_string", b"").decode("latin-1")
    if public_url:
        base = public_url.rstrip("/")
    else:
        host = request.headers.get("host") or request.url.netloc
        base = f"{request.url.scheme}://{host}"
    return f"{base}{path}?{query}" if query else f"{base}{path}"


class _Refusal(Exception):
    """Why a delivery is refused: ``status`` for HubSpot, ``reason`` for our log."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


# What the caller is told: enough to act on, nothing about our configuration or secret.
_DETAILS = {
    status.HTTP_400_BAD_REQUEST: "body must be a JSON array of HubSpot webhook events",
    status.HTTP_401_UNAUTHORIZED: "invalid or missing HubSpot signature",
    status.HTTP_404_NOT_FOUND: "no HubSpot connection of that name",
    status.HTTP_413_CONTENT_TOO_LARGE: "request body too large",
    status.HTTP_503_SERVICE_UNAVAILABLE: "shutting down; retry later",
}


async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_limited(request, limit)
    except BodyTooLarge as exc:
        raise _Refusal(status.HTTP_413_CONTENT_TOO_LARGE, exc.detail) from None


@router.post(
    "/webhooks/hubspot/{connection}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def receive_hubspot_webhook(connection: str, request: Request, state: WebStateDep) -> None:
    """Verify a HubSpot webhook delivery and queue the records it touches for a sync."""
    try:
        await _receive(connection, request, state)
    except _Refusal as refusal:
        log.warning(
            "hubspot_webhook_refused",
            connection=connection[:100],
            status=refusal.status_code,
            reason=refusal.reason,
        )
        raise HTTPException(refusal.status_code, _DETAILS[refusal.status_code]) from None


async def _receive(connection: str, request: Request, state: WebState) -> None:
    settings = _connection(state.config.connections, connection)
    secret = settings.app_client_secret
    if secret is None:
        raise _Refusal(status.HTTP_401_UNAUTHORIZED, "no app_client_secret configured")
    body = await _read_body(request, state.max_body_bytes)
    try:
        version = verify_hubspot_request(
            client_secret=secret.reveal(),
            method=request.method,
            uri=request_uri(request, state.config.server.public_url),
            body=body,
            headers=request.headers,
            accept_legacy=state.accept_legacy_signatures,
        )
    except SignatureError as exc:
        raise _Refusal(status.HTTP_401_UNAUTHORIZED, exc.reason) from None
    try:
        events = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise _Refusal(status.HTTP_400_BAD_REQUEST, "body is not JSON") from None
    if not isinstance(events, list):
        raise _Refusal(status.HTTP_400_BAD_REQUEST, f"body is a JSON {type(events).__name__}")
    try:
        counts = _queue(state, settings, events)
    except DebouncerClosed:
        raise _Refusal(status.HTTP_503_SERVICE_UNAVAILABLE, "debouncer closed") from None
    log.info(
        "hubspot_webhook_accepted", connection=settings.name, signature_version=version, **counts
    )


def _connection(connections: Sequence[ConnectionConfig], name: str) -> HubSpotConnectionConfig:
    for candidate in connections:
        if candidate.name == name and isinstance(candidate, HubSpotConnectionConfig):
            return candidate
    raise _Refusal(status.HTTP_404_NOT_FOUND, "no HubSpot connection of that name")


def _queue(state: WebState, settings: HubSpotConnectionConfig, events: list[Any]) -> dict[str, int]:
    counts: Counter[str] = Counter(events=len(events))
    for event in events:
        if not isinstance(event, dict):
            counts["malformed"] += 1
            continue
        portal = event.get("portalId")
        if settings.portal_id is not None and portal is not None and portal != settings.portal_id:
            # A public app's secret signs every portal's events; only ours are ours.
            counts["other_portal"] += 1
            continue
        touched = touched_records(event)
        if touched is None:
            counts["ignored"] += 1
            continue
        object_type, ids = touched
        if state.debouncer.touch(settings.name, object_type, ids, event_key=event_key(event)):
            counts["queued"] += 1
        else:
            counts["duplicates"] += 1
    return dict(counts)
