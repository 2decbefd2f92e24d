"""The FastAPI application factory. Later features add their routers here.

Ops endpoints: ``/healthz`` (liveness: the process answers), ``/readyz`` (the database and
every CRM reachable; CRM probes cached, see :mod:`stagelink.ops.readiness`) and ``/metrics``
(Prometheus, see :mod:`stagelink.ops.metrics`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from connectors.core.errors import ConfigurationError
from stagelink.ops import CONTENT_TYPE, OpsMetrics, Readiness
from stagelink.settings import AppConfig
from stagelink.surfaces.links import LinkSigner
from stagelink.sync.debounce import ApplyTouched, Debouncer
from stagelink.sync.runner import Storage, open_connector
from stagelink.web import canvas, card, pages, push, usage
from stagelink.web.deps import WebState
from stagelink.web.webhooks import hubspot

__all__ = ["create_app"]

log = structlog.get_logger(__name__)

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers HTTP."""
    return {"status": "ok"}


@health.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database and every CRM are reachable, else 503 with why."""
    readiness: Readiness = request.app.state.readiness
    # Probes block (database, CRM logins): off the event loop.
    report = await to_thread.run_sync(readiness.check)
    return JSONResponse(report.as_dict(), status_code=200 if report.ready else 503)


@health.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this node (and of the shared database)."""
    ops: OpsMetrics = request.app.state.metrics
    body = await to_thread.run_sync(ops.render)
    return Response(body, media_type=CONTENT_TYPE)


def create_app(
    config: AppConfig,
    storage: Storage,
    *,
    debouncer: Debouncer | None = None,
    connector_factory: Callable[[ConnectionConfig], Connector] = open_connector,
    debounce_window: float = 2.0,
    debounce_max_wait: float = 10.0,
    max_body_bytes: int = 1_000_000,
    accept_legacy_signatures: bool = False,
    metrics: OpsMetrics | None = None,
    readiness: Readiness | None = None,
    readiness_ttl: float = 30.0,
    signer: LinkSigner | None = None,
) -> FastAPI:
    """Build the web application for ``config`` on ``storage``.

    Webhooks hand touched record ids to ``debouncer``; without one, the app builds its own
    (``debounce_window``/``debounce_max_wait`` seconds) that reads the records through
    ``connector_factory`` and stores them, and flushes it when the app shuts down. A
    debouncer passed in belongs to the caller, who closes it.

    ``metrics`` and ``readiness`` back ``/metrics`` and ``/readyz``; without them the app
    builds its own (CRM probes cached ``readiness_ttl`` seconds). Metrics built here count
    CRM responses while the app runs; metrics passed in belong to the caller.
    """
    own: ApplyTouched | None = None
    if debouncer is None:
        own = ApplyTouched(config, storage, connector_factory=connector_factory)
        debouncer = Debouncer(
            own, window=debounce_window, max_wait=debounce_max_wait, name="webhook-sync"
        )
    active = debouncer
    own_metrics = metrics is None
    ops_metrics = metrics or OpsMetrics(storage)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if own_metrics:
            ops_metrics.attach()
        yield
        if own_metrics:
            ops_metrics.detach()
        if own is not None:
            # Changes HubSpot was already told we received must still be stored. Blocking
            # work, so off the event loop.
            await to_thread.run_sync(active.close)
            await to_thread.run_sync(own.close)

    signer_problem = None
    if signer is None:
        try:
            signer = LinkSigner.from_config(config)
        except ConfigurationError as exc:
            # The usage API and webhooks work without it; rep pages answer 503 saying why.
            signer_problem = str(exc)
            log.warning("rep_surfaces_disabled", problem=signer_problem)

    app = FastAPI(title="stagelink", lifespan=lifespan)
    app.state.stagelink = WebState(
        config=config,
        storage=storage,
        debouncer=active,
        max_body_bytes=max_body_bytes,
        accept_legacy_signatures=accept_legacy_signatures,
        signer=signer,
        signer_problem=signer_problem,
    )
    app.state.metrics = ops_metrics
    app.state.readiness = readiness or Readiness(config, storage, ttl=readiness_ttl)
    app.include_router(health)
    app.include_router(hubspot.router)
    app.include_router(usage.router)
    app.include_router(pages.router)
    app.include_router(card.router)
    app.include_router(canvas.router)
    app.include_router(push.router)
    return app
