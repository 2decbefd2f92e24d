"""The FastAPI application factory. Later features add their routers here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, FastAPI

from connectors.core.config import ConnectionConfig
from connectors.core.connector import Connector
from stagelink.settings import AppConfig
from stagelink.sync.debounce import ApplyTouched, Debouncer
from stagelink.sync.runner import Storage, open_connector
from stagelink.web.deps import WebState
from stagelink.web.webhooks import hubspot

__all__ = ["create_app"]

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers HTTP."""
    return {"status": "ok"}


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
) -> FastAPI:
    """Build the web application for ``config`` on ``storage``.

    Webhooks hand touched record ids to ``debouncer``; without one, the app builds its own
    (``debounce_window``/``debounce_max_wait`` seconds) that reads the records through
    ``connector_factory`` and stores them, and flushes it when the app shuts down. A
    debouncer passed in belongs to the caller, who closes it.
    """
    own: ApplyTouched | None = None
    if debouncer is None:
        own = ApplyTouched(config, storage, connector_factory=connector_factory)
        debouncer = Debouncer(
            own, window=debounce_window, max_wait=debounce_max_wait, name="webhook-sync"
        )
    active = debouncer

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if own is not None:
            # Changes HubSpot was already told we received must still be stored. Blocking
            # work, so off the event loop.
            await to_thread.run_sync(active.close)
            await to_thread.run_sync(own.close)

    app = FastAPI(title="stagelink", lifespan=lifespan)
    app.state.stagelink = WebState(
        config=config,
        storage=storage,
        debouncer=active,
        max_body_bytes=max_body_bytes,
        accept_legacy_signatures=accept_legacy_signatures,
    )
    app.include_router(health)
    app.include_router(hubspot.router)
    return app
