"""``POST /canvas/salesforce/{connection}``: stagelink as a Salesforce Canvas app.

Salesforce loads a Canvas app by POSTing the form field ``signed_request`` (signed with the
connected app's consumer secret, see :mod:`stagelink.surfaces.canvas`) to the Canvas URL,
inside an iframe on the Opportunity page layout, the Lightning record page or the mobile
app. A verified request names the Salesforce user and the record; stagelink signs a page
link for that user and deal and answers ``303 See Other`` to the opportunity's mobile page
(``/m/...``), which the iframe then loads with a GET.

Refusals are small HTML pages (the user sees them inside Salesforce) and each is logged
with its reason, never with the request (it carries the user's Salesforce session token):
401 forged, tampered or unverifiable request (also: no ``canvas_consumer_secret``
configured), 400 no ``signed_request``, no user, no user e-mail, or not on an Opportunity,
404 unknown connection, 413 body too large, 503 no link signing key.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from connectors.core.config import ConnectionConfig
from connectors.salesforce.config import SalesforceConnectionConfig
from stagelink.surfaces.canvas import (
    CanvasContext,
    CanvasError,
    read_context,
    verify_signed_request,
)
from stagelink.surfaces.links import absolute, page_path
from stagelink.web.bodies import BodyTooLarge, read_limited
from stagelink.web.deps import WebState, WebStateDep

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(tags=["surfaces"])

#: Key prefix of Opportunity ids (the same in every org).
OPPORTUNITY_PREFIX = "006"

_TITLES = {
    400: "stagelink cannot show this page",
    401: "stagelink could not verify this request",
    404: "stagelink does not know this connection",
    413: "Request too large",
    503: "stagelink is not ready",
}


class _Refusal(Exception):
    """``message`` for the user (safe to show), ``reason`` for our log."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(reason or message)
        self.status = status
        self.message = message
        self.reason = reason or message


_UNVERIFIED = (
    "This request did not come signed from your Salesforce org. Reload the page; if it "
    "keeps happening, ask your administrator to check the Canvas app's consumer secret."
)


@router.post("/canvas/salesforce/{connection}", response_class=HTMLResponse)
async def salesforce_canvas(connection: str, request: Request, state: WebStateDep) -> Response:
    """Verify a Canvas signed request and send the user to the opportunity's page."""
    try:
        settings, context = await _verify(connection, request, state)
        location = _page_location(state, settings.name, context)
    except _Refusal as refusal:
        log.warning(
            "salesforce_canvas_refused",
            connection=connection[:100],
            status=refusal.status,
            reason=refusal.reason,
        )
        return _page(refusal.status, refusal.message)
    log.info(
        "salesforce_canvas_opened",
        connection=settings.name,
        opportunity=context.record_id,
        user_id=context.user_id,
        organization=context.organization_id,
        location=context.display_location,
        sub_location=context.sub_location,
    )
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _verify(
    connection: str, request: Request, state: WebState
) -> tuple[SalesforceConnectionConfig, CanvasContext]:
    settings = _connection(state.config.connections, connection)
    secret = settings.canvas_consumer_secret
    if secret is None:
        raise _Refusal(401, _UNVERIFIED, "no canvas_consumer_secret configured")
    body = await _read_body(request, state.max_body_bytes)
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise _Refusal(
            400, "The request is not a form post.", "body is not a URL-encoded form"
        ) from None
    values = form.get("signed_request", [])
    if len(values) != 1:
        raise _Refusal(
            400,
            "Salesforce sent no signed request. Set the Canvas app's access method to "
            "'Signed Request (POST)'.",
            f"{len(values)} signed_request fields",
        )
    # Base64 has no spaces: a '+' a client forgot to escape was decoded as one.
    signed = values[0].replace(" ", "+")
    try:
        envelope = verify_signed_request(signed, secret.reveal())
    except CanvasError as exc:
        raise _Refusal(401, _UNVERIFIED, exc.reason) from None
    try:
        context = read_context(envelope)
    except CanvasError as exc:  # genuine, but without a user or with a bogus record id
        raise _Refusal(
            400, "Salesforce sent a context stagelink cannot read.", exc.reason
        ) from None
    return settings, context


def _page_location(state: WebState, connection: str, context: CanvasContext) -> str:
    record = context.record_id
    if record is None or (context.record_type not in (None, "Opportunity")):
        where = context.record_type or context.display_location or "this page"
        raise _Refusal(
            400,
            "stagelink shows an opportunity's content: add the Canvas app to the Opportunity "
            "page layout or Lightning record page.",
            f"not on an opportunity (record {record!r}, type {where!r})",
        )
    if not record.startswith(OPPORTUNITY_PREFIX):
        raise _Refusal(
            400,
            "stagelink shows an opportunity's content: this record is not an opportunity.",
            f"record {record!r} is not an Opportunity id",
        )
    if context.user_email is None:
        raise _Refusal(400, "Your Salesforce user has no e-mail address.", "no context.user.email")
    signer = state.signer
    if signer is None:
        raise _Refusal(
            503,
            "Rep pages are not configured on this stagelink server.",
            state.signer_problem or "no link signer",
        )
    token = signer.page_token(rep=context.user_email, connection=connection, opportunity_id=record)
    path = page_path(connection, record, token)
    public_url = state.config.server.public_url
    return absolute(public_url, path) if public_url else path


async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_limited(request, limit)
    except BodyTooLarge as exc:
        raise _Refusal(413, "The request is too large.", exc.detail) from None


def _connection(connections: Sequence[ConnectionConfig], name: str) -> SalesforceConnectionConfig:
    for candidate in connections:
        if candidate.name == name and isinstance(candidate, SalesforceConnectionConfig):
            return candidate
    raise _Refusal(404, "No Salesforce connection of that name is configured.")


def _page(status: int, message: str) -> HTMLResponse:
    """A tiny self-contained page (it shows inside Salesforce's iframe)."""
    title = html.escape(_TITLES.get(status, "stagelink"))
    text = html.escape(message)
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;"
        "padding:1.5rem;color:#1b1b1b;background:#fff}main{max-width:36rem}"
        "h1{font-size:1.25rem}</style></head>"
        f"<body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})
