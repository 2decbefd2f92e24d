"""``GET /api/v1/hubspot/card/{connection}?dealId=...``: the HubSpot app card's data.

The card (``apps/hubspot-card/``, a UI extension) calls this through ``hubspot.fetch``.
HubSpot proxies the call, appends ``userId``, ``userEmail``, ``portalId`` and ``appId`` to
the query and signs the whole request with the app's client secret (v3: HMAC-SHA256 over
method, full URL, body and a millisecond timestamp; see :mod:`stagelink.web.signatures`).
So the query — which deal, which HubSpot user, which portal — is as trustworthy as the
signature, and the rep is the signed ``userEmail``.

Only v3 is accepted here, whatever ``accept_legacy_signatures`` says: a v1 signature of a
GET covers nothing but the secret and an empty body, so it is the same for every request.

Answers (``Cache-Control: no-store``: the links are signed for this user)::

    200 {"connection": "hs", "deal": {"id", "name", "stage", "canonical_stage", "account",
         "amount", "owner", "closed"}, "items": [{"content_id", "title", "type", "why",
         "open_url", "mobile"}], "page_url": "https://.../m/...", "generated_at": "...Z"}

Refusals are ``{"code", "message"}`` and logged with their reason: 400 ``invalid_request``
(no or bad ``dealId``, no ``userEmail``), 401 ``invalid_signature`` (also: no
``app_client_secret`` configured), 403 ``wrong_portal`` (``portalId`` is not the
connection's ``portal_id``), 404 ``unknown_connection`` / ``not_synced`` (the card shows
"not synced yet"), 503 ``unavailable`` (database down, no link signing key, or a
content catalog that does not load).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import structlog
from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from connectors.core.config import ConnectionConfig
from connectors.core.errors import StagelinkError
from connectors.hubspot.config import HubSpotConnectionConfig
from stagelink.recommendations import OpportunityNotFound
from stagelink.storage import StorageError
from stagelink.surfaces.links import LinkSigner, absolute
from stagelink.surfaces.views import OpportunityView, build_view
from stagelink.web.deps import WebState, WebStateDep, render_limiter
from stagelink.web.signatures import SignatureError, verify_hubspot_request
from stagelink.web.webhooks.hubspot import request_uri

__all__ = ["CardDeal", "CardItem", "CardResponse", "card_response", "router"]

log = structlog.get_logger(__name__)

router = APIRouter(tags=["surfaces"])

#: ``limit`` may ask for this many recommendations at most (default: ``content.top_n``).
MAX_LIMIT = 20
_DEAL_ID = re.compile(r"^[0-9]{1,20}$")


class CardDeal(BaseModel):
    """The deal as the card's header shows it."""

    id: str
    name: str | None
    stage: str | None
    canonical_stage: str | None
    account: str | None
    amount: str | None
    owner: str | None
    closed: bool


class CardItem(BaseModel):
    """One recommendation: ``open_url`` is a tracked link (records a view, then redirects)."""

    content_id: str
    title: str
    type: str
    why: str
    open_url: str
    mobile: bool


class CardResponse(BaseModel):
    """What the card renders."""

    connection: str
    deal: CardDeal
    items: list[CardItem]
    #: The signed mobile page for this user, opened in HubSpot's iframe modal.
    page_url: str
    generated_at: datetime


class _Refusal(Exception):
    """``status``/``code``/``message`` for the caller, ``reason`` for our log."""

    def __init__(self, status: int, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(reason or message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason or message


_BAD_SIGNATURE = "invalid or missing HubSpot signature"


def card_response(view: OpportunityView, base_url: str, *, now: datetime) -> CardResponse:
    """The card's JSON for a view (links made absolute under ``base_url``)."""
    return CardResponse(
        connection=view.connection,
        deal=CardDeal(
            id=view.opportunity_id,
            name=view.name,
            stage=view.stage_label,
            canonical_stage=view.canonical_stage,
            account=view.account_name,
            amount=view.amount,
            owner=view.owner_name,
            closed=view.is_closed,
        ),
        items=[
            CardItem(
                content_id=card.content_id,
                title=card.title,
                type=card.type,
                why=card.why,
                open_url=absolute(base_url, card.tracked_path),
                mobile=card.mobile_ready,
            )
            for card in view.cards
        ],
        page_url=absolute(base_url, view.page_path),
        generated_at=now,
    )


@router.get("/api/v1/hubspot/card/{connection}", response_model=CardResponse)
async def hubspot_card(connection: str, request: Request, state: WebStateDep) -> JSONResponse:
    """The top recommendations for a deal, for the HubSpot user who opened it."""
    try:
        body = await _answer(connection, request, state)
    except _Refusal as refusal:
        log.warning(
            "hubspot_card_refused",
            connection=connection[:100],
            status=refusal.status,
            code=refusal.code,
            reason=refusal.reason,
        )
        headers = {"Retry-After": "5"} if refusal.status == 503 else None
        return JSONResponse(
            {"code": refusal.code, "message": refusal.message},
            status_code=refusal.status,
            headers=headers,
        )
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def _answer(connection: str, request: Request, state: WebState) -> CardResponse:
    settings = _connection(state.config.connections, connection)
    secret = settings.app_client_secret
    if secret is None:
        raise _Refusal(401, "invalid_signature", _BAD_SIGNATURE, "no app_client_secret configured")
    public_url = state.config.server.public_url
    try:
        # hubspot.fetch sends GETs without a body; v3 only (see the module docstring).
        verify_hubspot_request(
            client_secret=secret.reveal(),
            method=request.method,
            uri=request_uri(request, public_url),
            body=b"",
            headers=request.headers,
            accept_legacy=False,
        )
    except SignatureError as exc:
        raise _Refusal(401, "invalid_signature", _BAD_SIGNATURE, exc.reason) from None
    query = request.query_params
    portal = query.get("portalId")
    if settings.portal_id is not None and portal != str(settings.portal_id):
        raise _Refusal(
            403,
            "wrong_portal",
            "this stagelink connection serves another HubSpot portal",
            f"portalId {str(portal)[:20]!r} is not the configured {settings.portal_id}",
        )
    deal_id = query.get("dealId", "").strip()
    if not _DEAL_ID.match(deal_id):
        raise _Refusal(400, "invalid_request", "dealId must be a HubSpot deal id (digits)")
    rep = query.get("userEmail", "").strip().lower()
    if "@" not in rep:
        raise _Refusal(400, "invalid_request", "userEmail is missing (HubSpot adds it)")
    limit = _limit(query.get("limit"))
    signer = state.signer
    if signer is None:
        raise _Refusal(
            503, "unavailable", "rep links are not configured", state.signer_problem or "no signer"
        )
    try:
        view = await to_thread.run_sync(
            partial(_build, state, signer, settings.name, deal_id, rep, limit),
            limiter=render_limiter(request),
        )
    except OpportunityNotFound as exc:
        raise _Refusal(
            404, "not_synced", "This deal is not synced to stagelink yet.", str(exc)
        ) from None
    except (DBAPIError, StorageError) as exc:
        raise _Refusal(
            503,
            "unavailable",
            "the database is unavailable; retry later",
            f"{type(exc).__name__}: {exc}"[:300],
        ) from None
    except StagelinkError as exc:  # e.g. a content catalog that no longer loads
        raise _Refusal(
            503,
            "unavailable",
            "stagelink cannot build recommendations right now",
            f"{type(exc).__name__}: {exc}"[:300],
        ) from None
    base = (
        public_url or f"{request.url.scheme}://{request.headers.get('host') or request.url.netloc}"
    )
    return card_response(view, base, now=datetime.now(UTC))


def _build(
    state: WebState,
    signer: LinkSigner,
    connection: str,
    deal_id: str,
    rep: str,
    limit: int | None,
) -> OpportunityView:
    # Blocking (catalog load on first use, then database reads): runs in a worker thread.
    return build_view(
        state.recommender(),
        signer,
        connection=connection,
        opportunity_id=deal_id,
        rep=rep,
        mobile=False,  # the CRM on a desktop; items still say which ones are mobile-ready
        limit=limit,
    )


def _limit(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    if not raw.strip().isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _Refusal(400, "invalid_request", f"limit must be 1 to {MAX_LIMIT}")
    return int(raw)


def _connection(connections: Sequence[ConnectionConfig], name: str) -> HubSpotConnectionConfig:
    for candidate in connections:
        if candidate.name == name and isinstance(candidate, HubSpotConnectionConfig):
            return candidate
    raise _Refusal(404, "unknown_connection", "no HubSpot connection of that name")
