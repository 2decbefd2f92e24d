"""The rep's mobile page, its offline machinery, and tracked content links.

Routes (none in the OpenAPI schema; they serve people, not programs):

=================================  ======================================================
``GET /m/{connection}/{opp}?t=``   the deal's page for the rep the signed page token names
                                   (403 page for a bad/expired/forged token, 404 page for a
                                   deal that is not synced)
``GET /m/``                        start page of the installed app: deals opened on this
                                   device (kept in the browser, nothing server-side)
``GET /m/sw.js``                   the service worker (scope ``/m/``): offline copies
``GET /m/manifest.webmanifest``    web app manifest; ``/m/icon.svg`` its icon
``GET /m/static.{version}/{name}`` the page's CSS and JS, immutable per version
``GET /c/{token}``                 tracked link: records a ``viewed`` event (once per token
                                   and dedup window), then 302 to the catalog's URL for
                                   that content; 403 page for a bad token or content
=================================  ======================================================

Usage taps on the page are queued in the browser and posted to ``/api/v1/usage`` with the
``sls_`` session bearer the page carries (see ``static/mobile.js``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DBAPIError

from connectors.core.errors import StagelinkError
from stagelink.recommendations import OpportunityNotFound
from stagelink.storage import StorageError, UsageAction, utcnow
from stagelink.surfaces.links import LinkError, SessionGrant, TrackedGrant, absolute
from stagelink.surfaces.views import OpportunityView, build_view
from stagelink.usage.models import UsageEventIn
from stagelink.usage.tokens import TokenInfo
from stagelink.web.deps import WebState, WebStateDep, render_limiter
from stagelink.web.usage import usage_service

__all__ = ["ASSETS", "router", "view_event_id"]

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).parent
_GZIP_MIN_BYTES = 1024
#: Deterministic ids for tracked-link views: every node computes the same id for one token
#: and window, so the usage service's idempotency is what deduplicates across nodes.
_VIEW_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://stagelink.invalid/tracked-link-view")

# Pages embed in CRM iframes (HubSpot modal, Salesforce Canvas), so no frame-ancestors;
# present mode frames the content's own (any http/https) URL.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "frame-src http: https:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    # Page URLs carry their token; content hosts must not get it as a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# -- static assets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str


class Assets:
    """The page's CSS and JS, read once; URLs carry a content hash so they cache forever."""

    def __init__(self, folder: Path, names: Mapping[str, str]) -> None:
        self.files: dict[str, _Asset] = {}
        digest = hashlib.sha256()
        for name, media_type in names.items():
            body = (folder / name).read_bytes()
            digest.update(name.encode() + b"\0" + body)
            self.files[name] = _Asset(body, gzip.compress(body, 9, mtime=0), media_type)
        self.version = digest.hexdigest()[:12]

    def url(self, name: str) -> str:
        """The versioned URL of asset ``name`` (KeyError for an unknown one)."""
        if name not in self.files:
            raise KeyError(f"no static asset {name!r}")
        return f"/m/static.{self.version}/{name}"


ASSETS = Assets(
    _HERE / "static",
    {
        "mobile.css": "text/css; charset=utf-8",
        "mobile.js": "text/javascript; charset=utf-8",
        "mobile-sw.js": "text/javascript; charset=utf-8",
    },
)
_PAGE_ASSETS = ("mobile.css", "mobile.js")

_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals["asset"] = ASSETS.url

_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96">'
    '<rect width="96" height="96" rx="20" fill="#0b4f8a"/>'
    '<path d="M30 62c4 5 10 8 18 8 9 0 16-4 16-11 0-15-32-9-32-23 0-6 6-10 14-10 6 0 11 2 '
    '15 6" fill="none" stroke="#fff" stroke-width="8" stroke-linecap="round"/></svg>'
)
_MANIFEST = {
    "name": "stagelink",
    "short_name": "stagelink",
    "description": "The right sales content for each deal, on your phone.",
    "start_url": "/m/",
    "scope": "/m/",
    "display": "standalone",
    "background_color": "#f3f5f8",
    "theme_color": "#0b4f8a",
    "icons": [{"src": "/m/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
}


def _service_worker() -> bytes:
    """The worker script with this release's asset URLs (a new release is a new worker)."""
    cached = [ASSETS.url(name) for name in _PAGE_ASSETS]
    cached += ["/m/manifest.webmanifest", "/m/icon.svg"]
    text = ASSETS.files["mobile-sw.js"].body.decode()
    text = text.replace('"__VERSION__"', json.dumps(ASSETS.version))
    return text.replace('["__ASSETS__"]', json.dumps(cached)).encode()


_SERVICE_WORKER = _service_worker()


# -- responses -------------------------------------------------------------------------------


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def _send(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    gzipped: bytes | None = None,
) -> Response:
    """``body`` gzip-encoded when the client takes it (3G phones: a third of the bytes)."""
    out = {"Vary": "Accept-Encoding", **(headers or {})}
    if len(body) >= _GZIP_MIN_BYTES and _accepts_gzip(request):
        out["Content-Encoding"] = "gzip"
        body = gzipped if gzipped is not None else gzip.compress(body, 6)
    return Response(body, status_code=status, media_type=media_type, headers=out)


def _html(
    request: Request, template: str, *, status: int = 200, cache: str, **context: Any
) -> Response:
    text = _templates.get_template(template).render(**context)
    headers = {**_PAGE_HEADERS, "Cache-Control": cache}
    return _send(request, text.encode(), "text/html; charset=utf-8", status=status, headers=headers)


def _message(
    request: Request, status: int, heading: str, detail: str, hint: str | None = None
) -> Response:
    """An error page: what happened and what to do, never deal data."""
    return _html(
        request,
        "mobile_message.html",
        status=status,
        cache="no-store",
        heading=heading,
        detail=detail,
        hint=hint,
    )


def _link_refused(request: Request, exc: LinkError, *, page: bool) -> Response:
    if exc.reason.startswith("expired"):
        hint = (
            "Open the deal again from HubSpot or Salesforce to get a fresh link."
            if page
            else "Ask whoever sent it for a fresh link."
        )
        return _message(
            request, 403, "This link has expired", "Links work for a limited time.", hint
        )
    return _message(
        request,
        403,
        "This link is not valid",
        "It may be incomplete or changed. Nothing is shown without a valid link.",
        "Check that the whole link was copied, or open the deal again from your CRM.",
    )


def _not_configured(request: Request, state: WebState) -> Response:
    log.warning("rep_page_unavailable", problem=state.signer_problem)
    return _message(
        request,
        503,
        "Rep pages are not set up",
        "stagelink has no key to check links with.",
        "An administrator needs to set surfaces.signing_key (see `stagelink check`).",
    )


def _unavailable(request: Request) -> Response:
    response = _message(
        request, 503, "Temporarily unavailable", "stagelink could not load this page right now."
    )
    response.headers["Retry-After"] = "10"
    return response


def _base_url(request: Request, state: WebState) -> str:
    return state.config.server.public_url or str(request.base_url)


# -- the deal page ---------------------------------------------------------------------------


def _page_data(view: OpportunityView) -> dict[str, Any]:
    """What the page's script needs (embedded as JSON, never executed)."""
    return {
        "connection": view.connection,
        "opportunity_id": view.opportunity_id,
        "rep": view.rep,
        "session_token": view.session_token,
        "page_path": view.page_path,
        "name": view.name,
        "account": view.account_name,
    }


@router.get("/m/")
async def home(request: Request) -> Response:
    """Start page of the installed app: the deals opened on this device."""
    return _html(request, "mobile_home.html", cache="no-cache")


@router.get("/m/sw.js")
async def service_worker(request: Request) -> Response:
    """The offline worker; browsers check it for updates on navigation (no-cache)."""
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return _send(request, _SERVICE_WORKER, "text/javascript; charset=utf-8", headers=headers)


@router.get("/m/manifest.webmanifest")
async def manifest() -> Response:
    """Web app manifest: "Add to Home Screen" opens ``/m/`` standalone."""
    return Response(
        json.dumps(_MANIFEST),
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/m/icon.svg")
async def icon() -> Response:
    """The app icon."""
    return Response(
        _ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/m/static.{version}/{name}")
async def static_asset(version: str, name: str, request: Request) -> Response:
    """CSS/JS: immutable under the current version; an old version's URL (a page from
    before a deploy) gets today's file, revalidated."""
    found = ASSETS.files.get(name)
    if found is None or name not in _PAGE_ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    current = version == ASSETS.version
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    return _send(
        request,
        found.body,
        found.media_type,
        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"},
        gzipped=found.gzipped,
    )


# Registered after the fixed /m/ routes: "static.<version>" must not be read as a connection.
@router.get("/m/{connection}/{opportunity_id}")
async def opportunity_page(
    connection: str, opportunity_id: str, request: Request, state: WebStateDep, t: str = ""
) -> Response:
    """A deal's content for the rep its signed page token names."""
    signer = state.signer
    if signer is None:
        return _not_configured(request, state)
    try:
        grant = signer.read_page_token(t, connection=connection, opportunity_id=opportunity_id)
    except LinkError as exc:
        log.info("page_link_refused", connection=connection, reason=exc.reason)
        return _link_refused(request, exc, page=True)

    def build() -> OpportunityView:
        return build_view(
            state.recommender(),
            signer,
            connection=connection,
            opportunity_id=opportunity_id,
            rep=grant.rep,
        )

    try:
        view = await to_thread.run_sync(build, limiter=render_limiter(request))
    except (OpportunityNotFound, KeyError) as exc:
        log.info("page_deal_missing", connection=connection, reason=str(exc))
        return _message(
            request,
            404,
            "This deal is not available",
            "It has not reached stagelink yet, or it was deleted in the CRM.",
            "New deals show up after the next sync, usually within minutes.",
        )
    except (DBAPIError, StorageError) as exc:
        log.warning("page_unavailable", error=f"{type(exc).__name__}: {exc}"[:300])
        return _unavailable(request)
    except StagelinkError:
        log.exception("page_failed", connection=connection)  # e.g. a broken content catalog
        return _unavailable(request)
    base = _base_url(request, state)
    return _html(
        request,
        "mobile_page.html",
        # The service worker keeps its own copy; shared caches must not (the page holds
        # the rep's session), and the browser revalidates on every visit.
        cache="private, no-cache",
        view=view,
        page_data=_page_data(view),
        absolute_url=lambda path: absolute(base, path),
    )


# -- tracked links ---------------------------------------------------------------------------


def view_event_id(token: str, at: datetime, window: timedelta) -> uuid.UUID:
    """The ``client_event_id`` of a tracked link's view: one per token and window."""
    bucket = int(at.timestamp() // max(window.total_seconds(), 1))
    return uuid.uuid5(_VIEW_NAMESPACE, f"{token}|{bucket}")


def _record_view(request: Request, state: WebState, token: str, grant: TrackedGrant) -> None:
    """Store the view through the usage service (blocking; failures only logged: the
    reader still gets the content)."""
    now = utcnow()
    event = UsageEventIn(
        client_event_id=view_event_id(token, now, state.config.surfaces.view_dedup_window),
        connection=grant.connection,
        opportunity_id=grant.opportunity_id,
        content_id=grant.content_id,
        action=UsageAction.VIEWED,
        occurred_at=now,
        channel="tracked_link",
    )
    identity = TokenInfo.for_session(
        SessionGrant(rep=grant.rep, connection=grant.connection, expires_at=grant.expires_at)
    )
    try:
        (result,) = usage_service(request.app).ingest(identity, [event])
    except (DBAPIError, StorageError) as exc:
        log.warning("tracked_view_not_recorded", error=f"{type(exc).__name__}: {exc}"[:300])
        return
    if result.status.value == "rejected":
        log.warning("tracked_view_rejected", content=grant.content_id, reason=result.reason)


@router.api_route("/c/{token}", methods=["GET", "HEAD"])
async def tracked_link(token: str, request: Request, state: WebStateDep) -> Response:
    """Record a view of the content, then send the reader to it (302).

    The target is the catalog's URL for the token's content id at click time, never
    anything from the request, so the route cannot redirect elsewhere. HEAD (link
    checkers, previews that probe) redirects without recording.
    """
    signer = state.signer
    if signer is None:
        return _not_configured(request, state)
    try:
        grant = signer.read_tracked_token(token)
    except LinkError as exc:
        log.info("tracked_link_refused", reason=exc.reason)
        return _link_refused(request, exc, page=False)
    catalog = (await to_thread.run_sync(usage_service, request.app)).catalog
    item = catalog.get(grant.content_id)
    gone = "not in the catalog" if item is None else item.unavailable_reason(utcnow())
    if item is None or gone:
        log.info("tracked_link_content_gone", content=grant.content_id, reason=gone)
        return _message(
            request,
            403,
            "This content is no longer available",
            "It was withdrawn or replaced since the link was made.",
            "Ask whoever sent it for a current link.",
        )
    if request.method == "GET":
        await to_thread.run_sync(_record_view, request, state, token, grant)
    return RedirectResponse(
        item.url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
